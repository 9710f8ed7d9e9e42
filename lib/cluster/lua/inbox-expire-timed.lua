--! keys: 3
-- A timed claim found due in the deadlines index: its messages go back to the head of their
-- inbox if its deadline (by this slot's clock) passed.
-- KEYS claim, claim-order, claim-meta; ARGV ttl, retention
-- → { 1 expired now | 0 not due yet | -1 ended or unknown (drop it from the index), deadline }
local meta = redis.call('HMGET', KEYS[3], 'user', 'deadline', 'ended')
if not meta[1] or meta[3] or not meta[2] then return { -1, 0 } end
if now() < tonumber(meta[2]) then return { 0, tonumber(meta[2]) } end
release(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]))
end_timed(KEYS[3], meta[1], 'expired', tonumber(ARGV[2]))
return { 1, 0 }

--! keys: 3
-- KEYS claim, claim-order, claim-meta; ARGV user, ttl, retention, all (1|0), ids...
-- → acked, left, state (0 open, 1 expired, 2 acked in full earlier, -1 unknown or another user's)
-- A claim that ends here (acked in full, or found expired) is the caller's to drop from the deadlines.
local user, ttl, retention = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local meta = redis.call('HMGET', KEYS[3], 'user', 'deadline', 'ended')
if not meta[1] or meta[1] ~= user then return { 0, 0, -1 } end
if meta[3] == 'expired' then return { 0, 0, 1 } end
if meta[3] == 'acked' then return { 0, 0, 2 } end
-- a claim of a subscription, not a timed one
if not meta[2] then return { 0, 0, -1 } end
if now() >= tonumber(meta[2]) then
  release(KEYS[1], KEYS[2], KEYS[3], ttl)
  end_timed(KEYS[3], user, 'expired', retention)
  return { 0, 0, 1 }
end
local ids = {}
if ARGV[4] == '1' then ids = redis.call('LRANGE', KEYS[2], 0, -1) else for i = 5, #ARGV do ids[#ids + 1] = ARGV[i] end end
local acked = 0
for _, id in ipairs(ids) do
  if redis.call('HDEL', KEYS[1], id) == 1 then
    redis.call('LREM', KEYS[2], 0, id)
    acked = acked + 1
  end
end
local left = redis.call('HLEN', KEYS[1])
if left == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  end_timed(KEYS[3], user, 'acked', retention)
end
return { acked, left, 0 }

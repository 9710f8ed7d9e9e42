--! keys: 3
-- KEYS queue, in-flight list, queue-bytes; ARGV ready channel, sharded (1|0), payloads (oldest first) → requeued
-- Only what is still in this incarnation's in-flight list goes back: after it was reaped (a
-- pause), its list belongs to the recovery, which requeues it; pushing again would duplicate.
-- Never refused: these messages were accepted already.
local ids, idOf = {}, {}
for i = 3, #ARGV do
  local id = message_id(ARGV[i])
  ids[id], idOf[i] = true, id
end
forget(KEYS[2], ids)
local n = 0
for i = #ARGV, 3, -1 do
  if not ids[idOf[i]] then
    redis.call('LPUSH', KEYS[1], ARGV[i])
    redis.call('INCRBY', KEYS[3], #ARGV[i])
    n = n + 1
  end
end
if n > 0 then redis.call(ARGV[2] == '1' and 'SPUBLISH' or 'PUBLISH', ARGV[1], '1') end
return n

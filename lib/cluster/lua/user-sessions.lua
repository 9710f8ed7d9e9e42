--! keys: 1
-- This node's count of a user's sessions (MAX_CONNECTIONS_PER_USER), in the user's slot; the
-- caller lists the hash in its node index before (redis-user-sessions.ts).
-- KEYS user-sessions; ARGV node id, this node's count, max (0: write without checking)
-- → 1 written, 0 refused (the other nodes' sessions and this node's would pass max; nothing written)
local mine, max = tonumber(ARGV[2]), tonumber(ARGV[3])
if max > 0 then
  local fields, others = redis.call('HGETALL', KEYS[1]), 0
  for i = 1, #fields, 2 do
    if fields[i] ~= ARGV[1] then others = others + tonumber(fields[i + 1]) end
  end
  if others + mine > max then return 0 end
end
if mine > 0 then redis.call('HSET', KEYS[1], ARGV[1], mine) else redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1

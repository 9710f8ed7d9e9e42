--! keys: 2
-- A beat, in the cluster-wide slot. KEYS nodes, dead-nodes; ARGV id
-- → { known (0/1: was in nodes), now (Redis time, ms), { id, last beat, ... }, { recovery tags... } }
local t = now()
local known = redis.call('ZSCORE', KEYS[1], ARGV[1]) and 1 or 0
redis.call('ZADD', KEYS[1], t, ARGV[1])
return { known, t, redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES'), redis.call('SMEMBERS', KEYS[2]) }

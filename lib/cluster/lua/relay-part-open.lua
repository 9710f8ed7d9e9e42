--! keys: 2
-- Opens one stream partition of a node (redis-keys.ts, "Stream partitions"), in the partition's
-- slot: records the incarnation now reading it, and creates the stream empty unless it exists
-- (what is in it then is read by this incarnation: a move for an older one finds it taken).
-- KEYS stream, incarnation; ARGV k → 1 created | 0 it existed
redis.call('SET', KEYS[2], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('XADD', KEYS[1], '*', 'e', '')
redis.call('XTRIM', KEYS[1], 'MAXLEN', 0)
forget_last(KEYS[1])
return 1

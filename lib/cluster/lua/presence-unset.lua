--! keys: 1
-- Removes a node from a user's hash, only if it was recorded by incarnation k: a reaped
-- incarnation's leftovers are undone without undoing what the node recorded since.
-- KEYS hash; ARGV node id, k → fields left
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
return redis.call('HLEN', KEYS[1])

--! keys: 1
-- Records a node (incarnation k) in a user's hash of nodes or of subscribers.
-- KEYS hash; ARGV node id, k → fields left
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('HLEN', KEYS[1])

--! keys: 2
-- KEYS recover-lock, dead-nodes; ARGV owner, tag, done (1: nothing of the tag is left, checked
-- in its node's slot just before) → 1 when the tag left dead-nodes
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if ARGV[3] ~= '1' then return 0 end
return redis.call('SREM', KEYS[2], ARGV[2])

--! keys: 2
-- KEYS recover-lock, dead-nodes; ARGV owner, tag, ttlMs → 1 taken, 0 taken by another node or
-- finished already (a tag listed by this node's beat may have been finished by another since)
if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 0 then return 0 end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[3]) then return 1 end
return 0

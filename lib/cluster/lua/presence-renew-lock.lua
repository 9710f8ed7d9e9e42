--! keys: 1
-- KEYS lock; ARGV owner, ttlMs → 1 renewed, 0 not ours
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])

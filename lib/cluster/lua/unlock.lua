--! keys: 1
-- KEYS lock; ARGV owner → 1 when it was ours and is released
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])

--! keys: 1
-- KEYS queue; ARGV payload, max, ready channel (in the queue's slot), sharded (1|0) → 1 pushed, 0 full
if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call(ARGV[4] == '1' and 'SPUBLISH' or 'PUBLISH', ARGV[3], '1')
return 1

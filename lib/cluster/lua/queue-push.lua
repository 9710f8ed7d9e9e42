--! keys: 2
-- KEYS queue, queue-bytes; ARGV payload, max, ready channel (in the queue's slot), sharded (1|0), max bytes
-- → 1 pushed, 0 full (messages), -1 full (bytes)
if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
if tonumber(redis.call('GET', KEYS[2]) or '0') + #ARGV[1] > tonumber(ARGV[5]) then return -1 end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('INCRBY', KEYS[2], #ARGV[1])
redis.call(ARGV[4] == '1' and 'SPUBLISH' or 'PUBLISH', ARGV[3], '1')
return 1

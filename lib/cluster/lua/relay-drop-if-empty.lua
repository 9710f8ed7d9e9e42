--! keys: 2
-- KEYS stream, stream-bytes → 1 when the stream is gone, 0 when entries are left
if redis.call('XLEN', KEYS[1]) > 0 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
forget_last(KEYS[1])
return 1

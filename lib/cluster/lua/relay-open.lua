--! keys: 1
-- KEYS stream: creates it empty (a stream key outlives its last entry) unless it exists
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('XADD', KEYS[1], '*', 'e', '')
redis.call('XTRIM', KEYS[1], 'MAXLEN', 0)
forget_last(KEYS[1])
return 1

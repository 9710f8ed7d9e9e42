--! keys: 2
-- KEYS stream, stream-bytes; ARGV min id ('' for none), bytes removed, ids to delete one by one
-- (handled entries behind a held one) → entries removed
local removed = 0
if ARGV[1] ~= '' then removed = redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1]) end
if #ARGV > 2 then removed = removed + redis.call('XDEL', KEYS[1], unpack(ARGV, 3)) end
if redis.call('DECRBY', KEYS[2], ARGV[2]) < 0 then redis.call('SET', KEYS[2], 0) end
return removed

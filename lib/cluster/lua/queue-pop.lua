--! keys: 2
-- KEYS queue, in-flight list of this incarnation; ARGV max → messages, moved to in-flight
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items == 0 then return items end
redis.call('LTRIM', KEYS[1], #items, -1)
for _, item in ipairs(items) do redis.call('RPUSH', KEYS[2], item) end
return items

--! keys: 3
-- KEYS queue, in-flight list of this incarnation, queue-bytes; ARGV max → messages, moved to in-flight
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items == 0 then return items end
redis.call('LTRIM', KEYS[1], #items, -1)
local size = 0
for _, item in ipairs(items) do
  redis.call('RPUSH', KEYS[2], item)
  size = size + #item
end
-- an emptied queue counts nothing: whatever the counter says is reset with it
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('DEL', KEYS[3]) else redis.call('DECRBY', KEYS[3], size) end
return items

--! keys: 3
-- A dead incarnation's in-flight list of one queue back to the queue's head, in order.
-- KEYS queue, in-flight list, queue-bytes; ARGV ready channel, sharded (1|0) → messages moved back
local items = redis.call('LRANGE', KEYS[2], 0, -1)
local size = 0
for i = #items, 1, -1 do
  redis.call('LPUSH', KEYS[1], items[i])
  size = size + #items[i]
end
if size > 0 then redis.call('INCRBY', KEYS[3], size) end
redis.call('DEL', KEYS[2])
if #items > 0 then redis.call(ARGV[2] == '1' and 'SPUBLISH' or 'PUBLISH', ARGV[1], '1') end
return #items

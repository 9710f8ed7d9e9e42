--! keys: 1
-- KEYS inboxes → destination, depth, destination, depth... (stale members dropped)
local out = {}
for _, destination in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local depth = redis.call('LLEN', sibling(KEYS[1], 'inbox:' .. destination))
  if depth == 0 then
    redis.call('SREM', KEYS[1], destination)
  else
    out[#out + 1] = destination
    out[#out + 1] = depth
  end
end
return out

--! keys: 3
--! readonly
-- KEYS claim, claim-order, claim-meta → { user, destination, messages in order... } ({} for none)
local owner = redis.call('HMGET', KEYS[3], 'user', 'destination')
if not owner[1] then return {} end
local out = { owner[1], owner[2] }
for _, id in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  local item = redis.call('HGET', KEYS[1], id)
  if item then out[#out + 1] = item end
end
return out

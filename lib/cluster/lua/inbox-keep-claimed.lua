--! keys: 3
-- KEYS claim, claim-order, claim-meta; ARGV user, destination, claimId, payloads... → messages in the claim
local owner = redis.call('HMGET', KEYS[3], 'user', 'destination')
if owner[1] and (owner[1] ~= ARGV[1] or owner[2] ~= ARGV[2]) then
  return redis.error_reply('claim ' .. ARGV[3] .. ' already holds another inbox')
end
redis.call('HSET', KEYS[3], 'user', ARGV[1], 'destination', ARGV[2])
for i = 4, #ARGV do
  local item = ARGV[i]
  local id = message_id(item)
  redis.call('HSET', KEYS[1], id, item)
  redis.call('RPUSH', KEYS[2], id)
end
return redis.call('HLEN', KEYS[1])

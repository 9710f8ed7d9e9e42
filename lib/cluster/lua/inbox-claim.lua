--! keys: 6
-- KEYS inbox, inboxes, inbox-bytes, claim, claim-order, claim-meta; ARGV count, user, destination, claimId → messages
local owner = redis.call('HMGET', KEYS[6], 'user', 'destination')
if owner[1] and (owner[1] ~= ARGV[2] or owner[2] ~= ARGV[3]) then
  return redis.error_reply('claim ' .. ARGV[4] .. ' already holds another inbox')
end
local items = take(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]), ARGV[3])
if #items == 0 then return items end
redis.call('HSET', KEYS[6], 'user', ARGV[2], 'destination', ARGV[3])
for _, item in ipairs(items) do
  local id = message_id(item)
  redis.call('HSET', KEYS[4], id, item)
  redis.call('RPUSH', KEYS[5], id)
end
return items

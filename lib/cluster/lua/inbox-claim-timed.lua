--! keys: 6
-- KEYS inbox, inboxes, inbox-bytes, claim, claim-order, claim-meta; ARGV count, user, destination, claimId, timeoutMs
-- → deadline (Redis time of this slot's server), messages... ({} for none)
local items = take(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]), ARGV[3])
if #items == 0 then return items end
local deadline = now() + tonumber(ARGV[5])
redis.call('HSET', KEYS[6], 'user', ARGV[2], 'destination', ARGV[3], 'deadline', deadline)
for _, item in ipairs(items) do
  local id = message_id(item)
  redis.call('HSET', KEYS[4], id, item)
  redis.call('RPUSH', KEYS[5], id)
end
table.insert(items, 1, tostring(deadline))
return items

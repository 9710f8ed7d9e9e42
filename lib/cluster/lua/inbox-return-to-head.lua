--! keys: 6
-- Puts messages back at the head of their inbox, taking them out of their claim in the same step.
-- KEYS inbox, inboxes, inbox-bytes, claim, claim-order, claim-meta
-- ARGV ttl, destination, claimId ('' for none), n, n ids, n payloads (oldest first)
-- → { returned, 1 when the claim is empty now (the caller drops it from its node's index) }
local n, claimed = tonumber(ARGV[4]), ARGV[3] ~= ''
local items = {}
for i = 1, n do
  local id, payload = ARGV[4 + i], ARGV[4 + n + i]
  -- From a claim, only what it still holds: the rest was acked, released or returned already
  -- (a retry after a lost reply), and would come back twice.
  if not claimed then
    items[#items + 1] = payload
  elseif redis.call('HDEL', KEYS[4], id) == 1 then
    redis.call('LREM', KEYS[5], 0, id)
    items[#items + 1] = payload
  end
end
local emptied = 0
if claimed and redis.call('HLEN', KEYS[4]) == 0 then
  redis.call('DEL', KEYS[4], KEYS[5], KEYS[6])
  emptied = 1
end
if #items > 0 then prepend(KEYS[1], KEYS[2], KEYS[3], ARGV[2], items, tonumber(ARGV[1])) end
return { #items, emptied }

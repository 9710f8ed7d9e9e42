--! keys: dynamic
-- Route-or-store's decision, atomically in the users' slots (one slot per call on a cluster;
-- any number of users on one Redis). For each message, in order: the nodes holding a
-- subscription of its user to its destination, less `exclude` and the nodes found gone at an
-- earlier hand-off; this node → `local`; other nodes → returned, for the caller to hand the
-- envelope to each one's stream (relay-handoff.lua); none → the message is appended to the
-- inbox here (capped, expiring), so that a subscription registered before it is never missed.
-- KEYS per message: subs, inbox, inboxes, inbox-bytes
-- ARGV self, max messages, ttl, overflow, max bytes (the user's), n, n gone node ids, then per message: exclude,
--      kept (1: accepted already, never refused), destination, payload
-- → per message { local (0|1), stored (0 | 1 + dropped | INBOX_REFUSED | INBOX_REFUSED_BYTES), node ids... }
local self, max, ttl, overflow, maxBytes = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local n = tonumber(ARGV[6])
local gone = {}
for i = 7, 6 + n do gone[ARGV[i]] = true end
-- A batch holds many messages for few subscriptions: read each hash once (nothing here changes it).
local holders = {}
local out = {}
local k = 0
for i = 7 + n, #ARGV, 4 do
  local exclude, kept, destination, payload = ARGV[i], ARGV[i + 1] == '1', ARGV[i + 2], ARGV[i + 3]
  local subs, inbox, inboxes, bytes = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4]
  k = k + 4
  local members = holders[subs]
  if members == nil then
    members = redis.call('HKEYS', subs)
    holders[subs] = members
  end
  local r = { 0, 0 }
  for _, id in ipairs(members) do
    if id ~= exclude and not gone[id] then
      if id == self then r[1] = 1 else r[#r + 1] = id end
    end
  end
  if r[1] == 0 and #r == 2 then
    local appended = append(inbox, inboxes, bytes, destination, payload, max, maxBytes, ttl, overflow, kept)
    r[2] = appended < 0 and appended or 1 + appended
  end
  out[#out + 1] = r
end
return out

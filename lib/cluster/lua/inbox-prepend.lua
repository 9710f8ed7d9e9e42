--! keys: 3
-- KEYS inbox, inboxes, inbox-bytes; ARGV ttl, destination, payloads (oldest first) → how many
local items = {}
for i = 3, #ARGV do items[#items + 1] = ARGV[i] end
prepend(KEYS[1], KEYS[2], KEYS[3], ARGV[2], items, tonumber(ARGV[1]))
return #items

--! keys: 2
-- KEYS inbox, inboxes; ARGV payload, max, ttl, destination, overflow, accepted (1|0)
-- → INBOX_REFUSED, or how many the cap dropped
return append(KEYS[1], KEYS[2], ARGV[4], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[5], ARGV[6] == '1')

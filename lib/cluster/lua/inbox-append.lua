--! keys: 3
-- KEYS inbox, inboxes, inbox-bytes; ARGV payload, max, ttl, destination, overflow, accepted (1|0), maxBytes
-- → INBOX_REFUSED, INBOX_REFUSED_BYTES, or how many the caps dropped
return append(KEYS[1], KEYS[2], KEYS[3], ARGV[4], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[7]), tonumber(ARGV[3]), ARGV[5], ARGV[6] == '1')

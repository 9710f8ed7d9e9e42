--! keys: 3
-- KEYS inbox, inboxes, inbox-bytes; ARGV count (-1: all), destination → messages
return take(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]), ARGV[2])

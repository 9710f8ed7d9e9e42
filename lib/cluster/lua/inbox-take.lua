--! keys: 2
-- KEYS inbox, inboxes; ARGV count (-1: all), destination → messages
return take(KEYS[1], KEYS[2], tonumber(ARGV[1]), ARGV[2])

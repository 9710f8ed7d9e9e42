--! keys: 3
-- KEYS claim, claim-order, claim-meta; ARGV ttl → messages back at the head of their inbox
return release(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]))

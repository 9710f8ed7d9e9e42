--! keys: 2
-- The hand-off of user envelopes to one node, in its slot: one stream entry, written only while
-- the node's stream exists (a reaped or departed node's stream has moved away: nothing lands
-- where nobody will read), and within the stream's byte bound unless every envelope was
-- accepted already (a re-route: never refused). Never MAXLEN: a stream is trimmed only by its
-- reader, past what it handled.
-- KEYS stream, stream-bytes; ARGV max bytes (0: none), kept (1|0), field ('e' one envelope,
-- 'b' a packed batch), value, push (1: publish it for a push-fed reader, lib.lua relay_append)
-- → 1 written | 0 no stream | RELAY_FULL
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local size, max = string.len(ARGV[4]), tonumber(ARGV[1])
if max > 0 and ARGV[2] ~= '1' and tonumber(redis.call('GET', KEYS[2]) or '0') + size > max then return RELAY_FULL end
relay_append(KEYS[1], KEYS[2], size, ARGV[3], ARGV[4], ARGV[5] == '1')
return 1

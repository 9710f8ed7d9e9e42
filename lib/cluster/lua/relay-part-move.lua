--! keys: 5
-- Ends incarnation k's hold on one stream partition, in the partition's slot: when the
-- partition is still k's, its stream (if any entries are left) moves under !k for recovery and
-- nothing more can be handed off there until a new incarnation opens it. Idempotent: once
-- moved, or opened by a later incarnation, it does nothing.
-- KEYS stream, stream!k, stream-bytes, stream-bytes!k, incarnation; ARGV k
-- → 1 when something waits under !k, else 0
if (redis.call('GET', KEYS[5]) or '') == ARGV[1] then
  redis.call('DEL', KEYS[5])
  forget_last(KEYS[1])
  if redis.call('EXISTS', KEYS[1]) == 1 then
    if redis.call('XLEN', KEYS[1]) == 0 then
      redis.call('DEL', KEYS[1], KEYS[3])
    else
      redis.call('RENAME', KEYS[1], KEYS[2])
      if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('RENAME', KEYS[3], KEYS[4]) end
    end
  end
end
return redis.call('EXISTS', KEYS[2])

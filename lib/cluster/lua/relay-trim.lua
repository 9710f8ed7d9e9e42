--! keys: 2
-- KEYS stream, stream-bytes; ARGV min id ('' for none), bytes removed, ids to delete one by one
-- (handled entries behind a held one) → entries removed
local removed = 0
if ARGV[1] ~= '' then removed = redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1]) end
if #ARGV > 2 then removed = removed + redis.call('XDEL', KEYS[1], unpack(ARGV, 3)) end
local before = redis.call('GET', KEYS[2]) or '0'
local after = redis.call('DECRBY', KEYS[2], ARGV[2])
if after < 0 then
  redis.call('SET', KEYS[2], 0)
  after = 0
end
-- The newest id kept beside the stream (lib.lua relay_append) follows the count while it is in
-- step with it; out of step (an append that did not keep it came since), it is forgotten.
local last = sibling(KEYS[1], 'push-last')
local kept = redis.call('GET', last)
if kept then
  local space = string.find(kept, ' ', 1, true)
  if space and string.sub(kept, space + 1) == before then
    redis.call('SET', last, string.sub(kept, 1, space) .. after)
  else
    redis.call('DEL', last)
  end
end
return removed

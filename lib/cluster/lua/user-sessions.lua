--! keys: 1
-- This node's count of a user's sessions (MAX_CONNECTIONS_PER_USER), in the user's slot, under a
-- field named by its incarnation (`<id>!<k>`), so that undoing a reaped incarnation removes that
-- incarnation's count and never one the node wrote since; the caller lists the hash in its node
-- index before (redis-user-sessions.ts). The node's fields of earlier incarnations (and the
-- plain `<id>` of versions before incarnations) are its own leftovers: dropped here.
-- KEYS user-sessions; ARGV this incarnation's field, this node's count, max (0: write without
--      checking), node id
-- → 1 written, 0 refused (the other nodes' sessions and this node's would pass max; nothing written)
local field, mine, max, id = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local prefix = id .. '!'
local fields, others, stale = redis.call('HGETALL', KEYS[1]), 0, {}
for i = 1, #fields, 2 do
  local f = fields[i]
  if f ~= field then
    if f == id or string.sub(f, 1, #prefix) == prefix then
      stale[#stale + 1] = f
    else
      others = others + tonumber(fields[i + 1])
    end
  end
end
if max > 0 and others + mine > max then return 0 end
if #stale > 0 then redis.call('HDEL', KEYS[1], unpack(stale)) end
if mine > 0 then redis.call('HSET', KEYS[1], field, mine) else redis.call('HDEL', KEYS[1], field) end
return 1

--! keys: 13
-- Takes a node's incarnation out of the cluster, in the node's slot, atomically with the check
-- that it is gone (unless forced: the node itself, leaving or starting).
-- KEYS node, incarnation, index, index!k, stream, stream!k, stream-bytes, stream-bytes!k,
--      claims, claims!k, queues!k, parts, parts!k
-- ARGV expected incarnation ('' for none), force (1|0), handover (1|0)
-- → { 1 reaped | -1 alive | -2 another incarnation now, 1 when something waits under !k }
-- Registrations always move under !k (the caller undoes them from there). With handover, what
-- the node left to deliver moves too and the incarnation ends: a node that was only paused
-- starts afresh under a new one and can never touch what moved. The list of the node's other
-- stream partitions moves with the stream: the caller moves those (relay-part-move.lua).
if ARGV[2] ~= '1' and redis.call('EXISTS', KEYS[1]) == 1 then return { -1, 0 } end
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[1] then return { -2, 0 } end
redis.call('DEL', KEYS[1])
local function move(from, to)
  if redis.call('EXISTS', from) == 1 then redis.call('RENAME', from, to) end
end
move(KEYS[3], KEYS[4])
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[2])
  forget_last(KEYS[5])
  if redis.call('EXISTS', KEYS[5]) == 1 and redis.call('XLEN', KEYS[5]) == 0 then
    redis.call('DEL', KEYS[5], KEYS[7])
  else
    move(KEYS[5], KEYS[6])
    move(KEYS[7], KEYS[8])
  end
  move(KEYS[9], KEYS[10])
  move(KEYS[12], KEYS[13])
end
local left = redis.call('EXISTS', KEYS[4], KEYS[6], KEYS[10], KEYS[11], KEYS[13])
return { 1, left > 0 and 1 or 0 }

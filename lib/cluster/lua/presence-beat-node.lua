--! keys: 3
-- A beat, in the node's slot. KEYS node, incarnation, incarnation-seq; ARGV info, ttlMs
-- → { present (the node key existed), k (the node's incarnation), fresh (1: a new incarnation:
-- first start, or this node was reaped) }
local present = redis.call('EXISTS', KEYS[1])
local k = redis.call('GET', KEYS[2])
local fresh = 0
if not k then
  k = tostring(redis.call('INCR', KEYS[3]))
  redis.call('SET', KEYS[2], k)
  fresh = 1
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return { present, k, fresh }

--! keys: 3
-- KEYS claim, claim-order, claim-meta; ARGV ids... → messages left in the claim (0: it is gone)
for i = 1, #ARGV do
  if redis.call('HDEL', KEYS[1], ARGV[i]) == 1 then redis.call('LREM', KEYS[2], 0, ARGV[i]) end
end
local left = redis.call('HLEN', KEYS[1])
if left == 0 then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3]) end
return left

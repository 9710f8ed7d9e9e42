--[[ The shared part of every stompbox script (redis-scripts.ts puts it in front of each).
Keys come in KEYS; a key in the slot of a declared key is derived with sibling(), never
spelled here (redis-keys.ts owns the schema). Constants mirror the TypeScript ones
(spec/cluster/redis-scripts.spec.ts checks). ]]

-- What an inbox append returns when it refused a message for a full inbox (INBOX_REFUSED).
local INBOX_REFUSED = -1
-- What a relay hand-off returns when the target's stream holds too many bytes (REFUSED_RELAY_FULL).
local RELAY_FULL = -2

-- The key `rest` in the slot of `key`: `<prefix>{<tag>}:<rest>` (the tag ends at its first '}').
local function sibling(key, rest)
  local open = string.find(key, '{', 1, true)
  local close = string.find(key, '}', open, true)
  return string.sub(key, 1, close) .. ':' .. rest
end

-- The id of an encoded message (envelope-codec.ts: format byte, then str16 id).
local function message_id(item)
  return string.sub(item, 4, 3 + string.byte(item, 2) * 256 + string.byte(item, 3))
end

-- Redis server time, ms.
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function extend(key, ttl)
  if redis.call('TTL', key) < ttl then redis.call('EXPIRE', key, ttl) end
end

local function cap(inbox, max)
  local n = redis.call('LLEN', inbox)
  if n <= max then return 0 end
  redis.call('LTRIM', inbox, -max, -1)
  return n - max
end

-- overflow: 'refuse' | 'drop-oldest'; accepted: the broker answered for it already, so
-- refuse keeps it anyway → INBOX_REFUSED, or how many the cap dropped
local function append(inbox, inboxes, destination, payload, max, ttl, overflow, accepted)
  if overflow == 'refuse' and not accepted and redis.call('LLEN', inbox) >= max then return INBOX_REFUSED end
  redis.call('RPUSH', inbox, payload)
  local dropped = 0
  if overflow == 'drop-oldest' then dropped = cap(inbox, max) end
  redis.call('EXPIRE', inbox, ttl)
  redis.call('SADD', inboxes, destination)
  extend(inboxes, ttl)
  return dropped
end

-- items oldest first, put before the current head; never capped: they were accepted already
local function prepend(inbox, inboxes, destination, items, ttl)
  for i = #items, 1, -1 do redis.call('LPUSH', inbox, items[i]) end
  if redis.call('TTL', inbox) < 0 then redis.call('EXPIRE', inbox, ttl) end
  redis.call('SADD', inboxes, destination)
  extend(inboxes, redis.call('TTL', inbox))
end

-- up to count (negative: all) from the head
local function take(inbox, inboxes, count, destination)
  local items
  if count < 0 then
    items = redis.call('LRANGE', inbox, 0, -1)
    redis.call('DEL', inbox)
  else
    items = redis.call('LRANGE', inbox, 0, count - 1)
    redis.call('LTRIM', inbox, count, -1)
  end
  if redis.call('EXISTS', inbox) == 0 then redis.call('SREM', inboxes, destination) end
  return items
end

-- puts a claim's unacked messages back at the head of its inbox (in the claim's slot) → how many
local function release(claim, order, meta, ttl)
  local owner = redis.call('HMGET', meta, 'user', 'destination')
  local items = {}
  if owner[1] then
    for _, id in ipairs(redis.call('LRANGE', order, 0, -1)) do
      local item = redis.call('HGET', claim, id)
      if item then
        items[#items + 1] = item
        redis.call('HDEL', claim, id)
      end
    end
  end
  redis.call('DEL', claim, order, meta)
  if #items == 0 then return 0 end
  local destination = owner[2]
  prepend(sibling(claim, 'inbox:' .. destination), sibling(claim, 'inboxes'), destination, items, ttl)
  return #items
end

-- a timed claim ended ('expired' | 'acked'): its meta stays a while, to answer a late ack
local function end_timed(meta, user, how, retention)
  redis.call('HSET', meta, 'user', user, 'ended', how)
  redis.call('PEXPIRE', meta, retention)
end

-- Keeps in `inflight` only the messages whose id is not in `ids` (a set) → whether it is empty now.
local function forget(inflight, ids)
  local kept = {}
  for _, item in ipairs(redis.call('LRANGE', inflight, 0, -1)) do
    local id = message_id(item)
    if ids[id] then ids[id] = nil else kept[#kept + 1] = item end
  end
  redis.call('DEL', inflight)
  for _, item in ipairs(kept) do redis.call('RPUSH', inflight, item) end
  return #kept == 0
end

--[[ The shared part of every stompbox script (redis-scripts.ts puts it in front of each).
Keys come in KEYS; a key in the slot of a declared key is derived with sibling(), never
spelled here (redis-keys.ts owns the schema). Constants mirror the TypeScript ones
(spec/cluster/redis-scripts.spec.ts checks). ]]

-- What an inbox append returns when it refused a message for a full inbox (INBOX_REFUSED).
local INBOX_REFUSED = -1
-- What it returns when the message would take the user past their inbox bytes (INBOX_REFUSED_BYTES).
local INBOX_REFUSED_BYTES = -3
-- What a relay hand-off returns when the target's stream holds too many bytes (REFUSED_RELAY_FULL).
local RELAY_FULL = -2

-- The key `rest` in the slot of `key`: `<prefix>{<tag>}:<rest>` (the tag ends at its first '}').
local function sibling(key, rest)
  local open = string.find(key, '{', 1, true)
  local close = string.find(key, '}', open, true)
  return string.sub(key, 1, close) .. ':' .. rest
end

-- Appends one relay entry to a node's stream (never MAXLEN: a stream is trimmed only by its
-- reader) and adds size to its byte count → the entry's id. With `push`, also publishes it on
-- the stream's push channel (redis-keys.ts streamPush) as `<id> <prev> <field><value>`, prev the
-- id of the newest entry before it ('' if none): a reader fed by pushes takes an entry whose prev
-- it has not seen as a gap — an entry it was not pushed (a writer that does not push) — and
-- reads the stream instead (redis-push-feed.ts).
-- prev is kept beside the stream (streamLast) as `<id> <byte count after it>`: reading the newest
-- entry back (XREVRANGE) was a route's costliest call at 1 000 msg/s, ~12 µs of ~47, and copied
-- the whole previous batch into Lua at saturation (docs/bench/two-node-profile.md, session 15).
-- Every append and every trim changes the byte count, so a count unchanged since the kept
-- append means no other append (of a writer that does not keep it: an earlier version) came
-- after it; trims keep it in step (relay-trim.lua), making, moving or dropping the stream
-- forgets it. Otherwise the newest entry is read, as before. (Not seen through: an unpushed
-- append, then a trim of as many bytes by a reader of a version before this one, between two
-- appends — three versions at once in one rolling upgrade.)
local function relay_append(stream, bytes, size, field, value, push)
  local prev, last = '', nil
  if push then
    last = sibling(stream, 'push-last')
    local kept = redis.call('GET', last)
    local space = kept and string.find(kept, ' ', 1, true)
    if space and string.sub(kept, space + 1) == (redis.call('GET', bytes) or '0') then
      prev = string.sub(kept, 1, space - 1)
    else
      local newest = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
      if newest[1] then prev = newest[1][1] end
    end
  end
  local id = redis.call('XADD', stream, '*', field, value)
  local total = redis.call('INCRBY', bytes, size)
  if push then
    redis.call('SET', last, id .. ' ' .. total)
    redis.call('PUBLISH', sibling(stream, 'push'), id .. ' ' .. prev .. ' ' .. field .. value)
  end
  return id
end

-- Forgets the newest id kept beside a stream (relay_append) when the stream is made, moved or dropped.
local function forget_last(stream)
  redis.call('DEL', sibling(stream, 'push-last'))
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

-- The user's inbox bytes (HASH {u:<user>}:inbox-bytes): destination → bytes of that inbox, 'total' →
-- their sum. An inbox that expired leaves its field behind until `settle` finds its list gone.
local function add_bytes(bytes, destination, n)
  if n == 0 then return end
  if redis.call('HINCRBY', bytes, destination, n) <= 0 then redis.call('HDEL', bytes, destination) end
  if redis.call('HINCRBY', bytes, 'total', n) <= 0 then redis.call('DEL', bytes) end
end

local function size_of(items)
  local n = 0
  for _, item in ipairs(items) do n = n + #item end
  return n
end

local function settle(bytes, inbox, destination)
  if redis.call('EXISTS', inbox) == 1 then return end
  local stale = tonumber(redis.call('HGET', bytes, destination) or '0')
  if stale ~= 0 then add_bytes(bytes, destination, -stale) end
end

-- Whether size more bytes fit maxBytes once freeable bytes are dropped. At the bound, the user's
-- inboxes that expired are forgotten first — at most once a minute per user, as that reads every
-- inbox of the user (each a sibling of the bytes hash: the user's slot).
local function fits(bytes, size, freeable, maxBytes)
  if tonumber(redis.call('HGET', bytes, 'total') or '0') - freeable + size <= maxBytes then return true end
  local seconds = tonumber(redis.call('TIME')[1])
  if seconds < tonumber(redis.call('HGET', bytes, 'settled') or '0') + 60 then return false end
  redis.call('HSET', bytes, 'settled', seconds)
  for _, destination in ipairs(redis.call('HKEYS', bytes)) do
    -- destinations start with '/'; the other fields are 'total' and 'settled'
    if string.sub(destination, 1, 1) == '/' then settle(bytes, sibling(bytes, 'inbox:' .. destination), destination) end
  end
  return tonumber(redis.call('HGET', bytes, 'total') or '0') - freeable + size <= maxBytes
end

-- drop-oldest: the oldest go until the inbox holds max and the user maxBytes at most; never the newest
local function cap(inbox, bytes, destination, max, maxBytes)
  local n = redis.call('LLEN', inbox)
  local total = tonumber(redis.call('HGET', bytes, 'total') or '0')
  local dropped, freed = 0, 0
  if n > max then
    dropped = n - max
    freed = size_of(redis.call('LRANGE', inbox, 0, dropped - 1))
  end
  while dropped < n - 1 and total - freed > maxBytes do
    freed = freed + #redis.call('LINDEX', inbox, dropped)
    dropped = dropped + 1
  end
  if dropped == 0 then return 0 end
  redis.call('LTRIM', inbox, dropped, -1)
  add_bytes(bytes, destination, -freed)
  return dropped
end

-- overflow: 'refuse' | 'drop-oldest'; accepted: the broker answered for it already, so it is never
-- refused → INBOX_REFUSED (inbox full), INBOX_REFUSED_BYTES (the user's bytes), else how many were dropped
local function append(inbox, inboxes, bytes, destination, payload, max, maxBytes, ttl, overflow, accepted)
  settle(bytes, inbox, destination)
  if not accepted then
    if overflow == 'refuse' and redis.call('LLEN', inbox) >= max then return INBOX_REFUSED end
    -- drop-oldest may free this inbox's bytes, and no other's
    local freeable = 0
    if overflow == 'drop-oldest' then freeable = tonumber(redis.call('HGET', bytes, destination) or '0') end
    if not fits(bytes, #payload, freeable, maxBytes) then return INBOX_REFUSED_BYTES end
  end
  redis.call('RPUSH', inbox, payload)
  add_bytes(bytes, destination, #payload)
  local dropped = 0
  if overflow == 'drop-oldest' then dropped = cap(inbox, bytes, destination, max, maxBytes) end
  redis.call('EXPIRE', inbox, ttl)
  redis.call('SADD', inboxes, destination)
  extend(inboxes, ttl)
  extend(bytes, ttl)
  return dropped
end

-- items oldest first, put before the current head; never capped: they were accepted already
local function prepend(inbox, inboxes, bytes, destination, items, ttl)
  settle(bytes, inbox, destination)
  for i = #items, 1, -1 do redis.call('LPUSH', inbox, items[i]) end
  add_bytes(bytes, destination, size_of(items))
  if redis.call('TTL', inbox) < 0 then redis.call('EXPIRE', inbox, ttl) end
  redis.call('SADD', inboxes, destination)
  extend(inboxes, redis.call('TTL', inbox))
  extend(bytes, redis.call('TTL', inbox))
end

-- up to count (negative: all) from the head
local function take(inbox, inboxes, bytes, count, destination)
  local items
  if count < 0 then
    items = redis.call('LRANGE', inbox, 0, -1)
    redis.call('DEL', inbox)
  else
    items = redis.call('LRANGE', inbox, 0, count - 1)
    redis.call('LTRIM', inbox, count, -1)
  end
  add_bytes(bytes, destination, -size_of(items))
  if redis.call('EXISTS', inbox) == 0 then
    redis.call('SREM', inboxes, destination)
    settle(bytes, inbox, destination)
  end
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
  prepend(sibling(claim, 'inbox:' .. destination), sibling(claim, 'inboxes'), sibling(claim, 'inbox-bytes'), destination, items, ttl)
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

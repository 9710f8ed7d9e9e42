/*
 * The offline inbox in Redis.
 *
 * Data model (`{p}` is the key prefix, see lib/cluster/redis-keys.ts):
 *
 *   {p}inbox:<user>:<dest>     LIST   encoded messages (envelope-codec),
 *                                     oldest first; a new message for a full
 *                                     one is refused (or, drop-oldest: LTRIM
 *                                     to the newest maxMessages); EXPIRE
 *                                     ttlSeconds after each append.
 *   {p}inboxes:<user>          SET    the user's destinations with an inbox,
 *                                     for `list`; lives as long as the
 *                                     longest-lived of those inboxes, and
 *                                     stale members are dropped when read.
 *   {p}inbox-bytes:<user>      HASH   destination → bytes of that inbox,
 *                                     `total` → their sum: the user's
 *                                     INBOX_MAX_BYTES. Kept by every script
 *                                     that moves messages in or out of a
 *                                     list; an inbox that expired is taken
 *                                     out when its list is next found gone,
 *                                     or — at the bound, at most once a
 *                                     minute per user — by reading them all.
 *                                     Lives as long as `inboxes:<user>`.
 *   {p}claim:<claimId>         HASH   message id → encoded message.
 *   {p}claim-order:<claimId>   LIST   the claim's message ids, oldest first.
 *   {p}claim-meta:<claimId>    HASH   user, destination of the claim; for a
 *                                     timed claim also its deadline, and once
 *                                     it ended `ended` (expired | acked), kept
 *                                     ENDED_CLAIM_RETENTION_MS to answer a
 *                                     late ack.
 *   {p}node-claims:<nodeId>    SET    claim ids of a node (the claim id's part
 *                                     before its first ':'), for releasing a
 *                                     dead node's claims.
 *   {p}claim-deadlines         ZSET   timed claim id → deadline (Redis server
 *                                     time, ms). Every node sweeps it: a timed
 *                                     claim belongs to no node, so it comes
 *                                     back even when its node died.
 *
 * Every operation that moves messages is one Lua script, which is what the
 * seeds' unread list lacked (pull, then delete: a message arriving in
 * between was lost):
 * - Route-or-store (store when nobody is subscribed) is the user router's
 *   script (lib/cluster/redis-user-router.ts), which calls `append` of
 *   INBOX_LUA_LIB in the same step as it reads presence.
 * - `take` and `claim` read and cut the list head in one step: a message is
 *   handed out once, and one appended meanwhile stays for the next take.
 * - `release` (and `releaseNodeClaims`, for a dead node) puts the unacked
 *   messages of a claim back at the head of its inbox, in their order;
 *   `returnToHead` does the same for given messages (NACKed, unacked), taking
 *   them out of their claim in the same step.
 * - Timed claims expire in Lua against Redis' clock (`TIME`), on the sweep
 *   and on an ack past the deadline, so nodes' clocks need not agree.
 *
 * The scripts name keys from data (users, node ids), so this layout is for a
 * single Redis (or a primary with replicas), not Redis Cluster's key slots.
 */
import type { Result } from 'ioredis';
import { BrokerError } from '../core/errors.js';
import type { BrokerMessage } from '../core/message.js';
import { decodeMessage, encodeMessage, luaMessageId } from '../cluster/envelope-codec.js';
import {
  closeClient,
  createRedisClient,
  redisCall,
  resolveConnectionOptions,
  type RedisClient,
  type RedisConnectionOptions,
  type RedisTarget,
} from '../cluster/redis-connection.js';
import { luaKey, RedisKeys } from '../cluster/redis-keys.js';
import { randomUUID } from 'node:crypto';
import {
  DEFAULT_INBOX_LIMITS,
  ENDED_CLAIM_RETENTION_MS,
  inboxBytesFullError,
  inboxFullError,
  TIMED_CLAIM_PREFIX,
  type InboxLimits,
  type InboxStore,
  type StoreOptions,
  type TimedClaim,
  type TimedClaimAck,
} from './inbox-store.js';

export interface RedisInboxOptions extends RedisConnectionOptions, InboxLimits {
  /** This node's id, when `close()` should release the claims the node still holds. */
  nodeId: string | undefined;
  /** How often this store returns expired timed claims to their inboxes, ms (0: never). @default 1000 */
  claimSweepMs: number;
}

/** What the Lua `append` returns when it refused a new message for a full inbox (nothing written). */
export const INBOX_REFUSED = -1;
/** What the Lua `append` returns when the message would take the user past INBOX_MAX_BYTES (nothing written). */
export const INBOX_REFUSED_BYTES = -3;
/** Timed claims one sweep call returns at most (a script call stays short). */
const SWEEP_BATCH = 100;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    sbInboxAppend(
      inboxKey: string,
      inboxesKey: string,
      bytesKey: string,
      payload: Buffer,
      maxMessages: number,
      ttlSeconds: number,
      destination: string,
      overflow: string,
      accepted: number,
      maxBytes: number,
      prefix: string,
      user: string,
    ): Result<number, Context>;
    sbInboxPrepend(inboxKey: string, inboxesKey: string, bytesKey: string, ttlSeconds: number, destination: string, ...payloads: Buffer[]): Result<number, Context>;
    sbInboxReturnToHead(
      claimKey: string,
      orderKey: string,
      metaKey: string,
      nodeClaimsKey: string,
      inboxKey: string,
      inboxesKey: string,
      bytesKey: string,
      ttlSeconds: number,
      destination: string,
      claimId: string,
      count: number,
      ...idsThenPayloads: Array<string | Buffer>
    ): Result<number, Context>;
    sbInboxTakeBuffer(inboxKey: string, inboxesKey: string, bytesKey: string, count: number, destination: string): Result<Buffer[], Context>;
    sbInboxList(inboxesKey: string, prefix: string, user: string): Result<Array<string | number>, Context>;
    sbInboxClaimBuffer(
      claimKey: string,
      orderKey: string,
      metaKey: string,
      nodeClaimsKey: string,
      inboxKey: string,
      inboxesKey: string,
      bytesKey: string,
      count: number,
      user: string,
      destination: string,
      claimId: string,
    ): Result<Buffer[], Context>;
    sbInboxKeepClaimed(
      claimKey: string,
      orderKey: string,
      metaKey: string,
      nodeClaimsKey: string,
      user: string,
      destination: string,
      claimId: string,
      ...payloads: Buffer[]
    ): Result<number, Context>;
    sbInboxReadClaimBuffer(claimKey: string, orderKey: string, metaKey: string): Result<Buffer[], Context>;
    sbInboxDropClaim(claimKey: string, orderKey: string, metaKey: string, nodeClaimsKey: string, claimId: string): Result<number, Context>;
    sbInboxAck(claimKey: string, orderKey: string, metaKey: string, nodeClaimsKey: string, claimId: string, ...ids: string[]): Result<number, Context>;
    sbInboxRelease(claimKey: string, orderKey: string, metaKey: string, nodeClaimsKey: string, claimId: string, prefix: string, ttlSeconds: number): Result<number, Context>;
    sbInboxReleaseNode(nodeClaimsKey: string, prefix: string, ttlSeconds: number): Result<number, Context>;
    sbInboxClaimTimedBuffer(
      inboxKey: string,
      inboxesKey: string,
      claimKey: string,
      orderKey: string,
      metaKey: string,
      deadlinesKey: string,
      bytesKey: string,
      count: number,
      user: string,
      destination: string,
      claimId: string,
      timeoutMs: number,
    ): Result<Buffer[], Context>;
    sbInboxAckTimed(
      claimKey: string,
      orderKey: string,
      metaKey: string,
      deadlinesKey: string,
      claimId: string,
      user: string,
      prefix: string,
      ttlSeconds: number,
      retentionMs: number,
      all: number,
      ...ids: string[]
    ): Result<[number, number, number], Context>;
    sbInboxSweepClaims(deadlinesKey: string, prefix: string, ttlSeconds: number, retentionMs: number, limit: number): Result<number, Context>;
  }
}

/**
 * Lua helpers for inbox lists (append, prepend, take, release, timed claims):
 * also used by the user router's script. `append` returns ${INBOX_REFUSED}
 * when it refused, else how many messages the cap dropped.
 */
export const INBOX_LUA_LIB = `
local function extend(key, ttl)
  if redis.call('TTL', key) < ttl then redis.call('EXPIRE', key, ttl) end
end
-- The user's inbox bytes (HASH inbox-bytes:<user>): destination → bytes of that inbox, 'total' → their sum.
-- An inbox that expired leaves its field behind until \`settle\` finds its list gone.
local function addBytes(bytes, destination, n)
  if n == 0 then return end
  if redis.call('HINCRBY', bytes, destination, n) <= 0 then redis.call('HDEL', bytes, destination) end
  if redis.call('HINCRBY', bytes, 'total', n) <= 0 then redis.call('DEL', bytes) end
end
local function sizeOf(items)
  local n = 0
  for _, item in ipairs(items) do n = n + #item end
  return n
end
local function settle(bytes, inbox, destination)
  if redis.call('EXISTS', inbox) == 1 then return end
  local stale = tonumber(redis.call('HGET', bytes, destination) or '0')
  if stale ~= 0 then addBytes(bytes, destination, -stale) end
end
-- Whether size more bytes fit maxBytes once freeable bytes are dropped. At the bound, the user's inboxes
-- that expired are forgotten first — at most once a minute per user, as that reads every inbox of the user.
local function fits(bytes, P, user, size, freeable, maxBytes)
  if tonumber(redis.call('HGET', bytes, 'total') or '0') - freeable + size <= maxBytes then return true end
  local now = tonumber(redis.call('TIME')[1])
  if now < tonumber(redis.call('HGET', bytes, 'settled') or '0') + 60 then return false end
  redis.call('HSET', bytes, 'settled', now)
  for _, destination in ipairs(redis.call('HKEYS', bytes)) do
    -- destinations start with '/'; the other fields are 'total' and 'settled'
    if string.sub(destination, 1, 1) == '/' then settle(bytes, ${luaKey('P', 'inbox', 'user', 'destination')}, destination) end
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
    freed = sizeOf(redis.call('LRANGE', inbox, 0, dropped - 1))
  end
  while dropped < n - 1 and total - freed > maxBytes do
    freed = freed + #redis.call('LINDEX', inbox, dropped)
    dropped = dropped + 1
  end
  if dropped == 0 then return 0 end
  redis.call('LTRIM', inbox, dropped, -1)
  addBytes(bytes, destination, -freed)
  return dropped
end
-- overflow: 'refuse' | 'drop-oldest'; accepted: the broker answered for it already, so it is never refused
-- → ${INBOX_REFUSED} (inbox full), ${INBOX_REFUSED_BYTES} (the user's bytes), else how many were dropped
local function append(inbox, inboxes, bytes, P, user, destination, payload, max, maxBytes, ttl, overflow, accepted)
  settle(bytes, inbox, destination)
  if not accepted then
    if overflow == 'refuse' and redis.call('LLEN', inbox) >= max then return ${INBOX_REFUSED} end
    -- drop-oldest may free this inbox's bytes, and no other's
    local freeable = 0
    if overflow == 'drop-oldest' then freeable = tonumber(redis.call('HGET', bytes, destination) or '0') end
    if not fits(bytes, P, user, #payload, freeable, maxBytes) then return ${INBOX_REFUSED_BYTES} end
  end
  redis.call('RPUSH', inbox, payload)
  addBytes(bytes, destination, #payload)
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
  addBytes(bytes, destination, sizeOf(items))
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
  addBytes(bytes, destination, -sizeOf(items))
  if redis.call('EXISTS', inbox) == 0 then
    redis.call('SREM', inboxes, destination)
    settle(bytes, inbox, destination)
  end
  return items
end
-- puts a claim's unacked messages back at the head of its inbox → how many
local function release(claim, order, meta, P, ttl)
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
  local user, destination = owner[1], owner[2]
  prepend(${luaKey('P', 'inbox', 'user', 'destination')}, ${luaKey('P', 'inboxes', 'user')}, ${luaKey('P', 'inboxBytes', 'user')}, destination, items, ttl)
  return #items
end
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- a timed claim ended ('expired' | 'acked'): its meta stays a while, to answer a late ack
local function endTimed(meta, deadlines, claimId, user, how, retention)
  redis.call('ZREM', deadlines, claimId)
  redis.call('HSET', meta, 'user', user, 'ended', how)
  redis.call('PEXPIRE', meta, retention)
end
-- a timed claim's deadline passed: its messages back to the head, in order
local function expireTimed(claimId, deadlines, P, ttl, retention)
  local meta = ${luaKey('P', 'claimMeta', 'claimId')}
  local user = redis.call('HGET', meta, 'user')
  release(${luaKey('P', 'claim', 'claimId')}, ${luaKey('P', 'claimOrder', 'claimId')}, meta, P, ttl)
  if user then endTimed(meta, deadlines, claimId, user, 'expired', retention) else redis.call('ZREM', deadlines, claimId) end
end
`;

const SCRIPTS = {
  // KEYS inbox, inboxes, inbox-bytes; ARGV payload, max, ttl, destination, overflow, accepted, maxBytes, prefix, user → append's result
  sbInboxAppend: {
    numberOfKeys: 3,
    lua: `${INBOX_LUA_LIB}
return append(KEYS[1], KEYS[2], KEYS[3], ARGV[8], ARGV[9], ARGV[4], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[7]), tonumber(ARGV[3]), ARGV[5], ARGV[6] == '1')`,
  },
  // KEYS inbox, inboxes, inbox-bytes; ARGV ttl, destination, payloads (oldest first)
  sbInboxPrepend: {
    numberOfKeys: 3,
    lua: `${INBOX_LUA_LIB}
local items = {}
for i = 3, #ARGV do items[#items + 1] = ARGV[i] end
prepend(KEYS[1], KEYS[2], KEYS[3], ARGV[2], items, tonumber(ARGV[1]))
return #items`,
  },
  // KEYS claim, claim-order, claim-meta, node-claims, inbox, inboxes, inbox-bytes; ARGV ttl, destination, claimId ('' none), n, n ids, n payloads (oldest first) → returned
  sbInboxReturnToHead: {
    numberOfKeys: 7,
    lua: `${INBOX_LUA_LIB}
local n, claimed = tonumber(ARGV[4]), ARGV[3] ~= ''
local items = {}
for i = 1, n do
  local id, payload = ARGV[4 + i], ARGV[4 + n + i]
  -- From a claim, only what it still holds: the rest was acked, released or returned already
  -- (a retry after a lost reply), and would come back twice.
  if not claimed then
    items[#items + 1] = payload
  elseif redis.call('HDEL', KEYS[1], id) == 1 then
    redis.call('LREM', KEYS[2], 0, id)
    items[#items + 1] = payload
  end
end
if claimed and redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  redis.call('SREM', KEYS[4], ARGV[3])
end
if #items > 0 then prepend(KEYS[5], KEYS[6], KEYS[7], ARGV[2], items, tonumber(ARGV[1])) end
return #items`,
  },
  // KEYS inbox, inboxes, inbox-bytes; ARGV count, destination → messages
  sbInboxTake: {
    numberOfKeys: 3,
    lua: `${INBOX_LUA_LIB}
return take(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]), ARGV[2])`,
  },
  // KEYS inboxes; ARGV prefix, user → destination, depth, destination, depth...
  sbInboxList: {
    numberOfKeys: 1,
    lua: `
local P, user = ARGV[1], ARGV[2]
local out = {}
for _, destination in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local depth = redis.call('LLEN', ${luaKey('P', 'inbox', 'user', 'destination')})
  if depth == 0 then
    redis.call('SREM', KEYS[1], destination)
  else
    out[#out + 1] = destination
    out[#out + 1] = depth
  end
end
return out`,
  },
  // KEYS claim, claim-order, claim-meta, node-claims, inbox, inboxes, inbox-bytes; ARGV count, user, destination, claimId → messages
  sbInboxClaim: {
    numberOfKeys: 7,
    lua: `${INBOX_LUA_LIB}
local owner = redis.call('HMGET', KEYS[3], 'user', 'destination')
if owner[1] and (owner[1] ~= ARGV[2] or owner[2] ~= ARGV[3]) then
  return redis.error_reply('claim ' .. ARGV[4] .. ' already holds another inbox')
end
local items = take(KEYS[5], KEYS[6], KEYS[7], tonumber(ARGV[1]), ARGV[3])
if #items == 0 then return items end
redis.call('HSET', KEYS[3], 'user', ARGV[2], 'destination', ARGV[3])
for _, item in ipairs(items) do
  local id = ${luaMessageId('item')}
  redis.call('HSET', KEYS[1], id, item)
  redis.call('RPUSH', KEYS[2], id)
end
redis.call('SADD', KEYS[4], ARGV[4])
return items`,
  },
  // KEYS claim, claim-order, claim-meta → { user, destination, messages in order... } ({} for none)
  sbInboxReadClaim: {
    numberOfKeys: 3,
    readOnly: true,
    lua: `
local owner = redis.call('HMGET', KEYS[3], 'user', 'destination')
if not owner[1] then return {} end
local out = { owner[1], owner[2] }
for _, id in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  local item = redis.call('HGET', KEYS[1], id)
  if item then out[#out + 1] = item end
end
return out`,
  },
  // KEYS claim, claim-order, claim-meta, node-claims; ARGV claimId
  sbInboxDropClaim: {
    numberOfKeys: 4,
    lua: `
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return redis.call('SREM', KEYS[4], ARGV[1])`,
  },
  // KEYS claim, claim-order, claim-meta, node-claims; ARGV user, destination, claimId, payloads... → messages in the claim
  sbInboxKeepClaimed: {
    numberOfKeys: 4,
    lua: `
local owner = redis.call('HMGET', KEYS[3], 'user', 'destination')
if owner[1] and (owner[1] ~= ARGV[1] or owner[2] ~= ARGV[2]) then
  return redis.error_reply('claim ' .. ARGV[3] .. ' already holds another inbox')
end
redis.call('HSET', KEYS[3], 'user', ARGV[1], 'destination', ARGV[2])
for i = 4, #ARGV do
  local item = ARGV[i]
  local id = ${luaMessageId('item')}
  redis.call('HSET', KEYS[1], id, item)
  redis.call('RPUSH', KEYS[2], id)
end
redis.call('SADD', KEYS[4], ARGV[3])
return redis.call('HLEN', KEYS[1])`,
  },
  // KEYS claim, claim-order, claim-meta, node-claims; ARGV claimId, ids... → messages left in the claim
  sbInboxAck: {
    numberOfKeys: 4,
    lua: `
for i = 2, #ARGV do
  if redis.call('HDEL', KEYS[1], ARGV[i]) == 1 then redis.call('LREM', KEYS[2], 0, ARGV[i]) end
end
local left = redis.call('HLEN', KEYS[1])
if left == 0 then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  redis.call('SREM', KEYS[4], ARGV[1])
end
return left`,
  },
  // KEYS claim, claim-order, claim-meta, node-claims; ARGV claimId, prefix, ttl → released
  sbInboxRelease: {
    numberOfKeys: 4,
    lua: `${INBOX_LUA_LIB}
redis.call('SREM', KEYS[4], ARGV[1])
return release(KEYS[1], KEYS[2], KEYS[3], ARGV[2], tonumber(ARGV[3]))`,
  },
  // KEYS node-claims; ARGV prefix, ttl → released
  sbInboxReleaseNode: {
    numberOfKeys: 1,
    lua: `${INBOX_LUA_LIB}
local P = ARGV[1]
local released = 0
for _, claimId in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  released = released + release(${luaKey('P', 'claim', 'claimId')}, ${luaKey('P', 'claimOrder', 'claimId')}, ${luaKey('P', 'claimMeta', 'claimId')}, P, tonumber(ARGV[2]))
end
redis.call('DEL', KEYS[1])
return released`,
  },
  // KEYS inbox, inboxes, claim, claim-order, claim-meta, claim-deadlines, inbox-bytes; ARGV count, user, destination, claimId, timeoutMs → deadline, messages...
  sbInboxClaimTimed: {
    numberOfKeys: 7,
    lua: `${INBOX_LUA_LIB}
local items = take(KEYS[1], KEYS[2], KEYS[7], tonumber(ARGV[1]), ARGV[3])
if #items == 0 then return items end
local deadline = now() + tonumber(ARGV[5])
redis.call('HSET', KEYS[5], 'user', ARGV[2], 'destination', ARGV[3], 'deadline', deadline)
for _, item in ipairs(items) do
  local id = ${luaMessageId('item')}
  redis.call('HSET', KEYS[3], id, item)
  redis.call('RPUSH', KEYS[4], id)
end
redis.call('ZADD', KEYS[6], deadline, ARGV[4])
table.insert(items, 1, tostring(deadline))
return items`,
  },
  // KEYS claim, claim-order, claim-meta, claim-deadlines; ARGV claimId, user, prefix, ttl, retention, all (1|0), ids...
  //   → acked, left, state (0 open, 1 expired, 2 acked in full earlier, -1 unknown or another user's)
  sbInboxAckTimed: {
    numberOfKeys: 4,
    lua: `${INBOX_LUA_LIB}
local claimId, user, P, ttl, retention = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local meta = redis.call('HMGET', KEYS[3], 'user', 'deadline', 'ended')
if not meta[1] or meta[1] ~= user then return { 0, 0, -1 } end
if meta[3] == 'expired' then return { 0, 0, 1 } end
if meta[3] == 'acked' then return { 0, 0, 2 } end
-- a claim of a subscription, not a timed one
if not meta[2] then return { 0, 0, -1 } end
if now() >= tonumber(meta[2]) then
  expireTimed(claimId, KEYS[4], P, ttl, retention)
  return { 0, 0, 1 }
end
local ids = {}
if ARGV[6] == '1' then ids = redis.call('LRANGE', KEYS[2], 0, -1) else for i = 7, #ARGV do ids[#ids + 1] = ARGV[i] end end
local acked = 0
for _, id in ipairs(ids) do
  if redis.call('HDEL', KEYS[1], id) == 1 then
    redis.call('LREM', KEYS[2], 0, id)
    acked = acked + 1
  end
end
local left = redis.call('HLEN', KEYS[1])
if left == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  endTimed(KEYS[3], KEYS[4], claimId, user, 'acked', retention)
end
return { acked, left, 0 }`,
  },
  // KEYS claim-deadlines; ARGV prefix, ttl, retention, limit → timed claims returned to their inboxes
  sbInboxSweepClaims: {
    numberOfKeys: 1,
    lua: `${INBOX_LUA_LIB}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now(), 'LIMIT', 0, tonumber(ARGV[4]))
for _, claimId in ipairs(due) do expireTimed(claimId, KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])) end
return #due`,
  },
} as const;

export class RedisInboxStore implements InboxStore {
  /** Messages dropped because an inbox was full (oldest first), by this store. */
  dropped = 0;
  private readonly redis: RedisClient;
  private readonly keys: RedisKeys;
  private readonly opts: RedisInboxOptions;
  private readonly sweeper: NodeJS.Timeout | undefined;

  constructor(target: RedisTarget, options: Partial<RedisInboxOptions> = {}) {
    this.opts = {
      ...DEFAULT_INBOX_LIMITS,
      nodeId: undefined,
      claimSweepMs: 1000,
      ...options,
      ...resolveConnectionOptions(options),
    };
    this.keys = new RedisKeys(this.opts.keyPrefix);
    this.redis = createRedisClient(target, 'command', { ...this.opts, name: 'inbox' });
    for (const [name, definition] of Object.entries(SCRIPTS)) this.redis.defineCommand(name, definition);
    if (this.opts.claimSweepMs > 0) {
      this.sweeper = setInterval(() => void this.sweepTimedClaims().catch((error: unknown) => this.sweepFailed(error)), this.opts.claimSweepMs);
      this.sweeper.unref();
    }
  }

  async append(user: string, destination: string, message: BrokerMessage, options: StoreOptions = {}): Promise<void> {
    const result = await this.call('inbox append', () =>
      this.redis.sbInboxAppend(
        ...this.inboxKeys(user, destination),
        encodeMessage(message),
        this.opts.maxMessages,
        this.opts.ttlSeconds,
        destination,
        this.opts.overflow,
        options.accepted ? 1 : 0,
        this.opts.maxBytes,
        this.keys.prefix,
        user,
      ),
    );
    this.stored(result, user, destination);
  }

  async prepend(user: string, destination: string, messages: readonly BrokerMessage[]): Promise<void> {
    if (messages.length === 0) return;
    await this.call('inbox prepend', () =>
      this.redis.sbInboxPrepend(...this.inboxKeys(user, destination), this.opts.ttlSeconds, destination, ...messages.map(encodeMessage)),
    );
  }

  async returnToHead(user: string, destination: string, messages: readonly BrokerMessage[], claimId?: string): Promise<void> {
    if (messages.length === 0) return;
    // Without a claim the claim keys are never touched; any key name will do.
    const claim = claimId ?? '';
    await this.call('inbox returnToHead', () =>
      this.redis.sbInboxReturnToHead(
        ...this.claimKeys(claim),
        ...this.inboxKeys(user, destination),
        this.opts.ttlSeconds,
        destination,
        claim,
        messages.length,
        ...messages.map((m) => m.id),
        ...messages.map(encodeMessage),
      ),
    );
  }

  async take(user: string, destination: string, max = Infinity): Promise<BrokerMessage[]> {
    if (max <= 0) return [];
    const items = await this.call('inbox take', () =>
      this.redis.sbInboxTakeBuffer(...this.inboxKeys(user, destination), count(max), destination),
    );
    return items.map(decodeMessage);
  }

  async peek(user: string, destination: string, max = Infinity): Promise<BrokerMessage[]> {
    if (max <= 0) return [];
    const items = await this.call('inbox peek', () => this.redis.lrangeBuffer(this.keys.inbox(user, destination), 0, count(max) < 0 ? -1 : count(max) - 1));
    return items.map(decodeMessage);
  }

  async depth(user: string, destination: string): Promise<number> {
    return this.call('inbox depth', () => this.redis.llen(this.keys.inbox(user, destination)));
  }

  async list(user: string): Promise<Array<{ destination: string; depth: number }>> {
    const flat = await this.call('inbox list', () => this.redis.sbInboxList(this.keys.inboxes(user), this.keys.prefix, user));
    const out: Array<{ destination: string; depth: number }> = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ destination: String(flat[i]), depth: Number(flat[i + 1]) });
    return out.sort((a, b) => a.destination.localeCompare(b.destination));
  }

  /** `claimId` is `<nodeId>:<anything>`: the claim is the node's until acked or released. */
  async claim(claimId: string, user: string, destination: string, max = Infinity): Promise<BrokerMessage[]> {
    if (max <= 0) return [];
    const items = await this.call('inbox claim', () =>
      this.redis.sbInboxClaimBuffer(
        ...this.claimKeys(claimId),
        ...this.inboxKeys(user, destination),
        count(max),
        user,
        destination,
        claimId,
      ),
    );
    return items.map(decodeMessage);
  }

  async keepClaimed(claimId: string, user: string, destination: string, messages: readonly BrokerMessage[]): Promise<void> {
    if (messages.length === 0) return;
    await this.call('inbox keepClaimed', () =>
      this.redis.sbInboxKeepClaimed(
        ...this.claimKeys(claimId),
        user,
        destination,
        claimId,
        ...messages.map(encodeMessage),
      ),
    );
  }

  async ack(claimId: string, messageIds: readonly string[]): Promise<void> {
    if (messageIds.length === 0) return;
    await this.call('inbox ack', () =>
      this.redis.sbInboxAck(
        ...this.claimKeys(claimId),
        claimId,
        ...messageIds,
      ),
    );
  }

  async release(claimId: string): Promise<void> {
    await this.call('inbox release', () =>
      this.redis.sbInboxRelease(
        ...this.claimKeys(claimId),
        claimId,
        this.keys.prefix,
        this.opts.ttlSeconds,
      ),
    );
  }

  /**
   * Releases every claim of `nodeId` (a dead node, from onNodeDown): its
   * unacked messages go back to the head of their inboxes. Returns how many.
   */
  async releaseNodeClaims(nodeId: string): Promise<number> {
    return this.call('inbox releaseNodeClaims', () => this.redis.sbInboxReleaseNode(this.keys.nodeClaims(nodeId), this.keys.prefix, this.opts.ttlSeconds));
  }

  async claimTimed(user: string, destination: string, max: number, visibilityTimeoutMs: number): Promise<TimedClaim> {
    const claimId = TIMED_CLAIM_PREFIX + randomUUID();
    const [deadline, ...items] = await this.call('inbox claimTimed', () =>
      this.redis.sbInboxClaimTimedBuffer(
        this.keys.inbox(user, destination),
        this.keys.inboxes(user),
        this.keys.claim(claimId),
        this.keys.claimOrder(claimId),
        this.keys.claimMeta(claimId),
        this.keys.claimDeadlines(),
        this.keys.inboxBytes(user),
        count(max),
        user,
        destination,
        claimId,
        visibilityTimeoutMs,
      ),
    );
    if (deadline === undefined) return { claimId: null, messages: [], expiresAt: null };
    return { claimId, messages: items.map(decodeMessage), expiresAt: Number(deadline.toString()) };
  }

  async ackTimed(user: string, claimId: string, messageIds?: readonly string[]): Promise<TimedClaimAck | undefined> {
    const [acked, left, state] = await this.call('inbox ackTimed', () =>
      this.redis.sbInboxAckTimed(
        this.keys.claim(claimId),
        this.keys.claimOrder(claimId),
        this.keys.claimMeta(claimId),
        this.keys.claimDeadlines(),
        claimId,
        user,
        this.keys.prefix,
        this.opts.ttlSeconds,
        ENDED_CLAIM_RETENTION_MS,
        messageIds === undefined ? 1 : 0,
        ...(messageIds ?? []),
      ),
    );
    if (state === -1) return undefined;
    return { acked, left, expired: state === 1 };
  }

  /** Returns the timed claims whose deadline passed to their inboxes (every node runs it, on a timer). Returns how many. */
  async sweepTimedClaims(): Promise<number> {
    let total = 0;
    for (;;) {
      const swept = await this.call('inbox sweepTimedClaims', () =>
        this.redis.sbInboxSweepClaims(this.keys.claimDeadlines(), this.keys.prefix, this.opts.ttlSeconds, ENDED_CLAIM_RETENTION_MS, SWEEP_BATCH),
      );
      total += swept;
      if (swept < SWEEP_BATCH) return total;
    }
  }

  /**
   * Hands the unacked messages of every claim of `nodeId` (a dead node's
   * recovery tag) to `handler` — the broker re-routes them, so that a
   * subscriber already back on another node gets them at once — and forgets
   * each claim once handed over. Resumable: a claim handed over and not yet
   * forgotten is handed over again (same message ids). Returns how many.
   */
  async recoverNodeClaims(nodeId: string, handler: (user: string, destination: string, messages: BrokerMessage[]) => Promise<void>): Promise<number> {
    const nodeClaims = this.keys.nodeClaims(nodeId);
    const claimIds = await this.call('inbox recoverNodeClaims', () => this.redis.smembers(nodeClaims));
    let count = 0;
    for (const claimId of claimIds) {
      const keys = [this.keys.claim(claimId), this.keys.claimOrder(claimId), this.keys.claimMeta(claimId)] as const;
      const [user, destination, ...items] = await this.call('inbox recoverNodeClaims', () => this.redis.sbInboxReadClaimBuffer(...keys));
      if (user !== undefined && destination !== undefined && items.length > 0) {
        await handler(user.toString(), destination.toString(), items.map(decodeMessage));
        count += items.length;
      }
      await this.call('inbox recoverNodeClaims', () => this.redis.sbInboxDropClaim(...keys, nodeClaims, claimId));
    }
    return count;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    if (this.opts.nodeId !== undefined && this.redis.status === 'ready') {
      try {
        await this.releaseNodeClaims(this.opts.nodeId);
      } catch (error) {
        this.opts.logger.warn({ module: 'inbox', node: this.opts.nodeId, error: String(error) }, 'could not release claims on close');
      }
    }
    await closeClient(this.redis);
  }

  /** An inbox's list, its user's index of destinations and the user's bytes. */
  private inboxKeys(user: string, destination: string): [inbox: string, inboxes: string, bytes: string] {
    return [this.keys.inbox(user, destination), this.keys.inboxes(user), this.keys.inboxBytes(user)];
  }

  /** A claim's hash, order list and meta, then the set of its node's claims: the scripts' first four keys. */
  private claimKeys(claimId: string): [claim: string, order: string, meta: string, nodeClaims: string] {
    return [this.keys.claim(claimId), this.keys.claimOrder(claimId), this.keys.claimMeta(claimId), this.keys.nodeClaims(claimNode(claimId))];
  }

  private call<T>(what: string, call: () => Promise<T>): Promise<T> {
    return redisCall(this.redis, what, call);
  }

  /** `result` of the Lua `append`: refused, or how many the cap dropped. */
  private stored(result: number, user: string, destination: string): void {
    if (result === INBOX_REFUSED) throw inboxFullError(user, destination, this.opts.maxMessages);
    if (result === INBOX_REFUSED_BYTES) throw inboxBytesFullError(user, this.opts.maxBytes);
    this.dropped += result;
  }

  private sweepFailed(error: unknown): void {
    // While Redis is down every node would say so each sweep; the connection logs the outage once.
    if (error instanceof BrokerError && error.code === 'ERR_CLUSTER_UNAVAILABLE') return;
    this.opts.logger.warn({ module: 'inbox', error: String(error) }, 'could not return expired inbox claims');
  }
}

/** How many a script takes for `max` (> 0): -1 means all. */
function count(max: number): number {
  return Number.isFinite(max) ? Math.max(1, Math.floor(max)) : -1;
}

function claimNode(claimId: string): string {
  const colon = claimId.indexOf(':');
  return colon < 0 ? claimId : claimId.slice(0, colon);
}

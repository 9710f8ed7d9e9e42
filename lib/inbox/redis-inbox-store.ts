/*
 * The offline inbox in Redis.
 *
 * Data model (`{p}` is the key prefix, see lib/cluster/redis-keys.ts):
 *
 *   {p}inbox:<user>:<dest>     LIST   encoded messages (envelope-codec),
 *                                     oldest first; LTRIM to the newest
 *                                     maxMessages and EXPIRE ttlSeconds after
 *                                     each append.
 *   {p}inboxes:<user>          SET    the user's destinations with an inbox,
 *                                     for `list`; lives as long as the
 *                                     longest-lived of those inboxes, and
 *                                     stale members are dropped when read.
 *   {p}claim:<claimId>         HASH   message id → encoded message.
 *   {p}claim-order:<claimId>   LIST   the claim's message ids, oldest first.
 *   {p}claim-meta:<claimId>    HASH   user, destination of the claim.
 *   {p}node-claims:<nodeId>    SET    claim ids of a node (the claim id's part
 *                                     before its first ':'), for releasing a
 *                                     dead node's claims.
 *
 * Every operation that moves messages is one Lua script, which is what the
 * seeds' unread list lacked (pull, then delete: a message arriving in
 * between was lost):
 * - `routeOrStore` reads the presence registry's `{p}subs:<user>:<dest>` and
 *   `{p}node:<id>` keys (same key functions, lib/cluster/redis-keys.ts) and
 *   either returns the live subscribed nodes or appends, in one step: a
 *   message is never neither routed nor stored.
 * - `take` and `claim` read and cut the list head in one step: a message is
 *   handed out once, and one appended meanwhile stays for the next take.
 * - `release` (and `releaseNodeClaims`, for a dead node) puts the unacked
 *   messages of a claim back at the head of its inbox, in their order.
 *
 * The scripts name keys from data (users, node ids), so this layout is for a
 * single Redis (or a primary with replicas), not Redis Cluster's key slots.
 */
import type { Redis, Result } from 'ioredis';
import type { BrokerMessage } from '../broker/message.js';
import { decodeMessage, encodeMessage, luaMessageId } from '../cluster/envelope-codec.js';
import {
  closeClient,
  createRedisClient,
  redisCall,
  resolveConnectionOptions,
  type RedisConnectionOptions,
} from '../cluster/redis-connection.js';
import { luaKey, RedisKeys } from '../cluster/redis-keys.js';
import { DEFAULT_INBOX_LIMITS, type InboxLimits, type InboxStore } from './inbox-store.js';

export interface RedisInboxOptions extends RedisConnectionOptions, InboxLimits {
  /** This node's id, when `close()` should release the claims the node still holds. */
  nodeId: string | undefined;
}

declare module 'ioredis' {
  interface RedisCommander<Context> {
    sbInboxRouteOrStore(
      subsKey: string,
      inboxKey: string,
      inboxesKey: string,
      prefix: string,
      payload: Buffer,
      maxMessages: number,
      ttlSeconds: number,
      destination: string,
    ): Result<string[] | number, Context>;
    sbInboxAppend(inboxKey: string, inboxesKey: string, payload: Buffer, maxMessages: number, ttlSeconds: number, destination: string): Result<number, Context>;
    sbInboxPrepend(inboxKey: string, inboxesKey: string, maxMessages: number, ttlSeconds: number, destination: string, ...payloads: Buffer[]): Result<number, Context>;
    sbInboxTakeBuffer(inboxKey: string, inboxesKey: string, count: number, destination: string): Result<Buffer[], Context>;
    sbInboxList(inboxesKey: string, prefix: string, user: string): Result<Array<string | number>, Context>;
    sbInboxClaimBuffer(
      inboxKey: string,
      inboxesKey: string,
      claimKey: string,
      orderKey: string,
      metaKey: string,
      nodeClaimsKey: string,
      count: number,
      user: string,
      destination: string,
      claimId: string,
    ): Result<Buffer[], Context>;
    sbInboxAck(claimKey: string, orderKey: string, metaKey: string, nodeClaimsKey: string, claimId: string, ...ids: string[]): Result<number, Context>;
    sbInboxRelease(claimKey: string, orderKey: string, metaKey: string, nodeClaimsKey: string, claimId: string, prefix: string, maxMessages: number, ttlSeconds: number): Result<[number, number], Context>;
    sbInboxReleaseNode(nodeClaimsKey: string, prefix: string, maxMessages: number, ttlSeconds: number): Result<[number, number], Context>;
  }
}

/** Lua helpers shared by the scripts. Each returns how many messages the cap dropped. */
/** Lua helpers for inbox lists (append, prepend, take, release): also used by the user router's script. */
export const INBOX_LUA_LIB = `
local function extend(key, ttl)
  if redis.call('TTL', key) < ttl then redis.call('EXPIRE', key, ttl) end
end
local function cap(inbox, max)
  local n = redis.call('LLEN', inbox)
  if n <= max then return 0 end
  redis.call('LTRIM', inbox, -max, -1)
  return n - max
end
local function append(inbox, inboxes, destination, payload, max, ttl)
  redis.call('RPUSH', inbox, payload)
  local dropped = cap(inbox, max)
  redis.call('EXPIRE', inbox, ttl)
  redis.call('SADD', inboxes, destination)
  extend(inboxes, ttl)
  return dropped
end
-- items oldest first, put before the current head
local function prepend(inbox, inboxes, destination, items, max, ttl)
  for i = #items, 1, -1 do redis.call('LPUSH', inbox, items[i]) end
  local dropped = cap(inbox, max)
  if redis.call('TTL', inbox) < 0 then redis.call('EXPIRE', inbox, ttl) end
  redis.call('SADD', inboxes, destination)
  extend(inboxes, redis.call('TTL', inbox))
  return dropped
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
-- puts a claim's unacked messages back at the head of its inbox → released, dropped
local function release(claim, order, meta, P, max, ttl)
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
  if #items == 0 then return { 0, 0 } end
  local user, destination = owner[1], owner[2]
  local dropped = prepend(${luaKey('P', 'inbox', 'user', 'destination')}, ${luaKey('P', 'inboxes', 'user')}, destination, items, max, ttl)
  return { #items, dropped }
end
`;

const SCRIPTS = {
  // KEYS subs, inbox, inboxes; ARGV prefix, payload, max, ttl, destination → live node ids, or dropped count when stored
  sbInboxRouteOrStore: {
    numberOfKeys: 3,
    lua: `${INBOX_LUA_LIB}
local P = ARGV[1]
local live = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ${luaKey('P', 'node', 'id')}) == 1 then live[#live + 1] = id end
end
if #live > 0 then return live end
return append(KEYS[2], KEYS[3], ARGV[5], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]))`,
  },
  // KEYS inbox, inboxes; ARGV payload, max, ttl, destination → dropped
  sbInboxAppend: {
    numberOfKeys: 2,
    lua: `${INBOX_LUA_LIB}
return append(KEYS[1], KEYS[2], ARGV[4], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))`,
  },
  // KEYS inbox, inboxes; ARGV max, ttl, destination, payloads (oldest first) → dropped
  sbInboxPrepend: {
    numberOfKeys: 2,
    lua: `${INBOX_LUA_LIB}
local items = {}
for i = 4, #ARGV do items[#items + 1] = ARGV[i] end
return prepend(KEYS[1], KEYS[2], ARGV[3], items, tonumber(ARGV[1]), tonumber(ARGV[2]))`,
  },
  // KEYS inbox, inboxes; ARGV count, destination → messages
  sbInboxTake: {
    numberOfKeys: 2,
    lua: `${INBOX_LUA_LIB}
return take(KEYS[1], KEYS[2], tonumber(ARGV[1]), ARGV[2])`,
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
  // KEYS inbox, inboxes, claim, claim-order, claim-meta, node-claims; ARGV count, user, destination, claimId → messages
  sbInboxClaim: {
    numberOfKeys: 6,
    lua: `${INBOX_LUA_LIB}
local owner = redis.call('HMGET', KEYS[5], 'user', 'destination')
if owner[1] and (owner[1] ~= ARGV[2] or owner[2] ~= ARGV[3]) then
  return redis.error_reply('claim ' .. ARGV[4] .. ' already holds another inbox')
end
local items = take(KEYS[1], KEYS[2], tonumber(ARGV[1]), ARGV[3])
if #items == 0 then return items end
redis.call('HSET', KEYS[5], 'user', ARGV[2], 'destination', ARGV[3])
for _, item in ipairs(items) do
  local id = ${luaMessageId('item')}
  redis.call('HSET', KEYS[3], id, item)
  redis.call('RPUSH', KEYS[4], id)
end
redis.call('SADD', KEYS[6], ARGV[4])
return items`,
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
  // KEYS claim, claim-order, claim-meta, node-claims; ARGV claimId, prefix, max, ttl → released, dropped
  sbInboxRelease: {
    numberOfKeys: 4,
    lua: `${INBOX_LUA_LIB}
redis.call('SREM', KEYS[4], ARGV[1])
return release(KEYS[1], KEYS[2], KEYS[3], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]))`,
  },
  // KEYS node-claims; ARGV prefix, max, ttl → released, dropped
  sbInboxReleaseNode: {
    numberOfKeys: 1,
    lua: `${INBOX_LUA_LIB}
local P = ARGV[1]
local released, dropped = 0, 0
for _, claimId in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local r = release(${luaKey('P', 'claim', 'claimId')}, ${luaKey('P', 'claimOrder', 'claimId')}, ${luaKey('P', 'claimMeta', 'claimId')}, P, tonumber(ARGV[2]), tonumber(ARGV[3]))
  released = released + r[1]
  dropped = dropped + r[2]
end
redis.call('DEL', KEYS[1])
return { released, dropped }`,
  },
} as const;

export class RedisInboxStore implements InboxStore {
  /** Messages dropped because an inbox was full (oldest first), by this store. */
  dropped = 0;
  private readonly redis: Redis;
  private readonly keys: RedisKeys;
  private readonly opts: RedisInboxOptions;

  constructor(url: string, options: Partial<RedisInboxOptions> = {}) {
    this.opts = {
      ...DEFAULT_INBOX_LIMITS,
      nodeId: undefined,
      ...options,
      ...resolveConnectionOptions(options),
    };
    this.keys = new RedisKeys(this.opts.keyPrefix);
    this.redis = createRedisClient(url, 'command', { ...this.opts, name: 'inbox' });
    for (const [name, definition] of Object.entries(SCRIPTS)) this.redis.defineCommand(name, definition);
  }

  async routeOrStore(user: string, destination: string, message: BrokerMessage): Promise<string[]> {
    const result = await this.call('inbox routeOrStore', () =>
      this.redis.sbInboxRouteOrStore(
        this.keys.subs(user, destination),
        this.keys.inbox(user, destination),
        this.keys.inboxes(user),
        this.keys.prefix,
        encodeMessage(message),
        this.opts.maxMessages,
        this.opts.ttlSeconds,
        destination,
      ),
    );
    if (Array.isArray(result)) return result.sort();
    this.dropped += result;
    return [];
  }

  async append(user: string, destination: string, message: BrokerMessage): Promise<void> {
    this.dropped += await this.call('inbox append', () =>
      this.redis.sbInboxAppend(
        this.keys.inbox(user, destination),
        this.keys.inboxes(user),
        encodeMessage(message),
        this.opts.maxMessages,
        this.opts.ttlSeconds,
        destination,
      ),
    );
  }

  async prepend(user: string, destination: string, messages: readonly BrokerMessage[]): Promise<void> {
    if (messages.length === 0) return;
    this.dropped += await this.call('inbox prepend', () =>
      this.redis.sbInboxPrepend(
        this.keys.inbox(user, destination),
        this.keys.inboxes(user),
        this.opts.maxMessages,
        this.opts.ttlSeconds,
        destination,
        ...messages.map(encodeMessage),
      ),
    );
  }

  async take(user: string, destination: string, max = Infinity): Promise<BrokerMessage[]> {
    if (max <= 0) return [];
    const items = await this.call('inbox take', () =>
      this.redis.sbInboxTakeBuffer(this.keys.inbox(user, destination), this.keys.inboxes(user), count(max), destination),
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
        this.keys.inbox(user, destination),
        this.keys.inboxes(user),
        this.keys.claim(claimId),
        this.keys.claimOrder(claimId),
        this.keys.claimMeta(claimId),
        this.keys.nodeClaims(claimNode(claimId)),
        count(max),
        user,
        destination,
        claimId,
      ),
    );
    return items.map(decodeMessage);
  }

  async ack(claimId: string, messageIds: readonly string[]): Promise<void> {
    if (messageIds.length === 0) return;
    await this.call('inbox ack', () =>
      this.redis.sbInboxAck(
        this.keys.claim(claimId),
        this.keys.claimOrder(claimId),
        this.keys.claimMeta(claimId),
        this.keys.nodeClaims(claimNode(claimId)),
        claimId,
        ...messageIds,
      ),
    );
  }

  async release(claimId: string): Promise<void> {
    const [, dropped] = await this.call('inbox release', () =>
      this.redis.sbInboxRelease(
        this.keys.claim(claimId),
        this.keys.claimOrder(claimId),
        this.keys.claimMeta(claimId),
        this.keys.nodeClaims(claimNode(claimId)),
        claimId,
        this.keys.prefix,
        this.opts.maxMessages,
        this.opts.ttlSeconds,
      ),
    );
    this.dropped += dropped;
  }

  /**
   * Releases every claim of `nodeId` (a dead node, from onNodeDown): its
   * unacked messages go back to the head of their inboxes. Returns how many.
   */
  async releaseNodeClaims(nodeId: string): Promise<number> {
    const [released, dropped] = await this.call('inbox releaseNodeClaims', () =>
      this.redis.sbInboxReleaseNode(this.keys.nodeClaims(nodeId), this.keys.prefix, this.opts.maxMessages, this.opts.ttlSeconds),
    );
    this.dropped += dropped;
    return released;
  }

  async close(): Promise<void> {
    if (this.opts.nodeId !== undefined && this.redis.status === 'ready') {
      try {
        await this.releaseNodeClaims(this.opts.nodeId);
      } catch (error) {
        this.opts.logger.warn({ module: 'inbox', node: this.opts.nodeId, error: String(error) }, 'could not release claims on close');
      }
    }
    await closeClient(this.redis);
  }

  private call<T>(what: string, call: () => Promise<T>): Promise<T> {
    return redisCall(this.redis, what, call);
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

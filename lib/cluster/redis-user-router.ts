/*
 * User routing in Redis, batched: every user message this node routes in
 * one tick goes to Redis in one script call (with many sessions sending at
 * once, that divides the per-command cost — the sender node's bottleneck —
 * by the batch size). This script is route-or-store's one place in Redis:
 * it handles the messages in order, each one atomically with presence:
 *
 *   for each message: the node ids in `{p}subs:<user>:<dest>` whose
 *   `{p}node:<id>` key exists (live), less `exclude`;
 *     this node            → reported back as `local`;
 *     another live node    → the envelope goes to `{p}stream:<id>`, if
 *                            the node is registered in `{p}nodes` and its
 *                            stream exists (the relay's rule: nothing lands
 *                            where nobody will read);
 *     none of them         → RPUSH of the message to `{p}inbox:<u>:<dest>`
 *                            (capped per inbox and, in `{p}inbox-bytes:<u>`,
 *                            per user; expiring: the inbox's `append`).
 *
 * What goes to one node's stream leaves in ONE entry per call (XADD per
 * message was most of Redis's time at 10 pairs, and each entry costs the
 * reading node a reply to parse), up to MAX_ENTRY_BYTES: a lone envelope as
 * the field `e`, several as one batch in the field `b` (envelope-codec.ts),
 * which the reader splits in order. Every message is still decided in order and atomically; the
 * whole call is one script.
 *
 * The message part of a user envelope is the suffix after its user and
 * destination (envelope-codec.ts), so one payload serves both the stream and
 * the inbox. Order: batches leave on one connection in call order, and the
 * script keeps the order within a batch, so one sender's messages keep
 * theirs.
 */
import type { Result } from 'ioredis';
import { DEFAULT_INBOX_LIMITS, inboxBytesFullError, inboxFullError, type InboxOverflow } from '../inbox/inbox-store.js';
import { INBOX_LUA_LIB, INBOX_REFUSED, INBOX_REFUSED_BYTES } from '../inbox/redis-inbox-store.js';
import { encodeEnvelope } from './envelope-codec.js';
import { createRedisClient, closeClient, redisCall, resolveConnectionOptions, type RedisClient, type RedisConnectionOptions, type RedisTarget } from './redis-connection.js';
import { luaKey } from './redis-keys.js';
import { BATCH_FIELD, DEFAULT_RELAY_OPTIONS, ENTRY_FIELD, relayFull } from './redis-relay.js';
import type { UserRoute, UserRouter, UserRouteResult } from './user-router.js';

export interface RedisUserRouterOptions extends RedisConnectionOptions {
  /** As RedisRelayOptions.maxStreamBytes. @default 64 MiB */
  maxStreamBytes: number;
  /** As InboxLimits. */
  inboxMaxMessages: number;
  inboxTtlSeconds: number;
  /** As InboxLimits.overflow. @default refuse */
  inboxOverflow: InboxOverflow;
  /** As InboxLimits.maxBytes: per user, across the user's inboxes. @default 16 MiB */
  inboxMaxBytes: number;
  /** Most messages in one script call. @default 256 */
  maxBatch: number;
}

declare module 'ioredis' {
  interface RedisCommander<Context> {
    sbRouteUsers(...args: Array<string | number | Buffer>): Result<Array<Array<string | number>>, Context>;
  }
}

/** Envelope bytes packed into one stream entry at most (unless one envelope alone is larger). */
export const MAX_ENTRY_BYTES = 1024 * 1024;

/** `stored` of a message's result when it was refused because a target node's stream is full. */
const REFUSED_RELAY_FULL = -2;

const ROUTE_SCRIPT = `${INBOX_LUA_LIB}
local P, self = ARGV[1], ARGV[2]
local maxBytes, max, ttl, overflow, inboxMaxBytes = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local maxEntry = ${MAX_ENTRY_BYTES}
local nodes = P .. 'nodes'
local out = {}
-- Envelopes for each remote node not written yet, in batch order, their bytes, and
-- those nodes in first-use order; bytes already in each node's stream (read once).
local batches, sizes, targets, queued = {}, {}, {}, {}
-- One stream entry of a node's waiting envelopes: a lone one as field ${ENTRY_FIELD}, several packed as field ${BATCH_FIELD}.
local function write(id)
  local list = batches[id]
  if list == nil or #list == 0 then return end
  local field, value = '${ENTRY_FIELD}', list[1]
  if #list > 1 then
    for j = 1, #list do list[j] = struct.pack('>I4', #list[j]) .. list[j] end
    field, value = '${BATCH_FIELD}', table.concat(list)
  end
  -- Never MAXLEN: a stream is trimmed only by its reader, past what it handled.
  redis.call('XADD', ${luaKey('P', 'stream', 'id')}, '*', field, value)
  redis.call('INCRBY', ${luaKey('P', 'streamBytes', 'id')}, sizes[id])
  batches[id], sizes[id] = {}, 0
end
-- Subscription set key → its members, read once per call.
local holders = {}
-- Liveness of each node id, checked once per batch: 0 gone, 1 live, 2 live with a stream to write to.
local state = {}
local function alive(id)
  local s = state[id]
  if s == nil then
    s = 0
    if redis.call('EXISTS', ${luaKey('P', 'node', 'id')}) == 1 then
      s = 1
      if id ~= self and redis.call('ZSCORE', nodes, id) and redis.call('EXISTS', ${luaKey('P', 'stream', 'id')}) == 1 then
        s = 2
        queued[id] = tonumber(redis.call('GET', ${luaKey('P', 'streamBytes', 'id')}) or '0')
      end
    end
    state[id] = s
  end
  return s
end
for i = 8, #ARGV, 3 do
  -- kept: accepted already (a re-route), so never refused
  local exclude, kept, envelope = ARGV[i], ARGV[i + 1] == '1', ARGV[i + 2]
  -- envelope: kind (1 byte), user and destination (u16 length + bytes each), then the message
  local user, destination, messageAt = struct.unpack('>Hc0Hc0', envelope, 2)
  -- { local, stored, remote ids... }
  local r = { 0, 0 }
  -- A batch holds many messages for few subscriptions: read each set once (nothing here changes it).
  local subs = ${luaKey('P', 'subs', 'user', 'destination')}
  local members = holders[subs]
  if members == nil then
    members = redis.call('SMEMBERS', subs)
    holders[subs] = members
  end
  local remote, full = {}, false
  for _, id in ipairs(members) do
    if id ~= exclude then
      local s = alive(id)
      if id == self and s == 1 then
        r[1] = 1
      elseif s == 2 then
        if maxBytes > 0 and not kept and queued[id] + #envelope > maxBytes then full = true end
        remote[#remote + 1] = id
      end
    end
  end
  if full then
    -- A receiving node is not keeping up: the message is refused whole, nowhere delivered.
    r = { 0, ${REFUSED_RELAY_FULL} }
  else
    for _, id in ipairs(remote) do
      if batches[id] == nil then
        batches[id], sizes[id] = {}, 0
        targets[#targets + 1] = id
      elseif sizes[id] + #envelope > maxEntry then
        -- Large messages gain nothing from packing: an entry stays bounded.
        write(id)
      end
      local list = batches[id]
      list[#list + 1] = envelope
      sizes[id] = sizes[id] + #envelope
      queued[id] = queued[id] + #envelope
      r[#r + 1] = id
    end
    if r[1] == 0 and #r == 2 then
      local message = string.sub(envelope, messageAt)
      local appended = append(${luaKey('P', 'inbox', 'user', 'destination')}, ${luaKey('P', 'inboxes', 'user')}, ${luaKey('P', 'inboxBytes', 'user')},
        P, user, destination, message, max, inboxMaxBytes, ttl, overflow, kept)
      -- stored: 1 + how many the cap dropped; refused: ${INBOX_REFUSED} (messages) or ${INBOX_REFUSED_BYTES} (bytes)
      r[2] = appended < 0 and appended or 1 + appended
    end
  end
  out[#out + 1] = r
end
for _, id in ipairs(targets) do write(id) end
return out`;

interface Pending {
  route: UserRoute;
  envelope: Buffer;
  resolve: (result: UserRouteResult) => void;
  reject: (error: unknown) => void;
}

export class RedisUserRouter implements UserRouter {
  private readonly redis: RedisClient;
  private readonly opts: RedisUserRouterOptions;
  /** Messages this router's script dropped from full inboxes (drop-oldest), for stompbox_inbox_dropped_total. */
  dropped = 0;
  private pending: Pending[] = [];
  private scheduled = false;

  constructor(
    private readonly nodeId: string,
    target: RedisTarget,
    options: Partial<RedisUserRouterOptions> & Pick<RedisUserRouterOptions, 'inboxMaxMessages' | 'inboxTtlSeconds'>,
  ) {
    this.opts = {
      maxStreamBytes: DEFAULT_RELAY_OPTIONS.maxStreamBytes,
      maxBatch: 256,
      inboxOverflow: DEFAULT_INBOX_LIMITS.overflow,
      inboxMaxBytes: DEFAULT_INBOX_LIMITS.maxBytes,
      ...options,
      ...resolveConnectionOptions(options),
    };
    // Batched here already; ioredis auto-pipelining would hold a batch back while the previous one is in flight.
    this.redis = createRedisClient(target, 'command', { ...this.opts, name: 'router', autoPipelining: false });
    this.redis.defineCommand('sbRouteUsers', { numberOfKeys: 0, lua: ROUTE_SCRIPT });
  }

  route(route: UserRoute): Promise<UserRouteResult> {
    return new Promise<UserRouteResult>((resolve, reject) => {
      const { user, destination, message } = route;
      this.pending.push({ route, envelope: encodeEnvelope({ kind: 'user', user, destination, message }), resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        process.nextTick(() => this.flush());
      }
    });
  }

  async close(): Promise<void> {
    await closeClient(this.redis);
  }

  private flush(): void {
    this.scheduled = false;
    while (this.pending.length > 0) void this.send(this.pending.splice(0, this.opts.maxBatch));
  }

  private async send(batch: Pending[]): Promise<void> {
    const args: Array<string | number | Buffer> = [this.opts.keyPrefix, this.nodeId, this.opts.maxStreamBytes, this.opts.inboxMaxMessages, this.opts.inboxTtlSeconds, this.opts.inboxOverflow, this.opts.inboxMaxBytes];
    // User and destination travel inside the envelope only; the script reads them from there.
    for (const { route, envelope } of batch) args.push(route.exclude ?? '', route.kept ? '1' : '0', envelope);
    try {
      const results = await redisCall(this.redis, 'route user messages', () => this.redis.sbRouteUsers(...args));
      for (let i = 0; i < batch.length; i++) {
        const r = results[i]!;
        const { route, resolve, reject } = batch[i]!;
        const stored = Number(r[1]);
        if (stored === REFUSED_RELAY_FULL) reject(relayFull(this.opts.maxStreamBytes));
        else if (stored === INBOX_REFUSED) reject(inboxFullError(route.user, route.destination, this.opts.inboxMaxMessages));
        else if (stored === INBOX_REFUSED_BYTES) reject(inboxBytesFullError(route.user, this.opts.inboxMaxBytes));
        else {
          if (stored > 0) this.dropped += stored - 1;
          resolve({ local: r[0] === 1, stored: stored > 0, remote: r.slice(2).map(String) });
        }
      }
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    }
  }
}

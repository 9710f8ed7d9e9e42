/*
 * Presence in Redis: which nodes are alive, which hold which users, which
 * hold a user's subscription to a user destination.
 *
 * Data model (`{p}` is the key prefix, see redis-keys.ts):
 *
 *   {p}node:<id>                STRING  JSON NodeInfo, PX nodeTimeoutMs. The
 *                                       node is live exactly while it exists.
 *   {p}nodes                    ZSET    node id → last beat (Redis server time),
 *                                       the index the reaper scans.
 *   {p}user-nodes:<user>        SET     ids of nodes holding a session of user.
 *   {p}online                   HASH    user → number of nodes holding the user;
 *                                       HLEN is the online count.
 *   {p}subs:<user>:<dest>       SET     ids of nodes holding a subscription of
 *                                       user to dest (`/queue/reply`).
 *   {p}node-index:<id>          SET     what the node registered: `u:<user>`,
 *                                       `k:<subs key>`, `h:<hash key>` (a field
 *                                       named by the node id: sessions per
 *                                       user, redis-user-sessions.ts), so
 *                                       anyone can undo it.
 *   {p}reap:<id>                STRING  the node reaping <id> (SET NX PX).
 *
 * Why a hash for the online count, not seed 000's bitmap (SETBIT/BITCOUNT):
 * a bitmap needs dense integer user ids, and ours are strings; a HyperLogLog
 * counts strings but can never remove one. The hash counts exactly, removes,
 * and lists (`onlineUsers`).
 *
 * Every transition is one Lua script, so it is atomic: the sets, the online
 * hash and the node index never disagree. Each node beats every
 * `beatIntervalMs`, refreshing its node key, and in the same script lists the
 * nodes whose last beat is older than `nodeTimeoutMs` and whose node key is
 * gone. For each, it takes the reap lock (`SET {p}reap:<id> <me> NX PX`); the
 * winner's reap script removes the dead node's entries through its node index
 * — after checking once more, atomically, that the node key is still gone —
 * and then, ONLY on that winning node, the `onNodeDown` listeners run. The
 * broker uses that call to recover what the dead node left: its relay stream
 * (RedisRelay.recoverNode), its inbox claims (RedisInboxStore
 * .releaseNodeClaims) and its in-flight queue messages
 * (RedisQueueStore.recoverNode). Exactly one node in the cluster does that.
 *
 * Lookups (`nodesFor`, `nodesOf`) filter on `{p}node:<id>`, so a dead node
 * drops out of answers when its key expires, before anyone reaps it.
 *
 * Self-healing: a beat that finds this node missing from `{p}nodes` (it was
 * reaped while paused, or Redis lost its data in a restart) registers again
 * everything this node holds, from the node's own record of its transitions.
 *
 * The scripts read keys named from data (node ids from a set, users from the
 * index), so this layout is for a single Redis (or a primary with replicas),
 * not Redis Cluster's key slots.
 */
import type { Result } from 'ioredis';
import { BrokerError } from '../core/errors.js';
import type { NodeInfo, NodeStats, PresenceRegistry, RecoveryHandler, RejoinCause } from './presence.js';
import {
  closeClient,
  connected,
  createRedisClient,
  redisCall,
  resolveConnectionOptions,
  type RedisClient,
  type RedisConnectionOptions,
  type RedisTarget,
} from './redis-connection.js';
import { luaKey, RedisKeys } from './redis-keys.js';

export interface RedisPresenceOptions extends RedisConnectionOptions {
  /** @default 2000 */
  beatIntervalMs: number;
  /** A node silent this long drops out. @default 3 × beatIntervalMs */
  nodeTimeoutMs: number;
  /** How long a reaper holds the reap lock of a dead node. @default 60000 */
  reapLockMs: number;
  /** Lock on recovering one dead node, renewed while the recovery runs. @default 15000 */
  recoverLockMs: number;
}

export const DEFAULT_BEAT_INTERVAL_MS = 2000;
export const DEFAULT_REAP_LOCK_MS = 60_000;
export const DEFAULT_RECOVER_LOCK_MS = 15_000;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    sbPresenceBeat(
      nodeKey: string,
      nodesKey: string,
      deadNodesKey: string,
      id: string,
      info: string,
      ttlMs: number,
      prefix: string,
    ): Result<[known: number, present: number, dead: string[], tags: string[]], Context>;
    sbPresenceUserOnline(userNodesKey: string, onlineKey: string, indexKey: string, id: string, user: string): Result<number, Context>;
    sbPresenceUserOffline(userNodesKey: string, onlineKey: string, indexKey: string, id: string, user: string): Result<number, Context>;
    sbPresenceSubscribed(subsKey: string, indexKey: string, id: string): Result<number, Context>;
    sbPresenceUnsubscribed(subsKey: string, indexKey: string, id: string): Result<number, Context>;
    sbPresenceLive(setKey: string, prefix: string): Result<string[], Context>;
    sbPresenceReap(
      nodeKey: string,
      nodesKey: string,
      indexKey: string,
      onlineKey: string,
      reapKey: string,
      deadNodesKey: string,
      id: string,
      prefix: string,
      force: '0' | '1',
      handover: '0' | '1',
    ): Result<[status: number, tag: string], Context>;
    sbPresenceTakeRecovery(lockKey: string, deadNodesKey: string, owner: string, tag: string, ttlMs: number): Result<number, Context>;
    sbPresenceRenewLock(lockKey: string, owner: string, ttlMs: number): Result<number, Context>;
    sbPresenceFinishRecovery(lockKey: string, deadNodesKey: string, owner: string, tag: string, prefix: string): Result<number, Context>;
  }
}

// Sets `{p}online[user]` to the number of nodes in `set` holding the user.
const LUA_COUNT_USER = `
local function count_user(set, online, user)
  local n = redis.call('SCARD', set)
  if n == 0 then redis.call('HDEL', online, user) else redis.call('HSET', online, user, n) end
end
`;

const SCRIPTS = {
  // KEYS node, nodes, dead-nodes; ARGV id, info, ttlMs, prefix
  // → { known (0/1: in `nodes`), present (0/1: node key existed), { dead ids... }, { recovery tags... } }
  sbPresenceBeat: {
    numberOfKeys: 3,
    lua: `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local known = redis.call('ZSCORE', KEYS[2], ARGV[1]) and 1 or 0
local present = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], now, ARGV[1])
local P = ARGV[4]
local dead = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - tonumber(ARGV[3])))) do
  if redis.call('EXISTS', ${luaKey('P', 'node', 'id')}) == 0 then dead[#dead + 1] = id end
end
return { known, present, dead, redis.call('SMEMBERS', KEYS[3]) }`,
  },
  // KEYS user-nodes, online, node-index; ARGV id, user
  sbPresenceUserOnline: {
    numberOfKeys: 3,
    lua: `${LUA_COUNT_USER}
redis.call('SADD', KEYS[1], ARGV[1])
count_user(KEYS[1], KEYS[2], ARGV[2])
return redis.call('SADD', KEYS[3], 'u:' .. ARGV[2])`,
  },
  sbPresenceUserOffline: {
    numberOfKeys: 3,
    lua: `${LUA_COUNT_USER}
redis.call('SREM', KEYS[1], ARGV[1])
count_user(KEYS[1], KEYS[2], ARGV[2])
return redis.call('SREM', KEYS[3], 'u:' .. ARGV[2])`,
  },
  // KEYS subs, node-index; ARGV id
  sbPresenceSubscribed: {
    numberOfKeys: 2,
    lua: `
redis.call('SADD', KEYS[1], ARGV[1])
return redis.call('SADD', KEYS[2], 'k:' .. KEYS[1])`,
  },
  sbPresenceUnsubscribed: {
    numberOfKeys: 2,
    lua: `
redis.call('SREM', KEYS[1], ARGV[1])
return redis.call('SREM', KEYS[2], 'k:' .. KEYS[1])`,
  },
  // KEYS set of node ids; ARGV prefix → the live ones
  sbPresenceLive: {
    numberOfKeys: 1,
    readOnly: true,
    lua: `
local P = ARGV[1]
local live = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ${luaKey('P', 'node', 'id')}) == 1 then live[#live + 1] = id end
end
return live`,
  },
  // KEYS node, nodes, node-index, online, reap, dead-nodes; ARGV id, prefix, force, handover
  // → { 1 reaped | 0 already gone | -1 alive again (not reaped; lock released), recovery tag or '' }
  // With handover, what the node left to deliver (stream, inbox claims, in-flight queue messages)
  // moves under a fresh tag `<id>!<n>` listed in dead-nodes, for any node to recover; the node,
  // if it was only paused, starts afresh under its own names and can never touch the moved keys.
  sbPresenceReap: {
    numberOfKeys: 6,
    lua: `${LUA_COUNT_USER}
if ARGV[3] ~= '1' and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('DEL', KEYS[5])
  return { -1, '' }
end
local P, id = ARGV[2], ARGV[1]
for _, entry in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local kind, rest = string.sub(entry, 1, 2), string.sub(entry, 3)
  if kind == 'u:' then
    local set = ${luaKey('P', 'userNodes', 'rest')}
    redis.call('SREM', set, id)
    count_user(set, KEYS[4], rest)
  elseif kind == 'k:' then
    redis.call('SREM', rest, id)
  elseif kind == 'h:' then
    -- a hash with a field per node (redis-user-sessions.ts)
    redis.call('HDEL', rest, id)
  end
end
redis.call('DEL', KEYS[3], KEYS[1])
local removed = redis.call('ZREM', KEYS[2], id)
if ARGV[4] ~= '1' then return { removed, '' } end
local tag = id .. '!' .. redis.call('INCR', ${luaKey('P', 'reapSeq')})
local moved = false
local function move(from, to)
  if redis.call('EXISTS', from) == 0 then return false end
  redis.call('RENAME', from, to)
  return true
end
local stream = ${luaKey('P', 'stream', 'id')}
if redis.call('EXISTS', stream) == 1 and redis.call('XLEN', stream) == 0 then
  redis.call('DEL', stream, ${luaKey('P', 'streamBytes', 'id')})
elseif move(stream, ${luaKey('P', 'stream', 'tag')}) then
  move(${luaKey('P', 'streamBytes', 'id')}, ${luaKey('P', 'streamBytes', 'tag')})
  moved = true
end
if move(${luaKey('P', 'nodeClaims', 'id')}, ${luaKey('P', 'nodeClaims', 'tag')}) then moved = true end
local queues = ${luaKey('P', 'nodeQueues', 'id')}
if redis.call('EXISTS', queues) == 1 then
  for _, queue in ipairs(redis.call('SMEMBERS', queues)) do
    move(${luaKey('P', 'queueInflight', 'id', 'queue')}, ${luaKey('P', 'queueInflight', 'tag', 'queue')})
  end
  move(queues, ${luaKey('P', 'nodeQueues', 'tag')})
  moved = true
end
if not moved then return { removed, '' } end
redis.call('SADD', KEYS[6], tag)
return { removed, tag }`,
  },
  // KEYS recover-lock, dead-nodes; ARGV owner, tag, ttlMs → 1 taken, 0 taken by another node or finished already
  // (a tag listed by this node's beat may have been finished by another node since)
  sbPresenceTakeRecovery: {
    numberOfKeys: 2,
    lua: `
if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 0 then return 0 end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[3]) then return 1 end
return 0`,
  },
  // KEYS recover-lock; ARGV owner, ttlMs → 1 renewed, 0 not ours
  sbPresenceRenewLock: {
    numberOfKeys: 1,
    lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])`,
  },
  // KEYS recover-lock, dead-nodes; ARGV owner, tag, prefix → 1 when nothing of the tag is left
  // (it leaves dead-nodes), 0 when something is (another round, by any node, recovers the rest)
  sbPresenceFinishRecovery: {
    numberOfKeys: 2,
    lua: `
local P, tag = ARGV[3], ARGV[2]
local left = redis.call('EXISTS', ${luaKey('P', 'stream', 'tag')}, ${luaKey('P', 'nodeClaims', 'tag')}, ${luaKey('P', 'nodeQueues', 'tag')})
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if left > 0 then return 0 end
redis.call('DEL', ${luaKey('P', 'streamBytes', 'tag')})
redis.call('SREM', KEYS[2], tag)
return 1`,
  },
} as const;

type State = 'new' | 'started' | 'closed';

export class RedisPresence implements PresenceRegistry {
  private readonly redis: RedisClient;
  private readonly keys: RedisKeys;
  private readonly opts: RedisPresenceOptions;
  private readonly recoverers: RecoveryHandler[] = [];
  private readonly rejoinListeners: Array<(cause: RejoinCause) => void> = [];
  /** What this node registered, to register again after losing it (see header). */
  private readonly localUsers = new Set<string>();
  private readonly localSubs = new Map<string, { user: string; destination: string }>();
  private stats: NodeStats = { connections: 0, sessions: 0 };
  private startedAt = 0;
  private state: State = 'new';
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  private recovering: Promise<void> | undefined;
  /**
   * Local time since which every beat succeeded within the node timeout of
   * the previous one; undefined after a failure, a dropped connection or a
   * pause. Evidence that another node is dead is only gathered while this has
   * lasted a full timeout (see `mayReap`).
   */
  private continuousSince: number | undefined;
  private lastBeatSentAt = 0;
  /** Local time until which this node's key surely exists (sent time of the last good beat + timeout). */
  private leaseUntil = 0;
  private leaseWaiters: Array<() => void> = [];

  constructor(
    readonly nodeId: string,
    target: RedisTarget,
    options: Partial<RedisPresenceOptions> = {},
  ) {
    if (nodeId.includes(':') || nodeId.includes('!')) throw new Error(`a node id must contain neither ":" nor "!" (got "${nodeId}")`);
    const connection = resolveConnectionOptions(options);
    const beatIntervalMs = options.beatIntervalMs ?? DEFAULT_BEAT_INTERVAL_MS;
    this.opts = {
      ...connection,
      beatIntervalMs,
      nodeTimeoutMs: options.nodeTimeoutMs ?? 3 * beatIntervalMs,
      reapLockMs: options.reapLockMs ?? DEFAULT_REAP_LOCK_MS,
      recoverLockMs: options.recoverLockMs ?? DEFAULT_RECOVER_LOCK_MS,
    };
    this.keys = new RedisKeys(this.opts.keyPrefix);
    this.redis = createRedisClient(target, 'command', { ...this.opts, name: 'presence' });
    for (const [name, definition] of Object.entries(SCRIPTS)) this.redis.defineCommand(name, definition);
    // A dropped connection is a gap in the evidence (Redis restarting, failing over, or cut off):
    // no reaping until a full timeout of beats has passed again, and a beat as soon as it is back.
    this.redis.on('close', () => (this.continuousSince = undefined));
    this.redis.on('ready', () => {
      if (this.state === 'started') this.tick();
    });
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new BrokerError('ERR_INTERNAL', `presence of ${this.nodeId} already started`);
    await redisCall(this.redis, 'presence start', () => connected(this.redis, this.opts.connectTimeoutMs));
    this.startedAt = Date.now();
    // Entries left by an earlier process with this id that died unreaped: its sessions are gone,
    // and what it left undelivered is handed over for recovery like a dead node's.
    const [stale, tag] = await this.call('presence start', () => this.reapScript(this.nodeId, '1', '1'));
    if (stale === 1 || tag !== '') this.opts.logger.warn({ module: 'presence', node: this.nodeId, tag }, 'removed entries of an earlier node with this id');
    this.state = 'started';
    await this.call('presence beat', () => this.beat());
    this.timer = setInterval(() => this.tick(), this.opts.beatIntervalMs);
    this.timer.unref();
  }

  /**
   * Leaves the cluster: stops beating and removes this node's entries, so
   * that nobody routes to it any more; what it still holds (its stream,
   * claims, in-flight messages) stays under its own names for the node to
   * drain. Then `close()`.
   */
  async leave(): Promise<void> {
    if (this.state !== 'started') return;
    this.stop();
    await this.beating;
    await this.recovering;
    try {
      await this.call('presence leave', () => this.reapScript(this.nodeId, '1', '0'));
    } catch (error) {
      // It will drop out when its node key expires, and be reaped then.
      this.opts.logger.warn({ module: 'presence', node: this.nodeId, error: String(error) }, 'could not remove this node from presence');
    }
  }

  /**
   * Leaves (if not yet) and hands over whatever the node could not drain
   * itself (a failed shutdown step) for recovery by the others; disconnects.
   */
  async close(): Promise<void> {
    if (this.state === 'closed' && this.redis.status === 'end') return;
    const started = this.state === 'started';
    await this.leave();
    try {
      if (started || this.startedAt > 0) {
        const [, tag] = await this.call('presence close', () => this.reapScript(this.nodeId, '1', '1'));
        if (tag !== '') this.opts.logger.warn({ module: 'presence', node: this.nodeId, tag }, 'left undelivered work for recovery by another node');
      }
    } catch (error) {
      this.opts.logger.warn({ module: 'presence', node: this.nodeId, error: String(error) }, 'could not hand over what this node left');
    } finally {
      this.wakeLeaseWaiters();
      await closeClient(this.redis);
    }
  }

  /**
   * Stops beating and drops the connection without removing anything: what
   * a killed node leaves behind. For fault-injection tests.
   */
  crash(): void {
    this.stop();
    this.wakeLeaseWaiters();
    this.redis.disconnect();
  }

  setStats(stats: NodeStats): void {
    this.stats = { ...stats };
  }

  async userOnline(user: string): Promise<void> {
    this.localUsers.add(user);
    await this.call('presence userOnline', () =>
      this.redis.sbPresenceUserOnline(this.keys.userNodes(user), this.keys.online(), this.keys.nodeIndex(this.nodeId), this.nodeId, user),
    );
  }

  async userOffline(user: string): Promise<void> {
    this.localUsers.delete(user);
    await this.call('presence userOffline', () =>
      this.redis.sbPresenceUserOffline(this.keys.userNodes(user), this.keys.online(), this.keys.nodeIndex(this.nodeId), this.nodeId, user),
    );
  }

  async subscribed(user: string, destination: string): Promise<void> {
    const key = this.keys.subs(user, destination);
    this.localSubs.set(key, { user, destination });
    await this.call('presence subscribed', () => this.redis.sbPresenceSubscribed(key, this.keys.nodeIndex(this.nodeId), this.nodeId));
  }

  async unsubscribed(user: string, destination: string): Promise<void> {
    const key = this.keys.subs(user, destination);
    this.localSubs.delete(key);
    await this.call('presence unsubscribed', () => this.redis.sbPresenceUnsubscribed(key, this.keys.nodeIndex(this.nodeId), this.nodeId));
  }

  async nodesFor(user: string, destination: string): Promise<string[]> {
    const ids = await this.call('presence nodesFor', () => this.redis.sbPresenceLive(this.keys.subs(user, destination), this.keys.prefix));
    return ids.sort();
  }

  async nodesOf(user: string): Promise<string[]> {
    const ids = await this.call('presence nodesOf', () => this.redis.sbPresenceLive(this.keys.userNodes(user), this.keys.prefix));
    return ids.sort();
  }

  async isOnline(user: string): Promise<boolean> {
    return (await this.nodesOf(user)).length > 0;
  }

  /**
   * Users held by at least one registered node. A killed node's users count
   * until it is reaped (at most nodeTimeoutMs + beatIntervalMs).
   */
  async onlineCount(): Promise<number> {
    return this.call('presence onlineCount', () => this.redis.hlen(this.keys.online()));
  }

  /** Up to `limit` online users, sorted; with more than `limit` online, which ones is unspecified. */
  async onlineUsers(limit = 1000): Promise<string[]> {
    return this.call('presence onlineUsers', async () => {
      const users = new Set<string>();
      let cursor = '0';
      do {
        const [next, flat] = await this.redis.hscan(this.keys.online(), cursor, 'COUNT', Math.min(Math.max(limit, 10), 1000));
        for (let i = 0; i < flat.length && users.size < limit; i += 2) users.add(flat[i]!);
        cursor = next;
      } while (cursor !== '0' && users.size < limit);
      return [...users].sort();
    });
  }

  async liveNodes(): Promise<NodeInfo[]> {
    return this.call('presence liveNodes', async () => {
      const ids = await this.redis.zrange(this.keys.nodes(), 0, '-1');
      if (ids.length === 0) return [];
      const values = await this.redis.mget(ids.map((id) => this.keys.node(id)));
      const nodes: NodeInfo[] = [];
      for (const value of values) if (value !== null) nodes.push(JSON.parse(value) as NodeInfo);
      return nodes.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    });
  }

  /** Tags of dead nodes whose recovery is not finished (normally empty). */
  async pendingRecoveries(): Promise<string[]> {
    return this.call('presence pendingRecoveries', async () => (await this.redis.smembers(this.keys.deadNodes())).sort());
  }

  onRecover(handler: RecoveryHandler): void {
    this.recoverers.push(handler);
  }

  onRejoined(listener: (cause: RejoinCause) => void): void {
    this.rejoinListeners.push(listener);
  }

  /** Whether this node's key surely still exists, by local time (see `leaseUntil`). */
  leaseValid(): boolean {
    return this.state === 'started' && Date.now() < this.leaseUntil;
  }

  /** Resolves at the next good beat (at once while the lease holds), or when closing. */
  async awaitLease(): Promise<void> {
    if (this.leaseValid() || this.state !== 'started') return;
    await new Promise<void>((resolve) => this.leaseWaiters.push(resolve));
  }

  private stop(): void {
    this.state = 'closed';
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private wakeLeaseWaiters(): void {
    const waiters = this.leaseWaiters;
    this.leaseWaiters = [];
    for (const wake of waiters) wake();
  }

  private tick(): void {
    if (this.beating || this.state !== 'started') return;
    this.beating = this.call('presence beat', () => this.beat())
      .catch((error: unknown) => {
        this.continuousSince = undefined;
        // An outage is logged once by the connection; anything else is worth a line per beat.
        if (!(error instanceof BrokerError && error.code === 'ERR_CLUSTER_UNAVAILABLE')) {
          this.opts.logger.error({ module: 'presence', node: this.nodeId, error: String(error) }, 'beat failed');
        }
      })
      .finally(() => {
        this.beating = undefined;
      });
  }

  /**
   * Whether this node may declare others dead: only on evidence gathered
   * while it could reach Redis without a break for a whole node timeout. After
   * an outage, a Redis restart or a pause of this process, every node first
   * gets a full timeout to beat again.
   */
  private mayReap(now: number): boolean {
    return this.continuousSince !== undefined && now - this.continuousSince >= this.opts.nodeTimeoutMs;
  }

  private async beat(): Promise<void> {
    const sentAt = Date.now();
    // A beat later than the timeout after the previous one (this process was paused, or its
    // beats failed) breaks the evidence as a dropped connection does.
    if (sentAt - this.lastBeatSentAt > this.opts.nodeTimeoutMs) this.continuousSince = undefined;
    const info: NodeInfo = { ...this.stats, id: this.nodeId, startedAt: this.startedAt, lastBeat: sentAt };
    const [known, present, dead, tags] = await this.redis.sbPresenceBeat(
      this.keys.node(this.nodeId),
      this.keys.nodes(),
      this.keys.deadNodes(),
      this.nodeId,
      JSON.stringify(info),
      this.opts.nodeTimeoutMs,
      this.keys.prefix,
    );
    const first = this.lastBeatSentAt === 0;
    const afterBreak = this.continuousSince === undefined;
    this.lastBeatSentAt = sentAt;
    this.continuousSince ??= sentAt;
    this.leaseUntil = sentAt + this.opts.nodeTimeoutMs;
    if (known === 0 && !first) {
      this.opts.logger.warn({ module: 'presence', node: this.nodeId }, 'this node had been dropped from presence; registering again');
      await this.register();
      this.rejoined('reaped');
      return this.afterBeat(dead, tags);
    }
    // Users who connected while Redis was away could not be recorded then: record all again (idempotent).
    if (afterBreak && !first) await this.register();
    if (present === 0 && !first) {
      // Our key had expired (an outage, a pause): meanwhile others took us for gone and stored our users' messages.
      this.opts.logger.warn({ module: 'presence', node: this.nodeId }, 'this node had dropped out of routing; taking back what was stored meanwhile');
      this.rejoined('expired');
    }
    return this.afterBeat(dead, tags);
  }

  /** After a good beat: wake what waits for the lease, then reap and recover if there is evidence. */
  private async afterBeat(dead: string[], tags: string[]): Promise<void> {
    this.wakeLeaseWaiters();
    if (this.state !== 'started' || !this.mayReap(Date.now())) return;
    for (const id of dead) {
      if (id !== this.nodeId && this.state === 'started') {
        const tag = await this.reap(id);
        if (tag !== '') tags.push(tag);
      }
    }
    if (tags.length > 0 && this.recovering === undefined && this.recoverers.length > 0) {
      this.recovering = this.recover([...new Set(tags)]).finally(() => {
        this.recovering = undefined;
      });
    }
  }

  private rejoined(cause: RejoinCause): void {
    for (const listener of this.rejoinListeners) {
      try {
        listener(cause);
      } catch (error) {
        this.opts.logger.error({ module: 'presence', node: this.nodeId, error: String(error) }, 'rejoin listener failed');
      }
    }
  }

  private async register(): Promise<void> {
    const index = this.keys.nodeIndex(this.nodeId);
    const online = this.keys.online();
    await Promise.all([
      ...[...this.localUsers].map((user) => this.redis.sbPresenceUserOnline(this.keys.userNodes(user), online, index, this.nodeId, user)),
      ...[...this.localSubs.keys()].map((key) => this.redis.sbPresenceSubscribed(key, index, this.nodeId)),
    ]);
  }

  /** Reaps `id` if this node wins its lock and it is still gone; returns its recovery tag ('' for none). */
  private async reap(id: string): Promise<string> {
    const won = await this.redis.set(this.keys.reap(id), this.nodeId, 'PX', this.opts.reapLockMs, 'NX');
    if (won !== 'OK') return '';
    const [status, tag] = await this.reapScript(id, '0', '1');
    if (status !== 1) return '';
    this.opts.logger.warn({ module: 'presence', node: this.nodeId, dead: id, tag }, 'node down; reaped its presence');
    return tag;
  }

  /**
   * Recovers each tag this node can lock: the handlers hand over its stream,
   * claims and in-flight messages; the tag leaves `dead-nodes` only once none
   * is left. A node that dies half-way leaves the lock to expire, and the
   * next beat of any live node resumes where it stopped.
   */
  private async recover(tags: string[]): Promise<void> {
    for (const tag of tags) {
      if (this.state !== 'started') return;
      const lock = this.keys.recoverLock(tag);
      const won = await this.call('presence recover', () =>
        this.redis.sbPresenceTakeRecovery(lock, this.keys.deadNodes(), this.nodeId, tag, this.opts.recoverLockMs),
      ).catch(() => 0);
      if (won !== 1) continue;
      const renew = setInterval(() => {
        this.redis.sbPresenceRenewLock(lock, this.nodeId, this.opts.recoverLockMs).catch(() => {});
      }, Math.max(50, Math.floor(this.opts.recoverLockMs / 3)));
      renew.unref();
      const deadNode = tag.slice(0, tag.lastIndexOf('!'));
      try {
        for (const handler of this.recoverers) await handler(tag, deadNode);
        const done = await this.call('presence recover', () =>
          this.redis.sbPresenceFinishRecovery(lock, this.keys.deadNodes(), this.nodeId, tag, this.keys.prefix),
        );
        if (done === 1) this.opts.logger.warn({ module: 'presence', node: this.nodeId, dead: deadNode, tag }, 'recovery of a dead node finished');
      } catch (error) {
        // Left in dead-nodes; the lock expires and a later beat (here or elsewhere) resumes it.
        this.opts.logger.error({ module: 'presence', node: this.nodeId, tag, error: String(error) }, 'recovery of a dead node failed; will resume');
      } finally {
        clearInterval(renew);
      }
    }
  }

  private reapScript(id: string, force: '0' | '1', handover: '0' | '1'): Promise<[number, string]> {
    return this.redis.sbPresenceReap(
      this.keys.node(id),
      this.keys.nodes(),
      this.keys.nodeIndex(id),
      this.keys.online(),
      this.keys.reap(id),
      this.keys.deadNodes(),
      id,
      this.keys.prefix,
      force,
      handover,
    );
  }

  private call<T>(what: string, call: () => Promise<T>): Promise<T> {
    return redisCall(this.redis, what, call);
  }
}

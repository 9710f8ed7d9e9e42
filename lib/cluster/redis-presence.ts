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
 *                                       `k:<subs key>`, so anyone can undo it.
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
import type { Redis, Result } from 'ioredis';
import { BrokerError } from '../broker/errors.js';
import type { NodeInfo, NodeStats, PresenceRegistry } from './presence.js';
import {
  closeClient,
  connected,
  createRedisClient,
  redisCall,
  resolveConnectionOptions,
  type RedisConnectionOptions,
} from './redis-connection.js';
import { luaKey, RedisKeys } from './redis-keys.js';

export interface RedisPresenceOptions extends RedisConnectionOptions {
  /** @default 2000 */
  beatIntervalMs: number;
  /** A node silent this long drops out. @default 3 × beatIntervalMs */
  nodeTimeoutMs: number;
  /** How long a reaper holds the reap lock of a dead node. @default 60000 */
  reapLockMs: number;
}

export const DEFAULT_BEAT_INTERVAL_MS = 2000;
export const DEFAULT_REAP_LOCK_MS = 60_000;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    sbPresenceBeat(nodeKey: string, nodesKey: string, id: string, info: string, ttlMs: number, prefix: string): Result<[number, ...string[]], Context>;
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
      id: string,
      prefix: string,
      force: '0' | '1',
    ): Result<number, Context>;
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
  // KEYS node, nodes; ARGV id, info, ttlMs, prefix → { known (0/1), dead ids... }
  sbPresenceBeat: {
    numberOfKeys: 2,
    lua: `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local known = redis.call('ZSCORE', KEYS[2], ARGV[1]) and 1 or 0
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], now, ARGV[1])
local P = ARGV[4]
local result = { known }
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - tonumber(ARGV[3])))) do
  if redis.call('EXISTS', ${luaKey('P', 'node', 'id')}) == 0 then result[#result + 1] = id end
end
return result`,
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
  // KEYS node, nodes, node-index, online, reap; ARGV id, prefix, force
  // → 1 reaped, 0 already gone, -1 alive again (not reaped; lock released)
  sbPresenceReap: {
    numberOfKeys: 5,
    lua: `${LUA_COUNT_USER}
if ARGV[3] ~= '1' and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('DEL', KEYS[5])
  return -1
end
local P = ARGV[2]
for _, entry in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local kind, rest = string.sub(entry, 1, 2), string.sub(entry, 3)
  if kind == 'u:' then
    local set = ${luaKey('P', 'userNodes', 'rest')}
    redis.call('SREM', set, ARGV[1])
    count_user(set, KEYS[4], rest)
  elseif kind == 'k:' then
    redis.call('SREM', rest, ARGV[1])
  end
end
redis.call('DEL', KEYS[3], KEYS[1])
return redis.call('ZREM', KEYS[2], ARGV[1])`,
  },
} as const;

type State = 'new' | 'started' | 'closed';

export class RedisPresence implements PresenceRegistry {
  private readonly redis: Redis;
  private readonly keys: RedisKeys;
  private readonly opts: RedisPresenceOptions;
  private readonly listeners: Array<(nodeId: string) => void> = [];
  /** What this node registered, to register again after losing it (see header). */
  private readonly localUsers = new Set<string>();
  private readonly localSubs = new Map<string, { user: string; destination: string }>();
  private stats: NodeStats = { connections: 0, sessions: 0 };
  private startedAt = 0;
  private state: State = 'new';
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;

  constructor(
    readonly nodeId: string,
    url: string,
    options: Partial<RedisPresenceOptions> = {},
  ) {
    const connection = resolveConnectionOptions(options);
    const beatIntervalMs = options.beatIntervalMs ?? DEFAULT_BEAT_INTERVAL_MS;
    this.opts = {
      ...connection,
      beatIntervalMs,
      nodeTimeoutMs: options.nodeTimeoutMs ?? 3 * beatIntervalMs,
      reapLockMs: options.reapLockMs ?? DEFAULT_REAP_LOCK_MS,
    };
    this.keys = new RedisKeys(this.opts.keyPrefix);
    this.redis = createRedisClient(url, 'command', { ...this.opts, name: 'presence' });
    for (const [name, definition] of Object.entries(SCRIPTS)) this.redis.defineCommand(name, definition);
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new BrokerError('ERR_INTERNAL', `presence of ${this.nodeId} already started`);
    await redisCall(this.redis, 'presence start', () => connected(this.redis, this.opts.connectTimeoutMs));
    this.startedAt = Date.now();
    // Entries left by an earlier process with this id that died unreaped: its sessions are gone.
    const stale = await this.call('presence start', () => this.reapScript(this.nodeId, '1'));
    if (stale === 1) this.opts.logger.warn({ module: 'presence', node: this.nodeId }, 'removed entries of an earlier node with this id');
    this.state = 'started';
    await this.call('presence beat', () => this.beat());
    this.timer = setInterval(() => this.tick(), this.opts.beatIntervalMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const started = this.state === 'started';
    this.stop();
    await this.beating;
    try {
      if (started) await this.call('presence close', () => this.reapScript(this.nodeId, '1'));
    } catch (error) {
      // It will drop out when its node key expires, and be reaped then.
      this.opts.logger.warn({ module: 'presence', node: this.nodeId, error: String(error) }, 'could not remove this node from presence');
    } finally {
      await closeClient(this.redis);
    }
  }

  /**
   * Stops beating and drops the connection without removing anything: what
   * a killed node leaves behind. For fault-injection tests.
   */
  crash(): void {
    this.stop();
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

  /** Runs on the one node that reaped `nodeId` (see the header). */
  onNodeDown(listener: (nodeId: string) => void): void {
    this.listeners.push(listener);
  }

  private stop(): void {
    this.state = 'closed';
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    if (this.beating || this.state !== 'started') return;
    this.beating = this.call('presence beat', () => this.beat())
      .catch((error: unknown) => {
        // An outage is logged once by the connection; anything else is worth a line per beat.
        if (!(error instanceof BrokerError && error.code === 'ERR_CLUSTER_UNAVAILABLE')) {
          this.opts.logger.error({ module: 'presence', node: this.nodeId, error: String(error) }, 'beat failed');
        }
      })
      .finally(() => {
        this.beating = undefined;
      });
  }

  private async beat(): Promise<void> {
    const info: NodeInfo = { ...this.stats, id: this.nodeId, startedAt: this.startedAt, lastBeat: Date.now() };
    const [known, ...dead] = await this.redis.sbPresenceBeat(
      this.keys.node(this.nodeId),
      this.keys.nodes(),
      this.nodeId,
      JSON.stringify(info),
      this.opts.nodeTimeoutMs,
      this.keys.prefix,
    );
    if (known === 0 && (this.localUsers.size > 0 || this.localSubs.size > 0)) {
      this.opts.logger.warn({ module: 'presence', node: this.nodeId }, 'this node had been dropped from presence; registering again');
      await this.register();
    }
    for (const id of dead) {
      if (id !== this.nodeId && this.state === 'started') await this.reap(id);
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

  private async reap(id: string): Promise<void> {
    const won = await this.redis.set(this.keys.reap(id), this.nodeId, 'PX', this.opts.reapLockMs, 'NX');
    if (won !== 'OK') return;
    if ((await this.reapScript(id, '0')) !== 1) return;
    this.opts.logger.warn({ module: 'presence', node: this.nodeId, dead: id }, 'node down; reaped its presence');
    for (const listener of this.listeners) {
      try {
        listener(id);
      } catch (error) {
        this.opts.logger.error({ module: 'presence', node: this.nodeId, dead: id, error: String(error) }, 'onNodeDown listener failed');
      }
    }
  }

  private reapScript(id: string, force: '0' | '1'): Promise<number> {
    return this.redis.sbPresenceReap(
      this.keys.node(id),
      this.keys.nodes(),
      this.keys.nodeIndex(id),
      this.keys.online(),
      this.keys.reap(id),
      id,
      this.keys.prefix,
      force,
    );
  }

  private call<T>(what: string, call: () => Promise<T>): Promise<T> {
    return redisCall(this.redis, what, call);
  }
}

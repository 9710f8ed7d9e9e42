/*
 * Sessions per user across the cluster (MAX_CONNECTIONS_PER_USER), in Redis:
 *
 *   {u:<user>}:sessions   HASH  `<node id>!<incarnation>` → sessions of the
 *                               user on that node (redis-keys.ts), in the
 *                               user's slot.
 *
 * Each node writes only its own field, always the count it holds locally
 * (an absolute value, not an increment): commands leave one connection in
 * the order they were sent, so the last write is the current count, and a
 * write that failed (Redis down) is simply written again later. A CONNECT
 * is counted in one script that sums the other nodes' fields and refuses
 * past the bound (lua/user-sessions.lua); before it, the hash is listed in
 * the node's index (`{n:<id>}:index`) as `h:<key>`, so that the reaper removes a
 * dead node's fields (HDEL) with the rest of its registrations, and so does
 * the node's own leave() on a graceful stop. A node reaped while it was
 * paused writes its fields again when it rejoins.
 *
 * A dead node's sessions still count until it is reaped (NODE_TIMEOUT_MS
 * and a beat). While Redis is down a CONNECT is held to this node's count
 * only (as in memory) rather than refused: the bound is a guard against one
 * user taking a cluster's connections, not worth refusing everyone in an
 * outage.
 */
import type { Result } from 'ioredis';
import type { PresenceRegistry } from './presence.js';
import { closeClient, createRedisClient, redisCall, resolveConnectionOptions, type RedisClient, type RedisConnectionOptions, type RedisTarget } from './redis-connection.js';
import { RedisKeys } from './redis-keys.js';
import { defineScripts } from './redis-scripts.js';
import { LocalSessionCounts, type UserSessionCount } from './user-sessions.js';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    sbUserSessions(sessionsKey: string, field: string, count: number, max: number, nodeId: string): Result<number, Context>;
  }
}

/** How often counts that could not be written (Redis down) are tried again, ms. */
const RETRY_MS = 1000;

export class RedisUserSessionCount implements UserSessionCount {
  private readonly redis: RedisClient;
  private readonly keys: RedisKeys;
  private readonly opts: RedisConnectionOptions;
  private readonly local = new LocalSessionCounts();
  /** Users whose count could not be written: written again every RETRY_MS until it works. */
  private readonly unwritten = new Set<string>();
  private readonly writes = new Set<Promise<void>>();
  private retry: NodeJS.Timeout | undefined;
  private closed = false;
  private failing = false;
  /** Each user's last write: one user's writes go one after another. */
  private readonly chains = new Map<string, Promise<number>>();

  constructor(
    private readonly nodeId: string,
    target: RedisTarget,
    private readonly max: number,
    private readonly presence: PresenceRegistry & { incarnationTag(): string },
    options: Partial<RedisConnectionOptions> = {},
  ) {
    this.opts = resolveConnectionOptions(options);
    this.keys = new RedisKeys(this.opts.keyPrefix);
    this.redis = createRedisClient(target, 'command', { ...this.opts, name: 'user-sessions' });
    defineScripts(this.redis, { sbUserSessions: 'user-sessions' });
    // Reaped while paused: the reaper removed this node's fields; the sessions are still here.
    presence.onRejoined(() => {
      for (const user of this.local.users()) this.write(user);
    });
  }

  async acquire(user: string): Promise<boolean> {
    if (this.local.get(user) >= this.max) return false;
    const count = this.local.add(user, 1);
    let counted: number;
    try {
      counted = await this.call(user, count, this.max);
    } catch (error) {
      // Once per outage: every CONNECT of an outage fails alike.
      if (!this.failing) this.opts.logger.warn({ module: 'user-sessions', node: this.nodeId, user, error: String(error) }, 'could not count sessions in Redis; counting on this node only until it answers');
      this.failing = true;
      this.later(user);
      return true;
    }
    this.failing = false;
    if (counted === 1) return true;
    this.local.add(user, -1);
    // A session counted meanwhile wrote a count that included this refused one.
    this.write(user);
    return false;
  }

  release(user: string): void {
    this.local.add(user, -1);
    this.write(user);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.retry);
    await Promise.all([...this.writes]);
    await closeClient(this.redis);
  }

  /** Writes this node's current count of `user`, unchecked; on failure, again later. */
  private write(user: string): void {
    if (this.closed) return;
    this.unwritten.delete(user);
    const write = this.call(user, this.local.get(user), 0).then(
      () => undefined,
      () => this.later(user),
    );
    this.writes.add(write);
    void write.finally(() => this.writes.delete(write));
  }

  private later(user: string): void {
    if (this.closed) return;
    this.unwritten.add(user);
    this.retry ??= setInterval(() => {
      const users = [...this.unwritten];
      if (users.length === 0) {
        clearInterval(this.retry);
        this.retry = undefined;
      }
      for (const user of users) this.write(user);
    }, RETRY_MS);
    this.retry.unref();
  }

  /**
   * Lists the hash in the node's index (node slot) first, so a reaper can
   * undo it, then counts (user slot). Two steps, so one user's writes are
   * chained: the last count written is the last count taken.
   */
  private call(user: string, count: number, max: number): Promise<number> {
    const key = this.keys.userSessions(user);
    const previous = this.chains.get(user) ?? Promise.resolve();
    const next = previous.then(
      () => this.write1(key, count, max),
      () => this.write1(key, count, max),
    );
    this.chains.set(user, next);
    void next.then(
      () => this.chains.get(user) === next && this.chains.delete(user),
      () => this.chains.get(user) === next && this.chains.delete(user),
    );
    return next;
  }

  private write1(key: string, count: number, max: number): Promise<number> {
    return redisCall(this.redis, 'count user sessions', async () => {
      if (count > 0) await this.redis.sadd(this.keys.nodeIndex(this.nodeId), `h:${key}`);
      const counted = await this.redis.sbUserSessions(key, this.presence.incarnationTag(), count, max, this.nodeId);
      if (count === 0) await this.redis.srem(this.keys.nodeIndex(this.nodeId), `h:${key}`);
      return counted;
    });
  }

}

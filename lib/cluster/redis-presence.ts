/*
 * Presence in Redis: which nodes are alive, which hold which users, which
 * hold a user's subscription to a user destination. Keys: redis-keys.ts.
 *
 *   {n:<id>}:node            STRING  JSON NodeInfo, PX nodeTimeoutMs: the
 *                                    node is live exactly while it exists.
 *   {n:<id>}:inc             STRING  the node's incarnation k: a new one on
 *                                    start and after being reaped.
 *   {n:<id>}:index           SET     what the node registered: `u:<user>`,
 *                                    `k:<subs key>`, `h:<sessions key>`
 *                                    (redis-user-sessions.ts), so anyone can
 *                                    undo it.
 *   {u:<user>}:nodes         HASH    node id → k, nodes holding the user.
 *   {u:<user>}:subs:<dest>   HASH    node id → k, nodes holding a
 *                                    subscription of the user to <dest>.
 *   {g}:nodes                ZSET    node id → last beat (Redis time): the
 *                                    reaper's index.
 *   {g}:online               HASH    user → nodes holding the user; HLEN is
 *                                    the online count.
 *
 * Why a hash for the online count, not seed 000's bitmap (SETBIT/BITCOUNT):
 * a bitmap needs dense integer user ids, and ours are strings; a HyperLogLog
 * counts strings but can never remove one. The hash counts exactly, removes,
 * and lists (`onlineUsers`).
 *
 * Slots: each step is one script in one slot (lua/presence-*.lua); a
 * transition touches the node's slot (index first, so that a crash leaves
 * nothing a reaper cannot undo), then the user's, then the online count in
 * {g} (not on the message path; two nodes changing one user at the same
 * instant may leave it one transition stale). Members carry the incarnation
 * that recorded them, so undoing a reaped incarnation never undoes what the
 * node recorded since it came back.
 *
 * Beats: every `beatIntervalMs` the node refreshes its key (node slot) and
 * its score in {g}:nodes, and reads back every node's last beat and the
 * recovery tags. Nothing on the message path reads liveness (see
 * redis-user-router.ts). A node whose beat is older than `nodeTimeoutMs` and whose
 * key is gone is reaped by whoever wins its reap lock: in the node's slot,
 * atomically with the check that its key is still gone, its registrations,
 * stream and claims move under `!k` (presence-reap.lua); the tag `<id>!k` was
 * listed in {g}:dead-nodes before (listed first: a reaper dying half-way
 * leaves it listed, never lost); the reaper undoes the registrations; then
 * any live node recovers the tag (`onRecover`: the relay re-routes the
 * stream, the inbox the claims, the queues the in-flight lists
 * `{q:..}:inflight:<id>!k`), resumably, until nothing of it is left.
 *
 * Lookups (`nodesFor`, `nodesOf`) check each node's key, so a dead node
 * drops out of answers when its key expires, before anyone reaps it.
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
import { RedisKeys, splitNodeTag } from './redis-keys.js';
import { defineScripts } from './redis-scripts.js';

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
    sbPresenceBeatNode(nodeKey: string, incKey: string, seqKey: string, info: string, ttlMs: number): Result<[present: number, k: string, fresh: number], Context>;
    sbPresenceBeatGlobal(nodesKey: string, deadNodesKey: string, id: string): Result<[known: number, now: number, beats: string[], tags: string[]], Context>;
    sbPresenceSet(hashKey: string, id: string, k: string): Result<number, Context>;
    sbPresenceUnset(hashKey: string, id: string, k: string): Result<number, Context>;
    sbPresenceReap(...keysThenArgs: string[]): Result<[status: number, left: number], Context>;
    sbPresenceTakeRecovery(lockKey: string, deadNodesKey: string, owner: string, tag: string, ttlMs: number): Result<number, Context>;
    sbPresenceRenewLock(lockKey: string, owner: string, ttlMs: number): Result<number, Context>;
    sbPresenceFinishRecovery(lockKey: string, deadNodesKey: string, owner: string, tag: string, done: '0' | '1'): Result<number, Context>;
    sbUnlock(lockKey: string, owner: string): Result<number, Context>;
    sbRelayPartMove(stream: string, streamK: string, bytes: string, bytesK: string, incarnation: string, k: string): Result<number, Context>;
  }
}

const SCRIPTS = {
  sbPresenceBeatNode: 'presence-beat-node',
  sbPresenceBeatGlobal: 'presence-beat-global',
  sbPresenceSet: 'presence-set',
  sbPresenceUnset: 'presence-unset',
  sbPresenceReap: 'presence-reap',
  sbPresenceTakeRecovery: 'presence-take-recovery',
  sbPresenceRenewLock: 'presence-renew-lock',
  sbPresenceFinishRecovery: 'presence-finish-recovery',
  sbUnlock: 'unlock',
  sbRelayPartMove: 'relay-part-move',
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
  /** This node's incarnation (from its first beat; a new one after being reaped). */
  private incarnation: string | undefined;
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
    defineScripts(this.redis, SCRIPTS);
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
    const { status, tag } = await this.call('presence start', () => this.reapNode(this.nodeId, true, true));
    if (status === 1 && tag !== '') this.opts.logger.warn({ module: 'presence', node: this.nodeId, tag }, 'removed entries of an earlier node with this id');
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
      await this.call('presence leave', async () => {
        await this.reapNode(this.nodeId, true, false);
        await this.redis.zrem(this.keys.nodes(), this.nodeId);
      });
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
        const { left, tag } = await this.call('presence close', () => this.reapNode(this.nodeId, true, true));
        if (left) this.opts.logger.warn({ module: 'presence', node: this.nodeId, tag }, 'left undelivered work for recovery by another node');
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

  /** This incarnation's tag, `<id>!<k>`: the in-flight queue lists are named by it. */
  incarnationTag(): string {
    return `${this.nodeId}!${this.incarnation ?? '0'}`;
  }

  async userOnline(user: string): Promise<void> {
    this.localUsers.add(user);
    await this.call('presence userOnline', () => this.recordUser(user));
  }

  async userOffline(user: string): Promise<void> {
    this.localUsers.delete(user);
    await this.call('presence userOffline', async () => {
      await this.countUser(user, await this.redis.sbPresenceUnset(this.keys.userNodes(user), this.nodeId, this.k()));
      await this.redis.srem(this.keys.nodeIndex(this.nodeId), `u:${user}`);
    });
  }

  async subscribed(user: string, destination: string): Promise<void> {
    const key = this.keys.subs(user, destination);
    this.localSubs.set(key, { user, destination });
    await this.call('presence subscribed', () => this.recordSub(key));
  }

  async unsubscribed(user: string, destination: string): Promise<void> {
    const key = this.keys.subs(user, destination);
    this.localSubs.delete(key);
    await this.call('presence unsubscribed', async () => {
      await this.redis.sbPresenceUnset(key, this.nodeId, this.k());
      await this.redis.srem(this.keys.nodeIndex(this.nodeId), `k:${key}`);
    });
  }

  async nodesFor(user: string, destination: string): Promise<string[]> {
    return this.call('presence nodesFor', () => this.live(this.keys.subs(user, destination)));
  }

  async nodesOf(user: string): Promise<string[]> {
    return this.call('presence nodesOf', () => this.live(this.keys.userNodes(user)));
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
      // One GET per node: their keys are in as many slots.
      const values = await Promise.all(ids.map((id) => this.redis.get(this.keys.node(id))));
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

  private k(): string {
    return this.incarnation ?? '0';
  }

  /** The live members of a user's hash of nodes (each node's key checked: they are in as many slots). */
  private async live(hashKey: string): Promise<string[]> {
    const ids = await this.redis.hkeys(hashKey);
    const alive = await Promise.all(ids.map((id) => this.redis.exists(this.keys.node(id))));
    return ids.filter((_, i) => alive[i] === 1).sort();
  }

  /** Index first (node slot), then the user's hash: a crash in between leaves nothing a reaper cannot undo. */
  private async recordUser(user: string): Promise<void> {
    await this.redis.sadd(this.keys.nodeIndex(this.nodeId), `u:${user}`);
    await this.countUser(user, await this.redis.sbPresenceSet(this.keys.userNodes(user), this.nodeId, this.k()));
  }

  private async recordSub(key: string): Promise<void> {
    await this.redis.sadd(this.keys.nodeIndex(this.nodeId), `k:${key}`);
    await this.redis.sbPresenceSet(key, this.nodeId, this.k());
  }

  /** The online count's entry for `user`, who is held by `nodes` nodes now. */
  private async countUser(user: string, nodes: number): Promise<void> {
    if (nodes > 0) await this.redis.hset(this.keys.online(), user, nodes);
    else await this.redis.hdel(this.keys.online(), user);
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
    const [present, k, fresh] = await this.redis.sbPresenceBeatNode(
      this.keys.node(this.nodeId),
      this.keys.incarnation(this.nodeId),
      this.keys.incarnationSeq(this.nodeId),
      JSON.stringify(info),
      this.opts.nodeTimeoutMs,
    );
    this.incarnation = String(k);
    const [, now, beats, tags] = await this.redis.sbPresenceBeatGlobal(this.keys.nodes(), this.keys.deadNodes(), this.nodeId);
    // Candidates: nodes whose last beat is older than the timeout (the reap checks their key is gone).
    const dead: string[] = [];
    for (let i = 0; i + 1 < beats.length; i += 2) {
      if (beats[i] !== this.nodeId && Number(now) - Number(beats[i + 1]) > this.opts.nodeTimeoutMs) dead.push(beats[i]!);
    }
    const first = this.lastBeatSentAt === 0;
    const afterBreak = this.continuousSince === undefined;
    this.lastBeatSentAt = sentAt;
    this.continuousSince ??= sentAt;
    this.leaseUntil = sentAt + this.opts.nodeTimeoutMs;
    if (fresh === 1 && !first) {
      // Our incarnation ended (we were reaped while away, or Redis lost its data): a new one registers everything again.
      this.opts.logger.warn({ module: 'presence', node: this.nodeId, incarnation: this.incarnation }, 'this node had been dropped from presence; registering again');
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
      if (this.state === 'started') {
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
    await Promise.all([...[...this.localUsers].map((user) => this.recordUser(user)), ...[...this.localSubs.keys()].map((key) => this.recordSub(key))]);
  }

  /** Reaps `id` if this node wins its lock and it is still gone; returns its recovery tag ('' for none). */
  private async reap(id: string): Promise<string> {
    const lock = this.keys.reap(id);
    const won = await this.redis.set(lock, this.nodeId, 'PX', this.opts.reapLockMs, 'NX');
    if (won !== 'OK') return '';
    try {
      const { status, left, tag } = await this.reapNode(id, false, true);
      if (status !== 1) return '';
      await this.redis.zrem(this.keys.nodes(), id);
      this.opts.logger.warn({ module: 'presence', node: this.nodeId, dead: id, tag }, 'node down; reaped its presence');
      return left ? tag : '';
    } finally {
      await this.redis.sbUnlock(lock, this.nodeId).catch(() => 0);
    }
  }

  /**
   * Ends node `id`'s current incarnation k in its slot (presence-reap.lua):
   * registrations, and with `handover` its stream and claims, move under
   * `!k`. The tag `<id>!k` is listed in dead-nodes first, so that a reaper
   * dying half-way leaves it listed, never lost; then the registrations are
   * undone (only those of incarnation k). Without `handover` (a node
   * leaving) the incarnation goes on: its stream and claims stay for it to
   * drain, and `close` hands over the rest.
   */
  private async reapNode(id: string, force: boolean, handover: boolean): Promise<{ status: number; left: boolean; tag: string }> {
    const expected = await this.redis.get(this.keys.incarnation(id));
    const k = expected ?? String(await this.redis.incr(this.keys.incarnationSeq(id)));
    const tag = `${id}!${k}`;
    if (handover) await this.redis.sadd(this.keys.deadNodes(), tag);
    const [status, left] = await this.redis.sbPresenceReap(
      this.keys.node(id),
      this.keys.incarnation(id),
      this.keys.nodeIndex(id),
      this.keys.nodeIndex(tag),
      this.keys.stream(id),
      this.keys.stream(tag),
      this.keys.streamBytes(id),
      this.keys.streamBytes(tag),
      this.keys.nodeClaims(id),
      this.keys.nodeClaims(tag),
      this.keys.nodeQueues(tag),
      this.keys.streamParts(id),
      this.keys.streamParts(tag),
      expected ?? '',
      force ? '1' : '0',
      handover ? '1' : '0',
    );
    let stillLeft = left;
    if (status === 1) {
      // Before the registrations go: a hand-off that lands in a partition after this is refused, as one to the stream is.
      if (handover && left === 1 && !(await this.movePartitions(tag))) {
        stillLeft = await this.redis.exists(this.keys.nodeIndex(tag), this.keys.stream(tag), this.keys.nodeClaims(tag), this.keys.nodeQueues(tag));
      }
      await this.undoRegistrations(tag);
      // Nothing to recover: the listing was for nothing. (Not reaped: the tag stays listed, and
      // the recovery drops it once it sees the incarnation is alive.)
      if (handover && stillLeft === 0) await this.redis.srem(this.keys.deadNodes(), tag);
    }
    return { status, left: status === 1 && stillLeft > 0, tag };
  }

  /**
   * Ends incarnation `tag`'s hold on each of its other stream partitions
   * (redis-keys.ts, "Stream partitions"; lua/relay-part-move.lua), whose
   * list the reap moved under `!k`: what is in them moves under `!k` too.
   * Idempotent. True when something waits in one of them (and the list is
   * kept for the recovery); false when none does (and the list is dropped).
   */
  private async movePartitions(tag: string): Promise<boolean> {
    const { node, suffix } = splitNodeTag(tag);
    const listed = await this.redis.get(this.keys.streamParts(tag));
    if (listed === null) return false;
    const k = suffix.slice(1);
    const owners = listed.split(' ').filter((owner) => owner !== node && owner !== '');
    const moved = await Promise.all(
      owners.map((owner) =>
        this.redis.sbRelayPartMove(
          this.keys.stream(owner),
          this.keys.stream(`${owner}${suffix}`),
          this.keys.streamBytes(owner),
          this.keys.streamBytes(`${owner}${suffix}`),
          this.keys.partIncarnation(owner),
          k,
        ),
      ),
    );
    if (moved.some((left) => left === 1)) return true;
    await this.redis.del(this.keys.streamParts(tag));
    return false;
  }

  /** Undoes what incarnation `tag` (`<id>!k`) registered, from its moved index; idempotent. */
  private async undoRegistrations(tag: string): Promise<void> {
    const { node: id, suffix } = splitNodeTag(tag);
    const k = suffix.slice(1);
    const index = this.keys.nodeIndex(tag);
    const entries = await this.redis.smembers(index);
    await Promise.all(
      entries.map(async (entry) => {
        const kind = entry.slice(0, 2);
        const rest = entry.slice(2);
        if (kind === 'u:') await this.countUser(rest, await this.redis.sbPresenceUnset(this.keys.userNodes(rest), id, k));
        else if (kind === 'k:') await this.redis.sbPresenceUnset(rest, id, k);
        // A hash with a field per incarnation (sessions per user, redis-user-sessions.ts); `id` alone
        // is a field of a version before incarnations.
        else if (kind === 'h:') await this.redis.hdel(rest, tag, id);
      }),
    );
    await this.redis.del(index);
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
      const { node: deadNode, suffix } = splitNodeTag(tag);
      try {
        // Listed by a reaper that found the incarnation alive after all (or died before reaping): nothing to recover.
        const current = await this.call('presence recover', () => this.redis.get(this.keys.incarnation(deadNode)));
        if (current === suffix.slice(1)) {
          await this.call('presence recover', () => this.redis.sbPresenceFinishRecovery(lock, this.keys.deadNodes(), this.nodeId, tag, '1'));
          continue;
        }
        // A reaper that died before moving the partitions leaves it here.
        await this.call('presence recover', () => this.movePartitions(tag));
        await this.call('presence recover', () => this.undoRegistrations(tag));
        for (const handler of this.recoverers) await handler(tag, deadNode);
        const left = await this.call('presence recover', () =>
          this.redis.exists(this.keys.stream(tag), this.keys.nodeClaims(tag), this.keys.nodeQueues(tag), this.keys.nodeIndex(tag), this.keys.streamParts(tag)),
        );
        if (left === 0) await this.call('presence recover', () => this.redis.del(this.keys.streamBytes(tag)));
        const done = await this.call('presence recover', () =>
          this.redis.sbPresenceFinishRecovery(lock, this.keys.deadNodes(), this.nodeId, tag, left === 0 ? '1' : '0'),
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

  private call<T>(what: string, call: () => Promise<T>): Promise<T> {
    return redisCall(this.redis, what, call);
  }
}

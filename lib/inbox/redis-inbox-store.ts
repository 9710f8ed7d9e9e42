/*
 * The offline inbox in Redis. Keys (redis-keys.ts), all of one user's in the
 * user's slot `{u:<user>}`:
 *
 *   inbox:<dest>        LIST   encoded messages (envelope-codec), oldest
 *                              first; a new message for a full one is refused
 *                              (or, drop-oldest: LTRIM to the newest
 *                              maxMessages); EXPIRE ttlSeconds after each append.
 *   inboxes             SET    the user's destinations with an inbox, for
 *                              `list`; lives as long as the longest-lived of
 *                              those inboxes; stale members dropped when read.
 *   inbox-bytes         HASH   destination → bytes of that inbox, `total` →
 *                              their sum: the user's INBOX_MAX_BYTES. Kept by
 *                              every script that moves messages in or out of
 *                              a list; an inbox that expired is taken out
 *                              when its list is next found gone, or — at the
 *                              bound, at most once a minute per user — by
 *                              reading them all. Lives as long as `inboxes`.
 *   claim:<claimId>     HASH   message id → encoded message.
 *   claim-order:<id>    LIST   the claim's message ids, oldest first.
 *   claim-meta:<id>     HASH   user, destination of the claim; for a timed
 *                              claim also its deadline, and once it ended
 *                              `ended` (expired | acked), kept
 *                              ENDED_CLAIM_RETENTION_MS to answer a late ack.
 *
 * A claim lives in its user's slot because claiming moves inbox messages
 * into it atomically; so a claim id names its user: `<owner>:<user>:<rest>`
 * (owner: the node, or `t` for a timed claim). Indexes elsewhere:
 *
 *   {n:<node>}:claims   SET    the node's claim ids, for recovering a dead
 *                              node's claims. Added to before a claim is
 *                              made, removed from after it ended: a crash
 *                              in between leaves an id pointing at nothing,
 *                              never a claim nobody can find.
 *   {g}:claim-deadlines ZSET   timed claim id → deadline. Every node sweeps
 *                              it; the claim's own deadline, by its slot's
 *                              clock, decides (lua/inbox-expire-timed.lua).
 *                              A timed claim belongs to no node, so it comes
 *                              back even when its node died.
 *
 * Every operation that moves messages is one script in the user's slot,
 * which is what the seeds' unread list lacked (pull, then delete: a message
 * arriving in between was lost):
 * - Route-or-store (store when nobody is subscribed) is the user router's
 *   decision script (lua/route.lua), which appends with the same `append`.
 * - `take` and `claim` read and cut the list head in one step: a message is
 *   handed out once, and one appended meanwhile stays for the next take.
 * - `release` (and `releaseNodeClaims`) puts the unacked messages of a claim
 *   back at the head of its inbox, in their order; `returnToHead` does the
 *   same for given messages (NACKed, unacked), taking them out of their
 *   claim in the same step.
 * - Timed claims expire in Lua against Redis' clock (`TIME`), on the sweep
 *   and on an ack past the deadline, so nodes' clocks need not agree.
 */
import type { Result } from 'ioredis';
import { BrokerError } from '../core/errors.js';
import type { BrokerMessage } from '../core/message.js';
import { decodeMessage, encodeMessage } from '../cluster/envelope-codec.js';
import {
  closeClient,
  createRedisClient,
  redisCall,
  resolveConnectionOptions,
  type RedisClient,
  type RedisConnectionOptions,
  type RedisTarget,
} from '../cluster/redis-connection.js';
import { claimUser, RedisKeys } from '../cluster/redis-keys.js';
import { durableWrite, NO_WAIT, type Durability } from '../cluster/redis-durability.js';
import { defineScripts } from '../cluster/redis-scripts.js';
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

export interface RedisInboxOptions extends RedisConnectionOptions, InboxLimits, Durability {
  /** This node's id, when `close()` should release the claims the node still holds. */
  nodeId: string | undefined;
  /** How often this store returns expired timed claims to their inboxes, ms (0: never). @default 1000 */
  claimSweepMs: number;
}

/** What the Lua `append` returns when it refused a new message for a full inbox (nothing written): lua/lib.lua INBOX_REFUSED. */
export const INBOX_REFUSED = -1;
/** What it returns when the message would take the user past INBOX_MAX_BYTES (nothing written): lua/lib.lua INBOX_REFUSED_BYTES. */
export const INBOX_REFUSED_BYTES = -3;
/** Timed claims one sweep looks at, at most, per round. */
const SWEEP_BATCH = 100;

type ClaimKeys = [claim: string, order: string, meta: string];

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
    ): Result<number, Context>;
    sbInboxPrepend(inboxKey: string, inboxesKey: string, bytesKey: string, ttlSeconds: number, destination: string, ...payloads: Buffer[]): Result<number, Context>;
    sbInboxReturnToHead(
      inboxKey: string,
      inboxesKey: string,
      bytesKey: string,
      claimKey: string,
      orderKey: string,
      metaKey: string,
      ttlSeconds: number,
      destination: string,
      claimId: string,
      count: number,
      ...idsThenPayloads: Array<string | Buffer>
    ): Result<[returned: number, emptied: number], Context>;
    sbInboxTakeBuffer(inboxKey: string, inboxesKey: string, bytesKey: string, count: number, destination: string): Result<Buffer[], Context>;
    sbInboxList(inboxesKey: string): Result<Array<string | number>, Context>;
    sbInboxClaimBuffer(inboxKey: string, inboxesKey: string, bytesKey: string, claimKey: string, orderKey: string, metaKey: string, count: number, user: string, destination: string, claimId: string): Result<Buffer[], Context>;
    sbInboxKeepClaimed(claimKey: string, orderKey: string, metaKey: string, user: string, destination: string, claimId: string, ...payloads: Buffer[]): Result<number, Context>;
    sbInboxReadClaimBuffer(claimKey: string, orderKey: string, metaKey: string): Result<Buffer[], Context>;
    sbInboxAck(claimKey: string, orderKey: string, metaKey: string, ...ids: string[]): Result<number, Context>;
    sbInboxRelease(claimKey: string, orderKey: string, metaKey: string, ttlSeconds: number): Result<number, Context>;
    sbInboxClaimTimedBuffer(
      inboxKey: string,
      inboxesKey: string,
      bytesKey: string,
      claimKey: string,
      orderKey: string,
      metaKey: string,
      count: number,
      user: string,
      destination: string,
      claimId: string,
      timeoutMs: number,
    ): Result<Buffer[], Context>;
    sbInboxAckTimed(claimKey: string, orderKey: string, metaKey: string, user: string, ttlSeconds: number, retentionMs: number, all: number, ...ids: string[]): Result<[number, number, number], Context>;
    sbInboxExpireTimed(claimKey: string, orderKey: string, metaKey: string, ttlSeconds: number, retentionMs: number): Result<[state: number, deadline: number], Context>;
  }
}

const SCRIPTS = {
  sbInboxAppend: 'inbox-append',
  sbInboxPrepend: 'inbox-prepend',
  sbInboxReturnToHead: 'inbox-return-to-head',
  sbInboxTake: 'inbox-take',
  sbInboxList: 'inbox-list',
  sbInboxClaim: 'inbox-claim',
  sbInboxReadClaim: 'inbox-read-claim',
  sbInboxKeepClaimed: 'inbox-keep-claimed',
  sbInboxAck: 'inbox-ack',
  sbInboxRelease: 'inbox-release',
  sbInboxClaimTimed: 'inbox-claim-timed',
  sbInboxAckTimed: 'inbox-ack-timed',
  sbInboxExpireTimed: 'inbox-expire-timed',
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
      ...NO_WAIT,
      nodeId: undefined,
      claimSweepMs: 1000,
      ...options,
      ...resolveConnectionOptions(options),
    };
    this.keys = new RedisKeys(this.opts.keyPrefix);
    this.redis = createRedisClient(target, 'command', { ...this.opts, name: 'inbox' });
    defineScripts(this.redis, SCRIPTS);
    if (this.opts.claimSweepMs > 0) {
      this.sweeper = setInterval(() => void this.sweepTimedClaims().catch((error: unknown) => this.sweepFailed(error)), this.opts.claimSweepMs);
      this.sweeper.unref();
    }
  }

  async append(user: string, destination: string, message: BrokerMessage, options: StoreOptions = {}): Promise<void> {
    const args = [
      ...this.inboxKeys(user, destination),
      encodeMessage(message),
      this.opts.maxMessages,
      this.opts.ttlSeconds,
      destination,
      this.opts.overflow,
      options.accepted ? 1 : 0,
      this.opts.maxBytes,
    ] as const;
    // A RECEIPT (or an HTTP 2xx) answers for it: durable across a failover when replicas are asked for.
    const result = await durableWrite(
      this.redis,
      this.opts,
      'inbox append',
      () => this.redis.sbInboxAppend(...args),
      (pipeline) => pipeline.sbInboxAppend(...args),
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
    // Without a claim the claim keys are never touched; any key of the user's slot will do.
    const claimKeys: ClaimKeys = claimId === undefined ? [this.keys.inboxes(user), this.keys.inboxes(user), this.keys.inboxes(user)] : this.claimKeys(claimId, user);
    const [, emptied] = await this.call('inbox returnToHead', () =>
      this.redis.sbInboxReturnToHead(
        ...this.inboxKeys(user, destination),
        ...claimKeys,
        this.opts.ttlSeconds,
        destination,
        claimId ?? '',
        messages.length,
        ...messages.map((m) => m.id),
        ...messages.map(encodeMessage),
      ),
    );
    if (emptied === 1 && claimId !== undefined) await this.forgetClaim(claimId);
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
    const flat = await this.call('inbox list', () => this.redis.sbInboxList(this.keys.inboxes(user)));
    const out: Array<{ destination: string; depth: number }> = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ destination: String(flat[i]), depth: Number(flat[i + 1]) });
    return out.sort((a, b) => a.destination.localeCompare(b.destination));
  }

  /** `claimId` is `<nodeId>:<user>:<anything>`: the claim is the node's until acked or released. */
  async claim(claimId: string, user: string, destination: string, max = Infinity): Promise<BrokerMessage[]> {
    if (max <= 0) return [];
    const keys = this.claimKeys(claimId, user);
    // Indexed first: a crash after it leaves an id pointing at nothing, never a claim nobody can find.
    await this.call('inbox claim', () => this.redis.sadd(this.keys.nodeClaims(claimOwner(claimId)), claimId));
    const items = await this.call('inbox claim', () =>
      this.redis.sbInboxClaimBuffer(...this.inboxKeys(user, destination), ...keys, count(max), user, destination, claimId),
    );
    return items.map(decodeMessage);
  }

  async keepClaimed(claimId: string, user: string, destination: string, messages: readonly BrokerMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const keys = this.claimKeys(claimId, user);
    await this.call('inbox keepClaimed', () => this.redis.sadd(this.keys.nodeClaims(claimOwner(claimId)), claimId));
    await this.call('inbox keepClaimed', () => this.redis.sbInboxKeepClaimed(...keys, user, destination, claimId, ...messages.map(encodeMessage)));
  }

  async ack(claimId: string, messageIds: readonly string[]): Promise<void> {
    // A claim id that names no user names no claim: nothing to ack.
    if (messageIds.length === 0 || safeClaimUser(claimId) === undefined) return;
    const left = await this.call('inbox ack', () => this.redis.sbInboxAck(...this.claimKeys(claimId), ...messageIds));
    if (left === 0) await this.forgetClaim(claimId);
  }

  async release(claimId: string): Promise<void> {
    if (safeClaimUser(claimId) === undefined) return;
    await this.call('inbox release', () => this.redis.sbInboxRelease(...this.claimKeys(claimId), this.opts.ttlSeconds));
    await this.forgetClaim(claimId);
  }

  /**
   * Releases every claim of `nodeOrTag` (this node on close): its unacked
   * messages go back to the head of their inboxes. Returns how many.
   */
  async releaseNodeClaims(nodeOrTag: string): Promise<number> {
    const index = this.keys.nodeClaims(nodeOrTag);
    const claimIds = await this.call('inbox releaseNodeClaims', () => this.redis.smembers(index));
    let released = 0;
    for (const claimId of claimIds) {
      released += await this.call('inbox releaseNodeClaims', () => this.redis.sbInboxRelease(...this.claimKeys(claimId), this.opts.ttlSeconds));
      await this.call('inbox releaseNodeClaims', () => this.redis.srem(index, claimId));
    }
    return released;
  }

  async claimTimed(user: string, destination: string, max: number, visibilityTimeoutMs: number): Promise<TimedClaim> {
    const claimId = `${TIMED_CLAIM_PREFIX}${user}:${randomUUID()}`;
    const deadlines = this.keys.claimDeadlines();
    // Listed first, at this node's idea of the deadline: a crash after it leaves an entry the sweep drops.
    await this.call('inbox claimTimed', () => this.redis.zadd(deadlines, Date.now() + visibilityTimeoutMs, claimId));
    const [deadline, ...items] = await this.call('inbox claimTimed', () =>
      this.redis.sbInboxClaimTimedBuffer(
        ...this.inboxKeys(user, destination),
        ...this.claimKeys(claimId, user),
        count(max),
        user,
        destination,
        claimId,
        visibilityTimeoutMs,
      ),
    );
    if (deadline === undefined) {
      await this.call('inbox claimTimed', () => this.redis.zrem(deadlines, claimId));
      return { claimId: null, messages: [], expiresAt: null };
    }
    const expiresAt = Number(deadline.toString());
    await this.call('inbox claimTimed', () => this.redis.zadd(deadlines, 'XX', expiresAt, claimId));
    return { claimId, messages: items.map(decodeMessage), expiresAt };
  }

  async ackTimed(user: string, claimId: string, messageIds?: readonly string[]): Promise<TimedClaimAck | undefined> {
    // A claim id names its user: anything else is unknown (or another user's).
    if (!claimId.startsWith(TIMED_CLAIM_PREFIX) || safeClaimUser(claimId) !== user) return undefined;
    const [acked, left, state] = await this.call('inbox ackTimed', () =>
      this.redis.sbInboxAckTimed(
        ...this.claimKeys(claimId),
        user,
        this.opts.ttlSeconds,
        ENDED_CLAIM_RETENTION_MS,
        messageIds === undefined ? 1 : 0,
        ...(messageIds ?? []),
      ),
    );
    if (state === -1) return undefined;
    if (state !== 0 || left === 0) await this.call('inbox ackTimed', () => this.redis.zrem(this.keys.claimDeadlines(), claimId));
    return { acked, left, expired: state === 1 };
  }

  /** Returns the timed claims whose deadline passed to their inboxes (every node runs it, on a timer). Returns how many. */
  async sweepTimedClaims(): Promise<number> {
    const deadlines = this.keys.claimDeadlines();
    let total = 0;
    for (;;) {
      const due = await this.call('inbox sweepTimedClaims', () => this.redis.zrangebyscore(deadlines, '-inf', Date.now(), 'LIMIT', 0, SWEEP_BATCH));
      let moved = 0;
      for (const claimId of due) {
        const user = safeClaimUser(claimId);
        if (user === undefined) {
          await this.call('inbox sweepTimedClaims', () => this.redis.zrem(deadlines, claimId));
          continue;
        }
        const [state, deadline] = await this.call('inbox sweepTimedClaims', () =>
          this.redis.sbInboxExpireTimed(...this.claimKeys(claimId, user), this.opts.ttlSeconds, ENDED_CLAIM_RETENTION_MS),
        );
        // Not due by the claim's own clock yet: listed again at its deadline.
        if (state === 0) await this.call('inbox sweepTimedClaims', () => this.redis.zadd(deadlines, 'XX', deadline, claimId));
        else await this.call('inbox sweepTimedClaims', () => this.redis.zrem(deadlines, claimId));
        if (state === 1) total++;
        if (state !== 0) moved++;
      }
      if (due.length < SWEEP_BATCH || moved === 0) return total;
    }
  }

  /**
   * Hands the unacked messages of every claim of `nodeOrTag` (a dead node's
   * recovery tag) to `handler` — the broker re-routes them, so that a
   * subscriber already back on another node gets them at once — and forgets
   * each claim once handed over. Resumable: a claim handed over and not yet
   * forgotten is handed over again (same message ids). Returns how many.
   */
  async recoverNodeClaims(nodeOrTag: string, handler: (user: string, destination: string, messages: BrokerMessage[]) => Promise<void>): Promise<number> {
    const index = this.keys.nodeClaims(nodeOrTag);
    const claimIds = await this.call('inbox recoverNodeClaims', () => this.redis.smembers(index));
    let count = 0;
    for (const claimId of claimIds) {
      const keys = this.claimKeys(claimId);
      const [user, destination, ...items] = await this.call('inbox recoverNodeClaims', () => this.redis.sbInboxReadClaimBuffer(...keys));
      if (user !== undefined && destination !== undefined && items.length > 0) {
        await handler(user.toString(), destination.toString(), items.map(decodeMessage));
        count += items.length;
      }
      await this.call('inbox recoverNodeClaims', () => this.redis.del(...keys));
      await this.call('inbox recoverNodeClaims', () => this.redis.srem(index, claimId));
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

  /** An inbox's list, the user's set of inboxes and the user's inbox bytes: the scripts' first three keys. */
  private inboxKeys(user: string, destination: string): [inbox: string, inboxes: string, bytes: string] {
    return [this.keys.inbox(user, destination), this.keys.inboxes(user), this.keys.inboxBytes(user)];
  }

  /** A claim's hash, order list and meta (in its user's slot); `user`, when given, must be the claim id's. */
  private claimKeys(claimId: string, user?: string): ClaimKeys {
    if (user !== undefined && claimUser(claimId) !== user) {
      throw new BrokerError('ERR_INTERNAL', `claim ${claimId} does not name user ${user} (claim ids are <owner>:<user>:<rest>)`);
    }
    return [this.keys.claim(claimId), this.keys.claimOrder(claimId), this.keys.claimMeta(claimId)];
  }

  /** Drops an ended claim from its node's index. */
  private async forgetClaim(claimId: string): Promise<void> {
    if (claimId.startsWith(TIMED_CLAIM_PREFIX)) return;
    await this.call('inbox forget claim', () => this.redis.srem(this.keys.nodeClaims(claimOwner(claimId)), claimId));
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

/** The node owning a claim: the part of its id before the first ':'. */
function claimOwner(claimId: string): string {
  const colon = claimId.indexOf(':');
  return colon < 0 ? claimId : claimId.slice(0, colon);
}

function safeClaimUser(claimId: string): string | undefined {
  try {
    return claimUser(claimId);
  } catch {
    return undefined;
  }
}

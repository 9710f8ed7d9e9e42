/*
 * User routing in Redis: route-or-store, in two steps that each stay in one
 * slot (redis-keys.ts), batched per tick:
 *
 * 1. The decision (lua/route.lua), atomically in the user's slot: the nodes
 *    holding a subscription of the user to the destination (less `exclude`)
 *    are the targets;
 *    this node among them → `local`; none → the message is appended to the
 *    inbox (capped per inbox, and per user in bytes) in the same step, so a subscription registered before it is never
 *    missed. One call per slot per batch (on one Redis: one call per batch).
 * 2. The hand-off (lua/relay-handoff.lua), in each target node's slot: one
 *    stream entry per target node per tick (a lone envelope as the field
 *    `e`, several packed as `b`: envelope-codec.ts), written only while that
 *    node's stream exists and within its byte bound. A node whose stream is
 *    gone (reaped, departed since the decision) is left out and the decision
 *    taken again without it — it may store the message after all.
 *
 * On one Redis the two are one call whenever they can be: every key is in
 * reach, so the decision is given, as declared keys, the streams of the
 * nodes recent messages went to (candidates) and hands a message off itself
 * when all its targets are among them — one script call per message at low
 * rates, where nothing batches. A node joins the candidates only once every
 * call made before it joins has had its hand-offs issued, so a message
 * handed off in a script never overtakes an earlier one handed off after
 * its reply. On a cluster those streams are in other slots: always two
 * steps.
 *
 * No liveness is read on this path: a node that died but is not reaped yet
 * still has its stream, and what lands there is recovered with it; a view
 * of live nodes (from beats) would be stale exactly when a paused node comes
 * back, and would store its user's messages in an inbox it has already
 * taken back.
 *
 * The RECEIPT waits for both: a node that dies between them has answered
 * nothing, so the sender's message was never promised (the client sends it
 * again); once handed off, the target's stream is recovered like any other
 * if that node dies (redis-presence.ts). A message for several nodes whose
 * hand-off is refused by one (ERR_RELAY_FULL) may have reached the others: it
 * is refused to the sender all the same, and a resend may duplicate it there
 * (same message-id).
 *
 * Stream partitions (a Redis Cluster, redis-keys.ts): a target node's
 * stream may be cut into partitions; a message goes to the one of its
 * user's slot bucket, so a user's messages stay in one stream per node. The
 * node records its partitions in its slot; this router reads that list the
 * first time it hands off to the node. A hand-off that finds a partition
 * gone with a list read earlier reads the list again and hands off once
 * more, in the next tick's turn (the node may have come back with other
 * partitions; messages in flight across such a restart may then be
 * reordered); only a list just read that still misses means the node is
 * gone.
 *
 * Order: one sender's batches are decided in call order (a user's messages
 * share a slot, so one connection), and each tick's hand-offs are issued
 * once all its decisions are back and after the previous tick's: one entry
 * per target node per tick, whatever number of slots the tick's users are
 * in, and a user's messages keep their order per target node.
 */
import type { Redis, Result } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import { BrokerError } from '../core/errors.js';
import { DEFAULT_INBOX_LIMITS, inboxBytesFullError, inboxFullError, type InboxOverflow } from '../inbox/inbox-store.js';
import { INBOX_REFUSED, INBOX_REFUSED_BYTES } from '../inbox/redis-inbox-store.js';
import { encodeEnvelopeBatch, envelopeSize, writeEnvelope } from './envelope-codec.js';
import { createRedisClient, closeClient, resolveConnectionOptions, type RedisClient, type RedisConnectionOptions, type RedisTarget } from './redis-connection.js';
import { RedisKeys, slotBucket } from './redis-keys.js';
import { BATCH_FIELD, DEFAULT_RELAY_OPTIONS, ENTRY_FIELD, isClusterClient, relayFull } from './redis-relay.js';
import type { RelayEnvelope } from './relay.js';
import { durableLeanWrite, durableWrite, NO_WAIT, type Durability } from './redis-durability.js';
import { defineScripts, script, scriptSha } from './redis-scripts.js';
import { RespConnection, type RespReply } from './resp-connection.js';
import type { RouteOutcome, UserRoute, UserRouter, UserRouteResult } from './user-router.js';

export interface RedisUserRouterOptions extends RedisConnectionOptions, Durability {
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
    sbRoute(numberOfKeys: number, ...keysThenArgs: Array<string | number | Buffer>): Result<[string[][], number[]], Context>;
    sbRelayHandoff(streamKey: string, bytesKey: string, maxBytes: number, kept: '0' | '1', field: string, value: Buffer, push: '0' | '1'): Result<number, Context>;
  }
}

const ROUTE = script('route');
const ROUTE_SHA = scriptSha(ROUTE);
const HANDOFF = script('relay-handoff');
const HANDOFF_SHA = scriptSha(HANDOFF);
const HANDOFF_KEYS = HANDOFF.numberOfKeys!;

/** A message's bytes in a decision's heads argument besides its exclude (lua/route.lua). */
const MESSAGE_HEAD = 2 + 1 + 2;

/** The record arena's chunk (see RedisUserRouter.arena): a few ticks' records at saturation. */
const ARENA_CHUNK_BYTES = 256 * 1024;

/** Envelope bytes packed into one stream entry at most (unless one envelope alone is larger). */
export const MAX_ENTRY_BYTES = 1024 * 1024;

/** What a hand-off returns when the target's stream is full (lua/lib.lua RELAY_FULL). */
export const REFUSED_RELAY_FULL = -2;
/** No target nodes (never handed out: a result gets a list of its own). */
const NO_NODES: readonly string[] = [];
/** Streams a decision may hand off to itself at most (one Redis only). */
const MAX_CANDIDATES = 16;
/** A node no message went to for this long stops being a candidate, ms. */
const CANDIDATE_IDLE_MS = 10_000;
/** Decisions taken again for one message at most, when its targets turn out gone. */
const MAX_ROUNDS = 3;

interface Pending {
  route: UserRoute;
  /**
   * Its record — u32 length, then the user envelope (kind, user, destination, message): the
   * stream's entry, and the inbox's item after its head — at `chunk[at, end)` of the record arena.
   */
  chunk: Buffer;
  at: number;
  end: number;
  /** Told the end once (RouteOutcome): `settled` guards it, as a promise's settle would. */
  outcome: RouteOutcome;
  settled?: true;
  /** Nodes found gone at hand-off, left out of its next decision (made when the first is found). */
  gone?: Set<string>;
  round: number;
}

/** Settles a message's route once; a later settle is ignored, as a promise's would be. */
function resolve(pending: Pending, result: UserRouteResult): void {
  if (pending.settled) return;
  pending.settled = true;
  pending.outcome.routed(result);
}

function reject(pending: Pending, error: unknown): void {
  if (pending.settled) return;
  pending.settled = true;
  pending.outcome.failed(error);
}

/** The hand-offs a decision needs: per target node, the messages in order. */
type HandOffPlan = Map<string, Outcome[]>;

/** A decision call's number (in call order) and the hand-offs it needs. */
interface Decided {
  call: number;
  plan: HandOffPlan;
}

/** One message's outcome while its hand-offs are under way. */
interface Outcome {
  pending: Pending;
  local: boolean;
  remote: string[];
  /** Hand-offs not answered yet. */
  waiting: number;
  /** Target nodes whose stream was gone. */
  missed: string[];
  full: boolean;
}

export class RedisUserRouter implements UserRouter {
  private readonly redis: RedisClient;
  /**
   * Off a cluster, the decision and hand-off calls go on this lean
   * connection, which follows `redis` (resp-connection.ts: ioredis' machinery
   * per call was the sending node's largest cost at moderate rates). All of
   * them: one connection keeps the order the hand-offs need. On a cluster
   * every call goes through `redis`, which routes by slot.
   */
  private readonly lean: RespConnection | undefined;
  private readonly keys: RedisKeys;
  private readonly opts: RedisUserRouterOptions;
  private readonly cluster: boolean;
  /**
   * Whether stream entries are also published for push-fed readers
   * (redis-push-feed.ts): on one Redis, always — a reader may be fed either
   * way; on a cluster never (PUBLISH goes to every server there), and its
   * readers read.
   */
  private readonly push: '0' | '1';
  /** Messages this router's script dropped from full inboxes (drop-oldest), for stompbox_inbox_dropped_total. */
  dropped = 0;
  /** Messages handed off by the decision itself (one call), and by a hand-off call of their own. */
  handedInDecision = 0;
  handedApart = 0;
  private pending: Pending[] = [];
  /**
   * Where routeTo encodes each message's record, back to back: a tick's records usually lie in
   * one chunk in batch order, so a decision call's `bodies` is a slice of it — no Buffer of its
   * own per envelope, no copy (each was ~1–2 % of the sending node at saturation).
   */
  private arena = Buffer.allocUnsafeSlow(ARENA_CHUNK_BYTES);
  private arenaUsed = 0;
  private scheduled = false;
  /** The last tick's hand-offs, issued (see `issue`). */
  private issued: Promise<void> = Promise.resolve();
  /** Decision calls made so far, and the last of them whose hand-offs were issued (calls are issued in order). */
  private calls = 0;
  private issuedCalls = 0;
  /** Nodes recent messages went to, and when (ms). */
  private readonly seen = new Map<string, number>();
  /** The streams a decision may hand off to itself (one Redis only; see lua/route.lua). */
  private candidateSet = new Set<string>();
  /** Nodes to become candidates once every call made before they were seen has had its hand-offs issued. */
  private readonly joining = new Map<string, number>();
  /** On a cluster: target nodes' stream owners (their partitions), the b-th for slot bucket b. */
  private readonly owners = new Map<string, string[]>();

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
      ...NO_WAIT,
      ...options,
      ...resolveConnectionOptions(options),
    };
    this.keys = new RedisKeys(this.opts.keyPrefix);
    // Batched here already; ioredis auto-pipelining would hold a batch back while the previous one is in flight.
    this.redis = createRedisClient(target, 'command', { ...this.opts, name: 'router', autoPipelining: false });
    this.cluster = isClusterClient(this.redis);
    this.push = this.cluster ? '0' : '1';
    defineScripts(this.redis, { sbRoute: 'route', sbRelayHandoff: 'relay-handoff' });
    this.lean = this.cluster
      ? undefined
      : new RespConnection(this.redis as Redis, { ...this.opts, name: 'router', scripts: [ROUTE.lua, HANDOFF.lua] });
  }

  route(route: UserRoute): Promise<UserRouteResult> {
    return new Promise<UserRouteResult>((resolve, reject) => this.routeTo(route, { routed: resolve, failed: reject }));
  }

  routeTo(route: UserRoute, outcome: RouteOutcome): void {
    const { user, destination, message } = route;
    const envelope: RelayEnvelope = { kind: 'user', user, destination, message };
    const size = envelopeSize(envelope);
    let chunk = this.arena;
    let at = this.arenaUsed;
    if (at + 4 + size > chunk.length) {
      // A fresh chunk, never a reused one: calls and hand-offs still out may hold slices of the last.
      chunk = this.arena = Buffer.allocUnsafeSlow(Math.max(ARENA_CHUNK_BYTES, 4 + size));
      at = 0;
    }
    // Throws (a field past its bound) before anything is queued, the arena's space not taken.
    writeEnvelope(chunk, at + 4, envelope);
    chunk.writeUInt32BE(size, at);
    this.arenaUsed = at + 4 + size;
    this.enqueue({ route, chunk, at, end: at + 4 + size, outcome, round: 0 });
  }

  async close(): Promise<void> {
    await this.lean?.close();
    await closeClient(this.redis);
  }

  private enqueue(pending: Pending): void {
    this.pending.push(pending);
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    // On a cluster a script call stays in one slot: one call per users' slot.
    const groups = this.cluster ? groupBy(batch, (p) => calculateSlot(this.keys.inbox(p.route.user, ''))) : [batch];
    const plans: Array<Promise<Decided>> = [];
    for (const group of groups) {
      for (let i = 0; i < group.length; i += this.opts.maxBatch) plans.push(this.decide(group.slice(i, i + this.opts.maxBatch)));
    }
    this.issue(plans);
  }

  /**
   * Issues the hand-offs of one tick's decisions — one stream entry per
   * target node for the whole tick, whatever number of slots its users are
   * in — once every decision of the tick is back, and after the previous
   * tick's hand-offs were issued: a user's messages keep their order.
   */
  private issue(plans: Array<Promise<Decided>>): void {
    const decided = Promise.all(plans);
    this.issued = this.issued.then(async () => {
      const byNode: HandOffPlan = new Map();
      const all = await decided;
      for (const { plan } of all) {
        for (const [node, outcomes] of plan) {
          const list = byNode.get(node);
          if (list) list.push(...outcomes);
          else byNode.set(node, [...outcomes]);
        }
      }
      const fresh = this.cluster ? await this.learnOwners(byNode) : undefined;
      for (const [node, outcomes] of byNode) this.handOff(node, outcomes, fresh?.has(node) === true);
      for (const { call } of all) this.issuedCalls = Math.max(this.issuedCalls, call);
    });
    // Nothing above throws (each decision settles its own failures); were it to, later ticks must still go out.
    this.issued = this.issued.catch((error: unknown) => this.opts.logger.error({ module: 'router', error: String(error) }, 'issuing hand-offs failed'));
  }

  /**
   * The candidates for the next call. A node joins them only once every call
   * made before it joins has had its hand-offs issued: such a call may
   * return a hand-off to it for the caller, which a later message written in
   * a script must not overtake. (A call never returns a hand-off to one of its
   * own candidates: a candidate without a stream is gone for it.) Leaving is
   * safe at any time.
   */
  private get candidates(): string[] {
    if (this.cluster) return [];
    const now = Date.now();
    for (const [node, at] of this.seen) {
      if (now - at > CANDIDATE_IDLE_MS) {
        this.seen.delete(node);
        this.candidateSet.delete(node);
        this.joining.delete(node);
      }
    }
    for (const [node, after] of this.joining) {
      if (after <= this.issuedCalls && this.candidateSet.size < MAX_CANDIDATES) {
        this.candidateSet.add(node);
        this.joining.delete(node);
      }
    }
    return [...this.candidateSet];
  }

  /**
   * Decides `batch` (one slot's messages on a cluster): settles those that
   * need no hand-off and returns the hand-offs the rest need. `extraGone`:
   * nodes to leave out for every message of this call (a retry's, found gone
   * at hand-off). Never rejects: a failed call rejects its messages.
   */
  private async decide(batch: Pending[], extraGone: readonly string[] = []): Promise<Decided> {
    const keys: string[] = [];
    const candidates = this.candidates;
    const args: Array<string | number | Buffer> = [
      this.nodeId,
      this.opts.inboxMaxMessages,
      this.opts.inboxTtlSeconds,
      this.opts.inboxOverflow,
      this.opts.inboxMaxBytes,
      this.opts.maxStreamBytes,
      MAX_ENTRY_BYTES,
      extraGone.length,
      ...extraGone,
      candidates.length,
      ...candidates,
    ];
    // Each subscription's keys once, however many messages go to it; the messages in two arguments.
    const subscriptions = new Map<string, Map<string, number>>();
    const indexes: number[] = [];
    let headBytes = 0;
    let bodyBytes = 0;
    // Whether the batch's records lie back to back in one chunk (then `bodies` is that slice).
    let contiguous = true;
    let previous: Pending | undefined;
    for (const pending of batch) {
      const route = pending.route;
      let byDestination = subscriptions.get(route.user);
      if (byDestination === undefined) subscriptions.set(route.user, (byDestination = new Map()));
      let index = byDestination.get(route.destination);
      if (index === undefined) {
        index = keys.length / 4;
        byDestination.set(route.destination, index);
        keys.push(this.keys.subs(route.user, route.destination), this.keys.inbox(route.user, route.destination), this.keys.inboxes(route.user), this.keys.inboxBytes(route.user));
      }
      indexes.push(index);
      headBytes += MESSAGE_HEAD + (route.exclude === undefined ? 0 : Buffer.byteLength(route.exclude));
      bodyBytes += pending.end - pending.at;
      if (previous !== undefined && (previous.chunk !== pending.chunk || previous.end !== pending.at)) contiguous = false;
      previous = pending;
    }
    // Heads and bodies apart: the bodies are a stream entry's 'b' field as they stand (lua/route.lua).
    const heads = Buffer.allocUnsafe(headBytes);
    const first = batch[0]!;
    const bodies = contiguous ? first.chunk.subarray(first.at, first.at + bodyBytes) : Buffer.allocUnsafe(bodyBytes);
    let at = 0;
    let bodyAt = 0;
    for (let i = 0; i < batch.length; i++) {
      const pending = batch[i]!;
      const route = pending.route;
      at = heads.writeUInt16BE(indexes[i]!, at);
      heads[at++] = route.kept ? 1 : 0;
      const exclude = route.exclude ?? '';
      at = heads.writeUInt16BE(Buffer.byteLength(exclude), at);
      at += heads.write(exclude, at, 'utf8');
      if (!contiguous) bodyAt += pending.chunk.copy(bodies, bodyAt, pending.at, pending.end);
    }
    args.push(keys.length / 4, heads, bodies, this.push);
    for (const node of candidates) keys.push(this.keys.stream(node), this.keys.streamBytes(node));
    const call = ++this.calls;
    // A node still joining is not a candidate of this call either: this call may return a
    // hand-off to it, issued only after its reply, which a later call's in-script hand-off must
    // not overtake. So the node joins only once this call's hand-offs are issued too. (Bumped
    // from the call that first saw it alone, a node joined while a call made after that was
    // still out, and that call's message could arrive after the next one: 1-2 reordered
    // messages at the start of a stream in some bench runs, session 14.)
    for (const node of this.joining.keys()) this.joining.set(node, call);
    let sets: string[][];
    let codes: number[];
    try {
      [sets, codes] = this.lean
        ? routeReply(await durableLeanWrite(this.lean, this.opts, 'route user messages', ['EVALSHA', ROUTE_SHA, keys.length, ...keys, ...args], true))
        : await durableWrite(
            this.redis,
            this.opts,
            'route user messages',
            () => this.redis.sbRoute(keys.length, ...keys, ...args),
            (pipeline) => pipeline.sbRoute(keys.length, ...keys, ...args),
          );
    } catch (error) {
      for (const pending of batch) reject(pending, error);
      return { call, plan: new Map() };
    }
    let outcomes = 0;
    for (let r = 0; r < codes.length; r += 3) outcomes += codes[r]!;
    if (outcomes !== batch.length) {
      const error = new BrokerError('ERR_INTERNAL', `route user messages: ${outcomes} outcomes for ${batch.length} messages`);
      for (const pending of batch) reject(pending, error);
      return { call, plan: new Map() };
    }
    const now = Date.now();
    for (const ids of sets) {
      for (const id of ids) {
        this.seen.set(id, now);
        // A candidate once every call made so far is issued (see `candidates`).
        if (!this.candidateSet.has(id) && !this.joining.has(id)) this.joining.set(id, this.calls);
      }
    }
    // Hand-offs grouped per target node, in batch order (see header: order).
    const byNode: HandOffPlan = new Map();
    // `codes`: runs of messages with one outcome, (how many, code, stored) each.
    let run = 0;
    let left = codes[0] ?? 0;
    for (let i = 0; i < batch.length; i++, left--) {
      if (left === 0) left = codes[(run += 3)] ?? 0;
      const pending = batch[i]!;
      const code = codes[run + 1]!;
      const stored = codes[run + 2]!;
      const local = (code & 1) === 1;
      if (stored === INBOX_REFUSED || stored === INBOX_REFUSED_BYTES) {
        const { user, destination } = pending.route;
        reject(pending, stored === INBOX_REFUSED ? inboxFullError(user, destination, this.opts.inboxMaxMessages) : inboxBytesFullError(user, this.opts.inboxMaxBytes));
        continue;
      }
      if (stored === REFUSED_RELAY_FULL) {
        reject(pending, relayFull(this.opts.maxStreamBytes));
        continue;
      }
      const set = code >> 2;
      // The messages of one call with the same targets share one `remote` list (read, never changed).
      const ids = set === 0 ? NO_NODES : sets[set - 1]!;
      if ((code & 2) !== 0) {
        // Every target was a candidate: handed off in the decision itself.
        this.handedInDecision++;
        resolve(pending, { local, stored: false, remote: sets[set - 1]! });
        continue;
      }
      const gone = pending.gone;
      const targets = gone === undefined ? ids : ids.filter((id) => !gone.has(id));
      if (stored > 0) this.dropped += stored - 1;
      if (targets.length === 0) {
        if (stored === 0 && !local) {
          // Only targets found gone before: once more, without them.
          this.retry(pending);
          continue;
        }
        resolve(pending, { local, stored: stored > 0, remote: [] });
        continue;
      }
      this.handedApart++;
      const outcome: Outcome = { pending, local, remote: [], waiting: targets.length, missed: [], full: false };
      for (const id of targets) {
        const list = byNode.get(id);
        if (list) list.push(outcome);
        else byNode.set(id, [outcome]);
      }
    }
    return { call, plan: byNode };
  }

  /**
   * Reads the stream partitions of the target nodes not known yet (one GET
   * each, in the node's slot; absent: the node's own stream alone). A node
   * whose list cannot be read is left out of `byNode`, its messages refused.
   * Returns the nodes whose list was read now.
   */
  private async learnOwners(byNode: HandOffPlan): Promise<Set<string>> {
    const unknown = [...byNode.keys()].filter((node) => !this.owners.has(node));
    await Promise.all(
      unknown.map(async (node) => {
        try {
          const listed = await this.redis.get(this.keys.streamParts(node));
          this.owners.set(node, listed === null ? [node] : listed.split(' '));
        } catch (error) {
          for (const outcome of byNode.get(node)!) {
            outcome.waiting = -1;
            reject(outcome.pending, error);
          }
          byNode.delete(node);
        }
      }),
    );
    return new Set(unknown);
  }

  /** Hands `outcomes` to `node` again with its list of partitions read anew, in the next tick's turn. */
  private handOffAgain(node: string, outcomes: Outcome[]): void {
    this.owners.delete(node);
    this.issued = this.issued
      .then(async () => {
        const plan: HandOffPlan = new Map([[node, outcomes]]);
        await this.learnOwners(plan);
        if (plan.has(node)) this.handOff(node, outcomes, true);
      })
      .catch((error: unknown) => this.opts.logger.error({ module: 'router', error: String(error) }, 'issuing hand-offs failed'));
  }

  /** Writes the envelopes for `node` to its stream (to each user's partition of it): kept ones (never refused) apart from new ones. */
  private handOff(node: string, outcomes: Outcome[], freshOwners: boolean): void {
    const owners = this.cluster ? (this.owners.get(node) ?? [node]) : [node];
    // Off a cluster a node has one stream: a miss there is final.
    const fresh = freshOwners || !this.cluster;
    if (owners.length === 1) {
      this.handOffTo(node, owners[0]!, outcomes, fresh);
      return;
    }
    const byOwner = new Map<string, Outcome[]>();
    for (const outcome of outcomes) {
      const owner = owners[slotBucket(calculateSlot(this.keys.inbox(outcome.pending.route.user, '')), owners.length)]!;
      const list = byOwner.get(owner);
      if (list) list.push(outcome);
      else byOwner.set(owner, [outcome]);
    }
    for (const [owner, list] of byOwner) this.handOffTo(node, owner, list, fresh);
  }

  /** Writes envelopes for `node` to the stream of `owner` (the node itself or one of its partitions). */
  private handOffTo(node: string, owner: string, outcomes: Outcome[], freshOwners: boolean): void {
    const kept = outcomes.filter((o) => o.pending.route.kept === true);
    const fresh = outcomes.filter((o) => o.pending.route.kept !== true);
    for (const part of [kept, fresh]) {
      for (const entry of entries(part)) {
        const isKept = entry[0]!.pending.route.kept === true;
        const packed = pack(entry.map((o) => envelopeOf(o.pending)));
        const handoff = [this.keys.stream(owner), this.keys.streamBytes(owner), this.opts.maxStreamBytes, isKept ? '1' : '0', packed.field, packed.value, this.push] as const;
        const written = this.lean
          ? durableLeanWrite(this.lean, this.opts, 'hand off user messages', ['EVALSHA', HANDOFF_SHA, HANDOFF_KEYS, ...handoff], true).then(Number)
          : durableWrite(
              this.redis,
              this.opts,
              'hand off user messages',
              () => this.redis.sbRelayHandoff(...handoff),
              (pipeline) => pipeline.sbRelayHandoff(...handoff),
            );
        written.then(
          (result) => {
            if (result === 0 && !freshOwners) {
              // The node left, was reaped, or came back with other partitions: look again before calling it gone.
              this.handOffAgain(node, entry);
              return;
            }
            if (result === 0) this.owners.delete(node);
            for (const outcome of entry) {
              if (result === 1) outcome.remote.push(node);
              else if (result === 0) outcome.missed.push(node);
              else outcome.full = true;
              this.settle(outcome);
            }
          },
          (error: unknown) => {
            for (const outcome of entry) {
              outcome.waiting = -1;
              reject(outcome.pending, error);
            }
          },
        );
      }
    }
  }

  private settle(outcome: Outcome): void {
    if (outcome.waiting < 0 || --outcome.waiting > 0) return;
    const { pending } = outcome;
    if (outcome.full) reject(pending, relayFull(this.opts.maxStreamBytes));
    else if (outcome.remote.length > 0 || outcome.local) resolve(pending, { local: outcome.local, stored: false, remote: outcome.remote.sort() });
    else {
      // Every target had gone meanwhile: decide again without them (it may store the message).
      pending.gone ??= new Set();
      for (const node of outcome.missed) pending.gone.add(node);
      this.retry(pending);
    }
  }

  private retry(pending: Pending): void {
    if (++pending.round > MAX_ROUNDS) {
      // The cluster is changing under this message (its targets' streams vanished at each try): the sender sends again.
      reject(pending, new BrokerError('ERR_CLUSTER_UNAVAILABLE', `no target of a message to ${pending.route.user} kept its stream over ${MAX_ROUNDS} decisions; send again`));
      return;
    }
    this.issue([this.decide([pending], [...(pending.gone ?? [])])]);
  }
}

/** route.lua's reply, `[target node lists, codes]`, as read off a lean connection. */
function routeReply(reply: RespReply): [string[][], number[]] {
  if (!Array.isArray(reply) || reply.length !== 2 || !Array.isArray(reply[0]) || !Array.isArray(reply[1])) {
    throw new BrokerError('ERR_INTERNAL', 'route user messages: a reply of another shape than route.lua gives');
  }
  return reply as [string[][], number[]];
}

function groupBy<T>(items: readonly T[], key: (item: T) => number): T[][] {
  const groups = new Map<number, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return [...groups.values()];
}

/** Outcomes cut into stream entries of at most MAX_ENTRY_BYTES (one envelope may be larger alone). */
function entries(outcomes: Outcome[]): Outcome[][] {
  const out: Outcome[][] = [];
  let current: Outcome[] = [];
  let bytes = 0;
  for (const outcome of outcomes) {
    const size = outcome.pending.end - outcome.pending.at - 4;
    if (current.length > 0 && bytes + size > MAX_ENTRY_BYTES) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(outcome);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** A message's envelope (its record less the length), a view of the arena. */
function envelopeOf(pending: Pending): Buffer {
  return pending.chunk.subarray(pending.at + 4, pending.end);
}

/** One envelope as the field `e`; several packed (u32 length + bytes each) as the field `b`. */
function pack(envelopes: Buffer[]): { field: string; value: Buffer } {
  if (envelopes.length === 1) return { field: ENTRY_FIELD, value: envelopes[0]! };
  return { field: BATCH_FIELD, value: encodeEnvelopeBatch(envelopes) };
}

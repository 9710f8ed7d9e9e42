/*
 * The broker on one node: sessions, local subscriptions, routing, and the
 * seams to the rest of the cluster (presence, relay, inbox, queues), which
 * are interfaces with a memory and a Redis implementation each.
 *
 * Path of one SEND to `/user/bob/queue/reply`:
 *   router.route(bob, /queue/reply)        — atomic with presence: the live
 *     nodes holding a subscription get it through the relay (durable,
 *     targeted), or the message is stored in bob's inbox;
 *   deliverUser(bob, /queue/reply) locally — every subscribed session of bob.
 * The SEND's RECEIPT is written only after that resolves.
 */
import type { Logger } from '../log.js';
import type { Config } from '../config.js';
import type { PresenceRegistry } from '../cluster/presence.js';
import type { RejoinCause } from '../cluster/presence.js';
import type { Relay, RelayEnvelope, RelayHold } from '../cluster/relay.js';
import type { RouteOutcome, UserRouter, UserRouteResult } from '../cluster/user-router.js';
import { MemoryUserSessionCount, type UserSessionCount } from '../cluster/user-sessions.js';
import type { InboxStore } from '../inbox/inbox-store.js';
import type { QueueStore } from '../queue/queue-store.js';
import type { FrameLimits } from '../stomp/index.js';
import type { Authenticator } from './auth.js';
import type { Connection, TransportContext } from './connection.js';
import { DestinationParser, type Destination } from './destinations.js';
import { BrokerError } from '../core/errors.js';
import { HeartbeatWheel, type HeartbeatClient } from './heartbeat-wheel.js';
import type { BrokerMessage } from '../core/message.js';
import { RecentIds } from './recent-ids.js';
import type { Claims, Permissions } from './permissions.js';
import type { RecipientPolicy } from './recipient-policy.js';
import { CONNECT_TIMEOUT_MS, Session, type PendingAck } from './session.js';
import { BrokerStats } from './stats.js';
import { SubscriptionRegistry, userKey, type Subscription, type SubscriptionTarget } from './subscription.js';

export interface BrokerParts {
  config: Config;
  log: Logger;
  nodeId: string;
  auth: Authenticator;
  presence: PresenceRegistry;
  relay: Relay;
  inbox: InboxStore & {
    recoverNodeClaims?(nodeId: string, handler: (user: string, destination: string, messages: BrokerMessage[]) => Promise<void>): Promise<number>;
  };
  queues: QueueStore;
  /** Route-or-store of user messages, atomic with presence (one place per backend). */
  router: UserRouter;
  /** Sessions per user (MAX_CONNECTIONS_PER_USER), cluster-wide with Redis; absent: counted on this node. */
  sessionCounts?: UserSessionCount;
  /** RECIPIENT_POLICY=known: who may be sent to; absent for `any`. */
  recipients?: RecipientPolicy;
  /** PERMISSIONS_FILE / PERMISSIONS_CLAIM rules; absent: every user may use every destination. */
  permissions?: Permissions;
  /** Whether the cluster store answers (readiness); absent for in-memory parts. */
  ping?(): Promise<boolean>;
  /** Releases what the parts share (e.g. the readiness connection), after the parts closed. */
  close?(): Promise<void>;
}

/** Handles SENDs to the application prefix (`/app/...`), as Spring's @MessageMapping would. */
export type ApplicationHandler = (message: BrokerMessage, sender: string) => Promise<void>;

const QUEUE_BATCH = 64;


/** After rejoining, the inboxes of local subscriptions are taken back once more this much later, ms. */
const REJOIN_RETAKE_AGAIN_MS = 1000;

export class Broker {
  readonly config: Config;
  readonly log: Logger;
  readonly nodeId: string;
  readonly auth: Authenticator;
  readonly presence: PresenceRegistry;
  readonly relay: Relay;
  readonly inbox: BrokerParts['inbox'];
  readonly queues: QueueStore;
  readonly router: UserRouter;
  readonly recipients: RecipientPolicy | undefined;
  readonly sessionCounts: UserSessionCount;
  readonly permissions: Permissions | undefined;
  readonly frameLimits: FrameLimits;
  readonly destinations: DestinationParser;
  readonly wheel = new HeartbeatWheel();
  readonly stats = new BrokerStats();
  readonly registry = new SubscriptionRegistry();
  readonly sessions = new Set<Session>();
  /** Connected sessions per user on this node (arrays, replaced on change, as SubscriptionRegistry.users). */
  readonly userSessions = new Map<string, readonly Session[]>();
  applicationHandler: ApplicationHandler | undefined;
  /**
   * How long a new connection may take to send CONNECT before it is closed.
   * Not a Config option yet; settable here (e.g. short in specs).
   * @default CONNECT_TIMEOUT_MS (10 s)
   */
  connectTimeoutMs = CONNECT_TIMEOUT_MS;
  private readonly ping: (() => Promise<boolean>) | undefined;
  private readonly closeParts: (() => Promise<void>) | undefined;

  /** Cluster-side setup of a destination key, awaited by every later local subscriber. */
  private readonly clusterReady = new Map<string, Promise<void>>();
  private readonly userReady = new Map<string, Promise<void>>();
  /** Messages handled here (relayed or routed locally) that reach this node again within a short window (a retry, a recovery) are dropped. */
  private readonly recent = new RecentIds(16384);
  private readonly dispatching = new Set<string>();
  private readonly redispatch = new Set<string>();
  /**
   * Queues whose messages wait because their consumers' outgoing buffers are
   * congested. Nothing signals when a buffer drains, so they are dispatched
   * again on the next wheel tick, until the queue is empty or nobody is congested.
   */
  private readonly congestedQueues = new Set<string>();
  private readonly congestionRetry: HeartbeatClient = {
    onHeartbeatDue: () => {
      const queues = [...this.congestedQueues];
      this.congestedQueues.clear();
      for (const queue of queues) void this.dispatchQueue(queue);
      return 0;
    },
  };
  private closing = false;
  /** Set once sessions are released: retries of returns stop there. */
  private closed = false;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly settledWaiters = new Set<() => void>();
  private presenceDown = false;

  constructor(parts: BrokerParts) {
    this.config = parts.config;
    this.log = parts.log;
    this.nodeId = parts.nodeId;
    this.auth = parts.auth;
    this.presence = parts.presence;
    this.relay = parts.relay;
    this.inbox = parts.inbox;
    this.queues = parts.queues;
    this.router = parts.router;
    this.recipients = parts.recipients;
    this.sessionCounts = parts.sessionCounts ?? new MemoryUserSessionCount(parts.config.maxConnectionsPerUser);
    this.permissions = parts.permissions;
    this.ping = parts.ping;
    this.closeParts = parts.close;
    const c = parts.config;
    this.frameLimits = { maxFrameSize: c.maxFrameSize, maxHeaders: c.maxHeaders, maxHeaderLineLength: c.maxHeaderLineLength, maxBodySize: c.maxBodySize };
    this.destinations = new DestinationParser(c);
  }

  /** Readiness: the cluster store answers (always true in memory). */
  async storeReachable(): Promise<boolean> {
    return this.ping ? this.ping().catch(() => false) : true;
  }

  async start(): Promise<void> {
    this.wheel.start();
    this.queues.onAvailable((queue) => void this.dispatchQueue(queue));
    this.presence.onRecover((tag) => this.recoverNode(tag));
    this.presence.onRejoined((cause) => void this.rejoined(cause));
    await this.presence.start();
    await this.relay.start((envelope, hold) => this.receiveEnvelope(envelope, hold));
  }

  get accepting(): boolean {
    return !this.closing;
  }

  createSession(connection: Connection, transport: TransportContext = {}): Session {
    const session = new Session(this, connection, transport);
    this.sessions.add(session);
    if (this.closing) session.fail(new BrokerError('ERR_SHUTTING_DOWN', 'the node is shutting down'));
    else if (this.sessions.size > this.config.maxConnections) {
      session.fail(new BrokerError('ERR_TOO_MANY_CONNECTIONS', `this node holds ${this.config.maxConnections} sessions (limit maxConnections)`));
    }
    return session;
  }

  // ---- authorisation -------------------------------------------------------

  // The rules (permissions.ts) are the built-in authoriser; ERR_FORBIDDEN when they refuse.
  authorizeSend(user: string, destination: string | undefined, claims?: Claims): Destination {
    const parsed = this.destinations.forSend(destination);
    this.permissions?.check({ user, claims }, 'send', parsed);
    return parsed;
  }

  authorizeSubscribe(user: string, destination: string | undefined, claims?: Claims): SubscriptionTarget {
    const parsed = this.destinations.forSubscribe(destination, user);
    if (parsed.kind === 'app') throw new BrokerError('ERR_UNKNOWN_DESTINATION', `cannot subscribe to application destination ${parsed.name}`);
    this.permissions?.check({ user, claims }, 'subscribe', parsed);
    return parsed;
  }

  // ---- routing ---------------------------------------------------------------

  /** Accepts a message: resolves once it is delivered, relayed, queued or stored. */
  route(message: BrokerMessage, destination: Destination): Promise<void> {
    // The common SEND — a user destination, no recipient policy — as one promise: at saturation
    // two async frames per SEND were a third of the sending node's garbage.
    if (destination.kind === 'user' && this.recipients === undefined) return this.routeUser(destination.user, destination.target, message);
    return this.routeAny(message, destination);
  }

  /**
   * `route`, its end told to `outcome` — the SEND path (handlers/send.ts). A user destination
   * with no recipient policy goes to the router with a UserSend, no promise made; the rest
   * through `route`.
   */
  routeTo(message: BrokerMessage, destination: Destination, outcome: AcceptOutcome): void {
    if (destination.kind === 'user' && this.recipients === undefined) {
      const send = new UserSend(this, destination.user, destination.target, message, outcome);
      try {
        this.router.routeTo({ user: destination.user, destination: destination.target, message }, send);
      } catch (error) {
        // As `route` would have it: its promise rejected.
        send.failed(error);
      }
      return;
    }
    this.route(message, destination).then(
      () => outcome.accepted(),
      (error: unknown) => outcome.refused(error),
    );
  }

  private async routeAny(message: BrokerMessage, destination: Destination): Promise<void> {
    try {
      switch (destination.kind) {
        case 'topic':
          this.deliverTopic(message);
          await this.relay.publishTopic(message);
          return;
        case 'queue':
          await this.queues.push(destination.name, message);
          return;
        case 'user':
          await this.recipients?.check(destination.user);
          await this.routeUser(destination.user, destination.target, message);
          return;
        case 'app':
          if (!this.applicationHandler) {
            throw new BrokerError('ERR_UNKNOWN_DESTINATION', `no application handler for ${destination.name}`);
          }
          await this.applicationHandler(message, message.sender ?? '');
          return;
      }
    } catch (error) {
      throw clusterError(error);
    }
  }

  /**
   * Sends to every session of `user` subscribed to `target` (`/queue/x`), anywhere, or to the inbox.
   * `kept`: the message was accepted already (a re-route): it is never refused, only kept.
   * A new message's failure is a BrokerError (clusterError: ERR_CLUSTER_UNAVAILABLE for a store
   * client's own error), as for any SEND; a re-route's passes as it is, for the relay to tell a
   * store outage (waited out) from anything else (retried, then dead-lettered).
   */
  routeUser(user: string, target: string, message: BrokerMessage, exclude?: string, kept = false): Promise<void> {
    return this.router.route({ user, destination: target, message, exclude, kept }).then(
      (result) => this.userRouted(user, target, message, kept, result),
      (error: unknown) => this.userRouteFailed(user, target, message, exclude, kept, error),
    );
  }

  /** For routeUser and UserSend: what follows a route's result (undefined: nothing waits). */
  userRouted(user: string, target: string, message: BrokerMessage, kept: boolean, result: UserRouteResult): Promise<void> | undefined {
    if (result.stored) {
      this.stats.storedInbox++;
      return undefined;
    }
    this.stats.routedRemote += result.remote.length;
    if (!result.local) return undefined;
    this.stats.routedLocal++;
    // A re-route of what this node handled already (the copy a dead node's stream still held
    // while this node got the message too) reaches its sessions once, as a relayed one does.
    if (kept && this.recent.has(message.id)) return undefined;
    const delivering = this.deliverUser(user, target, message, result.remote.length > 0);
    if (delivering === undefined) {
      this.recent.remember(message.id);
      return undefined;
    }
    return delivering.then(() => this.recent.remember(message.id), kept ? undefined : rethrowClusterError);
  }

  /** For routeUser and UserSend: what follows a route's failure (throws when the sender must learn of it). */
  userRouteFailed(user: string, target: string, message: BrokerMessage, exclude: string | undefined, kept: boolean, error: unknown): Promise<void> | undefined {
    // The cluster store is unreachable: local sessions of the user still get it; with
    // none here, the sender learns of the failure (ERR_CLUSTER_UNAVAILABLE), never a silent loss.
    if (exclude !== undefined || !this.hasLocalSubscriber(user, target)) throw kept ? error : clusterError(error);
    this.stats.routedLocal++;
    // Not `deliveredElsewhere`: if no local session takes it, keeping it must be tried, and
    // its failure (the store is down) reach the sender.
    const delivering = this.deliverUser(user, target, message, false);
    return kept ? delivering : delivering?.catch(rethrowClusterError);
  }

  private hasLocalSubscriber(user: string, target: string): boolean {
    return this.registry.userSubscribers(user, target) !== undefined;
  }

  private deliverTopic(message: BrokerMessage): void {
    const subscribers = this.registry.topicSubscribers(message.destination);
    if (!subscribers) return;
    for (const sub of subscribers) sub.session.deliver(sub, message, 'topic');
  }

  /**
   * Delivers to the local sessions of `user` subscribed to `target`. When none
   * takes it (the last one left while the message was in flight, or was a
   * slow consumer), the message is kept: re-routed to other nodes, or stored.
   * `hold` (a relayed message) keeps its stream entry while a client-ack
   * delivery or a backlog still owes it. Synchronous (undefined) when local
   * sessions took it and nothing must be kept: the relay's read loop then
   * goes on without a turn of the microtask queue per message; a promise when
   * it must be kept (a client-ack delivery routed here) or routed again.
   */
  private deliverUser(user: string, target: string, message: BrokerMessage, deliveredElsewhere: boolean, hold?: RelayHold): Promise<void> | undefined {
    const subscribers = this.registry.userSubscribers(user, target);
    let delivered = false;
    let kept: Subscription[] | undefined;
    if (subscribers) {
      for (const sub of subscribers) {
        if (sub.backlog) {
          sub.backlog.push({ message, hold, release: hold?.() });
          delivered = true;
        } else if (hold === undefined && sub.ackMode !== 'auto' && sub.claimId !== undefined) {
          (kept ??= []).push(sub);
        } else if (sub.session.deliver(sub, message, 'user', hold)) {
          delivered = true;
        }
      }
    }
    if (kept) return this.deliverKeptThenRoute(kept, user, target, message, delivered || deliveredElsewhere);
    if (delivered || deliveredElsewhere) return undefined;
    return this.routeUser(user, target, message, this.nodeId, true);
  }

  private async deliverKeptThenRoute(kept: Subscription[], user: string, target: string, message: BrokerMessage, delivered: boolean): Promise<void> {
    // Routed on this node, no relay stream holds it: a client-ack delivery is kept under the
    // subscription's claim until ACKed, so that this node's death cannot lose it.
    for (const sub of kept) if (await this.deliverKept(sub, user, target, message)) delivered = true;
    if (delivered) return;
    await this.routeUser(user, target, message, this.nodeId, true);
  }

  private async deliverKept(sub: Subscription, user: string, target: string, message: BrokerMessage): Promise<boolean> {
    if (sub.session.state === 'closed') return false;
    try {
      await this.inbox.keepClaimed(sub.claimId!, user, target, [message]);
    } catch {
      // The store is down: deliver all the same, as local delivery does during an outage.
      return sub.session.deliver(sub, message, 'user');
    }
    if (sub.session.deliver(sub, message, 'inbox')) return true;
    // Not written (the session ended meanwhile, or was cut as a slow consumer): the claim goes back
    // to the inbox head, this message with it (a second release of the claim is harmless).
    await this.inbox.release(sub.claimId!);
    return true;
  }

  /** Synchronous (undefined) unless the message must be kept or routed again (deliverUser). */
  private receiveEnvelope(envelope: RelayEnvelope, hold?: RelayHold): Promise<void> | undefined {
    // A message relayed twice to this node (a retry, a recovery) reaches its sessions once.
    // Its id alone is the key: a SEND addresses one user, so one id is one envelope per node.
    const id = envelope.message.id;
    if (this.recent.has(id)) return undefined;
    this.stats.relayReceived++;
    let pending: Promise<void> | undefined;
    if (envelope.kind === 'topic') this.deliverTopic(envelope.message);
    else pending = this.deliverUser(envelope.user, envelope.destination, envelope.message, false, hold);
    // Seen only once handled: a failure makes the relay hand it over again, and that must not be dropped.
    if (pending === undefined) {
      this.recent.remember(id);
      return undefined;
    }
    return pending.then(() => this.recent.remember(id));
  }

  // ---- subscriptions ---------------------------------------------------------

  /**
   * Puts a subscription in place locally and in the cluster, then calls
   * `inPlace` (the RECEIPT). A user subscription then receives its inbox, in
   * order, before any message that arrived meanwhile.
   */
  async subscribe(sub: Subscription, inPlace: () => void): Promise<void> {
    // Past presence.leave(), a new subscription would register this node again.
    if (this.closing) throw new BrokerError('ERR_SHUTTING_DOWN', 'the node is shutting down');
    const t = sub.target;
    if (t.kind === 'user') sub.backlog = [];
    const first = this.registry.add(sub);
    const key = clusterKey(t);
    try {
      if (first) {
        const ready = this.announce(t);
        this.clusterReady.set(key, ready);
        await ready;
      } else {
        await this.clusterReady.get(key);
      }
    } catch (error) {
      sub.session.subscriptions.delete(sub.id);
      if (this.registry.remove(sub)) this.clusterReady.delete(key);
      throw clusterError(error);
    }
    inPlace();
    if (t.kind === 'user') await this.drainInbox(sub, t.user, t.target);
    // Messages may already wait, held back from consumers that are full or congested.
    else if (t.kind === 'queue') void this.dispatchQueue(t.name);
  }

  async unsubscribe(sub: Subscription): Promise<void> {
    // Out of the registry first: what it held unacknowledged goes back below, and
    // must reach another consumer (or the inbox), not this ending subscription again.
    if (this.registry.remove(sub)) {
      this.clusterReady.delete(clusterKey(sub.target));
      const t = sub.target;
      try {
        if (t.kind === 'topic') await this.relay.unsubscribeTopic(t.name);
        else if (t.kind === 'queue') await this.queues.unwatch(t.name);
        else await this.presence.unsubscribed(t.user, t.target);
      } catch (error) {
        // The entry will expire with this node if Redis is gone; routing tolerates stale entries.
        this.log.warn({ err: error, destination: sub.destination }, 'could not withdraw a subscription from the cluster');
      }
    }
    await this.returnUnacked(sub.session, [...sub.session.pending.values()].filter((p) => p.subscription === sub));
    if (sub.claimId) await this.inbox.release(sub.claimId);
  }

  private announce(t: SubscriptionTarget): Promise<void> {
    if (t.kind === 'topic') return this.relay.subscribeTopic(t.name);
    if (t.kind === 'queue') return this.queues.watch(t.name);
    return this.presence.subscribed(t.user, t.target);
  }

  private async drainInbox(sub: Subscription, user: string, target: string): Promise<void> {
    const session = sub.session;
    // A claim id names its user (the claim lives in the user's Redis slot): <node>:<user>:<rest>.
    const claimId = (sub.claimId = `${this.nodeId}:${user}:${session.id}:${sub.id}`);
    try {
      // Claimed, not taken: a stored message leaves the store only once delivered (auto) or ACKed.
      const stored = await this.inbox.claim(claimId, user, target);
      const delivered: string[] = [];
      for (const message of stored) {
        if (!session.deliver(sub, message, 'inbox')) break;
        if (sub.ackMode === 'auto') delivered.push(message.id);
      }
      if (delivered.length > 0) await this.inbox.ack(claimId, delivered);
    } finally {
      // Live messages that arrived meanwhile follow the stored ones.
      const backlog = sub.backlog ?? [];
      sub.backlog = null;
      let i = 0;
      for (; i < backlog.length; i++) {
        const { message, hold, release } = backlog[i]!;
        // The backlog's hold passes to the pending delivery (client ack), or ends with the write (auto).
        const passed = hold && release ? Object.assign(() => release, { unconfirmed: hold.unconfirmed }) : undefined;
        if (!session.deliver(sub, message, 'user', passed)) break;
        if (sub.ackMode === 'auto') release?.();
      }
      if (i < backlog.length) {
        const rest = backlog.slice(i);
        await this.inbox.prepend(user, target, rest.map((item) => item.message));
        for (const item of rest) item.release?.();
      }
      // Ended meanwhile: what is still claimed goes back ahead of the backlog.
      if (session.state === 'closed') await this.inbox.release(claimId);
    }
  }

  // ---- queues ------------------------------------------------------------------

  /** Moves waiting messages of `queue` to local consumers with room, round robin. */
  async dispatchQueue(queue: string): Promise<void> {
    if (this.dispatching.has(queue)) {
      this.redispatch.add(queue);
      return;
    }
    this.dispatching.add(queue);
    let heldBack = false;
    try {
      for (;;) {
        const room = this.queueRoom(queue);
        if (room === 0) {
          heldBack = true;
          break;
        }
        // A node whose lease lapsed (paused, cut off) may have been taken for dead, its in-flight
        // messages handed to other consumers: it pops and delivers only while surely registered.
        if (!this.presence.leaseValid()) await this.presence.awaitLease();
        const batch = await this.queues.pop(queue, room);
        if (batch.length === 0) break;
        if (!this.presence.leaseValid()) {
          await this.presence.awaitLease();
          // Back to the queue unless recovery already took them (requeue is fenced): delivered once.
          await this.queues.requeue(queue, batch);
          continue;
        }
        const autoAcked: string[] = [];
        let undelivered: BrokerMessage[] = [];
        for (let i = 0; i < batch.length; i++) {
          const message = batch[i]!;
          const sub = this.registry.nextQueueConsumer(queue);
          if (!sub || !sub.session.deliver(sub, message, 'queue')) {
            undelivered = batch.slice(i);
            break;
          }
          if (sub.ackMode === 'auto') autoAcked.push(message.id);
        }
        if (autoAcked.length > 0) await this.queues.ack(queue, autoAcked);
        if (undelivered.length > 0) {
          await this.queues.requeue(queue, undelivered);
          heldBack = true;
          break;
        }
      }
    } catch (error) {
      this.log.warn({ err: error, queue }, 'queue dispatch failed');
    } finally {
      this.dispatching.delete(queue);
      if (this.redispatch.delete(queue)) void this.dispatchQueue(queue);
      else if (heldBack && this.hasCongestedConsumer(queue)) {
        this.congestedQueues.add(queue);
        this.wheel.schedule(this.congestionRetry, this.wheel.now + 1);
      }
    }
  }

  private hasCongestedConsumer(queue: string): boolean {
    return this.registry.queues.get(queue)?.some((sub) => sub.ackMode === 'auto' && sub.session.connected && sub.session.congested) ?? false;
  }

  private queueRoom(queue: string): number {
    const consumers = this.registry.queues.get(queue);
    if (!consumers) return 0;
    let room = 0;
    for (const sub of consumers) {
      if (!sub.session.connected) continue;
      if (sub.ackMode === 'auto') room += sub.session.congested ? 0 : QUEUE_BATCH;
      else room += Math.max(0, sub.prefetch - sub.unacked);
      if (room >= QUEUE_BATCH) return QUEUE_BATCH;
    }
    return room;
  }

  // ---- acknowledgements ----------------------------------------------------------

  /**
   * ACKed entries leave their stores. The session has forgotten them already
   * (Session.settle); until the stores have too, the session counts as
   * holding them: its release on end (which hands the claim's remainder back
   * to the inbox) waits for this, and so does shutdown's settled wait — else
   * a connection ending right after a cumulative ACK would see what it
   * acknowledged delivered again.
   */
  acknowledge(session: Session, entries: readonly PendingAck[]): Promise<void> {
    const work = this.storeAcks(entries);
    (session.acknowledging ??= new Set()).add(work);
    return work.finally(() => {
      session.acknowledging?.delete(work);
      this.checkSettled();
    });
  }

  private async storeAcks(entries: readonly PendingAck[]): Promise<void> {
    const byQueue = new Map<string, string[]>();
    // One call per claim, not per message: a cumulative ACK may cover hundreds.
    const byClaim = new Map<string, string[]>();
    const afterClaims: PendingAck[] = [];
    for (const entry of entries) {
      const t = entry.subscription.target;
      const claimId = entry.source === 'inbox' ? entry.subscription.claimId : undefined;
      if (entry.source === 'queue' && t.kind === 'queue') push(byQueue, t.name, entry.message.id);
      if (claimId !== undefined) {
        push(byClaim, claimId, entry.message.id);
        afterClaims.push(entry);
      } else entry.release?.();
    }
    for (const [claimId, ids] of byClaim) await this.inbox.ack(claimId, ids);
    for (const entry of afterClaims) entry.release?.();
    for (const [queue, ids] of byQueue) {
      await this.queues.ack(queue, ids);
      void this.dispatchQueue(queue);
    }
  }

  /** NACK: a queue message goes to another consumer; a user message back to the inbox. */
  async reject(session: Session, entries: readonly PendingAck[]): Promise<void> {
    await this.returnUnacked(session, entries);
  }

  /**
   * What a session held unacknowledged goes back: queue head, or the user's
   * inbox head (out of its claim and back in one step). Only then does the
   * relay forget the messages' entries; a return that fails (Redis down) is
   * tried again until it succeeds, and the entries stay held meanwhile.
   */
  private async returnUnacked(session: Session, entries: readonly PendingAck[]): Promise<void> {
    if (entries.length === 0) return;
    session.settle(entries);
    try {
      await this.returnToStore(entries);
    } catch (error) {
      this.log.warn({ err: error, session: session.id, count: entries.length }, 'could not return unacked messages yet; retrying');
      this.retryReturn(entries);
    } finally {
      this.checkSettled();
    }
  }

  private async returnToStore(entries: readonly PendingAck[]): Promise<void> {
    const byQueue = new Map<string, BrokerMessage[]>();
    // Per inbox and claim: out of the claim and back at the inbox head in one atomic step.
    const byInbox = new Map<string, { user: string; target: string; messages: BrokerMessage[]; claimId: string | undefined }>();
    for (const entry of entries) {
      const t = entry.subscription.target;
      if (t.kind === 'queue' && entry.source === 'queue') push(byQueue, t.name, entry.message);
      else if (t.kind === 'user') {
        const claimId = entry.source === 'inbox' ? entry.subscription.claimId : undefined;
        const key = `${userKey(t.user, t.target)}\0${claimId ?? ''}`;
        const box = byInbox.get(key) ?? { user: t.user, target: t.target, messages: [], claimId };
        box.messages.push(entry.message);
        byInbox.set(key, box);
      }
    }
    for (const [queue, messages] of byQueue) {
      await this.queues.requeue(queue, messages);
      void this.dispatchQueue(queue);
    }
    for (const box of byInbox.values()) await this.inbox.returnToHead(box.user, box.target, box.messages, box.claimId);
    for (const entry of entries) entry.release?.();
  }

  /** Returns `entries` to their stores once the cluster store answers again; stops when the node closes. */
  private retryReturn(entries: readonly PendingAck[]): void {
    const attempt = async (): Promise<void> => {
      for (let delay = 100; !this.closed; delay = Math.min(delay * 2, 2000)) {
        await new Promise<void>((resolve) => setTimeout(resolve, delay).unref());
        try {
          await this.returnToStore(entries);
          return;
        } catch {
          // still down: try again
        }
      }
    };
    this.track(attempt());
  }

  // ---- session lifecycle ----------------------------------------------------------

  async sessionConnected(session: Session): Promise<void> {
    const user = session.user!;
    const sessions = this.userSessions.get(user);
    // Listed before the await: a session that ends meanwhile is then found, and withdrawn, by releaseSession.
    this.userSessions.set(user, sessions === undefined ? [session] : [...sessions, session]);
    if (!sessions) {
      // Every session of the user waits for this; a failure is logged once, never fatal to them.
      const online = this.presence.userOnline(user).then(
        () => this.presenceAnswered(),
        (error: unknown) => this.presenceFailed(error, user, 'could not record presence'),
      );
      this.userReady.set(user, online);
    }
    await this.userReady.get(user);
  }

  /** Called once per session when it ends; returns what it held and withdraws its subscriptions. */
  sessionEnded(session: Session, wasConnected: boolean): void {
    this.sessions.delete(session);
    if (wasConnected) {
      this.sessionCounts.release(session.user!);
      this.track(this.releaseSession(session).catch((error: unknown) => this.log.error({ err: error, session: session.id }, 'failed to release a session')));
    }
    this.checkSettled();
  }

  /**
   * A user's presence could not be written (the store is down): logged once per outage, not
   * once per session — every session of an outage fails alike. The registry keeps what this
   * node holds and records it again on its first good beat after the outage.
   */
  private presenceFailed(error: unknown, user: string, what: string): void {
    if (this.presenceDown) return;
    this.presenceDown = true;
    this.log.warn({ err: error, user }, `${what} (further failures are not logged until it works again)`);
  }

  private presenceAnswered(): void {
    this.presenceDown = false;
  }

  /** Work that shutdown must await (session releases, returns being retried). */
  private track(work: Promise<void>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  private async releaseSession(session: Session): Promise<void> {
    // What was ACKed just before the end leaves the claim first (see acknowledge).
    if (session.acknowledging !== undefined) await Promise.allSettled([...session.acknowledging]);
    const subscriptions = [...session.subscriptions.values()];
    session.subscriptions.clear();
    // Unacked live messages first, then the claims: both go to the inbox head, claims (older) ahead.
    await this.returnUnacked(session, [...session.pending.values()].filter((p) => p.source !== 'inbox'));
    for (const sub of subscriptions) await this.unsubscribe(sub);
    const user = session.user!;
    const sessions = this.userSessions.get(user);
    if (!sessions?.includes(session)) return;
    if (sessions.length > 1) {
      this.userSessions.set(user, sessions.filter((other) => other !== session));
    } else {
      const online = this.userReady.get(user);
      this.userSessions.delete(user);
      this.userReady.delete(user);
      // The user's "online" must be recorded before its "offline", or it would outlive the session.
      await online;
      await this.presence.userOffline(user).then(
        () => this.presenceAnswered(),
        (error: unknown) => this.presenceFailed(error, user, 'could not withdraw presence'),
      );
    }
  }

  // ---- cluster -------------------------------------------------------------------

  /**
   * Recovers what a dead node left under `tag` (presence runs this on one
   * live node at a time, again after a partial run): its relay stream
   * re-routed (to wherever the users are now, or their inboxes), its
   * in-flight queue messages back to their queues, its inbox claims
   * re-routed likewise. Each step forgets only what it handed over.
   */
  private async recoverNode(tag: string): Promise<void> {
    const relayed = await this.relay.recoverNode(tag, (envelope) => this.rerouteEnvelope(envelope));
    const queued = await this.queues.recoverNode(tag);
    // Claimed inbox messages are re-routed too, not only put back: their user may be subscribed again elsewhere.
    const claims =
      (await this.inbox.recoverNodeClaims?.(tag, async (user, destination, messages) => {
        for (const message of messages) await this.routeUser(user, destination, message, undefined, true);
      })) ?? 0;
    this.log.warn({ tag, relayed, queued, claims }, 'recovered what a dead node left');
  }

  private async rerouteEnvelope(envelope: RelayEnvelope): Promise<void> {
    if (envelope.kind === 'user') await this.routeUser(envelope.user, envelope.destination, envelope.message, undefined, true);
  }

  /**
   * This node had dropped out of routing (its key expired during an outage
   * or a pause, or it was reaped): messages for its subscribers went to
   * their inboxes meanwhile. Once it is sendable again, each local user
   * subscription takes its inbox again, ahead of what arrives live.
   */
  private async rejoined(cause: RejoinCause): Promise<void> {
    if (this.closing) return;
    for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
      try {
        await this.relay.reopen();
        break;
      } catch {
        if (this.closing) return;
        await new Promise<void>((resolve) => setTimeout(resolve, delay).unref());
      }
    }
    const drained = this.retakeInboxes();
    this.log.warn({ cause, subscriptions: drained }, 'rejoined the cluster; took back the inboxes of local subscriptions');
    // Once more a little later: a sender that found this node's stream gone just before it
    // reopened decides again without this node, and may store after the take-back above
    // (on a cluster, where that decision and the stream are in different slots).
    const again = setTimeout(() => {
      if (!this.closing) this.retakeInboxes();
    }, REJOIN_RETAKE_AGAIN_MS);
    again.unref();
  }

  /** Every live user subscription drains its inbox again (one drain at a time each). Returns how many. */
  private retakeInboxes(): number {
    let drained = 0;
    for (const sub of this.registry.allUserSubscriptions()) {
      if (sub.target.kind !== 'user' || sub.backlog !== null || sub.session.state !== 'connected') continue;
      drained++;
      this.track(this.retakeInbox(sub));
    }
    return drained;
  }

  /** Drains a live subscription's inbox again, retrying while the store is not back yet (each part reconnects on its own). */
  private async retakeInbox(sub: Subscription): Promise<void> {
    const t = sub.target;
    if (t.kind !== 'user') return;
    for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
      if (this.closing || sub.session.state !== 'connected' || sub.session.subscriptions.get(sub.id) !== sub) return;
      if (sub.backlog !== null) return; // a drain is running already
      sub.backlog = [];
      try {
        await this.drainInbox(sub, t.user, t.target);
        return;
      } catch (error) {
        this.log.warn({ err: error, user: t.user }, 'could not take back an inbox after rejoining; retrying');
        await new Promise<void>((resolve) => setTimeout(resolve, delay).unref());
      }
    }
  }

  // ---- shutdown ------------------------------------------------------------------

  /**
   * Graceful: leave presence (nothing more is routed here), deliver what is
   * already on its way here, give clients a moment to acknowledge what they
   * have, then end every session with an ERROR naming the reason and wait
   * until what they held is back in its store; only then close the parts.
   */
  async shutdown(reason = 'the node is shutting down'): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const bound = this.config.shutdownTimeoutMs;
    await this.step('leave presence', () => this.presence.leave());
    await this.step('drain the relay', () => this.relay.drain());
    await this.settled(Math.floor(bound / 2));
    // Each session ends once the SENDs it has in flight are answered: one routed (and perhaps
    // delivered) must not lose its RECEIPT to the ERROR — the client would send it again.
    await this.step('answer the SENDs in flight', () =>
      withTimeout(
        Promise.all([...this.sessions].map((session) => session.sendsAnswered().then(() => session.fail(new BrokerError('ERR_SHUTTING_DOWN', reason))))),
        Math.floor(bound / 4),
      ),
    );
    for (const session of [...this.sessions]) session.fail(new BrokerError('ERR_SHUTTING_DOWN', reason));
    await this.step('release sessions', () => Promise.all([...this.inFlight]).then(() => undefined));
    this.closed = true;
    this.wheel.stop();
    // The relay drains again (what raced in goes to its users' inboxes or other nodes), then the
    // stores hand back what this node held; presence last, handing over anything left.
    await this.step('close the relay', () => this.relay.close());
    await this.step('close the queues', () => this.queues.close());
    await this.step('close the inbox', () => this.inbox.close());
    await this.step('close the router', () => this.closeParts?.() ?? Promise.resolve());
    await this.step('close presence', () => this.presence.close());
  }

  private async step(what: string, run: () => Promise<unknown>): Promise<void> {
    try {
      await run();
    } catch (error) {
      this.log.warn({ err: error }, `shutdown: could not ${what}`);
    }
  }

  /** Resolves once no session holds an unacknowledged delivery, or after `timeoutMs`. */
  private settled(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      timer.unref();
      const self = this;
      function done(): void {
        clearTimeout(timer);
        self.settledWaiters.delete(done);
        resolve();
      }
      this.settledWaiters.add(done);
      this.checkSettled();
    });
  }

  private checkSettled(): void {
    if (this.settledWaiters.size === 0) return;
    for (const session of this.sessions) if (session.state !== 'closed' && (session.pending.size > 0 || (session.acknowledging?.size ?? 0) > 0)) return;
    for (const done of [...this.settledWaiters]) done();
  }
}

function clusterKey(t: SubscriptionTarget): string {
  if (t.kind === 'topic') return `t:${t.name}`;
  if (t.kind === 'queue') return `q:${t.name}`;
  return `u:${userKey(t.user, t.target)}`;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** Failures of the cluster backends reach clients as ERR_CLUSTER_UNAVAILABLE, never silently. */
function clusterError(error: unknown): BrokerError {
  if (error instanceof BrokerError) return error;
  return new BrokerError('ERR_CLUSTER_UNAVAILABLE', `the cluster store is unavailable: ${error instanceof Error ? error.message : String(error)}`);
}

function rethrowClusterError(error: unknown): never {
  throw clusterError(error);
}

/** Told once whether a message was accepted (delivered, relayed, queued or stored) or refused (Broker.routeTo). */
export interface AcceptOutcome {
  accepted(): void;
  refused(error: unknown): void;
}

/**
 * One SEND to a user destination, as the router's RouteOutcome: what
 * `routeUser`'s two continuations do, without its promise. Never throws back
 * into the router.
 */
class UserSend implements RouteOutcome {
  constructor(
    private readonly broker: Broker,
    private readonly user: string,
    private readonly target: string,
    private readonly message: BrokerMessage,
    private readonly outcome: AcceptOutcome,
  ) {}

  routed(result: UserRouteResult): void {
    let after: Promise<void> | undefined;
    try {
      after = this.broker.userRouted(this.user, this.target, this.message, false, result);
    } catch (error) {
      this.outcome.refused(error);
      return;
    }
    this.follow(after);
  }

  failed(error: unknown): void {
    let after: Promise<void> | undefined;
    try {
      after = this.broker.userRouteFailed(this.user, this.target, this.message, undefined, false, error);
    } catch (thrown) {
      this.outcome.refused(thrown);
      return;
    }
    this.follow(after);
  }

  private follow(after: Promise<void> | undefined): void {
    if (after === undefined) {
      this.outcome.accepted();
      return;
    }
    after.then(
      () => this.outcome.accepted(),
      (error: unknown) => this.outcome.refused(error),
    );
  }
}

/** `work`, or nothing once `timeoutMs` passed (what it waits for is bounded, not failed). */
function withTimeout(work: Promise<unknown>, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    timer.unref();
    void work.finally(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

import type { RelayHold } from '../cluster/relay.js';
import type { BrokerMessage } from '../core/message.js';
import type { Session } from './session.js';

export type AckMode = 'auto' | 'client' | 'client-individual';

export const ACK_MODES: readonly AckMode[] = ['auto', 'client', 'client-individual'];

export type SubscriptionTarget =
  | { kind: 'topic'; name: string }
  | { kind: 'queue'; name: string }
  | { kind: 'user'; user: string; target: string };

/** A live message waiting behind an inbox drain; `release` lets the relay forget its entry once it is delivered or kept. */
export interface BacklogItem {
  readonly message: BrokerMessage;
  /** The relay entry's hold (a relayed message), and the hold taken for the wait in the backlog. */
  readonly hold?: RelayHold;
  readonly release?: () => void;
}

export interface Subscription {
  readonly id: string;
  readonly session: Session;
  /** As the client subscribed; MESSAGE frames carry it back. */
  readonly destination: string;
  readonly ackMode: AckMode;
  readonly target: SubscriptionTarget;
  /** Most unacknowledged messages for client-ack modes (queue dispatch). */
  readonly prefetch: number;
  /** Unacked deliveries (client modes). */
  unacked: number;
  /** Of those, drained from the inbox when the subscription began: bounded by INBOX_MAX_MESSAGES, not by MAX_UNACKED. */
  unackedDrained: number;
  /**
   * While the inbox is being drained into a new user subscription, live
   * messages wait here so that stored ones arrive first, in order.
   */
  backlog: BacklogItem[] | null;
  /** Inbox claim holding the drained messages until ACK (client modes). */
  claimId?: string;
}

/** `${user}\0${target}`: the key of a user destination. */
export function userKey(user: string, target: string): string {
  return `${user}\0${target}`;
}

/** One user destination's subscribers on this node. */
interface UserDestination {
  readonly target: string;
  subscribers: readonly Subscription[];
}

/**
 * One user's destinations on this node: a list while short (a scan of a few
 * remembered strings is quicker than a hash, and smaller), a Map past
 * USER_LIST_MAX — a session may hold MAX_SUBSCRIPTIONS (1 000) of them, and a
 * scan of those per relayed message would make a large user slow for all.
 */
type UserDestinations = UserDestination[] | Map<string, UserDestination>;
const USER_LIST_MAX = 16;

function findDestination(destinations: UserDestinations, target: string): UserDestination | undefined {
  if (!Array.isArray(destinations)) return destinations.get(target);
  for (const entry of destinations) if (entry.target === target) return entry;
  return undefined;
}

/**
 * Local subscriptions by destination. Adding reports whether it was the
 * first for its key and removing whether it was the last, which is when the
 * node must tell the cluster (presence, topic channel, queue watch).
 */
export class SubscriptionRegistry {
  readonly topics = new Map<string, Set<Subscription>>();
  readonly queues = new Map<string, Subscription[]>();
  /**
   * User destinations by user, then destination: a relayed message's user
   * and destination are strings the envelope codec remembers (their hashes
   * kept), where a `user\0target` key was a new string to build and hash per
   * message (3.6 % of the receiving node at saturation). A user has few
   * destinations, so they are a list, not a second Map (~0.2 KiB a user),
   * until they are many (`UserDestinations`). Each destination's subscribers
   * are few (one user's tabs): an array of one is ~0.2 KiB smaller than a Set
   * of one. Replaced on add and remove, never changed in place, so a
   * delivery iterating one is not disturbed.
   */
  private readonly users = new Map<string, UserDestinations>();
  private readonly queueCursor = new Map<string, number>();

  add(sub: Subscription): boolean {
    const t = sub.target;
    if (t.kind === 'queue') {
      const list = this.queues.get(t.name);
      if (list) {
        list.push(sub);
        return false;
      }
      this.queues.set(t.name, [sub]);
      return true;
    }
    if (t.kind === 'user') {
      let destinations = this.users.get(t.user);
      if (destinations === undefined) this.users.set(t.user, (destinations = []));
      const entry = findDestination(destinations, t.target);
      if (entry) {
        if (!entry.subscribers.includes(sub)) entry.subscribers = [...entry.subscribers, sub];
        return false;
      }
      const fresh: UserDestination = { target: t.target, subscribers: [sub] };
      if (!Array.isArray(destinations)) destinations.set(t.target, fresh);
      else if (destinations.length < USER_LIST_MAX) destinations.push(fresh);
      else this.users.set(t.user, new Map([...destinations, fresh].map((entry) => [entry.target, entry])));
      return true;
    }
    const set = this.topics.get(t.name);
    if (set) {
      set.add(sub);
      return false;
    }
    this.topics.set(t.name, new Set([sub]));
    return true;
  }

  remove(sub: Subscription): boolean {
    const t = sub.target;
    if (t.kind === 'queue') {
      const list = this.queues.get(t.name);
      if (!list) return false;
      const index = list.indexOf(sub);
      if (index === -1) return false;
      list.splice(index, 1);
      if (list.length > 0) return false;
      this.queues.delete(t.name);
      this.queueCursor.delete(t.name);
      return true;
    }
    if (t.kind === 'user') {
      const destinations = this.users.get(t.user);
      const entry = destinations && findDestination(destinations, t.target);
      if (!entry?.subscribers.includes(sub)) return false;
      if (entry.subscribers.length > 1) {
        entry.subscribers = entry.subscribers.filter((other) => other !== sub);
        return false;
      }
      if (Array.isArray(destinations)) destinations.splice(destinations.indexOf(entry), 1);
      else destinations!.delete(t.target);
      if ((Array.isArray(destinations) ? destinations.length : destinations!.size) === 0) this.users.delete(t.user);
      return true;
    }
    const set = this.topics.get(t.name);
    if (!set || !set.delete(sub)) return false;
    if (set.size > 0) return false;
    this.topics.delete(t.name);
    return true;
  }

  topicSubscribers(name: string): Set<Subscription> | undefined {
    return this.topics.get(name);
  }

  userSubscribers(user: string, target: string): readonly Subscription[] | undefined {
    const destinations = this.users.get(user);
    return destinations && findDestination(destinations, target)?.subscribers;
  }

  /** Every user-destination subscription on this node. */
  *allUserSubscriptions(): Iterable<Subscription> {
    for (const destinations of this.users.values()) for (const entry of destinations.values()) yield* entry.subscribers;
  }

  /** Next queue consumer with room, round robin; undefined when all are full. */
  nextQueueConsumer(name: string): Subscription | undefined {
    const list = this.queues.get(name);
    if (!list || list.length === 0) return undefined;
    const start = this.queueCursor.get(name) ?? 0;
    for (let i = 0; i < list.length; i++) {
      const index = (start + i) % list.length;
      const sub = list[index]!;
      // A session that ended is still listed until its release runs: skip it.
      if (!sub.session.connected) continue;
      if (sub.ackMode === 'auto' ? !sub.session.congested : sub.unacked < sub.prefetch) {
        this.queueCursor.set(name, (index + 1) % list.length);
        return sub;
      }
    }
    return undefined;
  }

  queueConsumerCount(name: string): number {
    return this.queues.get(name)?.length ?? 0;
  }
}

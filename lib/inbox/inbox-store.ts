import type { BrokerMessage } from '../broker/message.js';

/**
 * The offline inbox: one ordered list per (user, destination), where
 * `destination` is the user destination without its `/user` prefix
 * (`/queue/reply`). Bounded by `maxMessages` (oldest dropped first, counted
 * in metrics) and expiring `ttlSeconds` after the last append.
 *
 * Guarantees:
 * - `routeOrStore` is atomic with presence: either it returns the live nodes
 *   subscribed to the destination, or it stored the message; never neither.
 * - `take` and `claim` are atomic: a message is handed out by one of them
 *   once, and a message appended concurrently is either in the result or
 *   still in the inbox.
 * - A claimed message stays in the store (under its claim) until `ack`, and
 *   `release` puts what is unacked back at the head of its inbox, in order.
 */
export interface InboxStore {
  routeOrStore(user: string, destination: string, message: BrokerMessage): Promise<string[]>;
  append(user: string, destination: string, message: BrokerMessage): Promise<void>;
  /** Re-inserts messages at the head (oldest first), e.g. after a failed delivery. */
  prepend(user: string, destination: string, messages: readonly BrokerMessage[]): Promise<void>;
  take(user: string, destination: string, max?: number): Promise<BrokerMessage[]>;
  peek(user: string, destination: string, max?: number): Promise<BrokerMessage[]>;
  depth(user: string, destination: string): Promise<number>;
  /** Destinations with stored messages for `user`, with their depth. */
  list(user: string): Promise<Array<{ destination: string; depth: number }>>;
  /** `claimId` is `<nodeId>:<anything>`: the claim belongs to that node until acked or released (or the node dies). */
  claim(claimId: string, user: string, destination: string, max?: number): Promise<BrokerMessage[]>;
  ack(claimId: string, messageIds: readonly string[]): Promise<void>;
  release(claimId: string): Promise<void>;
  close(): Promise<void>;
}

export interface InboxLimits {
  /** @default 1000 */
  maxMessages: number;
  /** @default 604800 (7 days) */
  ttlSeconds: number;
}

export const DEFAULT_INBOX_LIMITS: Readonly<InboxLimits> = Object.freeze({ maxMessages: 1000, ttlSeconds: 7 * 24 * 3600 });

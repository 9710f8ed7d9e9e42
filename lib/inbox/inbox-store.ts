import { BrokerError } from '../core/errors.js';
import type { BrokerMessage } from '../core/message.js';
import type { InboxOverflow } from '../config.js';

export type { InboxOverflow };

/**
 * How a message reaches an inbox. `accepted`: the broker already answered for
 * it (a RECEIPT, an HTTP 2xx) — a re-route after a failed delivery or a dead
 * node — so a full inbox must keep it rather than refuse it.
 */
export interface StoreOptions {
  accepted?: boolean;
}

/**
 * The offline inbox: one ordered list per (user, destination), where
 * `destination` is the user destination without its `/user` prefix
 * (`/queue/reply`). Bounded by `maxMessages` per inbox and by `maxBytes`
 * per user, across all of the user's inboxes (a sender picks the
 * destination, so a bound per inbox would not bound a user), for NEW
 * messages; expiring `ttlSeconds` after the last append.
 *
 * A message's bytes are its size as stored (`encodedMessageSize`: body,
 * headers, id, destination, sender), the same in every backend.
 *
 * Guarantees:
 * - Routing to the inbox (store when nobody is subscribed, atomically with
 *   presence) is the user router's (lib/cluster/user-router.ts), one place
 *   per backend. `append` of a new message to a full inbox under the
 *   `refuse` policy rejects with ERR_INBOX_FULL and stores nothing.
 * - Past `maxBytes`, likewise: refused with ERR_INBOX_FULL, or with
 *   `drop-oldest` the oldest messages of the inbox it goes to are dropped
 *   until the user is back under the bound; when that inbox alone cannot
 *   make room (the user's other inboxes hold the bytes) the new message is
 *   refused even under `drop-oldest`: a burst on one destination never
 *   wipes another.
 * - With `drop-oldest`, a new message for a full inbox drops the oldest
 *   (counted in `dropped`). Messages the broker already accepted are never
 *   refused: `prepend`, `returnToHead` and `release` are never capped, and
 *   an `accepted` append may exceed the cap under `refuse` (under
 *   `drop-oldest` it trims like any append).
 * - `take` and `claim` are atomic: a message is handed out by one of them
 *   once, and a message appended concurrently is either in the result or
 *   still in the inbox.
 * - A claimed message stays in the store (under its claim) until `ack`, and
 *   `release` puts what is unacked back at the head of its inbox, in order.
 * - A timed claim (`claimTimed`, for clients pulling over HTTP) returns to
 *   the head of its inbox, in order, once its visibility timeout passed
 *   without an ack, on whichever node notices first.
 */
export interface InboxStore {
  /** Messages this store dropped from full inboxes (drop-oldest), for stompbox_inbox_dropped_total. */
  readonly dropped: number;
  append(user: string, destination: string, message: BrokerMessage, options?: StoreOptions): Promise<void>;
  /** Re-inserts messages at the head (oldest first), e.g. after a failed delivery. Never capped. */
  prepend(user: string, destination: string, messages: readonly BrokerMessage[]): Promise<void>;
  /**
   * In one atomic step: removes `messages` from claim `claimId` (when given)
   * and puts them at the head of the inbox, oldest first, never capped — a
   * NACKed or unacked message is never lost between the two. With a claim,
   * only the messages it still holds go back (the others were acked,
   * released or returned already), so a retry never returns one twice.
   */
  returnToHead(user: string, destination: string, messages: readonly BrokerMessage[], claimId?: string): Promise<void>;
  take(user: string, destination: string, max?: number): Promise<BrokerMessage[]>;
  peek(user: string, destination: string, max?: number): Promise<BrokerMessage[]>;
  depth(user: string, destination: string): Promise<number>;
  /** Destinations with stored messages for `user`, with their depth. */
  list(user: string): Promise<Array<{ destination: string; depth: number }>>;
  /** `claimId` is `<nodeId>:<anything>`: the claim belongs to that node until acked or released (or the node dies). */
  claim(claimId: string, user: string, destination: string, max?: number): Promise<BrokerMessage[]>;
  /**
   * Puts messages being delivered live (not from the inbox) under `claimId`,
   * as if claimed: kept until acked, back at the inbox head on release or
   * when the claim's node dies. For client-ack deliveries on the sender's node,
   * which no relay stream holds.
   */
  keepClaimed(claimId: string, user: string, destination: string, messages: readonly BrokerMessage[]): Promise<void>;
  ack(claimId: string, messageIds: readonly string[]): Promise<void>;
  release(claimId: string): Promise<void>;
  /**
   * Claims up to `max` messages for `user` until acked or `visibilityTimeoutMs`
   * passed; the claim belongs to the user, not to a node, and survives the
   * node that made it. Nothing to claim: `claimId` null, nothing kept.
   */
  claimTimed(user: string, destination: string, max: number, visibilityTimeoutMs: number): Promise<TimedClaim>;
  /**
   * Acks `messageIds` (all when omitted) of the user's timed claim. Unknown,
   * or another user's: undefined. Expired (returned to the inbox already):
   * nothing acked, `expired` true.
   */
  ackTimed(user: string, claimId: string, messageIds?: readonly string[]): Promise<TimedClaimAck | undefined>;
  close(): Promise<void>;
}

export interface TimedClaim {
  claimId: string | null;
  messages: BrokerMessage[];
  /** When the claim returns to the inbox unless acked (ms since the epoch); null with no claim. */
  expiresAt: number | null;
}

export interface TimedClaimAck {
  acked: number;
  left: number;
  expired: boolean;
}

export interface InboxLimits {
  /** Messages per inbox (user, destination). @default 1000 */
  maxMessages: number;
  /** Bytes per user, across the user's inboxes (stored size, see above). @default 16777216 (16 MiB) */
  maxBytes: number;
  /** @default 604800 (7 days) */
  ttlSeconds: number;
  /** @default refuse */
  overflow: InboxOverflow;
}

export const DEFAULT_INBOX_LIMITS: Readonly<InboxLimits> = Object.freeze({ maxMessages: 1000, maxBytes: 16 * 1024 * 1024, ttlSeconds: 7 * 24 * 3600, overflow: 'refuse' });

/**
 * How long an ended timed claim (acked in full, or expired) is remembered, so
 * that a late or repeated ack is answered (`expired`, nothing acked) rather
 * than 404: ten minutes.
 */
export const ENDED_CLAIM_RETENTION_MS = 10 * 60_000;

/** Timed claim ids: not tied to a node (no `<nodeId>:` owner), unguessable. */
export const TIMED_CLAIM_PREFIX = 'timed:';

export function inboxFullError(user: string, destination: string, maxMessages: number): BrokerError {
  return new BrokerError('ERR_INBOX_FULL', `the inbox of ${user} for ${destination} holds ${maxMessages} messages (INBOX_MAX_MESSAGES)`);
}

export function inboxBytesFullError(user: string, maxBytes: number): BrokerError {
  return new BrokerError('ERR_INBOX_FULL', `the inboxes of ${user} hold ${maxBytes} bytes or would with this message (INBOX_MAX_BYTES)`);
}

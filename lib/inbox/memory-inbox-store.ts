import { randomUUID } from 'node:crypto';
import type { BrokerMessage } from '../core/message.js';
import { encodedMessageSize } from '../cluster/envelope-codec.js';
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

interface Inbox {
  messages: BrokerMessage[];
  /** Stored size of `messages` (encodedMessageSize each). */
  bytes: number;
  expiresAt: number;
}

/** A user's inboxes, by destination, and their bytes together (INBOX_MAX_BYTES is per user). */
interface UserInboxes {
  inboxes: Map<string, Inbox>;
  bytes: number;
}

interface Claim {
  user: string;
  destination: string;
  messages: BrokerMessage[];
  /** A timed claim's deadline (ms since the epoch) and the timer that returns it. */
  deadline?: number;
  timer?: NodeJS.Timeout;
}

/** A timed claim that ended, remembered to answer a late ack. */
interface EndedClaim {
  user: string;
  expired: boolean;
  forgetAt: number;
}

/**
 * Inbox in process memory. Every method runs to completion without awaiting,
 * which makes each one atomic on a single node.
 */
export class MemoryInboxStore implements InboxStore {
  private readonly users = new Map<string, UserInboxes>();
  private readonly claims = new Map<string, Claim>();
  /** In the order they ended, which is the order of `forgetAt`. */
  private readonly ended = new Map<string, EndedClaim>();
  private readonly limits: InboxLimits;
  /** Messages dropped because an inbox was full (oldest first). */
  dropped = 0;

  constructor(limits: Partial<InboxLimits> = {}) {
    this.limits = { ...DEFAULT_INBOX_LIMITS, ...limits };
  }

  async append(user: string, destination: string, message: BrokerMessage, options: StoreOptions = {}): Promise<void> {
    this.appendSync(user, destination, message, options.accepted === true);
  }

  async prepend(user: string, destination: string, messages: readonly BrokerMessage[]): Promise<void> {
    this.prependSync(user, destination, messages);
  }

  async returnToHead(user: string, destination: string, messages: readonly BrokerMessage[], claimId?: string): Promise<void> {
    if (claimId === undefined) {
      this.prependSync(user, destination, messages);
      return;
    }
    // Only what the claim still holds: the rest was acked, released or returned already.
    const held = new Set(this.claims.get(claimId)?.messages.map((m) => m.id));
    const back = messages.filter((m) => held.has(m.id));
    this.ackSync(claimId, back.map((m) => m.id));
    this.prependSync(user, destination, back);
  }

  async take(user: string, destination: string, max = Infinity): Promise<BrokerMessage[]> {
    const inbox = this.open(user, destination, false);
    if (!inbox) return [];
    const taken = inbox.messages.splice(0, max);
    this.removed(user, destination, inbox, taken);
    return taken;
  }

  async peek(user: string, destination: string, max = Infinity): Promise<BrokerMessage[]> {
    return this.open(user, destination, false)?.messages.slice(0, max) ?? [];
  }

  async depth(user: string, destination: string): Promise<number> {
    return this.open(user, destination, false)?.messages.length ?? 0;
  }

  async list(user: string): Promise<Array<{ destination: string; depth: number }>> {
    const out: Array<{ destination: string; depth: number }> = [];
    for (const destination of [...(this.users.get(user)?.inboxes.keys() ?? [])]) {
      const inbox = this.open(user, destination, false);
      if (inbox) out.push({ destination, depth: inbox.messages.length });
    }
    return out.sort((a, b) => a.destination.localeCompare(b.destination));
  }

  async claim(claimId: string, user: string, destination: string, max = Infinity): Promise<BrokerMessage[]> {
    const taken = await this.take(user, destination, max);
    if (taken.length === 0) return taken;
    const claim = this.claims.get(claimId);
    if (claim && (claim.user !== user || claim.destination !== destination)) {
      throw new Error(`claim ${claimId} already holds another inbox`);
    }
    if (claim) claim.messages.push(...taken);
    else this.claims.set(claimId, { user, destination, messages: [...taken] });
    return taken;
  }

  async keepClaimed(claimId: string, user: string, destination: string, messages: readonly BrokerMessage[]): Promise<void> {
    const claim = this.claims.get(claimId);
    if (claim && (claim.user !== user || claim.destination !== destination)) {
      throw new Error(`claim ${claimId} already holds another inbox`);
    }
    if (claim) claim.messages.push(...messages);
    else this.claims.set(claimId, { user, destination, messages: [...messages] });
  }

  async ack(claimId: string, messageIds: readonly string[]): Promise<void> {
    this.ackSync(claimId, messageIds);
  }

  async release(claimId: string): Promise<void> {
    const claim = this.claims.get(claimId);
    if (!claim) return;
    this.claims.delete(claimId);
    clearTimeout(claim.timer);
    this.prependSync(claim.user, claim.destination, claim.messages);
  }

  async claimTimed(user: string, destination: string, max: number, visibilityTimeoutMs: number): Promise<TimedClaim> {
    this.forgetEnded();
    const claimId = TIMED_CLAIM_PREFIX + randomUUID();
    const messages = await this.claim(claimId, user, destination, max);
    if (messages.length === 0) return { claimId: null, messages, expiresAt: null };
    const claim = this.claims.get(claimId)!;
    claim.deadline = Date.now() + visibilityTimeoutMs;
    claim.timer = setTimeout(() => this.expire(claimId, claim), visibilityTimeoutMs);
    // A pending visibility timeout must not keep the process alive.
    claim.timer.unref();
    return { claimId, messages, expiresAt: claim.deadline };
  }

  async ackTimed(user: string, claimId: string, messageIds?: readonly string[]): Promise<TimedClaimAck | undefined> {
    this.forgetEnded();
    const claim = this.claims.get(claimId);
    if (claim?.deadline !== undefined && claim.user === user) {
      // A timer may fire late: past the deadline the claim is returned, as Redis' ack does.
      if (Date.now() >= claim.deadline) this.expire(claimId, claim);
      else {
        const before = claim.messages.length;
        this.ackSync(claimId, messageIds ?? claim.messages.map((m) => m.id));
        const left = this.claims.has(claimId) ? claim.messages.length : 0;
        if (left === 0) this.end(claimId, claim, false);
        return { acked: before - left, left, expired: false };
      }
    }
    const ended = this.ended.get(claimId);
    if (ended?.user !== user) return undefined;
    return { acked: 0, left: 0, expired: ended.expired };
  }

  async close(): Promise<void> {
    for (const claim of this.claims.values()) clearTimeout(claim.timer);
  }

  /** A timed claim's visibility timeout passed: back to the head of its inbox, in order. */
  private expire(claimId: string, claim: Claim): void {
    if (this.claims.get(claimId) !== claim) return;
    this.claims.delete(claimId);
    this.prependSync(claim.user, claim.destination, claim.messages);
    this.end(claimId, claim, true);
  }

  private end(claimId: string, claim: Claim, expired: boolean): void {
    clearTimeout(claim.timer);
    this.ended.delete(claimId);
    this.ended.set(claimId, { user: claim.user, expired, forgetAt: Date.now() + ENDED_CLAIM_RETENTION_MS });
  }

  private forgetEnded(): void {
    const now = Date.now();
    for (const [claimId, ended] of this.ended) {
      if (ended.forgetAt > now) break;
      this.ended.delete(claimId);
    }
  }

  private ackSync(claimId: string, messageIds: readonly string[]): void {
    const claim = this.claims.get(claimId);
    if (!claim) return;
    const acked = new Set(messageIds);
    claim.messages = claim.messages.filter((m) => !acked.has(m.id));
    if (claim.messages.length === 0) this.claims.delete(claimId);
  }

  /** Synchronous, for the memory router's atomic route-or-store (memory-user-router.ts). */
  appendSync(user: string, destination: string, message: BrokerMessage, accepted: boolean): void {
    const { maxMessages, maxBytes, overflow } = this.limits;
    const size = encodedMessageSize(message);
    const current = this.open(user, destination, false);
    if (!accepted) {
      if (overflow === 'refuse' && (current?.messages.length ?? 0) >= maxMessages) throw inboxFullError(user, destination, maxMessages);
      // drop-oldest may free this inbox's bytes, and no other's.
      const freeable = overflow === 'drop-oldest' ? (current?.bytes ?? 0) : 0;
      if (!this.fits(user, size, freeable)) throw inboxBytesFullError(user, maxBytes);
    }
    const inbox = current ?? this.open(user, destination, true)!;
    inbox.messages.push(message);
    this.added(user, inbox, size);
    inbox.expiresAt = Date.now() + this.limits.ttlSeconds * 1000;
    if (overflow === 'drop-oldest') this.trim(user, inbox);
  }

  private prependSync(user: string, destination: string, messages: readonly BrokerMessage[]): void {
    if (messages.length === 0) return;
    const inbox = this.open(user, destination, true)!;
    inbox.messages.unshift(...messages);
    this.added(user, inbox, messages.reduce((sum, m) => sum + encodedMessageSize(m), 0));
  }

  /** Whether `size` more bytes fit the user's bound once `freeable` bytes are dropped; expired inboxes are forgotten first. */
  private fits(user: string, size: number, freeable: number): boolean {
    const entry = this.users.get(user);
    if (!entry || entry.bytes - freeable + size <= this.limits.maxBytes) return true;
    for (const destination of [...entry.inboxes.keys()]) this.open(user, destination, false);
    return entry.bytes - freeable + size <= this.limits.maxBytes;
  }

  /** drop-oldest: the oldest of `inbox` go until it is within maxMessages and the user within maxBytes; never the newest. */
  private trim(user: string, inbox: Inbox): void {
    const entry = this.users.get(user)!;
    let drop = 0;
    let freed = 0;
    const { maxMessages, maxBytes } = this.limits;
    while (drop < inbox.messages.length - 1 && (inbox.messages.length - drop > maxMessages || entry.bytes - freed > maxBytes)) {
      freed += encodedMessageSize(inbox.messages[drop]!);
      drop++;
    }
    if (drop === 0) return;
    inbox.messages.splice(0, drop);
    inbox.bytes -= freed;
    entry.bytes -= freed;
    this.dropped += drop;
  }

  private added(user: string, inbox: Inbox, size: number): void {
    inbox.bytes += size;
    this.users.get(user)!.bytes += size;
  }

  /** `taken` left `inbox`: its bytes too; an emptied inbox is forgotten. */
  private removed(user: string, destination: string, inbox: Inbox, taken: readonly BrokerMessage[]): void {
    const size = taken.reduce((sum, m) => sum + encodedMessageSize(m), 0);
    inbox.bytes -= size;
    this.users.get(user)!.bytes -= size;
    if (inbox.messages.length === 0) this.forget(user, destination);
  }

  private forget(user: string, destination: string): void {
    const entry = this.users.get(user);
    const inbox = entry?.inboxes.get(destination);
    if (!entry || !inbox) return;
    entry.inboxes.delete(destination);
    entry.bytes -= inbox.bytes;
    if (entry.inboxes.size === 0) this.users.delete(user);
  }

  private open(user: string, destination: string, create: boolean): Inbox | undefined {
    let inbox = this.users.get(user)?.inboxes.get(destination);
    if (inbox && inbox.expiresAt <= Date.now()) {
      this.forget(user, destination);
      inbox = undefined;
    }
    if (!inbox && create) {
      let entry = this.users.get(user);
      if (!entry) this.users.set(user, (entry = { inboxes: new Map(), bytes: 0 }));
      inbox = { messages: [], bytes: 0, expiresAt: Date.now() + this.limits.ttlSeconds * 1000 };
      entry.inboxes.set(destination, inbox);
    }
    return inbox;
  }
}

import type { BrokerMessage } from '../broker/message.js';
import type { MemoryPresence } from '../cluster/memory-presence.js';
import { DEFAULT_INBOX_LIMITS, type InboxLimits, type InboxStore } from './inbox-store.js';

interface Inbox {
  messages: BrokerMessage[];
  expiresAt: number;
}

interface Claim {
  user: string;
  destination: string;
  messages: BrokerMessage[];
}

/**
 * Inbox in process memory. Every method runs to completion without awaiting,
 * which makes each one atomic on a single node.
 */
export class MemoryInboxStore implements InboxStore {
  private readonly inboxes = new Map<string, Inbox>();
  private readonly claims = new Map<string, Claim>();
  private readonly limits: InboxLimits;
  /** Messages dropped because an inbox was full (oldest first). */
  dropped = 0;

  constructor(
    private readonly presence: MemoryPresence,
    limits: Partial<InboxLimits> = {},
  ) {
    this.limits = { ...DEFAULT_INBOX_LIMITS, ...limits };
  }

  async routeOrStore(user: string, destination: string, message: BrokerMessage): Promise<string[]> {
    const nodes = this.presence.nodesForSync(user, destination);
    if (nodes.length > 0) return nodes;
    this.appendSync(user, destination, message);
    return [];
  }

  async append(user: string, destination: string, message: BrokerMessage): Promise<void> {
    this.appendSync(user, destination, message);
  }

  async prepend(user: string, destination: string, messages: readonly BrokerMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const inbox = this.open(user, destination, true)!;
    inbox.messages.unshift(...messages);
    this.trim(inbox);
  }

  async take(user: string, destination: string, max = Infinity): Promise<BrokerMessage[]> {
    const inbox = this.open(user, destination, false);
    if (!inbox) return [];
    const taken = inbox.messages.splice(0, max);
    if (inbox.messages.length === 0) this.inboxes.delete(key(user, destination));
    return taken;
  }

  async peek(user: string, destination: string, max = Infinity): Promise<BrokerMessage[]> {
    return this.open(user, destination, false)?.messages.slice(0, max) ?? [];
  }

  async depth(user: string, destination: string): Promise<number> {
    return this.open(user, destination, false)?.messages.length ?? 0;
  }

  async list(user: string): Promise<Array<{ destination: string; depth: number }>> {
    const prefix = `${user}\0`;
    const out: Array<{ destination: string; depth: number }> = [];
    for (const [k] of this.inboxes) {
      if (!k.startsWith(prefix)) continue;
      const destination = k.slice(prefix.length);
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

  async ack(claimId: string, messageIds: readonly string[]): Promise<void> {
    const claim = this.claims.get(claimId);
    if (!claim) return;
    const acked = new Set(messageIds);
    claim.messages = claim.messages.filter((m) => !acked.has(m.id));
    if (claim.messages.length === 0) this.claims.delete(claimId);
  }

  async release(claimId: string): Promise<void> {
    const claim = this.claims.get(claimId);
    if (!claim) return;
    this.claims.delete(claimId);
    await this.prepend(claim.user, claim.destination, claim.messages);
  }

  async close(): Promise<void> {}

  private appendSync(user: string, destination: string, message: BrokerMessage): void {
    const inbox = this.open(user, destination, true)!;
    inbox.messages.push(message);
    inbox.expiresAt = Date.now() + this.limits.ttlSeconds * 1000;
    this.trim(inbox);
  }

  private trim(inbox: Inbox): void {
    const excess = inbox.messages.length - this.limits.maxMessages;
    if (excess > 0) {
      inbox.messages.splice(0, excess);
      this.dropped += excess;
    }
  }

  private open(user: string, destination: string, create: boolean): Inbox | undefined {
    const k = key(user, destination);
    let inbox = this.inboxes.get(k);
    if (inbox && inbox.expiresAt <= Date.now()) {
      this.inboxes.delete(k);
      inbox = undefined;
    }
    if (!inbox && create) {
      inbox = { messages: [], expiresAt: Date.now() + this.limits.ttlSeconds * 1000 };
      this.inboxes.set(k, inbox);
    }
    return inbox;
  }
}

function key(user: string, destination: string): string {
  return `${user}\0${destination}`;
}

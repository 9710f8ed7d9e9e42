import type { BrokerMessage } from '../core/message.js';
import { encodedMessageSize } from '../cluster/envelope-codec.js';
import { DEFAULT_QUEUE_LIMITS, queueFullError, type QueueLimits, type QueueStore } from './queue-store.js';

/** Queues in process memory, for a single node. */
export class MemoryQueueStore implements QueueStore {
  private readonly queues = new Map<string, BrokerMessage[]>();
  /** Stored size of what waits in each queue (QUEUE_MAX_BYTES). */
  private readonly bytes = new Map<string, number>();
  private readonly inFlight = new Map<string, Map<string, BrokerMessage>>();
  private readonly watched = new Set<string>();
  private readonly listeners: Array<(queue: string) => void> = [];
  private readonly limits: QueueLimits;

  constructor(limits: Partial<QueueLimits> = {}) {
    this.limits = { ...DEFAULT_QUEUE_LIMITS, ...limits };
  }

  async push(queue: string, message: BrokerMessage): Promise<void> {
    let list = this.queues.get(queue);
    if (!list) this.queues.set(queue, (list = []));
    if (list.length >= this.limits.maxMessages) throw queueFullError(queue, this.limits, false);
    const size = encodedMessageSize(message);
    if ((this.bytes.get(queue) ?? 0) + size > this.limits.maxBytes) throw queueFullError(queue, this.limits, true);
    list.push(message);
    this.addBytes(queue, size);
    if (this.watched.has(queue)) this.notify(queue);
  }

  async pop(queue: string, max: number): Promise<BrokerMessage[]> {
    const list = this.queues.get(queue);
    if (!list || list.length === 0) return [];
    const taken = list.splice(0, max);
    this.addBytes(queue, -sizeOf(taken));
    if (list.length === 0) this.queues.delete(queue);
    let flight = this.inFlight.get(queue);
    if (!flight) this.inFlight.set(queue, (flight = new Map()));
    for (const message of taken) flight.set(message.id, message);
    return taken;
  }

  async ack(queue: string, messageIds: readonly string[]): Promise<void> {
    const flight = this.inFlight.get(queue);
    if (!flight) return;
    for (const id of messageIds) flight.delete(id);
    if (flight.size === 0) this.inFlight.delete(queue);
  }

  async requeue(queue: string, messages: readonly BrokerMessage[]): Promise<void> {
    if (messages.length === 0) return;
    await this.ack(
      queue,
      messages.map((m) => m.id),
    );
    let list = this.queues.get(queue);
    if (!list) this.queues.set(queue, (list = []));
    list.unshift(...messages);
    this.addBytes(queue, sizeOf(messages));
    if (this.watched.has(queue)) this.notify(queue);
  }

  async watch(queue: string): Promise<void> {
    this.watched.add(queue);
    if (this.queues.has(queue)) this.notify(queue);
  }

  async unwatch(queue: string): Promise<void> {
    this.watched.delete(queue);
  }

  onAvailable(listener: (queue: string) => void): void {
    this.listeners.push(listener);
  }

  async depth(queue: string): Promise<number> {
    return this.queues.get(queue)?.length ?? 0;
  }

  async recoverNode(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {}

  private addBytes(queue: string, n: number): void {
    const bytes = (this.bytes.get(queue) ?? 0) + n;
    if (bytes > 0) this.bytes.set(queue, bytes);
    else this.bytes.delete(queue);
  }

  private notify(queue: string): void {
    // Deferred so a push never re-enters the broker's dispatch loop.
    queueMicrotask(() => {
      for (const listener of this.listeners) listener(queue);
    });
  }
}

function sizeOf(messages: readonly BrokerMessage[]): number {
  return messages.reduce((sum, m) => sum + encodedMessageSize(m), 0);
}

import { BrokerError } from '../core/errors.js';
import type { BrokerMessage } from '../core/message.js';

/**
 * Storage for `/queue/...` destinations: each message goes to exactly one
 * consumer in the cluster. Messages wait here while no consumer exists,
 * bounded per queue by `maxMessages` and by `maxBytes` (their stored size,
 * `encodedMessageSize`; what is in flight to a consumer does not count, as
 * in RabbitMQ's `max-length-bytes`): a push beyond either is refused with
 * ERR_QUEUE_FULL so the sender learns of it rather than losing data
 * silently. A requeue (NACK, session end, dead node) is never refused.
 *
 * Delivery is pull-based: a node that has consumers with room calls `pop`,
 * which atomically moves messages into the node's in-flight set; `ack`
 * forgets them, `requeue` puts them back at the head (NACK, session end).
 * What a dead node held in flight goes back to its queue when the node is
 * recovered (`recoverNode`).
 */
export interface QueueStore {
  push(queue: string, message: BrokerMessage): Promise<void>;
  pop(queue: string, max: number): Promise<BrokerMessage[]>;
  ack(queue: string, messageIds: readonly string[]): Promise<void>;
  requeue(queue: string, messages: readonly BrokerMessage[]): Promise<void>;
  /** This node has its first consumer of `queue`: notify it of pushes. */
  watch(queue: string): Promise<void>;
  /** Last local consumer gone. */
  unwatch(queue: string): Promise<void>;
  /** Called when messages may be available in a watched queue. */
  onAvailable(listener: (queue: string) => void): void;
  depth(queue: string): Promise<number>;
  recoverNode(nodeId: string): Promise<number>;
  close(): Promise<void>;
}

export interface QueueLimits {
  /** Messages waiting per queue. @default 10000 */
  maxMessages: number;
  /** Bytes waiting per queue (stored size). @default 67108864 (64 MiB) */
  maxBytes: number;
}

export const DEFAULT_QUEUE_LIMITS: Readonly<QueueLimits> = Object.freeze({ maxMessages: 10000, maxBytes: 64 * 1024 * 1024 });

export function queueFullError(queue: string, limits: QueueLimits, bytes: boolean): BrokerError {
  return bytes
    ? new BrokerError('ERR_QUEUE_FULL', `queue ${queue} holds ${limits.maxBytes} bytes or would with this message (QUEUE_MAX_BYTES)`)
    : new BrokerError('ERR_QUEUE_FULL', `queue ${queue} holds ${limits.maxMessages} messages (QUEUE_MAX_MESSAGES)`);
}

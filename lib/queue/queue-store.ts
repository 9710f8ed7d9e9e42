import type { BrokerMessage } from '../core/message.js';

/**
 * Storage for `/queue/...` destinations: each message goes to exactly one
 * consumer in the cluster. Messages wait here while no consumer exists
 * (bounded by `maxMessages` per queue: a push beyond it is refused with
 * ERR_QUEUE_FULL so the sender learns of it rather than losing data silently).
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
  /** @default 10000 */
  maxMessages: number;
}

export const DEFAULT_QUEUE_LIMITS: Readonly<QueueLimits> = Object.freeze({ maxMessages: 10000 });

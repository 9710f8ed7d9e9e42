import type { BrokerMessage } from '../core/message.js';
import { addToSetMap, MemoryHub, removeFromSetMap } from './memory-hub.js';
import type { Relay, RelayEnvelope, RelayHandler } from './relay.js';

/**
 * In-process relay. Delivery is a direct call on the target node's handler,
 * queued as a microtask so that callers never re-enter the broker.
 */
export class MemoryRelay implements Relay {
  constructor(
    readonly nodeId: string,
    readonly hub: MemoryHub = new MemoryHub(),
  ) {}

  async start(handler: RelayHandler): Promise<void> {
    this.hub.relayHandlers.set(this.nodeId, handler);
  }

  /** The memory router's hand-over (memory-user-router.ts): a direct call on each node's handler. */
  async sendToNodes(nodeIds: readonly string[], envelope: RelayEnvelope): Promise<void> {
    await Promise.all(nodeIds.map((id) => this.hub.relayHandlers.get(id)?.(envelope)));
  }

  async publishTopic(message: BrokerMessage): Promise<void> {
    const nodes = this.hub.topicNodes.get(message.destination);
    if (!nodes) return;
    const envelope: RelayEnvelope = { kind: 'topic', message };
    await Promise.all([...nodes].filter((id) => id !== this.nodeId).map((id) => this.hub.relayHandlers.get(id)?.(envelope)));
  }

  async subscribeTopic(destination: string): Promise<void> {
    addToSetMap(this.hub.topicNodes, destination, this.nodeId);
  }

  async unsubscribeTopic(destination: string): Promise<void> {
    removeFromSetMap(this.hub.topicNodes, destination, this.nodeId);
  }

  async recoverNode(): Promise<number> {
    // Memory delivery is synchronous with sendToNodes: nothing is ever left in flight.
    return 0;
  }

  /** Memory delivery is a direct call: nothing is ever undecodable. */
  readonly deadLettered = 0;

  async deadLetterCount(): Promise<number> {
    return 0;
  }

  async reopen(): Promise<void> {}

  async drain(): Promise<void> {}

  async close(): Promise<void> {
    this.hub.relayHandlers.delete(this.nodeId);
    for (const [destination] of this.hub.topicNodes) removeFromSetMap(this.hub.topicNodes, destination, this.nodeId);
  }
}

import { addToSetMap, MemoryHub, removeFromSetMap, subscriptionKey } from './memory-hub.js';
import type { NodeInfo, NodeStats, PresenceRegistry, RecoveryHandler, RejoinCause } from './presence.js';

/** Presence held in process memory: exact and immediate; nodes never die unannounced. */
export class MemoryPresence implements PresenceRegistry {
  constructor(
    readonly nodeId: string,
    readonly hub: MemoryHub = new MemoryHub(),
  ) {}

  async start(): Promise<void> {
    const now = Date.now();
    this.hub.nodes.set(this.nodeId, { id: this.nodeId, startedAt: now, lastBeat: now, connections: 0, sessions: 0 });
  }

  async leave(): Promise<void> {
    await this.close();
  }

  async close(): Promise<void> {
    this.hub.nodes.delete(this.nodeId);
    for (const [user] of this.hub.userNodes) removeFromSetMap(this.hub.userNodes, user, this.nodeId);
    for (const [key] of this.hub.subscriptions) removeFromSetMap(this.hub.subscriptions, key, this.nodeId);
  }

  setStats(stats: NodeStats): void {
    const info = this.hub.nodes.get(this.nodeId);
    if (info) Object.assign(info, stats, { lastBeat: Date.now() });
  }

  async userOnline(user: string): Promise<void> {
    addToSetMap(this.hub.userNodes, user, this.nodeId);
  }

  async userOffline(user: string): Promise<void> {
    removeFromSetMap(this.hub.userNodes, user, this.nodeId);
  }

  async subscribed(user: string, destination: string): Promise<void> {
    addToSetMap(this.hub.subscriptions, subscriptionKey(user, destination), this.nodeId);
  }

  async unsubscribed(user: string, destination: string): Promise<void> {
    removeFromSetMap(this.hub.subscriptions, subscriptionKey(user, destination), this.nodeId);
  }

  async nodesFor(user: string, destination: string): Promise<string[]> {
    return this.nodesForSync(user, destination);
  }

  /** Synchronous lookup for the memory router's atomic route-or-store. */
  nodesForSync(user: string, destination: string): string[] {
    const set = this.hub.subscriptions.get(subscriptionKey(user, destination));
    return set ? [...set] : [];
  }

  async nodesOf(user: string): Promise<string[]> {
    const set = this.hub.userNodes.get(user);
    return set ? [...set] : [];
  }

  async isOnline(user: string): Promise<boolean> {
    return this.hub.userNodes.has(user);
  }

  async onlineCount(): Promise<number> {
    return this.hub.userNodes.size;
  }

  async onlineUsers(limit = 1000): Promise<string[]> {
    return [...this.hub.userNodes.keys()].sort().slice(0, limit);
  }

  async liveNodes(): Promise<NodeInfo[]> {
    return [...this.hub.nodes.values()].map((node) => ({ ...node }));
  }

  /** Nodes in one process never die unannounced: nothing to recover. */
  onRecover(_handler: RecoveryHandler): void {}

  onRejoined(_listener: (cause: RejoinCause) => void): void {}

  leaseValid(): boolean {
    return true;
  }

  async awaitLease(): Promise<void> {}

  async pendingRecoveries(): Promise<string[]> {
    return [];
  }
}

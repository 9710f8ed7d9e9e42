/**
 * The presence registry: which nodes are alive, which nodes hold sessions of
 * which users, and which nodes hold subscriptions of a user to a user
 * destination (`/queue/reply` for a session subscribed to `/user/queue/reply`).
 *
 * A node reports transitions only (first / last local session of a user,
 * first / last local subscription of a user to a destination), so the
 * registry costs one write per transition, not per session.
 *
 * Guarantee: a node that stops beating drops out of every answer within
 * `nodeTimeoutMs` (3 beats by default), whether it closed cleanly or was
 * killed; its entries are then removed by any surviving node.
 */
export interface NodeStats {
  connections: number;
  sessions: number;
  /** Base URL of the node's HTTP API, for the admin view. */
  url?: string;
}

export interface NodeInfo extends NodeStats {
  id: string;
  startedAt: number;
  lastBeat: number;
}

export interface PresenceRegistry {
  readonly nodeId: string;
  /** Registers this node and starts beating. */
  start(): Promise<void>;
  /** Stops beating and removes this node and its entries. */
  close(): Promise<void>;
  /** Stats published with each beat. */
  setStats(stats: NodeStats): void;

  userOnline(user: string): Promise<void>;
  userOffline(user: string): Promise<void>;
  subscribed(user: string, destination: string): Promise<void>;
  unsubscribed(user: string, destination: string): Promise<void>;

  /** Live nodes holding a subscription of `user` to `destination`. */
  nodesFor(user: string, destination: string): Promise<string[]>;
  /** Live nodes holding any session of `user`. */
  nodesOf(user: string): Promise<string[]>;
  isOnline(user: string): Promise<boolean>;
  onlineCount(): Promise<number>;
  onlineUsers(limit?: number): Promise<string[]>;
  liveNodes(): Promise<NodeInfo[]>;
  /**
   * Called with the id of a node that dropped out (missed its beats), on
   * exactly one surviving node: the one that reaps it and recovers what it left.
   */
  onNodeDown(listener: (nodeId: string) => void): void;
}

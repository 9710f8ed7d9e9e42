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
 *
 * Membership: a node is declared dead only on evidence gathered while the
 * declaring node reached the registry without a break for a whole timeout,
 * so an outage of the registry itself never gets a live node reaped. What a
 * dead node left (its relay stream, inbox claims, in-flight queue messages)
 * is recorded under a recovery tag and recovered by any live node, resumably:
 * `onRecover` handlers run until nothing of the tag is left. A node that finds
 * it was dropped anyway registers again and tells `onRejoined` listeners, who
 * take back what was stored for its users meanwhile.
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

/**
 * Recovers what a dead node left under `tag` (`<nodeId>!<n>`): stream
 * `stream:<tag>`, claims `node-claims:<tag>`, in-flight `node-queues:<tag>`.
 * Must be idempotent: it may run again after a partial run.
 */
export type RecoveryHandler = (tag: string, deadNode: string) => Promise<void>;

/** Why a node rejoined: it had been reaped, or only its key had expired (a pause, an outage). */
export type RejoinCause = 'reaped' | 'expired';

export interface PresenceRegistry {
  readonly nodeId: string;
  /** Registers this node and starts beating. */
  start(): Promise<void>;
  /** Stops beating and removes this node's entries: nothing is routed here any more. */
  leave(): Promise<void>;
  /** Leaves, hands over for recovery whatever this node could not drain itself, disconnects. */
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
  /** Runs on a live node for each dead node's tag it takes over (see RecoveryHandler). */
  onRecover(handler: RecoveryHandler): void;
  /** This node was dropped (reaped, or its key expired) and is registered again. */
  onRejoined(listener: (cause: RejoinCause) => void): void;
  /** Whether this node is surely still registered (its last beat is younger than the timeout). */
  leaseValid(): boolean;
  /** Resolves once the lease holds again (the next good beat), or the registry closes. */
  awaitLease(): Promise<void>;
  /** Tags of dead nodes not yet fully recovered. */
  pendingRecoveries(): Promise<string[]>;
}

/*
 * Sessions per user (MAX_CONNECTIONS_PER_USER): counted on CONNECT, released
 * when the session ends. In memory the count is this node's, which is the
 * whole cluster; with Redis it is the cluster's (redis-user-sessions.ts), so
 * a user cannot open the bound's worth of sessions on every node.
 */
export interface UserSessionCount {
  /** Counts one more session of `user` unless the user holds the bound already; false: refused, nothing counted. */
  acquire(user: string): Promise<boolean>;
  /** A session that `acquire` counted ended. */
  release(user: string): void;
  /** Stops counting; resolves once what was written is written. */
  close(): Promise<void>;
}

/** Sessions per user on this node: the memory implementation, and the Redis one's local truth. */
export class LocalSessionCounts {
  private readonly counts = new Map<string, number>();

  get(user: string): number {
    return this.counts.get(user) ?? 0;
  }

  /** Adds `delta`; returns the new count (0 forgets the user). */
  add(user: string, delta: number): number {
    const count = Math.max(0, this.get(user) + delta);
    if (count === 0) this.counts.delete(user);
    else this.counts.set(user, count);
    return count;
  }

  users(): string[] {
    return [...this.counts.keys()];
  }
}

export class MemoryUserSessionCount implements UserSessionCount {
  private readonly local = new LocalSessionCounts();

  constructor(private readonly max: number) {}

  async acquire(user: string): Promise<boolean> {
    if (this.local.get(user) >= this.max) return false;
    this.local.add(user, 1);
    return true;
  }

  release(user: string): void {
    this.local.add(user, -1);
  }

  async close(): Promise<void> {}
}

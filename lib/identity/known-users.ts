/*
 * Who counts as a known user for RECIPIENT_POLICY=known: a user who logged
 * in within the inbox TTL (so that nobody can fill inboxes of names that do
 * not exist), or in static mode the configured users. One write per login;
 * the Redis version is in redis-known-users.ts.
 */

export interface KnownUsers {
  /** Records a login; one write. */
  loggedIn(user: string): Promise<void>;
  isKnown(user: string): Promise<boolean>;
  close(): Promise<void>;
}

/** Static mode: the users of AUTH_USERS, whether they logged in or not. */
export class StaticKnownUsers implements KnownUsers {
  constructor(private readonly users: ReadonlySet<string>) {}

  async loggedIn(): Promise<void> {}

  async isKnown(user: string): Promise<boolean> {
    return this.users.has(user);
  }

  async close(): Promise<void> {}
}

/** One node without Redis: logins of this process, each remembered for `ttlSeconds`. */
export class MemoryKnownUsers implements KnownUsers {
  private readonly lastLogin = new Map<string, number>();

  constructor(
    private readonly ttlSeconds: number,
    private readonly now: () => number = Date.now,
  ) {}

  async loggedIn(user: string): Promise<void> {
    // Re-inserted, so the map stays ordered by last login and expired entries are at its head.
    this.lastLogin.delete(user);
    this.lastLogin.set(user, this.now());
    const oldest = this.now() - this.ttlSeconds * 1000;
    for (const [name, at] of this.lastLogin) {
      if (at >= oldest) break;
      this.lastLogin.delete(name);
    }
  }

  async isKnown(user: string): Promise<boolean> {
    const at = this.lastLogin.get(user);
    return at !== undefined && at >= this.now() - this.ttlSeconds * 1000;
  }

  async close(): Promise<void> {}
}

/*
 * User routing in one process: the decision and the store happen in one
 * synchronous step (nothing is awaited between reading the subscribed nodes
 * and appending to the inbox), which is what makes it atomic here, as the
 * one script call makes it atomic in Redis (redis-user-router.ts).
 */
import type { MemoryInboxStore } from '../inbox/memory-inbox-store.js';
import type { MemoryPresence } from './memory-presence.js';
import type { MemoryRelay } from './memory-relay.js';
import type { RouteOutcome, UserRoute, UserRouter, UserRouteResult } from './user-router.js';

export class MemoryUserRouter implements UserRouter {
  constructor(
    private readonly nodeId: string,
    private readonly presence: MemoryPresence,
    private readonly inbox: MemoryInboxStore,
    private readonly relay: MemoryRelay,
  ) {}

  routeTo(route: UserRoute, outcome: RouteOutcome): void {
    this.route(route).then(
      (result) => outcome.routed(result),
      (error: unknown) => outcome.failed(error),
    );
  }

  async route({ user, destination, message, exclude, kept }: UserRoute): Promise<UserRouteResult> {
    const live = this.presence.nodesForSync(user, destination).filter((id) => id !== exclude);
    if (live.length === 0) {
      this.inbox.appendSync(user, destination, message, kept === true);
      return { local: false, remote: [], stored: true };
    }
    const remote = live.filter((id) => id !== this.nodeId);
    if (remote.length > 0) await this.relay.sendToNodes(remote, { kind: 'user', user, destination, message });
    return { local: live.includes(this.nodeId), remote, stored: false };
  }
}

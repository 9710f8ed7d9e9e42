/*
 * Routing a message to a user destination: the one decision every SEND to
 * `/user/{name}/...` needs. Per message, atomically with presence: the live
 * nodes holding a subscription of `user` to `destination` get it (remote ones
 * durably, through the relay; this node's share comes back as `local`), or —
 * none — it is stored in the user's inbox. Never neither.
 */
import type { BrokerMessage } from '../broker/message.js';
import type { InboxStore } from '../inbox/inbox-store.js';
import type { Relay } from './relay.js';

export interface UserRoute {
  user: string;
  /** The user destination without its prefix, e.g. `/queue/reply`. */
  destination: string;
  message: BrokerMessage;
  /** A node to leave out (this node, when its own delivery just failed). */
  exclude?: string;
  /**
   * The message was accepted already (a re-route after a failed delivery or
   * a node's death): it must be kept, never refused (full inbox, full stream).
   */
  kept?: boolean;
}

export interface UserRouteResult {
  /** This node holds subscribers: deliver locally. */
  local: boolean;
  /** Remote nodes the message was relayed to. */
  remote: string[];
  /** Nobody subscribed: the message is in the inbox. */
  stored: boolean;
}

export interface UserRouter {
  route(route: UserRoute): Promise<UserRouteResult>;
}

/**
 * The router made of the inbox's `routeOrStore` and the relay's
 * `sendToNodes`: right for any pair of backends (the memory ones in
 * particular), at two calls per message.
 */
export class ComposedUserRouter implements UserRouter {
  constructor(
    private readonly nodeId: string,
    private readonly inbox: InboxStore,
    private readonly relay: Relay,
  ) {}

  async route({ user, destination, message, exclude, kept }: UserRoute): Promise<UserRouteResult> {
    const options = { accepted: kept === true };
    const nodes = await this.inbox.routeOrStore(user, destination, message, options);
    if (nodes.length === 0) return { local: false, remote: [], stored: true };
    const live = exclude === undefined ? nodes : nodes.filter((id) => id !== exclude);
    const remote = live.filter((id) => id !== this.nodeId);
    if (remote.length > 0) await this.relay.sendToNodes(remote, { kind: 'user', user, destination, message });
    const local = live.includes(this.nodeId);
    if (!local && remote.length === 0) {
      // Only the excluded node holds the user: keep the message.
      await this.inbox.append(user, destination, message, options);
      return { local: false, remote: [], stored: true };
    }
    return { local, remote, stored: false };
  }
}

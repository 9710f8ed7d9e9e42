/*
 * Routing a message to a user destination: the one decision every SEND to
 * `/user/{name}/...` needs. Per message, atomically with presence: the live
 * nodes holding a subscription of `user` to `destination` get it (remote ones
 * durably, through the relay; this node's share comes back as `local`), or —
 * none — it is stored in the user's inbox. Never neither.
 *
 * This is route-or-store's one place per backend: MemoryUserRouter (one
 * synchronous step) and RedisUserRouter (one script call per batch), both
 * held to spec/cluster/user-router.contract.ts.
 */
import type { BrokerMessage } from '../core/message.js';

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

/**
 * Told once how one route ended: `routed` or `failed`, never both, and never
 * throwing back into the router. The SEND path's own object (Broker's
 * UserSend) is one, so that no promise is made per SEND (docs/bench/
 * two-node-profile.md, "Session 17").
 */
export interface RouteOutcome {
  routed(result: UserRouteResult): void;
  failed(error: unknown): void;
}

export interface UserRouter {
  route(route: UserRoute): Promise<UserRouteResult>;
  /** `route`, its end told to `outcome` as it is settled (the caller orders its answers, as Session does). */
  routeTo(route: UserRoute, outcome: RouteOutcome): void;
}

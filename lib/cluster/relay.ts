import type { BrokerMessage } from '../core/message.js';

/**
 * What crosses between nodes.
 * - `user`: for the sessions of `user` subscribed to `destination`
 *   (`/queue/reply` for a subscription to `/user/queue/reply`) on the node.
 * - `topic`: for the subscribers of `message.destination` on the node.
 */
export type RelayEnvelope =
  | { kind: 'user'; user: string; destination: string; message: BrokerMessage }
  | { kind: 'topic'; message: BrokerMessage };

/**
 * Keeps the relay from forgetting the envelope being handled: call it once
 * per delivery still owed to a client (a client-ack MESSAGE not yet acked),
 * and call what it returns once that delivery is settled (acked, or kept
 * elsewhere durably). Until then a durable relay keeps the envelope, so a
 * crash of this node hands it over instead of losing it.
 */
export interface RelayHold {
  (): () => void;
  /**
   * The envelope was written to a socket that no ACK will confirm (ack:auto):
   * keep its entry for the replay window, since the frame may not have left
   * the process. An entry neither held nor marked so is forgotten at once.
   */
  unconfirmed(): void;
}

/**
 * Delivers envelopes to this node; resolves once local delivery is done (or
 * the message is stored), so a durable relay may then forget it — unless
 * `hold` was taken (see RelayHold).
 */
export type RelayHandler = (envelope: RelayEnvelope, hold?: RelayHold) => Promise<void> | void;

/**
 * The relay between nodes.
 *
 * User envelopes are written by the user router (route-or-store, atomic
 * with presence: user-router.ts), which knows the relay's storage; the relay
 * reads them on the target node, in order per (sender node, target node),
 * and hands what a dead node left to `recoverNode`.
 *
 * Guarantees:
 * - `publishTopic` is at most once, like every topic broker: it reaches the
 *   nodes that subscribed to the topic at the time.
 */
export interface Relay {
  readonly nodeId: string;
  start(handler: RelayHandler): Promise<void>;
  publishTopic(message: BrokerMessage): Promise<void>;
  /** First local subscriber of a topic on this node. */
  subscribeTopic(destination: string): Promise<void>;
  /** Last local subscriber gone. */
  unsubscribeTopic(destination: string): Promise<void>;
  /**
   * Takes over what a dead node left undelivered under its recovery tag,
   * handing each envelope to `handler` (which re-routes it), forgetting each
   * batch once handed over: resumable by another node if this one dies.
   */
  recoverNode(tag: string, handler: RelayHandler): Promise<number>;
  /** Makes this node receivable again at once (after it was dropped from the cluster and rejoined). */
  reopen(): Promise<void>;
  /**
   * Stops reading and delivers what is left for this node to the handler
   * (leave presence first, so that nothing more is sent here). `close()`
   * drains again and disconnects.
   */
  drain(): Promise<void>;
  /** Entries written by this node to the dead-letter stream (undecodable, or failing past every retry). */
  readonly deadLettered: number;
  /** Entries in the cluster's dead-letter stream, kept for an operator to inspect. */
  deadLetterCount(): Promise<number>;
  close(): Promise<void>;
}

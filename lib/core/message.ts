/**
 * A message as the broker holds it between SEND and MESSAGE: what crosses
 * the relay, sits in an inbox or waits in a queue. Plain data, so every
 * backend can encode it.
 */
export interface BrokerMessage {
  /** Cluster-unique; becomes the MESSAGE `message-id` (STOMP 1.2 "MESSAGE"). */
  id: string;
  /** The destination as sent, e.g. `/topic/a`, `/queue/b`, `/user/bob/queue/c`. */
  destination: string;
  /** Application headers to pass through (content-type and custom ones). */
  headers: Record<string, string>;
  body: Buffer;
  /** Authenticated user who sent it, when there is one; set by the broker. */
  sender?: string;
  /** Milliseconds since the epoch when the broker accepted it. */
  timestamp: number;
}

let counter = 0;
const prefixes = new Map<string, string>();

/**
 * `<node>-<start36>-<counter36>`: unique across nodes (ids differ), across
 * restarts of one node id (the process start time differs) and within a
 * process (the counter; 2^53 ids before it could repeat). The prefix is
 * built once: this runs for every message.
 */
export function createMessageId(nodeId: string): string {
  let prefix = prefixes.get(nodeId);
  if (prefix === undefined) {
    prefix = `${nodeId}-${Date.now().toString(36)}-`;
    prefixes.set(nodeId, prefix);
  }
  return prefix + (++counter).toString(36);
}

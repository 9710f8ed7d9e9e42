import type { ErrorCode } from '../core/errors.js';

/** Plain counters on the hot path; the metrics module reads them on scrape. */
export class BrokerStats {
  bytesIn = 0;
  bytesOut = 0;
  framesIn = 0;
  framesOut = 0;
  messagesDelivered = 0;
  routedLocal = 0;
  routedRemote = 0;
  storedInbox = 0;
  /** Envelopes this node received from the relay (targeted routing costs only the nodes that hold the user). */
  relayReceived = 0;
  droppedUndeliverable = 0;
  readonly errors = new Map<ErrorCode, number>();

  countError(code: ErrorCode): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }
}

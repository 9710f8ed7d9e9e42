/*
 * Write coalescing: STOMP frames written to one connection during one turn
 * of the event loop leave as one WebSocket message, in one socket write.
 * Under load that divides the per-frame costs (a writev syscall, WebSocket
 * framing on both ends) by the batch size; at low rates a batch is a single
 * frame and the delay is one setImmediate. STOMP allows it: a WebSocket
 * message may carry several frames, and client parsers (stompjs, stomp.js
 * 2.x, Spring's) read them all. Text and binary frames never share a message,
 * so a body that is not UTF-8 still reaches a browser as a binary message.
 *
 * One setImmediate flushes every dirty connection, not one per connection.
 */

/** A batch this large is written at once rather than at the end of the turn. */
const FLUSH_BYTES = 64 * 1024;

export type WriteMessage = (data: Buffer, binary: boolean) => void;

/*
 * The connections written to in this turn. An array reused in place, not a
 * Set: Set.clear() swaps in a fresh table that the old one links to, and at
 * one clear per turn that chain of tables kept reaching the old generation.
 */
const dirty: WriteCoalescer[] = [];
let scheduled = false;

function flushAll(): void {
  scheduled = false;
  // A flush may lead to more writes (a drained socket); those wait for the next turn.
  const count = dirty.length;
  for (let i = 0; i < count; i++) {
    const coalescer = dirty[i]!;
    coalescer.queued = false;
    coalescer.flush();
  }
  dirty.splice(0, count);
}

export class WriteCoalescer {
  private parts: Buffer[] = [];
  private bytes = 0;
  private binary = false;
  /** In `dirty`, waiting for the end-of-turn flush. */
  queued = false;

  constructor(private readonly write: WriteMessage) {}

  /** Bytes held, not yet handed to the socket. */
  get pendingBytes(): number {
    return this.bytes;
  }

  push(data: Buffer, binary: boolean): void {
    if (this.parts.length > 0 && binary !== this.binary) this.flush();
    this.parts.push(data);
    this.bytes += data.length;
    this.binary = binary;
    if (this.bytes >= FLUSH_BYTES) {
      this.flush();
      return;
    }
    if (this.queued) return;
    this.queued = true;
    dirty.push(this);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flushAll);
    }
  }

  flush(): void {
    if (this.parts.length === 0) return;
    const data = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.bytes);
    this.parts.length = 0;
    this.bytes = 0;
    this.write(data, this.binary);
  }

  /** Drops what is held (the socket is gone). */
  discard(): void {
    this.parts.length = 0;
    this.bytes = 0;
    // Left in `dirty` if queued: its flush then finds nothing to write.
  }
}

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

const dirty = new Set<WriteCoalescer>();
let scheduled = false;

function flushAll(): void {
  scheduled = false;
  for (const coalescer of dirty) coalescer.flush();
  dirty.clear();
}

export class WriteCoalescer {
  private parts: Buffer[] = [];
  private bytes = 0;
  private binary = false;

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
    dirty.add(this);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flushAll);
    }
  }

  flush(): void {
    if (this.parts.length === 0) return;
    const data = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.bytes);
    this.parts = [];
    this.bytes = 0;
    this.write(data, this.binary);
  }

  /** Drops what is held (the socket is gone). */
  discard(): void {
    this.parts = [];
    this.bytes = 0;
    dirty.delete(this);
  }
}

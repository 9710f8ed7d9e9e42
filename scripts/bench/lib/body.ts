/*
 * The benchmark message body: a small header carrying the run id, the pair
 * (stream) index, a sequence number and the send time, padded to the payload
 * size. The send time is process.hrtime (CLOCK_MONOTONIC), in milliseconds:
 * on Linux it is one clock for every process of the machine, so a publisher
 * in one child process and a subscriber in another still compare times.
 *
 * Binary layout (24 bytes, little-endian):
 *   0  u32 magic 0x3142_5342 ("SBB1")
 *   4  u32 run id
 *   8  u32 stream (pair) index
 *  12  u32 sequence number
 *  16  f64 send time, ms
 *
 * Text layout (46 bytes, ASCII, fixed width so it parses without scanning):
 *   "SB1:" run(8 hex) ":" stream(8 hex) ":" seq(8 hex) ":" micros(14 hex) ";"
 * followed by 'x' padding. Text bodies stay valid UTF-8 for brokers that
 * send WebSocket text frames.
 */

export const BINARY_HEADER_BYTES = 24;
export const TEXT_HEADER_BYTES = 46;
const BINARY_MAGIC = 0x31425342;
const TEXT_MAGIC = 'SB1:';

export interface BodyStamp {
  run: number;
  stream: number;
  seq: number;
  /** Send time in ms on the monotonic clock. */
  sentMs: number;
}

/** Monotonic time in ms, comparable across processes of one machine. */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function minPayload(binary: boolean): number {
  return binary ? BINARY_HEADER_BYTES : TEXT_HEADER_BYTES;
}

/** A reusable body buffer of `size` bytes: the padding is written once, the header on each stamp. */
export function createBodyTemplate(size: number, binary: boolean): Buffer {
  if (size < minPayload(binary)) {
    throw new RangeError(`payload of ${size} bytes is smaller than the ${minPayload(binary)}-byte bench header (option --payload)`);
  }
  const body = Buffer.alloc(size, binary ? 0 : 0x78 /* x */);
  if (binary) {
    // A non-trivial pattern, NUL bytes included, to exercise content-length framing.
    for (let i = BINARY_HEADER_BYTES; i < size; i++) body[i] = (i * 31) & 0xff;
  }
  return body;
}

/** Writes the header into `body` in place (the caller copies or serializes it before the next stamp). */
export function stampBody(body: Buffer, binary: boolean, stamp: BodyStamp): Buffer {
  if (binary) {
    body.writeUInt32LE(BINARY_MAGIC, 0);
    body.writeUInt32LE(stamp.run >>> 0, 4);
    body.writeUInt32LE(stamp.stream >>> 0, 8);
    body.writeUInt32LE(stamp.seq >>> 0, 12);
    body.writeDoubleLE(stamp.sentMs, 16);
    return body;
  }
  const micros = Math.round(stamp.sentMs * 1000);
  const head =
    TEXT_MAGIC +
    hex(stamp.run, 8) +
    ':' +
    hex(stamp.stream, 8) +
    ':' +
    hex(stamp.seq, 8) +
    ':' +
    hex(micros, 14) +
    ';';
  body.write(head, 0, 'latin1');
  return body;
}

function hex(value: number, width: number): string {
  return value.toString(16).padStart(width, '0');
}

/** Reads a header written by stampBody, text or binary; null when the body is not a bench message. */
export function readStamp(body: Buffer): BodyStamp | null {
  if (body.length >= BINARY_HEADER_BYTES && body.readUInt32LE(0) === BINARY_MAGIC) {
    return {
      run: body.readUInt32LE(4),
      stream: body.readUInt32LE(8),
      seq: body.readUInt32LE(12),
      sentMs: body.readDoubleLE(16),
    };
  }
  if (body.length >= TEXT_HEADER_BYTES && body.toString('latin1', 0, 4) === TEXT_MAGIC) {
    const run = parseInt(body.toString('latin1', 4, 12), 16);
    const stream = parseInt(body.toString('latin1', 13, 21), 16);
    const seq = parseInt(body.toString('latin1', 22, 30), 16);
    const micros = parseInt(body.toString('latin1', 31, 45), 16);
    if (Number.isNaN(run) || Number.isNaN(stream) || Number.isNaN(seq) || Number.isNaN(micros)) return null;
    return { run, stream, seq, sentMs: micros / 1000 };
  }
  return null;
}

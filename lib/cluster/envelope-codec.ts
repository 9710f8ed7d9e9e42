/*
 * Binary encoding of a BrokerMessage and of a RelayEnvelope, for what the
 * cluster keeps in Redis (relay streams, pub/sub payloads, inboxes, claims,
 * queues). This is the relay's hot path: one allocation per encode, no JSON,
 * no base64; the body travels as raw bytes.
 *
 * Layout (big-endian; "str16" = u16 byte length + UTF-8 bytes):
 *
 *   message   u8      format version (MESSAGE_FORMAT = 1)
 *             str16   id            ← always at offset 1, so Lua scripts can
 *                                     read it (see `luaMessageId`)
 *             str16   destination
 *             u16     sender length + 1 (0: no sender), then the sender bytes
 *             f64     timestamp (ms since the epoch; exact below 2^53)
 *             u16     header count, then per header:
 *                       str16 name, u32 value length + value bytes
 *             u32     body length + body bytes
 *
 *   envelope  u8      kind (1: user, 2: topic)
 *             user:   str16 user, str16 destination
 *             then the message, as above
 *
 *   batch     (u32 envelope length + envelope bytes), repeated: several
 *             envelopes in one relay stream entry (field `b`). The user
 *             router lays a decision's envelopes out so (its `bodies`
 *             argument), and its script writes slices of that as entries
 *
 * Strings that are names (id, destination, user, sender, header name) are
 * bounded by the STOMP header-line limit and get 16-bit lengths; header
 * values and the body get 32-bit ones. Encoding a name longer than 65535
 * bytes throws rather than truncating.
 *
 * Decoding validates every length against the buffer and throws a
 * BrokerError ERR_INTERNAL on malformed input (Redis handed back something
 * this codec did not write). Decoded bodies are copies, so a small message
 * never pins the large socket chunk it arrived in.
 */
import { BrokerError } from '../core/errors.js';
import { createHeaders, RepeatedStrings } from '../stomp/index.js';
import type { BrokerMessage } from '../core/message.js';
import type { RelayEnvelope } from './relay.js';


export const MESSAGE_FORMAT = 1;
/** Every name this process decodes, remembered by its bytes (the message id, unique, is not). */
const repeated = new RepeatedStrings();
const KIND_USER = 1;
const KIND_TOPIC = 2;
const U16_MAX = 0xffff;

/**
 * The UTF-8 bytes of the names a node encodes again and again — users,
 * destinations, the sender, header names and short values — by their text:
 * a lookup and a copy in place of two native calls per string (measure,
 * then write), which were most of an encode on the sending node. Short
 * texts only; emptied when full, so a stream of unique values costs a
 * refill, never memory. Message ids, unique, are not looked up.
 */
const MAX_NAME_CHARS = 64;
const NAME_LIMIT = 1024;
const nameBytes = new Map<string, Uint8Array>();

function bytesOfName(text: string): Uint8Array | undefined {
  let bytes = nameBytes.get(text);
  if (bytes === undefined && text.length <= MAX_NAME_CHARS) {
    // A copy of its own: a slice of Buffer's shared pool would pin the whole pool chunk.
    bytes = new Uint8Array(Buffer.from(text, 'utf8'));
    if (nameBytes.size >= NAME_LIMIT) nameBytes.clear();
    nameBytes.set(text, bytes);
  }
  return bytes;
}

function nameSize(text: string): number {
  return bytesOfName(text)?.length ?? Buffer.byteLength(text);
}

/** Bytes `encodeMessage` produces for `message`. */
export function encodedMessageSize(message: BrokerMessage): number {
  let size = 1 + 2 + Buffer.byteLength(message.id) + 2 + nameSize(message.destination) + 2 + 8 + 2 + 4;
  if (message.sender !== undefined) size += nameSize(message.sender);
  const headers = message.headers;
  for (const name in headers) size += 2 + nameSize(name) + 4 + nameSize(headers[name]!);
  return size + message.body.length;
}

export function encodeMessage(message: BrokerMessage): Buffer {
  const buf = Buffer.allocUnsafe(encodedMessageSize(message));
  writeMessage(buf, 0, message);
  return buf;
}

/** `prefix` followed by the encoded message, in one allocation (e.g. a pub/sub payload led by its origin). */
export function encodeMessageAfter(prefix: Buffer, message: BrokerMessage): Buffer {
  const buf = Buffer.allocUnsafe(prefix.length + encodedMessageSize(message));
  prefix.copy(buf, 0);
  writeMessage(buf, prefix.length, message);
  return buf;
}

export function decodeMessage(buf: Buffer): BrokerMessage {
  const reader = new Reader(buf);
  const message = readMessage(reader);
  reader.end();
  return message;
}

export function encodeEnvelope(envelope: RelayEnvelope): Buffer {
  const buf = Buffer.allocUnsafe(envelopeSize(envelope));
  writeEnvelope(buf, 0, envelope);
  return buf;
}

/** Bytes `encodeEnvelope` produces for `envelope`. */
export function envelopeSize(envelope: RelayEnvelope): number {
  const messageSize = encodedMessageSize(envelope.message);
  if (envelope.kind === 'topic') return 1 + messageSize;
  return 1 + 2 + nameSize(envelope.user) + 2 + nameSize(envelope.destination) + messageSize;
}

/**
 * `encodeEnvelope` into `buf` at `offset`, which has `envelopeSize` bytes of
 * room (the router's record arena). Throws as the encoder does (a field past
 * its bound), with part of it written.
 */
export function writeEnvelope(buf: Buffer, offset: number, envelope: RelayEnvelope): void {
  if (envelope.kind === 'topic') {
    buf[offset] = KIND_TOPIC;
    writeMessage(buf, offset + 1, envelope.message);
    return;
  }
  buf[offset] = KIND_USER;
  let at = writeName16(buf, offset + 1, envelope.user, 'user');
  at = writeName16(buf, at, envelope.destination, 'destination');
  writeMessage(buf, at, envelope.message);
}

export function decodeEnvelope(buf: Buffer): RelayEnvelope {
  const reader = new Reader(buf);
  const kind = reader.u8();
  let envelope: RelayEnvelope;
  if (kind === KIND_TOPIC) {
    envelope = { kind: 'topic', message: readMessage(reader) };
  } else if (kind === KIND_USER) {
    const user = reader.name16();
    const destination = reader.name16();
    envelope = { kind: 'user', user, destination, message: readMessage(reader) };
  } else {
    throw malformed(`unknown envelope kind ${kind}`);
  }
  reader.end();
  return envelope;
}

/**
 * The envelopes of a batch entry, in order. A length running past the end
 * throws ERR_INTERNAL, like any malformed envelope.
 */
export function decodeEnvelopeBatch(buf: Buffer): RelayEnvelope[] {
  const envelopes: RelayEnvelope[] = [];
  let at = 0;
  while (at < buf.length) {
    if (at + 4 > buf.length) throw malformed('truncated envelope length in a batch');
    const length = buf.readUInt32BE(at);
    at += 4;
    if (at + length > buf.length) throw malformed('envelope runs past the end of its batch');
    envelopes.push(decodeEnvelope(buf.subarray(at, at + length)));
    at += length;
  }
  return envelopes;
}

/** A batch as a stream entry holds it (the router's hand-off; its decision call lays the same out beside each message's head). */
export function encodeEnvelopeBatch(envelopes: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const envelope of envelopes) {
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32BE(envelope.length, 0);
    parts.push(length, envelope);
  }
  return Buffer.concat(parts);
}

/**
 * A Lua expression reading the id of an encoded message held in the Lua
 * variable `name` — for scripts that must find messages by id (claims,
 * in-flight queue messages). Kept here, beside the layout it depends on.
 */
export function luaMessageId(name: string): string {
  return `string.sub(${name}, 4, 3 + string.byte(${name}, 2) * 256 + string.byte(${name}, 3))`;
}

function writeMessage(buf: Buffer, start: number, message: BrokerMessage): void {
  buf[start] = MESSAGE_FORMAT;
  let offset = writeStr16(buf, start + 1, message.id, 'message id');
  offset = writeName16(buf, offset, message.destination, 'destination');
  if (message.sender === undefined) {
    offset = writeU16(buf, offset, 0);
  } else {
    const bytes = bytesOfName(message.sender);
    const length = bytes === undefined ? buf.write(message.sender, offset + 2, 'utf8') : copyBytes(buf, offset + 2, bytes);
    if (length + 1 > U16_MAX) throw tooLong('sender', length);
    writeU16(buf, offset, length + 1);
    offset += 2 + length;
  }
  offset = buf.writeDoubleBE(message.timestamp, offset);
  const headers = message.headers;
  const countAt = offset;
  let count = 0;
  offset += 2;
  for (const name in headers) {
    offset = writeName16(buf, offset, name, 'header name');
    const value = headers[name]!;
    const bytes = bytesOfName(value);
    const length = bytes === undefined ? buf.write(value, offset + 4, 'utf8') : copyBytes(buf, offset + 4, bytes);
    writeU32(buf, offset, length);
    offset += 4 + length;
    count++;
  }
  if (count > U16_MAX) throw tooLong('header count', count);
  writeU16(buf, countAt, count);
  offset = writeU32(buf, offset, message.body.length);
  buf.set(message.body, offset);
}

/**
 * Writes the str16 at `offset` (the buffer is sized for it), returns the
 * offset after it. Lengths are written after their strings, so that each
 * string is measured once (for the buffer's size): these native calls were
 * most of an encode.
 */
function writeStr16(buf: Buffer, offset: number, value: string, what: string): number {
  const length = buf.write(value, offset + 2, 'utf8');
  if (length > U16_MAX) throw tooLong(what, length);
  writeU16(buf, offset, length);
  return offset + 2 + length;
}

/** `writeStr16` for a name: its remembered bytes when it has some. */
function writeName16(buf: Buffer, offset: number, value: string, what: string): number {
  const bytes = bytesOfName(value);
  if (bytes === undefined) return writeStr16(buf, offset, value, what);
  // At most MAX_NAME_CHARS × 3 bytes: within a u16.
  writeU16(buf, offset, bytes.length);
  return offset + 2 + copyBytes(buf, offset + 2, bytes);
}

/** Copies `bytes` to `buf` at `offset`, returns their length. A loop: these are a few dozen bytes, below what a native copy pays to start. */
function copyBytes(buf: Buffer, offset: number, bytes: Uint8Array): number {
  const length = bytes.length;
  for (let i = 0; i < length; i++) buf[offset + i] = bytes[i]!;
  return length;
}

function writeU16(buf: Buffer, offset: number, value: number): number {
  buf[offset] = value >>> 8;
  buf[offset + 1] = value & 0xff;
  return offset + 2;
}

function writeU32(buf: Buffer, offset: number, value: number): number {
  buf[offset] = value >>> 24;
  buf[offset + 1] = (value >>> 16) & 0xff;
  buf[offset + 2] = (value >>> 8) & 0xff;
  buf[offset + 3] = value & 0xff;
  return offset + 4;
}

function readMessage(reader: Reader): BrokerMessage {
  const format = reader.u8();
  if (format !== MESSAGE_FORMAT) throw malformed(`unknown message format ${format}`);
  const id = reader.str16();
  const destination = reader.name16();
  const senderLength = reader.u16();
  const sender = senderLength === 0 ? undefined : reader.name(senderLength - 1);
  const timestamp = reader.f64();
  const count = reader.u16();
  // As in the STOMP layer: nothing inherited, a header named `__proto__` is a plain key.
  const headers = createHeaders();
  for (let i = 0; i < count; i++) {
    const name = reader.name16();
    headers[name] = reader.name(reader.u32());
  }
  const body = reader.bytes(reader.u32());
  const message: BrokerMessage = { id, destination, headers, body, timestamp };
  if (sender !== undefined) message.sender = sender;
  return message;
}

class Reader {
  private offset = 0;
  constructor(private readonly buf: Buffer) {}

  u8(): number {
    this.need(1);
    return this.buf[this.offset++]!;
  }

  u16(): number {
    this.need(2);
    const value = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  u32(): number {
    this.need(4);
    const value = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  f64(): number {
    this.need(8);
    const value = this.buf.readDoubleBE(this.offset);
    this.offset += 8;
    return value;
  }

  str16(): string {
    return this.str(this.u16());
  }

  /** A string that repeats across messages (a user, a destination, a header): see repeated-strings.ts. */
  name16(): string {
    return this.name(this.u16());
  }

  name(length: number): string {
    this.need(length);
    const value = repeated.decode(this.buf, this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  str(length: number): string {
    this.need(length);
    const value = this.buf.toString('utf8', this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  bytes(length: number): Buffer {
    this.need(length);
    const value = Buffer.from(this.buf.subarray(this.offset, this.offset + length));
    this.offset += length;
    return value;
  }

  end(): void {
    if (this.offset !== this.buf.length) throw malformed(`${this.buf.length - this.offset} trailing bytes`);
  }

  private need(length: number): void {
    if (this.offset + length > this.buf.length) throw malformed('truncated');
  }
}

function malformed(detail: string): BrokerError {
  return new BrokerError('ERR_INTERNAL', `malformed cluster envelope: ${detail}`);
}

function tooLong(what: string, length: number): RangeError {
  return new RangeError(`${what} of ${length} bytes does not fit the cluster envelope (at most 65535)`);
}

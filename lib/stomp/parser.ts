/*
 * A streaming, byte-based STOMP frame parser.
 *
 * Input arrives in arbitrary chunks (a WebSocket message may hold part of a
 * frame, one frame, or several). The parser is a small state machine that
 * never re-scans bytes it has consumed:
 *
 *   FRAME_START  skips EOLs between frames; each is a heart-beat (STOMP 1.2
 *                "Heart-beating": "the receiver MUST be prepared to receive"
 *                EOLs between frames).
 *   COMMAND,     read one line at a time; `\r\n` and `\n` both end a line
 *   HEADERS      (1.2 "Augmented BNF"). A blank line ends the headers.
 *   BODY_LENGTH  a `content-length` header fixes the body size; the body may
 *                hold NUL bytes and must be followed by one NUL
 *                (1.2 "Header content-length").
 *   BODY_NUL     without `content-length`, the body ends at the first NUL.
 *
 * Every limit is checked as bytes arrive, so a client can make the parser
 * hold at most `maxFrameSize` bytes. A violation produces one typed
 * StompCodecError through `onError` and the parser refuses further input:
 * nothing throws out of `push()`.
 */
import { StompCodecError } from './errors.js';
import { unescapeHeader } from './escaping.js';
import { createHeaders, isUnescapedCommand, type StompFrame, type StompHeaders, type StompVersion } from './frame.js';
import { DEFAULT_FRAME_LIMITS, type FrameLimits } from './limits.js';
import { RepeatedStrings } from './repeated-strings.js';

export interface ParserHandlers {
  onFrame(frame: StompFrame): void;
  /** One EOL received between frames. */
  onHeartbeat?(): void;
  /** The input is not STOMP, or exceeds a limit; the parser stops. */
  onError(error: StompCodecError): void;
}

const enum State {
  FrameStart,
  Command,
  Headers,
  BodyLength,
  BodyNul,
  Failed,
}

const LF = 0x0a;
const CR = 0x0d;
const NUL = 0x00;
const COLON = 0x3a;
const COMMAND_PATTERN = /^[A-Za-z]+$/;

/**
 * Strings a frame's bytes are matched against before any is decoded: a
 * command line or header name equal to one of them becomes that constant
 * string. Decoding a short string costs ~0.2 µs on the project's machine and a
 * new string must be hashed to be a key; every SEND carries a command and two
 * or three of these names (the sending node's profile at saturation: the line
 * decode and its slices ~10 %).
 */
type KnownStrings = readonly (readonly { bytes: Buffer; text: string }[] | undefined)[];

function knownStrings(texts: readonly string[]): KnownStrings {
  const byLength: { bytes: Buffer; text: string }[][] = [];
  for (const text of texts) (byLength[text.length] ??= []).push({ bytes: Buffer.from(text, 'latin1'), text });
  return byLength;
}

const KNOWN_COMMANDS = knownStrings(['SEND', 'SUBSCRIBE', 'UNSUBSCRIBE', 'ACK', 'NACK', 'BEGIN', 'COMMIT', 'ABORT', 'DISCONNECT', 'CONNECT', 'STOMP']);
const KNOWN_HEADER_NAMES = knownStrings([
  'destination',
  'content-type',
  'content-length',
  'receipt',
  'id',
  'ack',
  'subscription',
  'transaction',
  'message-id',
  'accept-version',
  'host',
  'heart-beat',
  'login',
  'passcode',
]);

/** Header values as decoded before, by their bytes: a client repeats its destination and content-type on every SEND. */
const headerValues = new RepeatedStrings();

/** The known string `line[start, end)` spells, byte for byte; undefined when none. */
function knownString(known: KnownStrings, line: Buffer, start: number, end: number): string | undefined {
  const candidates = known[end - start];
  if (candidates === undefined) return undefined;
  next: for (const { bytes, text } of candidates) {
    for (let i = 0; i < bytes.length; i++) if (line[start + i] !== bytes[i]) continue next;
    return text;
  }
  return undefined;
}
const CONTENT_LENGTH_PATTERN = /^\d{1,15}$/;
const EMPTY = Buffer.alloc(0);
/** What the parser holds between frames (never handed out). */
const NO_HEADERS: StompHeaders = Object.freeze(createHeaders());

/** Limits filled in once per limits object, not once per parser (a broker has one for all its sessions). */
const resolvedLimits = new WeakMap<Partial<FrameLimits>, FrameLimits>();

function resolveLimits(limits: Partial<FrameLimits>): FrameLimits {
  let resolved = resolvedLimits.get(limits);
  if (resolved === undefined) resolvedLimits.set(limits, (resolved = Object.freeze({ ...DEFAULT_FRAME_LIMITS, ...limits })));
  return resolved;
}

export class StompParser {
  /**
   * The negotiated version, which decides header unescaping. The session
   * sets it after CONNECT; until then only CONNECT/STOMP (never escaped)
   * are expected.
   */
  version: StompVersion = '1.2';

  private readonly limits: FrameLimits;
  private state = State.FrameStart;
  private partialLine: Buffer | null = null;
  private command = '';
  private headers: StompHeaders = NO_HEADERS;
  private headerCount = 0;
  private unescaped = false;
  private frameBytes = 0;
  private contentLength = 0;
  private bodyChunks: Buffer[] = [];
  private bodyBytes = 0;

  constructor(
    private readonly handlers: ParserHandlers,
    limits: Partial<FrameLimits> = {},
  ) {
    this.limits = resolveLimits(limits);
  }

  get failed(): boolean {
    return this.state === State.Failed;
  }

  /** Bytes held for the frame in progress: bounded by `maxFrameSize`. */
  get bufferedBytes(): number {
    return (this.partialLine?.length ?? 0) + this.bodyBytes;
  }

  push(chunk: Buffer | string): void {
    if (this.state === State.Failed) return;
    const data = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    try {
      this.consume(data);
    } catch (error) {
      if (!(error instanceof StompCodecError)) throw error;
      this.fail(error);
    }
  }

  private fail(error: StompCodecError): void {
    this.state = State.Failed;
    this.partialLine = null;
    this.bodyChunks = [];
    this.bodyBytes = 0;
    this.handlers.onError(error);
  }

  private consume(data: Buffer): void {
    const length = data.length;
    let pos = 0;
    while (pos < length) {
      switch (this.state) {
        case State.FrameStart: {
          const byte = data[pos];
          if (byte === LF) {
            pos++;
            this.handlers.onHeartbeat?.();
            continue;
          }
          if (byte === CR) {
            // The CR of a CRLF heart-beat; its LF counts the beat.
            pos++;
            continue;
          }
          this.startFrame();
          continue;
        }
        case State.Command:
        case State.Headers: {
          const lf = data.indexOf(LF, pos);
          if (lf === -1) {
            this.holdPartialLine(data.subarray(pos));
            return;
          }
          let line: Buffer;
          let start: number;
          let end: number;
          if (this.partialLine !== null) {
            line = Buffer.concat([this.partialLine, data.subarray(pos, lf)]);
            this.partialLine = null;
            start = 0;
            end = line.length;
          } else {
            line = data;
            start = pos;
            end = lf;
          }
          pos = lf + 1;
          this.frameBytes += end - start + 1;
          if (end > start && line[end - 1] === CR) end--;
          if (end - start > this.limits.maxHeaderLineLength) {
            throw new StompCodecError(
              'ERR_STOMP_HEADER_LINE_TOO_LONG',
              `header line longer than ${this.limits.maxHeaderLineLength} bytes (limit maxHeaderLineLength)`,
            );
          }
          this.checkFrameSize(0);
          if (this.state === State.Command) this.readCommand(line, start, end);
          else if (end === start) this.endHeaders();
          else this.readHeader(line, start, end);
          continue;
        }
        case State.BodyLength: {
          const needed = this.contentLength - this.bodyBytes;
          if (needed > 0) {
            const take = Math.min(needed, length - pos);
            this.bodyChunks.push(data.subarray(pos, pos + take));
            this.bodyBytes += take;
            pos += take;
            continue;
          }
          if (data[pos] !== NUL) {
            throw new StompCodecError(
              'ERR_STOMP_MISSING_NUL',
              `frame body of content-length ${this.contentLength} is not followed by a NUL byte`,
            );
          }
          pos++;
          this.emitFrame();
          continue;
        }
        case State.BodyNul: {
          const nul = data.indexOf(NUL, pos);
          const end = nul === -1 ? length : nul;
          const take = end - pos;
          if (take > 0) {
            if (this.bodyBytes + take > this.limits.maxBodySize) {
              throw new StompCodecError(
                'ERR_STOMP_BODY_TOO_LARGE',
                `frame body larger than ${this.limits.maxBodySize} bytes (limit maxBodySize)`,
              );
            }
            this.bodyChunks.push(data.subarray(pos, end));
            this.bodyBytes += take;
            // +1: the terminating NUL counts towards the frame, as with content-length.
            this.checkFrameSize(this.bodyBytes + 1);
          }
          pos = end;
          if (nul !== -1) {
            pos++;
            this.emitFrame();
          }
          continue;
        }
        case State.Failed:
          return;
      }
    }
  }

  private startFrame(): void {
    this.state = State.Command;
    this.frameBytes = 0;
    this.headers = createHeaders();
    this.headerCount = 0;
    this.bodyChunks.length = 0;
    this.bodyBytes = 0;
  }

  private holdPartialLine(piece: Buffer): void {
    const held = (this.partialLine?.length ?? 0) + piece.length;
    // +1 leaves room for the CR of a CRLF line end still to come.
    if (held > this.limits.maxHeaderLineLength + 1) {
      throw new StompCodecError(
        'ERR_STOMP_HEADER_LINE_TOO_LONG',
        `header line longer than ${this.limits.maxHeaderLineLength} bytes (limit maxHeaderLineLength)`,
      );
    }
    if (this.frameBytes + held > this.limits.maxFrameSize) this.frameTooLarge();
    // Copy: a retained subarray would pin the whole transport chunk.
    this.partialLine = this.partialLine === null ? Buffer.from(piece) : Buffer.concat([this.partialLine, piece]);
  }

  private readCommand(line: Buffer, start: number, end: number): void {
    const command = knownString(KNOWN_COMMANDS, line, start, end) ?? line.toString('utf8', start, end);
    if (!COMMAND_PATTERN.test(command)) {
      throw new StompCodecError('ERR_STOMP_MALFORMED_FRAME', `malformed command line "${command.slice(0, 64)}"`);
    }
    this.command = command;
    this.unescaped = isUnescapedCommand(command);
    this.state = State.Headers;
  }

  private readHeader(line: Buffer, start: number, end: number): void {
    if (++this.headerCount > this.limits.maxHeaders) {
      throw new StompCodecError(
        'ERR_STOMP_TOO_MANY_HEADERS',
        `more than ${this.limits.maxHeaders} headers (limit maxHeaders)`,
      );
    }
    // The first ':' byte is the first ':' character: no UTF-8 sequence holds 0x3a.
    let colon = start;
    while (colon < end && line[colon] !== COLON) colon++;
    if (colon === start || colon === end) {
      throw new StompCodecError(
        'ERR_STOMP_MALFORMED_FRAME',
        colon === start ? 'header with an empty name' : `header line without a colon "${line.toString('utf8', start, end).slice(0, 64)}"`,
      );
    }
    // A known name holds no '\\', so it needs no unescaping either.
    let name = knownString(KNOWN_HEADER_NAMES, line, start, colon);
    if (name === undefined) {
      name = line.toString('utf8', start, colon);
      if (!this.unescaped) name = unescapeHeader(name, this.version);
    }
    let value = headerValues.decode(line, colon + 1, end);
    if (!this.unescaped) value = unescapeHeader(value, this.version);
    // STOMP 1.2 "Repeated Header Entries": only the first is used.
    if (!(name in this.headers)) this.headers[name] = value;
  }

  private endHeaders(): void {
    const declared = this.headers['content-length'];
    if (declared === undefined) {
      this.checkFrameSize(1); // the terminating NUL
      this.state = State.BodyNul;
      return;
    }
    const trimmed = declared.trim();
    if (!CONTENT_LENGTH_PATTERN.test(trimmed)) {
      throw new StompCodecError('ERR_STOMP_INVALID_CONTENT_LENGTH', `invalid content-length "${declared.slice(0, 32)}"`);
    }
    const size = Number(trimmed);
    if (size > this.limits.maxBodySize) {
      throw new StompCodecError(
        'ERR_STOMP_BODY_TOO_LARGE',
        `content-length ${size} exceeds ${this.limits.maxBodySize} bytes (limit maxBodySize)`,
      );
    }
    this.checkFrameSize(size + 1);
    this.contentLength = size;
    this.state = State.BodyLength;
  }

  private checkFrameSize(extra: number): void {
    if (this.frameBytes + extra > this.limits.maxFrameSize) this.frameTooLarge();
  }

  private frameTooLarge(): never {
    throw frameTooLargeError(this.limits.maxFrameSize);
  }

  private emitFrame(): void {
    const chunks = this.bodyChunks;
    const body = chunks.length === 0 ? EMPTY : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.bodyBytes);
    const frame: StompFrame = { command: this.command, headers: this.headers, body };
    this.state = State.FrameStart;
    // Hold nothing of the frame until the next one starts: a connection that
    // sends once a second would otherwise keep each frame alive across young
    // GCs, and every such survivor lengthens the scavenge pause.
    this.command = '';
    this.headers = NO_HEADERS;
    chunks.length = 0;
    this.bodyBytes = 0;
    this.handlers.onFrame(frame);
  }
}

/** The error for a frame over `maxFrameSize`, also raised by transports that cut a message before parsing it. */
export function frameTooLargeError(maxFrameSize: number): StompCodecError {
  return new StompCodecError('ERR_STOMP_FRAME_TOO_LARGE', `frame larger than ${maxFrameSize} bytes (limit maxFrameSize)`);
}

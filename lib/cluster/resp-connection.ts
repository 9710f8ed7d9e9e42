/*
 * A lean Redis connection for the user router's hot path (the decision and
 * hand-off scripts), beside the router's ioredis client, which it follows.
 *
 * Why: at moderate rates every SEND to a user on another node is one script
 * call of its own, and ioredis' general machinery around a call (its
 * Command and Script objects, the NOSCRIPT fallback's promise, a timer per
 * command, the reply decoder and its conversion) cost the sending node ~13 %
 * of its CPU at 1 000 msg/s, ~25 µs a message, more than the script's own
 * work in Redis (docs/bench/two-node-profile.md, "Session 8"). Here a call is
 * the RESP bytes written in one `write`, its reply parsed by a small reader,
 * and one timer per connection.
 *
 * What it does not do, the ioredis client it follows does: find the server
 * (a URL, or the primary Sentinel names), notice a failover, check that the
 * server is ready (not LOADING). This connection goes to the address that
 * client is connected to, whenever that client becomes ready, and again
 * after its own connection drops. It has the same stance as every cluster
 * connection (redis-connection.ts): no offline queue and no retries — a
 * call while it is not ready, and one in flight when it drops, is rejected,
 * and the caller maps that to ERR_CLUSTER_UNAVAILABLE. Only the very first
 * connect is waited for (up to the connect timeout), as `redisCall` does.
 *
 * Its scripts are loaded (SCRIPT LOAD) on every connect before the first
 * call, so NOSCRIPT means someone flushed them: the call is refused
 * (transient) and the connection made again, which loads them. READONLY (a
 * demoted primary) refuses the call and makes both connections again, the
 * followed one first so that it asks the sentinels where the primary is now.
 *
 * One connection carries every call of its owner, in order: what was
 * written before arrives first, as the router's ordering needs.
 *
 * A subscriber (`onPush` set): the relay's push feed (redis-push-feed.ts)
 * SUBSCRIBEs on one of these, for the same reason on the receiving side —
 * ioredis' subscriber decoder and its event plumbing were ~8 % of the
 * receiving node at 1 000 msg/s (docs/bench/two-node-profile.md, "Session 9").
 * Its `message` pushes go to `onPush`, not to a caller; every other reply
 * (the SUBSCRIBE confirmation) answers a call. Nothing is subscribed again
 * after a drop: `onDrop` tells the owner, which subscribes itself, knowing
 * that what was published meanwhile is lost (RESP2 pub/sub keeps nothing).
 */
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions as TlsOptions } from 'node:tls';
import type { Redis } from 'ioredis';
import { reconnectDelay, type ClusterLogger } from './redis-connection.js';

export type RespArg = string | number | Buffer;

/** A reply: bulk strings as UTF-8 strings (Buffers with `bulkBuffers`), integers as numbers, nil as null; an error inside an array as a ReplyError. */
export type RespReply = string | number | null | Buffer | ReplyError | RespReply[];

/** An error reply from Redis (named as ioredis names it, so `clusterError` maps both alike). */
export class ReplyError extends Error {
  override name = 'ReplyError';
}

export interface RespConnectionOptions {
  /** In CLIENT SETNAME and the logs. */
  name: string;
  /** Scripts loaded on every connect (their SHA1 is what EVALSHA takes). */
  scripts: readonly string[];
  commandTimeoutMs: number;
  connectTimeoutMs: number;
  reconnectMinDelayMs: number;
  reconnectMaxDelayMs: number;
  logger: ClusterLogger;
  /** In CLIENT SETNAME and the logs. @default 'lean' */
  role?: string;
  /** Bulk strings as Buffers (views of the bytes read), not UTF-8 strings: a subscriber's binary payloads. */
  bulkBuffers?: boolean;
  /** A subscriber: every `message` push (channel, payload) comes here. */
  onPush?: (channel: Buffer, payload: Buffer) => void;
  /** The connection dropped (its subscriptions with it); called before it connects again. */
  onDrop?: () => void;
}

interface Waiting {
  /** How many replies the call waits for (a pipeline's length). */
  count: number;
  replies: RespReply[];
  sentAt: number;
  resolve: (replies: RespReply[]) => void;
  reject: (error: Error) => void;
}

type Status = 'connecting' | 'ready' | 'down' | 'closed';

const CRLF = Buffer.from('\r\n');

export class RespConnection {
  private status: Status = 'down';
  private socket: Socket | undefined;
  /** The address the socket is (or is being) connected to, `host:port`. */
  private address = '';
  private readonly queue: Waiting[] = [];
  private readonly reader: RespReader;
  private readonly role: string;
  /** Woken when the connection becomes ready (waitReady). */
  private readyWaiters: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private attempts = 0;
  /** Lost (or refused) since it was last ready: logged once, and its recovery once. */
  private down = false;
  /** Set until the first connection is ready: calls made meanwhile wait for it. */
  private firstReady: { promise: Promise<void>; resolve: () => void } | undefined;
  private readonly onFollowedReady = (): void => this.onFollowedReconnected();

  constructor(
    private readonly followed: Redis,
    private readonly opts: RespConnectionOptions,
  ) {
    this.reader = new RespReader(opts.bulkBuffers === true);
    this.role = opts.role ?? 'lean';
    let resolve = (): void => {};
    const promise = new Promise<void>((r) => (resolve = r));
    this.firstReady = { promise, resolve };
    followed.on('ready', this.onFollowedReady);
    if (followed.status === 'ready') this.reconnect(0);
  }

  get ready(): boolean {
    return this.status === 'ready';
  }

  /** Resolves once ready; rejects if it is not within `timeoutMs` (a node's start). */
  async whenReady(timeoutMs: number): Promise<void> {
    if (this.status === 'ready') return;
    if (this.status === 'closed') throw new Error(`Connection is closed. (${this.opts.name})`);
    let timer: NodeJS.Timeout | undefined;
    let waiter: (() => void) | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        waiter = resolve;
        this.readyWaiters.push(resolve);
        timer = setTimeout(() => reject(new Error(`redis not ready after ${timeoutMs} ms (${this.opts.name}, ${this.role})`)), timeoutMs);
      });
    } finally {
      clearTimeout(timer);
      this.readyWaiters = this.readyWaiters.filter((w) => w !== waiter);
    }
  }

  /** Resolves once ready, or when `signal` aborts. */
  async waitReady(signal: AbortSignal): Promise<void> {
    if (this.status === 'ready' || this.status === 'closed' || signal.aborted) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.readyWaiters = this.readyWaiters.filter((w) => w !== done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.readyWaiters.push(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Sends `commands` as one pipeline; resolves with their replies in order (error replies as ReplyError values). */
  pipeline(commands: readonly (readonly RespArg[])[]): Promise<RespReply[]> {
    if (this.status !== 'ready' && this.firstReady !== undefined) return this.waitFirst().then(() => this.send(commands));
    return this.send(commands);
  }

  private send(commands: readonly (readonly RespArg[])[]): Promise<RespReply[]> {
    const socket = this.socket;
    if (this.status !== 'ready' || socket === undefined) return Promise.reject(new Error(`Connection is closed. (${this.opts.name})`));
    socket.write(encode(commands));
    return new Promise<RespReply[]>((resolve, reject) => {
      this.queue.push({ count: commands.length, replies: [], sentAt: Date.now(), resolve, reject });
      if (this.timer === undefined) this.armTimer(this.opts.commandTimeoutMs);
    });
  }

  /** One command; an error reply rejects. */
  async call(command: readonly RespArg[]): Promise<RespReply> {
    const [reply] = await this.pipeline([command]);
    if (reply instanceof ReplyError) throw reply;
    return reply!;
  }

  /** Ends the connection once what is in flight is answered (bounded), and stops following. */
  async close(): Promise<void> {
    const socket = this.socket;
    const status = this.status;
    this.stop();
    if (socket !== undefined && status === 'ready' && this.queue.length > 0) {
      await new Promise<void>((resolve) => {
        const bound = setTimeout(resolve, 2000);
        const check = setInterval(() => {
          if (this.queue.length > 0) return;
          clearInterval(check);
          clearTimeout(bound);
          resolve();
        }, 5);
        bound.unref();
      });
    }
    this.drop(new Error(`Connection is closed. (${this.opts.name})`));
  }

  /** Drops the connection at once, nothing answered: what a killed process leaves (fault-injection tests). */
  destroy(): void {
    this.stop();
    this.drop(new Error(`Connection is closed. (${this.opts.name})`));
  }

  /** Stops following and reconnecting for good; whoever waits for it to be ready is let go. */
  private stop(): void {
    this.followed.off('ready', this.onFollowedReady);
    if (this.retry !== undefined) clearTimeout(this.retry);
    this.status = 'closed';
    this.firstReady?.resolve();
    this.wakeReady();
  }

  private wakeReady(): void {
    for (const waiter of this.readyWaiters.splice(0)) waiter();
  }

  private async waitFirst(): Promise<void> {
    const first = this.firstReady!;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([first.promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, this.opts.connectTimeoutMs)))]);
    clearTimeout(timer);
  }

  /**
   * The followed client is (again) ready. Elsewhere: follow it. At the same address while this
   * connection looks ready: the followed one lost its connection, and this one may be half-open
   * (a server host gone without a reset; a subscriber, which makes no calls, would never find
   * out): a PING answers, or the command timeout drops it and it connects again.
   */
  private onFollowedReconnected(): void {
    if (this.status === 'ready' && this.address === followedAddress(this.followed)) {
      this.send([['PING']]).catch(() => {});
      return;
    }
    this.reconnect(0);
  }

  /** Connects (again) to where the followed client is, after `delayMs`; nothing while that client is not ready. */
  private reconnect(delayMs: number): void {
    if (this.status === 'closed') return;
    if (this.retry !== undefined) clearTimeout(this.retry);
    this.retry = undefined;
    if (delayMs > 0) {
      this.retry = setTimeout(() => this.reconnect(0), delayMs);
      this.retry.unref();
      return;
    }
    const peer = this.followed.status === 'ready' ? this.followed.stream : undefined;
    const host = peer?.remoteAddress;
    const port = peer?.remotePort;
    // Not ready: its 'ready' brings us back.
    if (host === undefined || port === undefined) return;
    const address = followedAddress(this.followed);
    if ((this.status === 'ready' || this.status === 'connecting') && this.address === address) return;
    if (this.socket !== undefined) this.drop(new Error(`Connection is closed. (${this.opts.name}: following ${address})`));
    this.open(host, port, address);
  }

  private open(host: string, port: number, address: string): void {
    this.status = 'connecting';
    this.address = address;
    this.reader.reset();
    const tls = this.followed.options.tls as TlsOptions | undefined;
    const socket = tls ? connectTls({ ...tls, host, port, servername: tls.servername ?? this.followed.options.host }) : connectTcp({ host, port });
    this.socket = socket;
    socket.setNoDelay(true);
    // As the followed ioredis client does (its `keepAlive`: a number enables TCP keepalive with that initial delay).
    const keepAlive = this.followed.options.keepAlive;
    if (typeof keepAlive === 'number') socket.setKeepAlive(true, keepAlive);
    socket.setTimeout(this.opts.connectTimeoutMs);
    socket.on('timeout', () => socket.destroy(new Error(`connect timed out after ${this.opts.connectTimeoutMs} ms`)));
    socket.on('data', (chunk: Buffer) => this.onData(socket, chunk));
    let failure = 'connection lost';
    socket.on('error', (error: Error) => (failure = error.message)); // 'close' follows
    socket.on('close', () => {
      // Dropped here already (followed elsewhere, timed out, closed): no outage of its own.
      if (this.socket !== socket) return;
      this.markDown(failure);
      this.drop(new Error(`Connection is closed. (${this.opts.name})`));
      this.reconnect(this.backoff());
    });
    socket.once(tls ? 'secureConnect' : 'connect', () => this.handshake(socket));
  }

  /** AUTH, SELECT, CLIENT SETNAME and SCRIPT LOAD as one pipeline; ready once every reply is fine. */
  private handshake(socket: Socket): void {
    const { username, password, db } = this.followed.options;
    const commands: RespArg[][] = [];
    if (password) commands.push(username ? ['AUTH', username, password] : ['AUTH', password]);
    if (db) commands.push(['SELECT', db]);
    commands.push(['CLIENT', 'SETNAME', `stompbox:${this.opts.name}:${this.role}`]);
    for (const script of this.opts.scripts) commands.push(['SCRIPT', 'LOAD', script]);
    socket.write(encode(commands));
    this.queue.push({
      count: commands.length,
      replies: [],
      sentAt: Date.now(),
      resolve: (replies) => {
        const refused = replies.find((reply): reply is ReplyError => reply instanceof ReplyError);
        if (refused !== undefined) {
          socket.destroy(new Error(`connection refused: ${refused.message}`));
          return;
        }
        if (this.socket !== socket) return;
        socket.setTimeout(0);
        this.status = 'ready';
        this.attempts = 0;
        if (this.down) {
          this.down = false;
          this.opts.logger.info({ module: 'redis', part: this.opts.name, role: this.role }, 'redis reachable again');
        }
        const first = this.firstReady;
        this.firstReady = undefined;
        first?.resolve();
        this.wakeReady();
      },
      reject: () => {},
    });
    if (this.timer === undefined) this.armTimer(this.opts.commandTimeoutMs);
  }

  private onData(socket: Socket, chunk: Buffer): void {
    if (this.socket !== socket) return;
    let replies: RespReply[];
    try {
      replies = this.reader.feed(chunk);
    } catch (error) {
      socket.destroy(error as Error);
      return;
    }
    const onPush = this.opts.onPush;
    for (const reply of replies) {
      if (onPush !== undefined && isMessagePush(reply)) {
        onPush(reply[1] as Buffer, reply[2] as Buffer);
        continue;
      }
      const head = this.queue[0];
      if (head === undefined) {
        socket.destroy(new Error('a reply nobody asked for'));
        return;
      }
      head.replies.push(reply);
      if (head.replies.length < head.count) continue;
      this.queue.shift();
      const refused = head.replies.find((r): r is ReplyError => r instanceof ReplyError);
      head.resolve(head.replies);
      if (refused !== undefined) this.onRefused(socket, refused);
    }
  }

  /** NOSCRIPT: connect again (the scripts get loaded). READONLY: the primary moved; the followed client finds it. */
  private onRefused(socket: Socket, error: ReplyError): void {
    if (error.message.startsWith('NOSCRIPT')) {
      socket.destroy(new Error('scripts flushed (NOSCRIPT): connecting again to load them'));
    } else if (error.message.startsWith('READONLY')) {
      socket.destroy(new Error('the primary was demoted (READONLY)'));
      if (this.followed.options.sentinels) this.followed.disconnect(true);
    }
  }

  private markDown(detail: string): void {
    if (this.down || this.status === 'closed') return;
    this.down = true;
    this.opts.logger.warn({ module: 'redis', part: this.opts.name, role: this.role, error: detail }, 'redis unreachable; reconnecting');
  }

  /** Rejects what is in flight and forgets the socket. */
  private drop(error: Error): void {
    const socket = this.socket;
    this.socket = undefined;
    if (this.status !== 'closed') this.status = 'down';
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    for (const waiting of this.queue.splice(0)) waiting.reject(error);
    socket?.destroy();
    if (socket !== undefined) this.opts.onDrop?.();
  }

  /** One timer per connection, not per call: it looks at the oldest call when it fires. */
  private armTimer(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const head = this.queue[0];
      if (head === undefined) return;
      const waited = Date.now() - head.sentAt;
      if (waited < this.opts.commandTimeoutMs) {
        this.armTimer(this.opts.commandTimeoutMs - waited);
        return;
      }
      const socket = this.socket;
      this.drop(new Error(`Command timed out (${this.opts.name}, ${this.opts.commandTimeoutMs} ms)`));
      if (socket !== undefined) this.reconnect(this.backoff());
    }, delayMs);
    this.timer.unref();
  }

  private backoff(): number {
    const attempt = ++this.attempts;
    return reconnectDelay(this.opts, attempt);
  }
}

/** `host:port` the followed client is connected to; '' while it is not. */
function followedAddress(followed: Redis): string {
  const peer = followed.status === 'ready' ? followed.stream : undefined;
  return peer?.remoteAddress === undefined || peer.remotePort === undefined ? '' : `${peer.remoteAddress}:${peer.remotePort}`;
}

/** The RESP bytes of `commands` (arrays of bulk strings), in one buffer. */
export function encode(commands: readonly (readonly RespArg[])[]): Buffer {
  const parts: Buffer[] = [];
  let head = '';
  for (const command of commands) {
    head += `*${command.length}\r\n`;
    for (const arg of command) {
      if (Buffer.isBuffer(arg)) {
        parts.push(Buffer.from(`${head}$${arg.length}\r\n`), arg, CRLF);
        head = '';
      } else {
        const text = typeof arg === 'number' ? String(arg) : arg;
        head += `$${Buffer.byteLength(text)}\r\n${text}\r\n`;
      }
    }
  }
  if (head !== '') parts.push(Buffer.from(head));
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** Incomplete: the reply goes on in the next chunk. */
const INCOMPLETE = Symbol('incomplete');

/** RESP2 replies from a byte stream, which may split them anywhere. */
export class RespReader {
  private pending: Buffer | undefined;
  private at = 0;

  /** `bulkBuffers`: bulk strings as views of the bytes read, not decoded. */
  constructor(private readonly bulkBuffers = false) {}

  reset(): void {
    this.pending = undefined;
  }

  /** The replies completed by `chunk`. */
  feed(chunk: Buffer): RespReply[] {
    const buf = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk]);
    const replies: RespReply[] = [];
    let start = 0;
    for (;;) {
      if (start >= buf.length) {
        this.pending = undefined;
        return replies;
      }
      this.at = start;
      const reply = this.parse(buf);
      if (reply === INCOMPLETE) {
        this.pending = start === 0 ? buf : buf.subarray(start);
        return replies;
      }
      replies.push(reply);
      start = this.at;
    }
  }

  private parse(buf: Buffer): RespReply | typeof INCOMPLETE {
    const type = buf[this.at];
    const end = buf.indexOf(13, this.at + 1);
    if (end < 0 || end + 1 >= buf.length) return INCOMPLETE;
    const lineStart = this.at + 1;
    this.at = end + 2;
    switch (type) {
      case 0x2b: // +
        return buf.toString('utf8', lineStart, end);
      case 0x2d: // -
        return new ReplyError(buf.toString('utf8', lineStart, end));
      case 0x3a: // :
        return readInteger(buf, lineStart, end);
      case 0x24: {
        // $
        const length = readInteger(buf, lineStart, end);
        if (length < 0) return null;
        if (this.at + length + 2 > buf.length) return INCOMPLETE;
        const value = this.bulkBuffers ? buf.subarray(this.at, this.at + length) : buf.toString('utf8', this.at, this.at + length);
        this.at += length + 2;
        return value;
      }
      case 0x2a: {
        // *
        const count = readInteger(buf, lineStart, end);
        if (count < 0) return null;
        const items: RespReply[] = new Array<RespReply>(count);
        for (let i = 0; i < count; i++) {
          if (this.at >= buf.length) return INCOMPLETE;
          const item = this.parse(buf);
          if (item === INCOMPLETE) return INCOMPLETE;
          items[i] = item;
        }
        return items;
      }
      default:
        throw new Error(`unexpected RESP type byte ${type}`);
    }
  }
}

const MESSAGE = Buffer.from('message');

/** `*3 message <channel> <payload>`: a pub/sub push, not a reply to a call. */
function isMessagePush(reply: RespReply): reply is [Buffer, Buffer, Buffer] {
  if (!Array.isArray(reply) || reply.length !== 3) return false;
  const kind = reply[0];
  return Buffer.isBuffer(kind) && kind.equals(MESSAGE) && Buffer.isBuffer(reply[1]) && Buffer.isBuffer(reply[2]);
}

function readInteger(buf: Buffer, from: number, to: number): number {
  let i = from;
  let negative = false;
  if (buf[i] === 0x2d) {
    negative = true;
    i++;
  }
  let value = 0;
  for (; i < to; i++) {
    const digit = buf[i]! - 48;
    if (digit < 0 || digit > 9) throw new Error('malformed RESP integer');
    value = value * 10 + digit;
  }
  return negative ? -value : value;
}

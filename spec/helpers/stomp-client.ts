/*
 * STOMP clients for integration specs.
 *
 * - RawStompClient: a `ws` socket and the project's own codec, for what a
 *   client library will not send (frames before CONNECT, malformed or
 *   oversized frames, chosen subprotocols, split or merged WebSocket
 *   messages, silence instead of heart-beats) and for exact ordering checks.
 * - StompJsClient: @stomp/stompjs in Node with `ws` as its WebSocket, as a
 *   real application would use it.
 *
 * Nothing here sleeps: every wait is for a frame or an event, bounded by a
 * timeout that only turns a hang into a readable failure. To show that
 * something did NOT arrive, use `roundTrip()`: a RECEIPT for a later frame
 * proves the server wrote everything it was going to write before it.
 */
import { isUtf8 } from 'node:buffer';
import { Client, type IFrame, type IMessage, type IStompSocket, type StompHeaders, type StompSubscription } from '@stomp/stompjs';
import WebSocket from 'ws';
import { serializeFrame, StompParser, type OutgoingFrame, type StompCodecError, type StompFrame, type StompVersion } from '../../lib/stomp/index.js';
import { onCleanup } from './node.js';

export const ALL_SUBPROTOCOLS = ['v12.stomp', 'v11.stomp', 'v10.stomp'];
export const DEFAULT_TIMEOUT_MS = 5000;

// ---- an async queue ------------------------------------------------------------

interface Waiter<T> {
  predicate: (item: T) => boolean;
  resolve: (item: T) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/** Items in arrival order; `take` removes the first one matching, waiting for it if needed. */
export class AsyncQueue<T> {
  private readonly items: T[] = [];
  private readonly waiters: Array<Waiter<T>> = [];
  private ended: Error | undefined;

  constructor(private readonly describe: (item: T) => string = (item) => String(item)) {}

  push(item: T): void {
    const index = this.waiters.findIndex((w) => w.predicate(item));
    if (index === -1) {
      this.items.push(item);
      return;
    }
    const [waiter] = this.waiters.splice(index, 1);
    clearTimeout(waiter!.timer);
    waiter!.resolve(item);
  }

  take(predicate: (item: T) => boolean = () => true, timeoutMs = DEFAULT_TIMEOUT_MS, what = 'an item'): Promise<T> {
    const index = this.items.findIndex(predicate);
    if (index !== -1) return Promise.resolve(this.items.splice(index, 1)[0]!);
    if (this.ended) return Promise.reject(new Error(`${this.ended.message} while waiting for ${what}; held: ${this.held()}`));
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = {
        predicate,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; held: ${this.held()}`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** No more items will come: waiters fail at once instead of timing out. */
  end(reason: Error): void {
    this.ended = reason;
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error(`${reason.message} while waiting; held: ${this.held()}`));
    }
  }

  /** Removes and returns everything held. */
  drain(): T[] {
    return this.items.splice(0);
  }

  get size(): number {
    return this.items.length;
  }

  private held(): string {
    return this.items.length === 0 ? '(nothing)' : this.items.map(this.describe).join(' | ');
  }
}

/** Resolves with what `promise` rejected with; fails if it fulfilled. */
export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
  throw new Error('expected a rejection, but the promise fulfilled');
}

// ---- the raw client ----------------------------------------------------------------

/** A frame as received, and whether its WebSocket message was binary. */
export interface ReceivedFrame extends StompFrame {
  binary: boolean;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

export interface RawOpenOptions {
  /** Subprotocols offered; an empty array offers none. @default all three STOMP ones */
  protocols?: string[];
  /** Largest message the client accepts. @default 64 MiB */
  maxPayload?: number;
  /** Extra handshake headers (a `Cookie`, an `Origin`). */
  headers?: Record<string, string>;
}

function describeFrame(frame: ReceivedFrame): string {
  const code = frame.headers.code ? ` ${frame.headers.code}` : '';
  const receipt = frame.headers['receipt-id'] ? ` receipt-id=${frame.headers['receipt-id']}` : '';
  return `${frame.command}${code}${receipt}`;
}

let receiptCounter = 0;

export class RawStompClient {
  readonly frames = new AsyncQueue<ReceivedFrame>(describeFrame);
  /** EOLs received between frames. */
  heartbeats = 0;
  /** Version used to escape what we send and unescape what we receive; set from CONNECTED. */
  version: StompVersion = '1.2';
  parseError: StompCodecError | undefined;
  readonly closed: Promise<CloseInfo>;
  private readonly parser: StompParser;
  private binaryMessage = false;
  private readonly listeners = new Set<() => void>();

  private constructor(readonly ws: WebSocket) {
    this.parser = new StompParser(
      {
        onFrame: (frame) => {
          if (frame.command === 'CONNECTED' && frame.headers.version) this.setVersion(frame.headers.version as StompVersion);
          this.frames.push({ ...frame, binary: this.binaryMessage });
        },
        onHeartbeat: () => {
          this.heartbeats++;
        },
        onError: (error) => {
          this.parseError = error;
        },
      },
      { maxFrameSize: 64 * 1024 * 1024, maxBodySize: 64 * 1024 * 1024, maxHeaders: 1000, maxHeaderLineLength: 1024 * 1024 },
    );
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.binaryMessage = isBinary;
      this.parser.push(data);
      for (const listener of [...this.listeners]) listener();
    });
    ws.on('error', () => {});
    this.closed = new Promise<CloseInfo>((resolve) => {
      ws.once('close', (code: number, reason: Buffer) => {
        const info = { code, reason: reason.toString() };
        this.frames.end(new Error(`socket closed (${code} ${info.reason})`));
        for (const listener of [...this.listeners]) listener();
        resolve(info);
      });
    });
    onCleanup(() => this.terminate());
  }

  /** Opens a WebSocket to `url`; rejects when the upgrade fails. */
  static open(url: string, options: RawOpenOptions = {}): Promise<RawStompClient> {
    const ws = new WebSocket(url, options.protocols ?? ALL_SUBPROTOCOLS, { maxPayload: options.maxPayload ?? 64 * 1024 * 1024, headers: options.headers });
    const client = new RawStompClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_request, response) => {
        reject(new Error(`upgrade refused with HTTP ${response.statusCode ?? '?'}`));
        ws.terminate();
      });
      ws.once('error', reject);
    });
  }

  /** Opens and sends CONNECT (login alice, STOMP 1.2 unless `headers` say otherwise); resolves with CONNECTED. */
  static async connect(url: string, headers: Record<string, string> = {}, options: RawOpenOptions = {}): Promise<RawStompClient> {
    const client = await RawStompClient.open(url, options);
    const reply = await client.stompConnect(headers);
    if (reply.command !== 'CONNECTED') throw new Error(`CONNECT answered with ${describeFrame(reply)}: ${reply.headers.message ?? ''}`);
    return client;
  }

  /** The subprotocol the server chose ('' for none). */
  get protocol(): string {
    return this.ws.protocol;
  }

  setVersion(version: StompVersion): void {
    this.version = version;
    this.parser.version = version;
  }

  sendRaw(data: string | Buffer, options: { binary?: boolean } = {}): void {
    this.ws.send(data, { binary: options.binary ?? typeof data !== 'string' });
  }

  /** Sends a frame: as a text WebSocket message unless its body is not UTF-8 (or `binary` says so). */
  sendFrame(frame: OutgoingFrame, options: { binary?: boolean } = {}): void {
    const data = serializeFrame(frame, this.version);
    this.ws.send(data, { binary: options.binary ?? !isUtf8(data) });
  }

  /** Sends CONNECT and resolves with the answer (CONNECTED or ERROR). */
  stompConnect(headers: Record<string, string> = {}, command = 'CONNECT'): Promise<ReceivedFrame> {
    this.sendFrame({ command, headers: { 'accept-version': '1.2', host: 'localhost', login: 'alice', ...headers } });
    return this.nextFrame(undefined, DEFAULT_TIMEOUT_MS);
  }

  /**
   * The next frame in arrival order, or (with `predicate`) the first one
   * matching it; frames skipped over stay queued.
   */
  nextFrame(predicate?: (frame: ReceivedFrame) => boolean, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ReceivedFrame> {
    return this.frames.take(predicate, timeoutMs, predicate ? 'a matching frame' : 'a frame');
  }

  /** The next frame, which must be `command`. */
  async expectFrame(command: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ReceivedFrame> {
    const frame = await this.nextFrame(undefined, timeoutMs);
    if (frame.command !== command) {
      const detail = frame.command === 'ERROR' ? `: ${frame.headers.message ?? ''}` : ` ${JSON.stringify(frame.headers)} body=${JSON.stringify(frame.body.toString('latin1').slice(0, 80))}`;
      throw new Error(`expected ${command}, got ${describeFrame(frame)}${detail}`);
    }
    return frame;
  }

  /** Sends `frame` with a fresh `receipt` header and waits for its RECEIPT (or fails on ERROR). */
  async request(frame: OutgoingFrame): Promise<void> {
    const receipt = `raw-${++receiptCounter}`;
    this.sendFrame({ ...frame, headers: { ...frame.headers, receipt } });
    const answer = await this.nextFrame((f) => f.command === 'ERROR' || (f.command === 'RECEIPT' && f.headers['receipt-id'] === receipt));
    if (answer.command === 'ERROR') throw Object.assign(new Error(`ERROR ${answer.headers.code}: ${answer.headers.message}`), { frame: answer });
  }

  /**
   * A barrier: a frame with a receipt that changes nothing (BEGIN then ABORT
   * of a private transaction). Resolves with every frame that arrived before
   * its RECEIPT, taking them off the queue.
   */
  async roundTrip(): Promise<ReceivedFrame[]> {
    const tx = `barrier-${++receiptCounter}`;
    const receipt = `raw-${tx}`;
    this.sendFrame({ command: 'BEGIN', headers: { transaction: tx, receipt } });
    this.sendFrame({ command: 'ABORT', headers: { transaction: tx } });
    const before: ReceivedFrame[] = [];
    for (;;) {
      const frame = await this.nextFrame();
      if (frame.command === 'RECEIPT' && frame.headers['receipt-id'] === receipt) return before;
      before.push(frame);
    }
  }

  /** Resolves once `condition()` holds, re-checked on every incoming message and on close. */
  until(condition: () => boolean, timeoutMs = DEFAULT_TIMEOUT_MS, what = 'a condition'): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!condition()) return;
        done();
        resolve();
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
    });
  }

  /** Stops reading from the socket: the server's writes pile up (a slow consumer). */
  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  terminate(): void {
    this.ws.terminate();
  }

  /** A WebSocket close without DISCONNECT: the frames sent before it arrive first. */
  close(): void {
    this.ws.close();
  }
}

/** Attempts an upgrade that should be refused; resolves with the HTTP status and body. */
export function refusedUpgrade(url: string, protocols: string[] = ALL_SUBPROTOCOLS): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('the upgrade was accepted'));
    });
    ws.once('unexpected-response', (_request, response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      response.on('error', reject);
    });
    ws.once('error', (error) => reject(error));
  });
}

// ---- @stomp/stompjs ------------------------------------------------------------------

export interface StompJsOptions {
  login?: string;
  passcode?: string;
  connectHeaders?: StompHeaders;
  /** Offered WebSocket subprotocols. @default all three */
  protocols?: string[];
  /** Another socket than a WebSocket to `url` (e.g. TCP: spec/helpers/tcp.ts). */
  socket?: () => IStompSocket;
  /** Heart-beats asked for (stompjs's heartbeatIncoming / heartbeatOutgoing), ms. @default 0 */
  heartbeatIncoming?: number;
  heartbeatOutgoing?: number;
}

/** An ERROR frame turned into a rejection. */
export class StompErrorFrame extends Error {
  constructor(readonly frame: IFrame) {
    super(`ERROR ${frame.headers.code ?? ''}: ${frame.headers.message ?? ''}`);
  }

  get code(): string | undefined {
    return this.frame.headers.code;
  }
}

export interface Inbox {
  readonly messages: AsyncQueue<IMessage>;
  readonly subscription: StompSubscription;
  /** Next message, in arrival order. */
  next(timeoutMs?: number): Promise<IMessage>;
  /** UNSUBSCRIBE, with its RECEIPT awaited. */
  unsubscribe(headers?: StompHeaders): Promise<void>;
}

function describeMessage(message: IMessage): string {
  return `MESSAGE ${message.headers.destination} ${message.isBinaryBody ? `<${message.binaryBody.length} bytes>` : message.body.slice(0, 40)}`;
}

export class StompJsClient {
  readonly client: Client;
  /** ERROR frames received. */
  readonly errors = new AsyncQueue<IFrame>((f) => `ERROR ${f.headers.code}`);
  connected: IFrame | undefined;
  readonly closed: Promise<void>;
  private readonly receiptWaiters = new Set<(error: Error) => void>();
  private counter = 0;

  private constructor(url: string, options: StompJsOptions, onConnect: (frame: IFrame) => void, onFailure: (error: Error) => void) {
    let markClosed: () => void = () => {};
    this.closed = new Promise<void>((resolve) => (markClosed = resolve));
    const protocols = options.protocols ?? ALL_SUBPROTOCOLS;
    this.client = new Client({
      // ws's WebSocket is the browser API's Node twin; stompjs types only what it uses.
      webSocketFactory: options.socket ?? ((): IStompSocket => new WebSocket(url, protocols) as unknown as IStompSocket),
      connectHeaders: { login: options.login ?? 'alice', ...(options.passcode !== undefined ? { passcode: options.passcode } : {}), ...options.connectHeaders },
      reconnectDelay: 0,
      heartbeatIncoming: options.heartbeatIncoming ?? 0,
      heartbeatOutgoing: options.heartbeatOutgoing ?? 0,
      debug: () => {},
      onConnect: (frame) => {
        this.connected = frame;
        onConnect(frame);
      },
      onStompError: (frame) => {
        this.errors.push(frame);
        const error = new StompErrorFrame(frame);
        for (const reject of [...this.receiptWaiters]) reject(error);
        onFailure(error);
      },
      onWebSocketClose: (event: { code?: number }) => {
        const error = new Error(`socket closed (${event?.code ?? '?'})`);
        for (const reject of [...this.receiptWaiters]) reject(error);
        onFailure(error);
        markClosed();
      },
    });
    onCleanup(() => this.client.deactivate({ force: true }));
  }

  /** Connects (login alice unless told otherwise); rejects on ERROR or close before CONNECTED. */
  static connect(url: string, options: StompJsOptions = {}): Promise<StompJsClient> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const client: StompJsClient = new StompJsClient(
        url,
        options,
        () => {
          settled = true;
          resolve(client);
        },
        (error) => {
          if (settled) return;
          settled = true;
          reject(error);
        },
      );
      client.client.activate();
    });
  }

  private nextReceipt(): string {
    return `js-${++this.counter}`;
  }

  /** Runs `send(receipt)` and waits for that RECEIPT; rejects with StompErrorFrame on ERROR. */
  withReceipt(send: (receipt: string) => void, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<IFrame> {
    const receipt = this.nextReceipt();
    return new Promise<IFrame>((resolve, reject) => {
      const fail = (error: Error): void => {
        finish();
        reject(error);
      };
      const timer = setTimeout(() => fail(new Error(`timed out after ${timeoutMs} ms waiting for RECEIPT ${receipt}`)), timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.receiptWaiters.delete(fail);
      };
      this.receiptWaiters.add(fail);
      this.client.watchForReceipt(receipt, (frame) => {
        finish();
        resolve(frame);
      });
      send(receipt);
    });
  }

  /** SUBSCRIBE with its RECEIPT awaited: the subscription is in place. */
  async subscribe(destination: string, headers: StompHeaders = {}): Promise<Inbox> {
    const messages = new AsyncQueue<IMessage>(describeMessage);
    let subscription: StompSubscription | undefined;
    await this.withReceipt((receipt) => {
      subscription = this.client.subscribe(destination, (message) => messages.push(message), { ...headers, receipt });
    });
    const sub = subscription!;
    return {
      messages,
      subscription: sub,
      next: (timeoutMs = DEFAULT_TIMEOUT_MS) => messages.take(undefined, timeoutMs, `a MESSAGE on ${destination}`),
      unsubscribe: async (extra: StompHeaders = {}) => {
        await this.withReceipt((receipt) => sub.unsubscribe({ ...extra, receipt }));
      },
    };
  }

  /** SEND with its RECEIPT awaited: the broker accepted the message. */
  async publish(destination: string, body: string | Uint8Array, headers: StompHeaders = {}): Promise<void> {
    await this.withReceipt((receipt) => {
      const all = { ...headers, receipt };
      if (typeof body === 'string') this.client.publish({ destination, body, headers: all });
      else this.client.publish({ destination, binaryBody: body, headers: all });
    });
  }

  /**
   * A barrier: a SEND to a topic nobody subscribes to, with its RECEIPT
   * awaited. Frames are handled in order, so everything the server wrote
   * before that RECEIPT has reached its callback when this resolves.
   */
  async barrier(): Promise<void> {
    await this.publish('/topic/spec-barrier', '');
  }

  /** DISCONNECT, waiting for the server's RECEIPT and the close. */
  async disconnect(): Promise<void> {
    await this.client.deactivate();
  }
}

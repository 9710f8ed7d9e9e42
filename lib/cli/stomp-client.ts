/*
 * A small STOMP 1.2 client over WebSocket for the CLI, on the project's own
 * codec (lib/stomp). It does what the CLI needs and waits for the broker to
 * confirm each step:
 *
 *   connect()    CONNECT, resolves on CONNECTED (STOMP 1.2 "CONNECT or STOMP Frame")
 *   send()       SEND with a `receipt`, resolves on its RECEIPT: the broker accepted it
 *   subscribe()  SUBSCRIBE with a `receipt`: in this broker a RECEIPT on SUBSCRIBE
 *                means the subscription is in place cluster-wide
 *   ack()        ACK by the MESSAGE's `ack` header (1.2 "ACK")
 *   disconnect() DISCONNECT with a `receipt` (1.2 "Connection Lingering"), bounded
 *
 * Every failure (refused connection, refused upgrade, ERROR frame, timeout, the
 * server closing) rejects what is waiting with a CliError of one line.
 */
import WebSocket from 'ws';
import { HEARTBEAT_EOL, serializeFrame, StompParser, type OutgoingHeaders, type StompFrame } from '../stomp/index.js';
import { CliError, oneLine } from './errors.js';

export interface StompClientOptions {
  /** `ws://host:port/stomp` */
  url: string;
  login?: string;
  passcode?: string;
  /** Sent as CONNECT `Authorization: Bearer <token>`. */
  token?: string;
  /** Bound on each step (connect, receipt), ms. @default 10000 */
  timeoutMs?: number;
  /** Heart-beat interval we offer and ask for, ms (0: none). @default 0 */
  heartbeatMs?: number;
}

export interface ReceivedMessage {
  destination: string;
  messageId: string;
  subscription: string;
  sender: string | undefined;
  headers: Record<string, string>;
  body: Buffer;
  /** The `ack` header, for ACK in client modes. */
  ackId: string | undefined;
}

type Waiter = { resolve: (frame: StompFrame) => void; reject: (error: Error) => void; timer: NodeJS.Timeout };

const SUBPROTOCOLS = ['v12.stomp'];

export class StompClient {
  private readonly ws: WebSocket;
  private readonly parser: StompParser;
  private readonly timeoutMs: number;
  private readonly receipts = new Map<string, Waiter>();
  private readonly handlers = new Map<string, (message: ReceivedMessage) => void>();
  private connected: Waiter | undefined;
  private failure: CliError | undefined;
  private receiptCounter = 0;
  private subscriptionCounter = 0;
  private beatTimer: NodeJS.Timeout | undefined;
  private watchTimer: NodeJS.Timeout | undefined;
  private lastReceivedAt = Date.now();
  private closedListeners: Array<(error: CliError | undefined) => void> = [];
  private closing = false;
  /** The user the broker says we are (CONNECTED `user-name`). */
  user: string | undefined;

  private constructor(private readonly options: StompClientOptions) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.parser = new StompParser({
      onFrame: (frame) => this.onFrame(frame),
      onError: (error) => this.fail(new CliError(`unreadable frame from the server: ${error.message}`)),
    });
    this.ws = new WebSocket(options.url, SUBPROTOCOLS, { handshakeTimeout: this.timeoutMs });
    this.ws.on('message', (data: Buffer) => {
      this.lastReceivedAt = Date.now();
      this.parser.push(data);
    });
    this.ws.on('error', (error: Error) => this.fail(new CliError(`cannot connect to ${options.url}: ${error.message}`)));
    this.ws.on('unexpected-response', (_request, response) => {
      // The upgrade was refused with an HTTP status (401, 403, 503...): report its JSON error.
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk.slice(0, 4096)));
      response.on('end', () => this.fail(new CliError(`WebSocket upgrade refused: HTTP ${response.statusCode} ${apiErrorText(text)}`.trim())));
      response.on('error', () => this.fail(new CliError(`WebSocket upgrade refused: HTTP ${response.statusCode}`)));
    });
    this.ws.on('close', (code: number, reason: Buffer) => {
      this.stopHeartbeats();
      const why = reason.length > 0 ? `: ${reason.toString('utf8')}` : '';
      if (!this.closing) this.fail(new CliError(`the server closed the connection (${code}${why})`));
      for (const listener of this.closedListeners) listener(this.failure);
      this.closedListeners = [];
    });
  }

  /** Opens the WebSocket and completes CONNECT; rejects with the reason it could not. */
  static async connect(options: StompClientOptions): Promise<StompClient> {
    const client = new StompClient(options);
    await client.handshake();
    return client;
  }

  private handshake(): Promise<void> {
    const frame = new Promise<StompFrame>((resolve, reject) => {
      this.connected = { resolve, reject, timer: this.timer(reject, 'CONNECTED') };
    });
    this.ws.once('open', () => {
      const beat = this.options.heartbeatMs ?? 0;
      const headers: OutgoingHeaders = { 'accept-version': '1.2', host: new URL(this.options.url).hostname, 'heart-beat': `${beat},${beat}` };
      if (this.options.login !== undefined) headers.login = this.options.login;
      if (this.options.passcode !== undefined) headers.passcode = this.options.passcode;
      if (this.options.token !== undefined) headers.Authorization = `Bearer ${this.options.token}`;
      this.write({ command: 'CONNECT', headers });
    });
    return frame.then((connected) => {
      this.user = connected.headers['user-name'];
      this.startHeartbeats(connected.headers['heart-beat']);
    });
  }

  /** SEND, resolved once the broker's RECEIPT says it accepted the message. */
  async send(destination: string, body: Buffer | string, headers: Record<string, string> = {}): Promise<void> {
    await this.withReceipt({ command: 'SEND', headers: { ...headers, destination }, body });
  }

  /**
   * SUBSCRIBE, resolved once in place (RECEIPT). `ack` client-individual
   * leaves a message with the broker until `ack()`: what the caller did not
   * get to handle goes back to the inbox or queue when it disconnects.
   */
  async subscribe(destination: string, ack: 'auto' | 'client-individual', onMessage: (message: ReceivedMessage) => void): Promise<string> {
    const id = `sub-${++this.subscriptionCounter}`;
    this.handlers.set(id, onMessage);
    await this.withReceipt({ command: 'SUBSCRIBE', headers: { id, destination, ack } });
    return id;
  }

  ack(message: ReceivedMessage): void {
    if (message.ackId !== undefined) this.write({ command: 'ACK', headers: { id: message.ackId } });
  }

  /** DISCONNECT with a receipt (so ACKs before it were processed), then close. Never rejects. */
  async disconnect(): Promise<void> {
    if (this.failure || this.ws.readyState !== WebSocket.OPEN) {
      this.close();
      return;
    }
    try {
      await this.withReceipt({ command: 'DISCONNECT', headers: {} });
    } catch {
      // Closing anyway.
    }
    this.close();
  }

  /** Resolves when the connection is gone, with the failure that ended it, if any. */
  closed(): Promise<CliError | undefined> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve(this.failure);
    return new Promise((resolve) => this.closedListeners.push(resolve));
  }

  close(): void {
    this.closing = true;
    this.stopHeartbeats();
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close(1000);
    setTimeout(() => this.ws.terminate(), 1000).unref();
  }

  // ---- internals -----------------------------------------------------------

  private withReceipt(frame: { command: string; headers: OutgoingHeaders; body?: Buffer | string }): Promise<StompFrame> {
    if (this.failure) return Promise.reject(this.failure);
    const receipt = `r-${++this.receiptCounter}`;
    const done = new Promise<StompFrame>((resolve, reject) => {
      this.receipts.set(receipt, { resolve, reject, timer: this.timer(reject, `RECEIPT for ${frame.command}`) });
    });
    this.write({ ...frame, headers: { ...frame.headers, receipt } });
    return done;
  }

  private timer(reject: (error: Error) => void, what: string): NodeJS.Timeout {
    return setTimeout(() => {
      const error = new CliError(`no ${what} from ${this.options.url} within ${this.timeoutMs} ms`);
      reject(error);
      this.fail(error);
    }, this.timeoutMs);
  }

  private write(frame: { command: string; headers: OutgoingHeaders; body?: Buffer | string }): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(serializeFrame(frame, '1.2'));
  }

  private onFrame(frame: StompFrame): void {
    switch (frame.command) {
      case 'CONNECTED': {
        const waiter = this.connected;
        this.connected = undefined;
        if (waiter) {
          clearTimeout(waiter.timer);
          waiter.resolve(frame);
        }
        return;
      }
      case 'RECEIPT': {
        const id = frame.headers['receipt-id'];
        const waiter = id === undefined ? undefined : this.receipts.get(id);
        if (waiter && id !== undefined) {
          this.receipts.delete(id);
          clearTimeout(waiter.timer);
          waiter.resolve(frame);
        }
        return;
      }
      case 'MESSAGE': {
        const subscription = frame.headers.subscription ?? '';
        const handler = this.handlers.get(subscription);
        if (!handler) return;
        const headers: Record<string, string> = { ...frame.headers };
        handler({
          destination: frame.headers.destination ?? '',
          messageId: frame.headers['message-id'] ?? '',
          subscription,
          sender: frame.headers.sender,
          headers,
          body: frame.body,
          ackId: frame.headers.ack,
        });
        return;
      }
      case 'ERROR': {
        const message = frame.headers.message ?? 'error';
        const body = frame.body.length > 0 ? oneLine(frame.body.toString('utf8')).slice(0, 300) : '';
        const code = frame.headers.code ?? frame.headers['error-code'];
        const extra = body && !body.includes(message) ? ` (${body})` : '';
        this.fail(new CliError(`ERROR from server: ${code ? `${code}: ` : ''}${message}${extra}`));
        return;
      }
      default:
        return;
    }
  }

  /** Rejects everything waiting and closes; the first failure is the one reported. */
  private fail(error: CliError): void {
    if (this.failure || this.closing) return;
    this.failure = error;
    if (this.connected) {
      clearTimeout(this.connected.timer);
      this.connected.reject(error);
      this.connected = undefined;
    }
    for (const waiter of this.receipts.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    this.receipts.clear();
    this.stopHeartbeats();
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
  }

  /** STOMP 1.2 "Heart-beating": each side sends at the larger of what one offers and the other wants. */
  private startHeartbeats(serverHeartbeat: string | undefined): void {
    const ours = this.options.heartbeatMs ?? 0;
    if (ours === 0 || !serverHeartbeat) return;
    const [sx, sy] = serverHeartbeat.split(',').map((v) => Number(v.trim()) || 0) as [number, number];
    if (sy > 0) {
      const every = Math.max(ours, sy);
      this.beatTimer = setInterval(() => {
        if (this.ws.readyState === WebSocket.OPEN) this.ws.send(HEARTBEAT_EOL);
      }, every);
    }
    if (sx > 0) {
      const expected = Math.max(ours, sx);
      // Generous grace: a busy server or network may delay a beat.
      this.watchTimer = setInterval(() => {
        if (Date.now() - this.lastReceivedAt > expected * 3) {
          this.fail(new CliError(`the server sent nothing for ${Date.now() - this.lastReceivedAt} ms (heart-beat ${expected} ms)`));
        }
      }, expected);
    }
  }

  private stopHeartbeats(): void {
    if (this.beatTimer) clearInterval(this.beatTimer);
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.beatTimer = this.watchTimer = undefined;
  }
}

/** `{error:{code,message}}` → `CODE: message`; anything else as text. */
export function apiErrorText(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (parsed.error && typeof parsed.error === 'object') {
      const code = typeof parsed.error.code === 'string' ? parsed.error.code : '';
      const message = typeof parsed.error.message === 'string' ? parsed.error.message : '';
      return oneLine([code, message].filter(Boolean).join(': '));
    }
  } catch {
    // not JSON
  }
  return oneLine(text).slice(0, 300);
}

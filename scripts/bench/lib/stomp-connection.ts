/*
 * One STOMP 1.2 client connection over a raw `ws` WebSocket (subprotocol
 * `v12.stomp`), framed with the project's own codec (lib/stomp): no second
 * STOMP implementation here.
 *
 * Writes are batched cheaply when `corkTurn` is set (the unlimited mode):
 * the first write of an event-loop turn corks the TCP socket and a nextTick
 * uncorks it, so the frames a turn produces (one per message received) leave
 * in one syscall. At a fixed rate each frame is written as it is sent, as a
 * client writes it.
 */
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { HEARTBEAT_EOL, StompParser, serializeFrame, type StompFrame } from '../../../lib/stomp/index.js';
import { nowMs } from './body.js';
import { closeWebSocket } from './close-websocket.js';
import type { BenchConnection, ConnectionOptions } from './connection.js';
import { TurnCork } from './turn-cork.js';

/** Client-side bounds are generous: the broker under test sets the real ones. */
const CLIENT_FRAME_LIMITS = { maxBodySize: 64 * 1024 * 1024, maxFrameSize: 64 * 1024 * 1024 + 65536 };

interface Pending {
  resolve(): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * One timer for every connection of the process that must send heart-beats
 * (STOMP 1.2 "Heart-beating"): 20 000 idle connections would otherwise mean
 * 20 000 intervals.
 */
class HeartbeatTicker {
  private readonly connections = new Set<StompConnection>();
  private timer: NodeJS.Timeout | null = null;

  add(connection: StompConnection): void {
    this.connections.add(connection);
    if (this.timer === null) {
      this.timer = setInterval(() => this.tick(), 250);
      this.timer.unref();
    }
  }

  remove(connection: StompConnection): void {
    this.connections.delete(connection);
    if (this.connections.size === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  private tick(): void {
    const now = Date.now();
    for (const connection of this.connections) connection.heartbeatIfDue(now);
  }
}

const heartbeats = new HeartbeatTicker();

/** A WebSocket message holding only EOLs: a broker heart-beat. */
function isHeartbeat(data: Buffer): boolean {
  if (data.length === 0 || data.length > 4) return false;
  for (const byte of data) if (byte !== 0x0a && byte !== 0x0d) return false;
  return true;
}

export class StompConnection implements BenchConnection {
  onMessage: (body: Buffer, receivedMs: number) => void = () => {};
  onFailure: (error: Error) => void = () => {};
  heartbeatsReceived = 0;
  headerMismatches = 0;
  firstHeaderMismatch: string | null = null;

  /** Subscription id → the destination it subscribed to. */
  private readonly subscriptions = new Map<string, string>();
  private ws: WebSocket | null = null;
  private socket: Socket | null = null;
  private readonly cork = new TurnCork();
  private queued: Buffer[] = [];
  private queuedBinary = false;
  private connected = false;
  private closing = false;
  private failed = false;
  private connectWait: Pending | null = null;
  private readonly receipts = new Map<string, Pending>();
  private nextReceipt = 0;
  private nextSubscription = 0;
  private sendEveryMs = 0;
  private lastWriteAt = 0;
  /** When the WebSocket message being parsed arrived: the receive time of every frame in it. */
  private arrivedMs = 0;
  private readonly parser: StompParser;

  constructor(private readonly options: ConnectionOptions) {
    this.parser = new StompParser(
      {
        onFrame: (frame) => this.handleFrame(frame),
        // EOLs also trail ordinary frames ("\0\n", as RabbitMQ sends them): heart-beats are counted per WebSocket message below.
        onError: (error) => this.fail(new Error(`STOMP parse error from broker: ${error.code} ${error.message}`)),
      },
      CLIENT_FRAME_LIMITS,
    );
  }

  get open(): boolean {
    return this.connected && !this.closing && this.ws?.readyState === WebSocket.OPEN;
  }

  connect(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.connectWait = null;
        this.ws?.terminate();
        reject(new Error(`no CONNECTED from ${this.options.url} within ${this.options.timeoutMs} ms`));
      }, this.options.timeoutMs);
      this.connectWait = { resolve, reject, timer };
      const ws = new WebSocket(this.options.url, ['v12.stomp'], {
        perMessageDeflate: false,
        skipUTF8Validation: true,
        handshakeTimeout: this.options.timeoutMs,
        localAddress: this.options.localAddress,
        maxPayload: CLIENT_FRAME_LIMITS.maxFrameSize,
      });
      ws.binaryType = 'nodebuffer';
      this.ws = ws;
      ws.on('open', () => {
        this.socket = (ws as unknown as { _socket?: Socket })._socket ?? null;
        const [cx, cy] = this.options.heartbeat;
        this.write(
          serializeFrame(
            {
              command: 'CONNECT',
              headers: {
                'accept-version': '1.2',
                host: this.options.host,
                login: this.options.login,
                passcode: this.options.passcode,
                'heart-beat': `${cx},${cy}`,
              },
            },
            '1.2',
          ),
          false,
        );
      });
      ws.on('message', (data: WebSocket.RawData) => {
        this.arrivedMs = nowMs();
        if (Buffer.isBuffer(data)) {
          if (isHeartbeat(data)) this.heartbeatsReceived++;
          this.parser.push(data);
        }
        else if (Array.isArray(data)) for (const piece of data) this.parser.push(piece);
        else this.parser.push(Buffer.from(data));
      });
      ws.on('error', (error: Error) => this.fail(error));
      ws.on('close', (code: number, reason: Buffer) => {
        heartbeats.remove(this);
        if (!this.closing) this.fail(new Error(`connection closed by broker (code ${code}${reason.length ? ` ${reason.toString()}` : ''})`));
      });
    });
  }

  subscribe(destination: string): Promise<void> {
    const receipt = `r-${this.nextReceipt++}`;
    const id = `s-${this.nextSubscription++}`;
    this.subscriptions.set(id, destination);
    const done = this.awaitReceipt(receipt);
    this.write(
      serializeFrame({
        command: 'SUBSCRIBE',
        headers: {
          ...this.options.subscribeHeaders,
          id,
          destination,
          ack: 'auto',
          receipt,
        },
      }),
      false,
    );
    return done;
  }

  publish(destination: string, body: Buffer): void {
    if (!this.open) return;
    const frame = serializeFrame({
      command: 'SEND',
      headers: {
        ...this.options.sendHeaders,
        destination,
        'content-type': this.options.binaryFrames ? 'application/octet-stream' : 'text/plain',
      },
      body,
    });
    this.write(frame, this.options.binaryFrames);
  }

  /** Called by the shared ticker: an EOL when nothing was written for the negotiated interval. */
  heartbeatIfDue(now: number): void {
    if (this.sendEveryMs > 0 && this.open && now - this.lastWriteAt >= this.sendEveryMs) this.write(HEARTBEAT_EOL, false);
  }

  close(): Promise<void> {
    heartbeats.remove(this);
    this.closing = true;
    return closeWebSocket(this.ws);
  }

  private write(data: Buffer, binary: boolean): void {
    const ws = this.ws;
    if (ws === null || ws.readyState !== WebSocket.OPEN) return;
    this.lastWriteAt = Date.now();
    if (this.options.coalesce) {
      this.queued.push(data);
      this.queuedBinary ||= binary;
      if (this.queued.length === 1) process.nextTick(() => this.flushQueued());
      return;
    }
    if (this.options.corkTurn) this.cork.hold(this.socket);
    ws.send(data, { binary, compress: false });
  }

  private flushQueued(): void {
    const frames = this.queued;
    const binary = this.queuedBinary;
    this.queued = [];
    this.queuedBinary = false;
    const ws = this.ws;
    if (ws === null || ws.readyState !== WebSocket.OPEN || frames.length === 0) return;
    ws.send(frames.length === 1 ? frames[0]! : Buffer.concat(frames), { binary, compress: false });
  }

  private awaitReceipt(receipt: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.receipts.delete(receipt);
        reject(new Error(`no RECEIPT ${receipt} from ${this.options.url} within ${this.options.timeoutMs} ms`));
      }, this.options.timeoutMs);
      this.receipts.set(receipt, { resolve, reject, timer });
    });
  }

  private handleFrame(frame: StompFrame): void {
    switch (frame.command) {
      case 'MESSAGE': {
        const subscription = frame.headers['subscription'];
        const destination = frame.headers['destination'];
        const expected = subscription === undefined ? undefined : this.subscriptions.get(subscription);
        if (expected === undefined || destination !== expected) {
          this.headerMismatches++;
          this.firstHeaderMismatch ??=
            expected === undefined
              ? `MESSAGE subscription "${subscription ?? '(none)'}" is not one of this connection's (${[...this.subscriptions.keys()].join(', ')})`
              : `MESSAGE destination "${destination ?? '(none)'}" on subscription ${subscription}, which subscribed to "${expected}"`;
        }
        this.onMessage(frame.body, this.arrivedMs);
        return;
      }
      case 'RECEIPT': {
        const id = frame.headers['receipt-id'];
        const pending = id === undefined ? undefined : this.receipts.get(id);
        if (pending !== undefined && id !== undefined) {
          this.receipts.delete(id);
          clearTimeout(pending.timer);
          pending.resolve();
        }
        return;
      }
      case 'CONNECTED': {
        this.connected = true;
        this.negotiateHeartbeat(frame.headers['heart-beat']);
        const wait = this.connectWait;
        this.connectWait = null;
        if (wait !== null) {
          clearTimeout(wait.timer);
          wait.resolve();
        }
        return;
      }
      case 'ERROR': {
        const message = frame.headers['message'] ?? '';
        const detail = frame.body.length > 0 ? `: ${frame.body.toString('utf8', 0, Math.min(frame.body.length, 200))}` : '';
        this.fail(new Error(`ERROR frame from broker: ${message}${detail}`));
        return;
      }
      default:
        return;
    }
  }

  /** STOMP 1.2 "Heart-beating": the client sends every max(cx, sy) ms when both are non-zero. */
  private negotiateHeartbeat(header: string | undefined): void {
    const [cx] = this.options.heartbeat;
    const sy = Number(header?.split(',')[1] ?? '0');
    if (cx > 0 && sy > 0) {
      this.sendEveryMs = Math.max(cx, sy);
      heartbeats.add(this);
    }
  }

  private fail(error: Error): void {
    const wait = this.connectWait;
    if (wait !== null) {
      this.connectWait = null;
      clearTimeout(wait.timer);
      wait.reject(error);
      this.ws?.terminate();
      return;
    }
    if (this.receipts.size > 0) {
      for (const pending of this.receipts.values()) {
        clearTimeout(pending.timer);
        pending.reject(error);
      }
      this.receipts.clear();
    }
    // An ERROR frame is followed by a close: report the first cause only.
    if (!this.closing && !this.failed) {
      this.failed = true;
      this.onFailure(error);
    }
  }
}

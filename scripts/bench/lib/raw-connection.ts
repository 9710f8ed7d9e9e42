/*
 * A plain `ws` client of the bare relay peer (scripts/bench/peers/bare-relay-server.ts):
 * no STOMP, text WebSocket messages
 *
 *   `S<dest>` subscribe (answered by `A<dest>`), `P<dest>\n<body>` publish,
 *   `M<dest>\n<body>` delivery.
 *
 * Heart-beats and logins do not exist in that protocol; the options for them are ignored.
 *
 * Written as stomp-connection.ts writes, so that the generator costs the same
 * per message whichever peer it drives: `corkTurn` (the unlimited mode) holds
 * the TCP socket corked for the rest of the event-loop turn, and incoming text
 * is not UTF-8 validated. (Before, this client wrote each publish in its own
 * syscall and validated every delivery: at saturation the generator spent
 * twice the CPU a message on the bare relay that it spent on stompbox, on a
 * machine both share.)
 */
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { nowMs } from './body.js';
import { closeWebSocket } from './close-websocket.js';
import type { BenchConnection, ConnectionOptions } from './connection.js';
import { TurnCork } from './turn-cork.js';

export class RawConnection implements BenchConnection {
  onMessage: (body: Buffer, receivedMs: number) => void = () => {};
  onFailure: (error: Error) => void = () => {};
  readonly heartbeatsReceived = 0;
  headerMismatches = 0;
  firstHeaderMismatch: string | null = null;

  private ws: WebSocket | null = null;
  private readonly subscribed = new Set<string>();
  private readonly acks = new Map<string, () => void>();
  private closing = false;
  private failed = false;
  private socket: Socket | null = null;
  private readonly cork = new TurnCork();

  constructor(private readonly options: ConnectionOptions) {}

  get open(): boolean {
    return !this.closing && this.ws?.readyState === WebSocket.OPEN;
  }

  connect(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(this.options.url, {
        perMessageDeflate: false,
        skipUTF8Validation: true,
        handshakeTimeout: this.options.timeoutMs,
        localAddress: this.options.localAddress,
      });
      ws.binaryType = 'nodebuffer';
      this.ws = ws;
      ws.once('open', () => {
        this.socket = (ws as unknown as { _socket?: Socket })._socket ?? null;
        resolve();
      });
      ws.on('message', (data: Buffer) => {
        const receivedMs = nowMs();
        if (data[0] === 0x4d /* M */) {
          const newline = data.indexOf(0x0a);
          const destination = data.toString('utf8', 1, newline);
          if (!this.subscribed.has(destination)) {
            this.headerMismatches++;
            this.firstHeaderMismatch ??= `delivery for "${destination}", not subscribed (${[...this.subscribed].join(', ')})`;
          }
          this.onMessage(data.subarray(newline + 1), receivedMs);
        } else if (data[0] === 0x41 /* A */) {
          const destination = data.toString('utf8', 1);
          this.acks.get(destination)?.();
          this.acks.delete(destination);
        }
      });
      ws.on('error', (error: Error) => {
        if (ws.readyState !== WebSocket.OPEN) reject(error);
        this.fail(error);
      });
      ws.on('close', (code: number) => {
        if (!this.closing) this.fail(new Error(`bare relay closed the connection (code ${code})`));
      });
    });
  }

  subscribe(destination: string): Promise<void> {
    const ws = this.ws;
    if (ws === null) return Promise.reject(new Error('subscribe before connect'));
    this.subscribed.add(destination);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no subscribe ack for ${destination} within ${this.options.timeoutMs} ms`)), this.options.timeoutMs);
      this.acks.set(destination, () => {
        clearTimeout(timer);
        resolve();
      });
      ws.send(`S${destination}`);
    });
  }

  publish(destination: string, body: Buffer): void {
    if (!this.open) return;
    if (this.options.corkTurn) this.cork.hold(this.socket);
    this.ws!.send(Buffer.concat([Buffer.from(`P${destination}\n`), body]), { binary: false, compress: false });
  }

  close(): Promise<void> {
    this.closing = true;
    return closeWebSocket(this.ws);
  }

  private fail(error: Error): void {
    if (!this.closing && !this.failed) {
      this.failed = true;
      this.onFailure(error);
    }
  }
}

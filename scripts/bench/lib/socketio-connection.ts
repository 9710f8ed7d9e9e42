/*
 * A socket.io client connection speaking the small relay protocol of
 * scripts/bench/peers/socketio-server.ts, so the same load shapes can run
 * against a socket.io (+ Redis adapter) deployment:
 *
 *   client → server  'subscribe' (destination, ack)   joins the room `destination`; ack = "in place"
 *   client → server  'send'      (destination, body)  body is a Buffer (a binary attachment)
 *   server → client  'message'   (destination, body)
 *
 * socket.io's own ping/pong replaces STOMP heart-beats; `heartbeat` options are ignored.
 */
import { io, type Socket } from 'socket.io-client';
import { nowMs } from './body.js';
import type { BenchConnection, ConnectionOptions } from './connection.js';

interface ServerToClient {
  message: (destination: string, body: Buffer) => void;
}

interface ClientToServer {
  subscribe: (destination: string, ack: (error: string | null) => void) => void;
  send: (destination: string, body: Buffer) => void;
}

export class SocketIoConnection implements BenchConnection {
  onMessage: (body: Buffer, receivedMs: number) => void = () => {};
  onFailure: (error: Error) => void = () => {};
  readonly heartbeatsReceived = 0;
  headerMismatches = 0;
  firstHeaderMismatch: string | null = null;

  private readonly rooms = new Set<string>();

  private socket: Socket<ServerToClient, ClientToServer> | null = null;
  private closing = false;
  private failed = false;

  constructor(private readonly options: ConnectionOptions) {}

  get open(): boolean {
    return this.socket?.connected === true && !this.closing;
  }

  connect(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      // engine.io-client hands `localAddress` to ws at run time; its types do not list it.
      const ioOptions: Parameters<typeof io>[1] & { localAddress?: string } = {
        transports: ['websocket'],
        forceNew: true,
        reconnection: false,
        timeout: this.options.timeoutMs,
        auth: { login: this.options.login ?? '', passcode: this.options.passcode ?? '' },
        localAddress: this.options.localAddress,
      };
      const socket: Socket<ServerToClient, ClientToServer> = io(this.options.url, ioOptions);
      this.socket = socket;
      socket.on('message', (destination: string, body: Buffer) => {
        // socket.io decodes the packet (and its binary attachment) before this event: the earliest hook it offers.
        const receivedMs = nowMs();
        if (!this.rooms.has(destination)) {
          this.headerMismatches++;
          this.firstHeaderMismatch ??= `message for room "${destination}", not joined (${[...this.rooms].join(', ')})`;
        }
        this.onMessage(body, receivedMs);
      });
      socket.once('connect', () => resolve());
      socket.once('connect_error', (error: Error) => reject(new Error(`socket.io connect to ${this.options.url} failed: ${error.message}`)));
      socket.on('disconnect', (reason: string) => {
        if (!this.closing && !this.failed) {
          this.failed = true;
          this.onFailure(new Error(`socket.io disconnected: ${reason}`));
        }
      });
    });
  }

  subscribe(destination: string): Promise<void> {
    const socket = this.socket;
    if (socket === null) return Promise.reject(new Error('subscribe before connect'));
    this.rooms.add(destination);
    return new Promise<void>((resolve, reject) => {
      socket.timeout(this.options.timeoutMs).emit('subscribe', destination, (timeout: Error | null, error: string | null) => {
        if (timeout) reject(new Error(`no subscribe ack within ${this.options.timeoutMs} ms`));
        else if (error) reject(new Error(`subscribe refused: ${error}`));
        else resolve();
      });
    });
  }

  publish(destination: string, body: Buffer): void {
    // socket.io holds the buffer until it is written: give it its own copy.
    if (this.open) this.socket!.emit('send', destination, Buffer.from(body));
  }

  close(): Promise<void> {
    this.closing = true;
    this.socket?.disconnect();
    return Promise.resolve();
  }
}

/*
 * STOMP over TCP and over TLS: what backends (Java, Python, Go services)
 * and most non-browser STOMP clients speak, conventionally on port 61613
 * (61614 for TLS). The byte stream goes straight to a broker Session, as
 * a WebSocket's messages do: the same parser, limits, authentication
 * (CONNECT `login`/`passcode`, or a JWT as `passcode` in jwt mode; there is
 * no cookie or URL token over TCP), destinations and cluster.
 *
 * Frames written in one event-loop turn leave in one socket write
 * (write-coalescer.ts); a session whose input queue is full pauses the
 * socket (backpressure), which TCP turns into a closed window for the sender.
 *
 * Closing: the ERROR (if any) is written, then our side is ended (FIN) while
 * input is still read and dropped, so a client still sending does not make
 * the kernel reset the connection and lose the ERROR in its receive buffer;
 * the socket is destroyed once the client closes or after CLOSE_TIMEOUT_MS.
 */
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { Broker } from '../broker/broker.js';
import { BrokerError } from '../core/errors.js';
import type { Connection } from '../broker/connection.js';
import type { Logger } from '../log.js';
import { OpenSockets } from './open-sockets.js';
import { WriteCoalescer } from './write-coalescer.js';

export interface TcpTransportOptions {
  host: string;
  /** 0 for any free port. */
  port: number;
  /** PEM certificate chain and key: TLS when given, plain TCP otherwise. */
  tls?: { cert: string; key: string };
  /** Several frames per socket write when written in one event-loop turn. */
  coalesce: boolean;
  /** False while the node is starting: a connection then gets ERROR ERR_STARTING. @default always ready */
  ready?: () => boolean;
}

/** After our FIN, how long the client has to close before the socket is destroyed. */
const CLOSE_TIMEOUT_MS = 2000;

class TcpConnection implements Connection {
  private readonly coalescer: WriteCoalescer | undefined;

  constructor(
    private readonly socket: Socket,
    coalesce: boolean,
  ) {
    if (coalesce) this.coalescer = new WriteCoalescer((data) => this.write(data));
  }

  get remoteAddress(): string {
    return this.socket.remoteAddress ?? '';
  }

  send(data: Buffer): void {
    if (this.coalescer) this.coalescer.push(data, false);
    else this.write(data);
  }

  private write(data: Buffer): void {
    if (this.socket.writable) this.socket.write(data);
  }

  close(): void {
    if (this.socket.destroyed || this.socket.writableEnded) return;
    this.coalescer?.flush();
    this.socket.end();
    // Keep reading (and dropping) what the client still sends: see the file comment.
    this.socket.resume();
    setTimeout(() => this.socket.destroy(), CLOSE_TIMEOUT_MS).unref();
  }

  closed(): void {
    this.coalescer?.discard();
  }

  get bufferedAmount(): number {
    return this.socket.writableLength + (this.coalescer?.pendingBytes ?? 0);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    if (!this.socket.writableEnded) this.socket.resume();
  }
}

export class TcpTransport {
  private readonly sockets = new OpenSockets<Socket>();

  private constructor(
    private readonly server: Server,
    private readonly broker: Broker,
    private readonly log: Logger,
    readonly secure: boolean,
  ) {}

  /** Listens; resolves once bound (the port is then known). */
  static async listen(broker: Broker, log: Logger, options: TcpTransportOptions): Promise<TcpTransport> {
    const server: Server = options.tls
      ? createTlsServer({ cert: options.tls.cert, key: options.tls.key })
      : createNetServer();
    const transport = new TcpTransport(server, broker, log, options.tls !== undefined);
    // A TLS server hands over the socket once the handshake is done.
    server.on(options.tls ? 'secureConnection' : 'connection', (socket: Socket) => transport.onConnection(socket, options));
    // A failed handshake: the client never reached STOMP; nothing to answer.
    server.on('tlsClientError', (error: Error) => log.debug({ err: error, transport: 'tls' }, 'TLS handshake failed'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) => log.error({ err: error, transport: transport.name }, 'STOMP listener error'));
    return transport;
  }

  get name(): 'tcp' | 'tls' {
    return this.secure ? 'tls' : 'tcp';
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  private onConnection(socket: Socket, options: TcpTransportOptions): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    const connection = new TcpConnection(socket, options.coalesce);
    const session = this.broker.createSession(connection, {});
    if (options.ready && !options.ready()) session.fail(new BrokerError('ERR_STARTING', 'the node is starting; try again'));
    socket.on('data', (chunk: Buffer) => session.receive(chunk));
    socket.on('error', (error) => this.log.debug({ err: error, session: session.id, transport: this.name }, 'STOMP socket error'));
    socket.on('close', () => {
      this.sockets.delete(socket);
      connection.closed();
      session.transportClosed();
    });
  }

  /** Stops listening; resolves when every socket closed, or the bound passed (then they are cut). */
  async close(timeoutMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.sockets.drained(timeoutMs);
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}

/*
 * STOMP over WebSocket: a `ws` server sharing the node's http.Server
 * (noServer + handleUpgrade), on one path. Subprotocols v12.stomp,
 * v11.stomp and v10.stomp are negotiated (STOMP 1.2 "STOMP over
 * WebSocket" practice); a client offering none is served as STOMP 1.2.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Broker } from '../broker/broker.js';
import type { Connection, TransportContext } from '../broker/connection.js';
import type { Session } from '../broker/session.js';
import type { Logger } from '../log.js';
import { OpenSockets } from './open-sockets.js';
import { destroyOnError } from './upgrade-socket.js';
import { WriteCoalescer } from './write-coalescer.js';

export const STOMP_SUBPROTOCOLS = ['v12.stomp', 'v11.stomp', 'v10.stomp'] as const;

/** Decides, from the upgrade request, whether to accept and who the client is. */
export type UpgradeDecision =
  | { accept: true; user?: string; claims?: Readonly<Record<string, unknown>> }
  | { accept: false; status: number; code: string; reason: string };
export type UpgradeGate = (request: IncomingMessage) => Promise<UpgradeDecision>;

export interface WebSocketTransportOptions {
  path: string;
  alwaysBinary: boolean;
  /** Largest WebSocket message; above the STOMP frame limit so the parser reports oversize frames itself. */
  maxPayload: number;
  /** Several frames per WebSocket message when written in one event-loop turn (see write-coalescer.ts). */
  coalesce: boolean;
  gate?: UpgradeGate;
}

/** Closing handshake bound, after which the socket is destroyed. */
const CLOSE_TIMEOUT_MS = 2000;

class WebSocketConnection implements Connection {
  private readonly coalescer: WriteCoalescer | undefined;

  constructor(
    private readonly ws: WebSocket,
    readonly remoteAddress: string,
    coalesce: boolean,
  ) {
    if (coalesce) this.coalescer = new WriteCoalescer((data, binary) => this.write(data, binary));
  }

  send(data: Buffer, binary: boolean): void {
    if (this.coalescer) this.coalescer.push(data, binary);
    else this.write(data, binary);
  }

  private write(data: Buffer, binary: boolean): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(data, { binary });
  }

  close(code = 1000, reason = ''): void {
    if (this.ws.readyState === this.ws.CLOSED) return;
    this.coalescer?.flush();
    this.ws.close(code, reason.slice(0, 120));
    setTimeout(() => this.ws.terminate(), CLOSE_TIMEOUT_MS).unref();
  }

  /** The socket is gone: nothing held is worth keeping. */
  closed(): void {
    this.coalescer?.discard();
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount + (this.coalescer?.pendingBytes ?? 0);
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }
}

export class WebSocketTransport {
  private readonly wss: WebSocketServer;
  private readonly sockets = new OpenSockets<WebSocket>();
  private accepting = true;

  constructor(
    server: Server,
    private readonly broker: Broker,
    private readonly log: Logger,
    private readonly options: WebSocketTransportOptions,
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.maxPayload,
      perMessageDeflate: false,
      handleProtocols: (offered) => STOMP_SUBPROTOCOLS.find((p) => offered.has(p)) ?? false,
    });
    this.wss.on('error', (error) => this.log.error({ err: error }, 'websocket server error'));
    server.on('upgrade', this.onUpgrade);
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  private readonly onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = (request.url ?? '/').split('?')[0];
    if (path !== this.options.path) return; // another transport's path (SockJS)
    destroyOnError(socket);
    if (!this.accepting) return refuse(socket, 503, 'ERR_SHUTTING_DOWN', 'shutting down');
    const gate: UpgradeGate = this.options.gate ?? (async () => ({ accept: true }));
    gate(request).then(
      (decision) => {
        if (!decision.accept) return refuse(socket, decision.status, decision.code, decision.reason);
        this.wss.handleUpgrade(request, socket, head, (ws) => this.onConnection(ws, request, decision));
      },
      (error: unknown) => {
        this.log.error({ err: error }, 'upgrade gate failed');
        refuse(socket, 500, 'ERR_INTERNAL', 'internal error');
      },
    );
  };

  private onConnection(ws: WebSocket, request: IncomingMessage, { user, claims }: { user?: string; claims?: TransportContext['claims'] }): void {
    this.sockets.add(ws);
    const remoteAddress = request.socket.remoteAddress ?? '';
    const context: TransportContext = { user, claims, subprotocol: ws.protocol || undefined, alwaysBinary: this.options.alwaysBinary };
    const connection = new WebSocketConnection(ws, remoteAddress, this.options.coalesce);
    const session = this.broker.createSession(connection, context);
    interceptOversizeClose(ws, session);
    ws.on('message', (data: Buffer) => session.receive(data));
    ws.on('error', (error: Error & { code?: string }) => {
      // An oversized message was reported (and logged) by the session as its ERROR.
      if (error.code !== 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.log.debug({ err: error, session: session.id }, 'websocket error');
    });
    ws.on('close', () => {
      this.sockets.delete(ws);
      connection.closed();
      session.transportClosed();
    });
  }

  /** Stops accepting; resolves when every socket closed, or the bound passed (then they are cut). */
  async close(timeoutMs: number): Promise<void> {
    // The upgrade listener stays: from now on it answers 503 ERR_SHUTTING_DOWN. Removed,
    // an upgrade on this path would fall through to koa (404) or be left hanging.
    this.accepting = false;
    await this.sockets.drained(timeoutMs);
    for (const ws of this.sockets) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

/**
 * ws answers a message over maxPayload by calling close(1009) itself, before
 * any listener runs, so the client would learn nothing at the STOMP level.
 * That one call is turned into the session's ERROR (naming maxFrameSize),
 * which is written and flushed ahead of the close (STOMP 1.2 "ERROR": the
 * server sends ERROR, then closes).
 */
function interceptOversizeClose(ws: WebSocket, session: Session): void {
  const close = ws.close.bind(ws);
  ws.close = (code?: number, reason?: string | Buffer): void => {
    if (code === 1009 && session.open) session.frameTooLarge();
    else close(code, reason);
  };
}

function refuse(socket: Duplex, status: number, code: string, reason: string): void {
  const body = JSON.stringify({ error: { code, message: reason } });
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

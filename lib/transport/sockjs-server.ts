/*
 * STOMP over SockJS (the `sockjs` package), for pages written against
 * Spring's `withSockJS()` endpoint (seed 002: `new SockJS('/chat-websocket')`
 * then `Stomp.over(ws)`). Each SockJS connection becomes one broker Session,
 * exactly like a raw WebSocket; SockJS only changes how the bytes travel
 * (websocket, xhr-streaming, xhr-polling, eventsource).
 *
 * Requests reach this transport before koa (`handleRequest`) and upgrades
 * through the server's 'upgrade' event; both pass through the same gate as
 * raw WebSockets (origin check, identity from the cookie or `access_token`).
 *
 * Identity. sockjs hands its 'connection' handler a filtered copy of the
 * request headers without Cookie or Authorization, so the identity is
 * resolved here, on the raw request, and remembered under the SockJS
 * session id in the URL (`<prefix>/<server>/<session>/<transport>`). Every
 * later request of that session (each xhr_send, each poll) must carry the
 * same identity, or it is refused: knowing a session id is not enough to
 * read or write another user's session. `access_token` on the base URL
 * works for every transport, as sockjs-client keeps the query string on
 * each request it derives from the base URL.
 *
 * Refused transports. jsonp, jsonp_send, htmlfile and the iframe page would
 * let a foreign page include the endpoint as a <script>/<iframe> with the
 * victim's cookie and no Origin header; they are answered 404. Every
 * browser that sockjs-client 1.x supports has websocket or XHR transports.
 *
 * Text only. SockJS carries strings (JSON-quoted), so STOMP over SockJS is
 * text in practice: every frame is written as UTF-8. A message whose body
 * is not valid UTF-8 cannot cross SockJS intact; such clients should use the
 * raw WebSocket endpoint (binary WebSocket messages) instead.
 *
 * Heart-beats. SockJS sends its own 'h' frames (SOCKJS_HEARTBEAT_MS, 25 s
 * by default) to keep proxies from closing idle streaming responses. They
 * are invisible to STOMP: STOMP's negotiated heart-beats still decide
 * liveness, and the two do not replace each other. The 'h' interval should
 * stay below the proxy's idle timeout (nginx proxy_read_timeout, 60 s).
 *
 * Oversized input. A message over maxMessageSize is cut by the transport
 * (faye-websocket's maxLength, or limitBody for xhr_send) before STOMP sees
 * it; the session first sends its ERROR naming maxFrameSize, as the raw
 * WebSocket and TCP transports do, then the SockJS session is closed.
 *
 * Backpressure. SockJS gives no way to pause a client's input; the
 * session's input bound and the frame limits still apply. Output: the
 * bytes sockjs holds for a session count towards the slow-consumer bound.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import sockjs from 'sockjs';
import type { Broker } from '../broker/broker.js';
import type { Connection, TransportContext } from '../broker/connection.js';
import type { Session } from '../broker/session.js';
import type { Logger } from '../log.js';
import type { UpgradeDecision, UpgradeGate } from './websocket-server.js';
import { destroyOnError } from './upgrade-socket.js';

export interface SockJsTransportOptions {
  /** Endpoint path, e.g. `/chat-websocket`. */
  prefix: string;
  /** SockJS 'h' frame interval, ms. @default 25000 */
  heartbeatMs: number;
  /** Largest message a client may send in one SockJS frame or xhr_send, bytes. */
  maxMessageSize: number;
  /** How long a session waits for the next poll before it is closed, ms. @default 5000 */
  disconnectDelayMs?: number;
  gate?: UpgradeGate;
}

/** Transports that receive (open or resume a session) and the one that sends into it. */
const RECEIVING = new Set(['xhr', 'xhr_streaming', 'eventsource', 'websocket']);
const REFUSED = new Set(['jsonp', 'jsonp_send', 'htmlfile']);
const SESSION_PATH = /^\/([^/.]+)\/([^/.]+)\/([a-z_]+)\/?$/;
const TAG_PARAM = 'sb_tag';
/** A binding whose session never opened is forgotten after this long. */
const BINDING_TTL_MS = 60_000;

interface Binding {
  user: string | undefined;
  claims: TransportContext['claims'];
  createdAt: number;
  connected: boolean;
}

type SockJsHandler = ((req: IncomingMessage, res: ServerResponse | Duplex, head?: Buffer) => boolean) & {
  upgrade?: unknown;
};

class SockJsConnection implements Connection {
  constructor(private readonly conn: sockjs.Connection) {}

  get remoteAddress(): string {
    return this.conn.remoteAddress ?? '';
  }

  send(data: Buffer): void {
    // Text only (see the file comment): SockJS frames are strings.
    if (this.conn.readyState === 1) this.conn.write(data.toString('utf8'));
  }

  close(code = 1000, reason = ''): void {
    closeSockJs(this.conn, code, reason.slice(0, 120));
  }

  /**
   * sockjs exposes no buffered amount: read what its session holds between
   * polls and what the socket under the current receiver has not flushed.
   */
  get bufferedAmount(): number {
    const session = (this.conn as unknown as { _session?: SockJsSessionInternals })._session;
    if (!session) return 0;
    let total = 0;
    for (const chunk of session.send_buffer ?? []) total += chunk.length;
    const recv = session.recv;
    total += recv?.ws?.bufferedAmount ?? 0;
    total += recv?.response?.socket?.writableLength ?? 0;
    return total;
  }

  pause(): void {
    // SockJS cannot pause a client (see the file comment).
  }

  resume(): void {}
}

/** The parts of sockjs's internal session object read for bufferedAmount (sockjs 0.3.x). */
interface SockJsSessionInternals {
  send_buffer?: string[];
  recv?: {
    ws?: { bufferedAmount?: number } & FayeInternals;
    response?: { socket?: { writableLength?: number } | null };
  } | null;
}

/** faye-websocket's protocol driver (websocket-driver's hybi), which cuts an oversized message in `_fail('too_large')`. */
interface FayeInternals {
  _driver?: { _fail?(type: string, message: string): void };
}

/**
 * The driver closes with 1009 in the same call that finds a message too
 * large, before any event: the session's ERROR is written first.
 */
function reportOversize(conn: sockjs.Connection, session: Session): void {
  const internals = conn as unknown as { _session?: SockJsSessionInternals; ws?: FayeInternals };
  const driver = (internals._session?.recv?.ws ?? internals.ws)?._driver;
  const fail = driver?._fail;
  if (!driver || !fail) return;
  driver._fail = (type, message) => {
    if (type === 'too_large' && session.open) session.frameTooLarge();
    fail.call(driver, type, message);
  };
}

export class SockJsTransport {
  private readonly server: sockjs.Server;
  private readonly handler: SockJsHandler;
  private readonly bindings = new Map<string, Binding>();
  private readonly connections = new Set<sockjs.Connection>();
  /** Sessions by binding key, for an xhr_send cut over the bound. */
  private readonly sessions = new Map<string, Session>();
  private readonly sweeper: NodeJS.Timeout;
  private accepting = true;

  constructor(
    private readonly httpServer: Server,
    private readonly broker: Broker,
    private readonly log: Logger,
    private readonly options: SockJsTransportOptions,
  ) {
    this.server = sockjs.createServer({
      prefix: options.prefix,
      heartbeat_delay: options.heartbeatMs,
      disconnect_delay: options.disconnectDelayMs ?? 5000,
      // The iframe transports are refused, so this URL is never served to a page.
      sockjs_url: '/sockjs-iframe-disabled.js',
      log: (severity, line) => {
        // sockjs logs request URLs, which may carry an access_token.
        const safe = line.replace(/access_token=[^&\s]*/g, 'access_token=[redacted]');
        if (severity === 'error') this.log.warn({ transport: 'sockjs' }, safe);
        else this.log.trace({ transport: 'sockjs' }, safe);
      },
      // faye-websocket's bound on one incoming WebSocket message (its default is 64 MiB).
      ...({ faye_server_options: { maxLength: options.maxMessageSize } } as object),
    });
    this.server.on('connection', (conn: sockjs.Connection | null) => {
      if (conn) this.onConnection(conn);
    });
    this.handler = (this.server as unknown as { listener(): { getHandler(): SockJsHandler } }).listener().getHandler();
    httpServer.on('upgrade', this.onUpgrade);
    this.sweeper = setInterval(() => this.sweep(), BINDING_TTL_MS);
    this.sweeper.unref();
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Whether a request path belongs to this endpoint. */
  owns(url: string | undefined): boolean {
    const path = pathOf(url);
    return path === this.options.prefix || path.startsWith(this.options.prefix + '/');
  }

  /** Serves `req` when it is for this endpoint and returns true; false leaves it to the app. */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean {
    if (!this.owns(req.url)) return false;
    void this.admit(req).then(
      (admitted) => {
        if (!admitted.ok) return respondJson(res, admitted.status, admitted.code, admitted.message);
        if (!this.handler(req, res)) return respondJson(res, 404, 'ERR_NOT_FOUND', `no SockJS route for ${pathOf(req.url).slice(0, 128)}`);
        this.limitBody(req, res);
      },
      (error: unknown) => {
        this.log.error({ err: error }, 'sockjs request failed');
        respondJson(res, 500, 'ERR_INTERNAL', 'internal error');
      },
    );
    return true;
  }

  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (!this.owns(req.url)) return;
    destroyOnError(socket);
    void this.admit(req).then(
      (admitted) => {
        if (!admitted.ok) return refuseUpgrade(socket, admitted.status, admitted.code, admitted.message);
        if (!this.handler(req, socket, head)) refuseUpgrade(socket, 404, 'ERR_NOT_FOUND', 'no SockJS route');
      },
      (error: unknown) => {
        this.log.error({ err: error }, 'sockjs upgrade failed');
        refuseUpgrade(socket, 500, 'ERR_INTERNAL', 'internal error');
      },
    );
  };

  /**
   * Decides on one request: refused transports, the gate (origin and
   * identity), and the session binding (same identity on every request of a
   * session). Tags a raw-websocket request so its connection finds its identity.
   */
  private async admit(req: IncomingMessage): Promise<{ ok: true } | { ok: false; status: number; code: string; message: string }> {
    if (!this.accepting) return { ok: false, status: 503, code: 'ERR_SHUTTING_DOWN', message: 'the node is shutting down' };
    const rest = pathOf(req.url).slice(this.options.prefix.length);
    const match = SESSION_PATH.exec(rest);
    const transport = match?.[3];
    if ((transport !== undefined && REFUSED.has(transport)) || /^\/iframe[0-9-.a-z_]*\.html$/.test(rest)) {
      this.log.info({ transport: 'sockjs', path: pathOf(req.url) }, 'SockJS script-inclusion transport refused');
      return { ok: false, status: 404, code: 'ERR_NOT_FOUND', message: 'this SockJS transport is disabled (it would bypass the origin check)' };
    }
    // The gate logs its own refusals.
    const decision: UpgradeDecision = this.options.gate ? await this.options.gate(req) : { accept: true };
    if (!decision.accept) return { ok: false, status: decision.status, code: decision.code, message: decision.reason };
    if (req.method === 'OPTIONS') return { ok: true }; // CORS preflight: carries no credentials
    if (match && transport !== undefined) {
      const key = match[2]!;
      const bound = this.bindings.get(key);
      if (bound) {
        if (bound.user !== decision.user) {
          this.log.warn({ transport: 'sockjs', user: decision.user, owner: bound.user }, 'request for a SockJS session of another identity refused');
          return { ok: false, status: 403, code: 'ERR_FORBIDDEN', message: 'this SockJS session belongs to another identity' };
        }
      } else if (RECEIVING.has(transport)) {
        this.bindings.set(key, { user: decision.user, claims: decision.claims, createdAt: Date.now(), connected: false });
      }
      // An xhr_send for a session not open here: sockjs answers 404.
    } else if (rest === '/websocket' || rest === '/websocket/') {
      // The raw WebSocket at <prefix>/websocket has no session id: tag the URL.
      const tag = randomUUID();
      this.bindings.set(tag, { user: decision.user, claims: decision.claims, createdAt: Date.now(), connected: false });
      req.url = `${req.url ?? ''}${(req.url ?? '').includes('?') ? '&' : '?'}${TAG_PARAM}=${tag}`;
    }
    return { ok: true };
  }

  /** Cuts an xhr_send whose body passes the bound (sockjs itself reads bodies unbounded). */
  private limitBody(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'POST') return;
    const max = this.options.maxMessageSize;
    const declared = Number(req.headers['content-length'] ?? 0);
    let seen = 0;
    const over = (): void => {
      // The session's ERROR (logged by it) reaches the client through its receiving request (stream or next poll).
      const key = bindingKey(req.url, this.options.prefix);
      const session = key === undefined ? undefined : this.sessions.get(key);
      if (session) session.frameTooLarge();
      else this.log.info({ transport: 'sockjs', limit: max }, 'SockJS request body too large; connection cut');
      req.destroy();
      res.destroy();
    };
    if (declared > max) return over();
    req.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > max) over();
    });
  }

  private onConnection(conn: sockjs.Connection): void {
    const key = bindingKey(conn.url, this.options.prefix);
    const binding = key === undefined ? undefined : this.bindings.get(key);
    if (!this.accepting || (key !== undefined && !binding)) {
      // Opened while closing, or its binding was swept: no identity to give it.
      closeSockJs(conn, 1013, 'try again');
      return;
    }
    if (binding) binding.connected = true;
    this.connections.add(conn);
    const session = this.broker.createSession(new SockJsConnection(conn), { user: binding?.user, claims: binding?.claims, alwaysBinary: false });
    if (key !== undefined) this.sessions.set(key, session);
    reportOversize(conn, session);
    conn.on('data', (message: string) => session.receive(message));
    conn.on('close', () => {
      this.connections.delete(conn);
      if (key !== undefined) {
        this.bindings.delete(key);
        this.sessions.delete(key);
      }
      session.transportClosed();
    });
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, binding] of this.bindings) {
      if (!binding.connected && now - binding.createdAt > BINDING_TTL_MS) this.bindings.delete(key);
    }
  }

  /** Stops accepting and closes every SockJS session (the broker already sent them ERROR on shutdown). */
  async close(): Promise<void> {
    this.accepting = false;
    clearInterval(this.sweeper);
    this.httpServer.off('upgrade', this.onUpgrade);
    for (const conn of this.connections) closeSockJs(conn, 1001, 'the node is shutting down');
    this.connections.clear();
    this.bindings.clear();
    this.sessions.clear();
  }
}

/** sockjs sends the code as given in its close frame: a number, whatever @types/sockjs says. */
function closeSockJs(conn: sockjs.Connection, code: number, reason: string): void {
  (conn.close as unknown as (code: number, reason: string) => boolean).call(conn, code, reason);
}

function pathOf(url: string | undefined): string {
  const value = url ?? '/';
  const q = value.indexOf('?');
  return q < 0 ? value : value.slice(0, q);
}

/** The session id from `<prefix>/<server>/<session>/<transport>`, or the tag of a raw websocket. */
function bindingKey(url: string | undefined, prefix: string): string | undefined {
  const rest = pathOf(url).slice(prefix.length);
  const match = SESSION_PATH.exec(rest);
  if (match) return match[2];
  const q = (url ?? '').indexOf('?');
  if (q < 0) return undefined;
  return new URLSearchParams((url ?? '').slice(q + 1)).get(TAG_PARAM) ?? undefined;
}

function respondJson(res: ServerResponse, status: number, code: string, message: string): void {
  if (res.headersSent) return void res.destroy();
  const body = JSON.stringify({ error: { code, message } });
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(body);
}

function refuseUpgrade(socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${status === 403 ? 'Forbidden' : status === 401 ? 'Unauthorized' : 'Refused'}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

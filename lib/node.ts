/*
 * The composition root: configuration → parts → a running node. Without
 * REDIS_URL every seam gets its in-memory implementation (one node); with it,
 * the Redis ones (a cluster member).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { OpenAuthenticator, StaticAuthenticator, type Authenticator } from './broker/auth.js';
import { Broker, type BrokerParts } from './broker/broker.js';
import { MemoryHub } from './cluster/memory-hub.js';
import { MemoryPresence } from './cluster/memory-presence.js';
import { MemoryRelay } from './cluster/memory-relay.js';
import { MemoryUserRouter } from './cluster/memory-user-router.js';
import { redisTargetOf, type Config } from './config.js';
import { redisMode } from './cluster/redis-target.js';
import { JwtAuthenticator, JwtVerifier } from './broker/jwt-authenticator.js';
import { createApp } from './http/app.js';
import { createAppProxy } from './http/app-proxy.js';
import { NodeMetrics } from './http/metrics.js';
import { IdentityResolver } from './identity/identity.js';
import { OriginPolicy } from './identity/origin-policy.js';
import { SessionTokens } from './identity/session-token.js';
import { createUpgradeGate } from './identity/upgrade-gate.js';
import { MemoryKnownUsers, StaticKnownUsers } from './identity/known-users.js';
import { Permissions } from './broker/permissions.js';
import { RecipientPolicy } from './broker/recipient-policy.js';
import { MemoryInboxStore } from './inbox/memory-inbox-store.js';
import { createLogger, type Logger } from './log.js';
import { MemoryQueueStore } from './queue/memory-queue-store.js';
import { readPem } from './pem.js';
import { SockJsTransport } from './transport/sockjs-server.js';
import { TcpTransport } from './transport/tcp-server.js';
import { WebSocketTransport, type UpgradeGate } from './transport/websocket-server.js';

export interface RunningNode {
  readonly config: Config;
  readonly broker: Broker;
  readonly server: Server;
  readonly log: Logger;
  /** `http://host:port` once listening. */
  readonly url: string;
  readonly port: number;
  /** STOMP over TCP / TLS ports, when configured. */
  readonly tcpPort: number | undefined;
  readonly tlsPort: number | undefined;
  readonly metrics: NodeMetrics;
  stop(reason?: string): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export function createAuthenticator(config: Config, log: Logger): Authenticator {
  switch (config.authMode) {
    case 'open':
      if (!LOOPBACK.has(config.host) && !config.allowOpenPublic) {
        throw new Error(
          `AUTH_MODE=open accepts anyone as any user; refusing to bind ${config.host}. Use AUTH_MODE=static|jwt, or set ALLOW_OPEN_PUBLIC=true to force it.`,
        );
      }
      log.warn('AUTH_MODE=open: open development mode, any login is accepted without a password. Do not expose this node.');
      return new OpenAuthenticator();
    case 'static':
      if (!config.authUsers) throw new Error('AUTH_MODE=static needs AUTH_USERS=name:password,...');
      return new StaticAuthenticator(config.authUsers);
    case 'jwt': {
      const verifier = new JwtVerifier({
        secret: config.jwtSecret,
        publicKey: config.jwtPublicKey,
        issuer: config.jwtIssuer,
        audience: config.jwtAudience,
      });
      if (verifier.weakSecret) log.warn('JWT_SECRET is shorter than 32 bytes: HS256 tokens signed with it can be brute-forced offline.');
      return new JwtAuthenticator(verifier);
    }
  }
}

/** RECIPIENT_POLICY=known: static mode's configured users, else logins within the inbox TTL (in Redis for a cluster). */
export async function createRecipientPolicy(config: Config, log: Logger): Promise<RecipientPolicy | undefined> {
  if (config.recipientPolicy === 'any') return undefined;
  if (config.authMode === 'static') return new RecipientPolicy(new StaticKnownUsers(new Set(StaticAuthenticator.userNames(config.authUsers ?? ''))), log);
  const redis = redisTargetOf(config);
  if (redis === undefined) return new RecipientPolicy(new MemoryKnownUsers(config.inboxTtlSeconds), log);
  const { RedisKnownUsers } = await import('./identity/redis-known-users.js');
  return new RecipientPolicy(new RedisKnownUsers(redis, config.inboxTtlSeconds, { keyPrefix: config.redisPrefix, logger: log }), log);
}

/** Session cookies signed with SESSION_SECRET, or a random secret that lives as long as the process. */
export function createSessionTokens(config: Config, log: Logger): SessionTokens {
  if (config.sessionSecret) {
    if (Buffer.byteLength(config.sessionSecret) < 32) log.warn('SESSION_SECRET is shorter than 32 bytes; use a long random value.');
    return new SessionTokens(Buffer.from(config.sessionSecret, 'utf8'), config.sessionTtlSeconds);
  }
  log.warn(
    redisTargetOf(config) !== undefined
      ? 'SESSION_SECRET is not set: this node signs session cookies with a random key, so logins do not carry over to the other nodes of the cluster nor survive a restart. Set the same SESSION_SECRET on every node.'
      : 'SESSION_SECRET is not set: session cookies are signed with a random key and end with this process. Set SESSION_SECRET (the same on every node of a cluster).',
  );
  return new SessionTokens(randomBytes(32), config.sessionTtlSeconds);
}

/** What carries the cluster, for the start-up log line. */
function clusterKind(config: Config): string {
  const redis = redisTargetOf(config);
  if (redis === undefined) return 'memory';
  const mode = redisMode(redis);
  return mode === 'single' ? 'redis' : `redis-${mode}`;
}

async function createParts(config: Config, log: Logger, nodeId: string): Promise<Omit<BrokerParts, 'config' | 'log' | 'auth'>> {
  if (redisTargetOf(config) !== undefined) {
    const { createRedisParts } = await import('./cluster/redis-parts.js');
    return createRedisParts(config, log, nodeId);
  }
  const hub = new MemoryHub();
  const presence = new MemoryPresence(nodeId, hub);
  const relay = new MemoryRelay(nodeId, hub);
  const inbox = new MemoryInboxStore({
    maxMessages: config.inboxMaxMessages,
    maxBytes: config.inboxMaxBytes,
    ttlSeconds: config.inboxTtlSeconds,
    overflow: config.inboxOverflow,
  });
  return {
    nodeId,
    presence,
    relay,
    inbox,
    router: new MemoryUserRouter(nodeId, presence, inbox, relay),
    queues: new MemoryQueueStore({ maxMessages: config.queueMaxMessages, maxBytes: config.queueMaxBytes }),
  };
}

/** The TLS listener's certificate and key, checked before anything starts. */
function tlsMaterial(config: Config): { cert: string; key: string } | undefined {
  if (config.stompTlsPort === undefined) return undefined;
  if (!config.stompTlsCert || !config.stompTlsKey) throw new Error('STOMP_TLS_PORT needs STOMP_TLS_CERT and STOMP_TLS_KEY (PEM text or file paths)');
  return { cert: readPem(config.stompTlsCert), key: readPem(config.stompTlsKey) };
}

/** STOMP over TCP and over TLS, each when its port is configured; on a failure, what did start is closed. */
async function startStreamTransports(
  config: Config,
  broker: Broker,
  log: Logger,
  tls: { cert: string; key: string } | undefined,
  ready: () => boolean,
): Promise<TcpTransport[]> {
  const started: TcpTransport[] = [];
  const options = { host: config.host, coalesce: config.wsCoalesceFrames, ready };
  try {
    if (config.stompTcpPort !== undefined) started.push(await TcpTransport.listen(broker, log, { ...options, port: config.stompTcpPort }));
    if (tls && config.stompTlsPort !== undefined) started.push(await TcpTransport.listen(broker, log, { ...options, port: config.stompTlsPort, tls }));
  } catch (error) {
    await Promise.all(started.map((s) => s.close(0)));
    throw error;
  }
  return started;
}

export async function startNode(config: Config, log?: Logger): Promise<RunningNode> {
  const nodeId = config.nodeId ?? randomBytes(4).toString('hex');
  const logger = log ?? createLogger(config.logLevel, nodeId);
  const auth = createAuthenticator(config, logger);
  const tls = tlsMaterial(config);
  const identity = new IdentityResolver(createSessionTokens(config, logger), auth instanceof JwtAuthenticator ? auth.verifier : undefined);
  const origins = new OriginPolicy(config.allowedOrigins);
  // Read before any part connects: a malformed rules file stops the node with nothing to undo.
  const permissions = Permissions.load(config.permissionsFile, config.userPrefix, config.permissionsClaim);
  const metrics = new NodeMetrics(nodeId);
  const parts = await createParts(config, logger, nodeId);
  metrics.instrumentRelay(parts.relay);
  const recipients = await createRecipientPolicy(config, logger);
  const broker = new Broker({ ...parts, config, log: logger, auth, recipients, permissions });
  // Without APP_PROXY_URL a SEND to APP_PREFIX stays ERR_UNKNOWN_DESTINATION.
  if (config.appProxyUrl) broker.applicationHandler = createAppProxy(broker, { url: config.appProxyUrl, timeoutMs: config.appProxyTimeoutMs });
  // The node joins the cluster only once it listens (a node that cannot bind must never have
  // registered): until then every request and handshake is answered 503 ERR_STARTING.
  let started = false;

  const app = createApp({ broker, log: logger, identity, origins, metrics });
  const handleHttp = app.callback();
  // SockJS requests go to the SockJS transport before koa sees them; the rest to koa.
  const server = createServer((request, response) => {
    if (!started) return void refuseStarting(response);
    if (!sockjs.handleRequest(request, response)) void handleHttp(request, response);
  });
  const identityGate = createUpgradeGate(identity, origins, logger);
  const gate: UpgradeGate = async (request) =>
    started ? identityGate(request) : { accept: false, status: 503, code: 'ERR_STARTING', reason: 'the node is starting' };
  const transport = new WebSocketTransport(server, broker, logger, {
    path: config.wsPath,
    alwaysBinary: config.wsBinaryFrames === 'always',
    maxPayload: config.maxFrameSize * 2 + 1024,
    coalesce: config.wsCoalesceFrames,
    gate,
  });
  const sockjs = new SockJsTransport(server, broker, logger, {
    prefix: config.sockjsPath,
    heartbeatMs: config.sockjsHeartbeatMs,
    // A STOMP frame JSON-quoted in a SockJS frame may double in size.
    maxMessageSize: config.maxFrameSize * 2 + 1024,
    gate,
  });
  // An upgrade for neither path gets an answer instead of a socket left hanging.
  server.on('upgrade', (request: IncomingMessage, socket: Duplex) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path === config.wsPath || sockjs.owns(request.url)) return;
    socket.on('error', () => socket.destroy());
    const body = JSON.stringify({ error: { code: 'ERR_NOT_FOUND', message: `no WebSocket endpoint at ${path}` } });
    socket.end(`HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  let streams: TcpTransport[] = [];
  try {
    // Bound before the node joins, like the HTTP port; until then they answer ERROR ERR_STARTING.
    streams = await startStreamTransports(config, broker, logger, tls, () => started);
    await broker.start();
  } catch (error) {
    await Promise.all([new Promise<void>((resolve) => server.close(() => resolve())), ...streams.map((s) => s.close(0))]);
    await broker.shutdown('the node could not start').catch(() => {});
    throw error;
  }
  started = true;
  const streamConnections = () => streams.reduce((sum, s) => sum + s.connectionCount, 0);
  metrics.attach({
    broker,
    connections: () => ({
      websocket: transport.connectionCount,
      sockjs: sockjs.connectionCount,
      ...Object.fromEntries(streams.map((s) => [s.name, s.connectionCount])),
    }),
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  const tcpPort = streams.find((s) => s.name === 'tcp')?.port;
  const tlsPort = streams.find((s) => s.name === 'tls')?.port;
  logger.info(
    { url, ws: `ws://${host}:${address.port}${config.wsPath}`, stompTcpPort: tcpPort, stompTlsPort: tlsPort, cluster: clusterKind(config) },
    'stompbox node listening',
  );
  // What the admin view shows per node (published with each presence beat).
  const publishStats = () =>
    broker.presence.setStats({ connections: transport.connectionCount + sockjs.connectionCount + streamConnections(), sessions: broker.sessions.size, url });
  publishStats();
  const statsTimer = setInterval(publishStats, config.nodeBeatMs);
  statsTimer.unref();

  let stopping: Promise<void> | undefined;
  return {
    config,
    broker,
    server,
    log: logger,
    url,
    port: address.port,
    tcpPort,
    tlsPort,
    metrics,
    stop(reason?: string) {
      stopping ??= (async () => {
        clearInterval(statsTimer);
        const startedAt = Date.now();
        // No new connections; open sessions are ended by the broker once what they hold is settled.
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        await broker.shutdown(reason);
        await recipients?.close();
        await sockjs.close();
        const left = Math.max(500, config.shutdownTimeoutMs - (Date.now() - startedAt));
        await Promise.all([transport.close(left), ...streams.map((s) => s.close(left))]);
        server.closeAllConnections();
        await closed;
      })();
      return stopping;
    },
  };
}

function refuseStarting(response: ServerResponse): void {
  const body = JSON.stringify({ error: { code: 'ERR_STARTING', message: 'the node is starting; try again' } });
  response.writeHead(503, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'Retry-After': '1' });
  response.end(body);
}

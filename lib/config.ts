/*
 * Configuration: one table of options, each readable from an environment
 * variable and a command-line flag (the flag wins), with its default. The
 * README's configuration table is this table.
 */
import { parseArgs } from 'node:util';
import { parseRedisAddresses, type RedisTarget } from './cluster/redis-target.js';

export type AuthMode = 'open' | 'static' | 'jwt';
export type BinaryFrames = 'auto' | 'always';
export type InboxOverflow = 'refuse' | 'drop-oldest';
export type RecipientPolicy = 'any' | 'known';

/** Longest visibility timeout of an inbox claim (INBOX_CLAIM_TIMEOUT_MS and per request), ms: one hour. */
export const MAX_INBOX_CLAIM_TIMEOUT_MS = 3_600_000;

export interface Config {
  /** HTTP and WebSocket port. @default 8080 */
  port: number;
  /** Bind address. @default 127.0.0.1 */
  host: string;
  /** WebSocket (STOMP) upgrade path. @default /stomp */
  wsPath: string;
  /** SockJS endpoint path. @default /chat-websocket */
  sockjsPath: string;
  /**
   * One Redis server's URL. This, `redisClusterNodes` or `redisSentinels`: any one set makes
   * this process a cluster node; at most one may be. @default unset (in-memory)
   */
  redisUrl: string | undefined;
  /** Redis Cluster seed nodes, `host:port,host:port`. @default unset */
  redisClusterNodes: string | undefined;
  /** Redis Sentinels, `host:port,host:port`; needs `redisSentinelName`. @default unset */
  redisSentinels: string | undefined;
  /** Name of the primary the sentinels monitor. @default unset */
  redisSentinelName: string | undefined;
  /** Prefix of every Redis key and channel. @default sb: */
  redisPrefix: string;
  /**
   * Replicas that must have every write a RECEIPT answers for before it is sent (Redis WAIT):
   * with replication and failover (Redis Cluster, Sentinel), 1 makes a RECEIPT survive the loss
   * of a master. 0: the master's word. @default 0
   */
  redisWaitReplicas: number;
  /** How long such a write waits for its replicas before the send is refused (ERR_CLUSTER_UNAVAILABLE), ms. @default 1000 */
  redisWaitTimeoutMs: number;
  /** This node's id in the cluster. @default random */
  nodeId: string | undefined;
  /** Presence beat interval. @default 2000 */
  nodeBeatMs: number;
  /** A node silent this long drops out of presence. @default 6000 */
  nodeTimeoutMs: number;
  /** Envelope bytes waiting for one node in its relay stream before sends to it are refused. @default 67108864 */
  relayMaxStreamBytes: number;
  /** Partitions of a node's relay stream on a Redis Cluster; 0: one per master. Ignored off a cluster. @default 0 */
  relayPartitions: number;
  /** Off a cluster, read a node's relay stream by its writers' pushes (redis-push-feed.ts); false: XREAD BLOCK per wake-up. @default true */
  relayPushReads: boolean;
  /** open | static | jwt. @default open */
  authMode: AuthMode;
  /** For static mode: `user:password,user2:password2`. */
  authUsers: string | undefined;
  /** Allow open mode on a non-loopback bind address. @default false */
  allowOpenPublic: boolean;
  /** Largest frame in bytes. @default 1114112 */
  maxFrameSize: number;
  /** Most headers in a frame. @default 64 */
  maxHeaders: number;
  /** Longest header line in bytes. @default 8192 */
  maxHeaderLineLength: number;
  /** Largest body in bytes. @default 1048576 */
  maxBodySize: number;
  /**
   * Floor of a negotiated heart-beat interval, both directions: a client asking for beats
   * more often gets this. 1 s is what browsers still run a background tab's timers at. @default 1000
   */
  heartbeatMinMs: number;
  /**
   * Ceiling of the interval the server sends beats at, whatever the client asked, so that
   * proxies' idle timeouts (nginx: 60 s) never cut a live connection. @default 30000
   */
  heartbeatMaxMs: number;
  /** Extra silence tolerated past the negotiated interval before disconnecting, ms. @default 10000 */
  heartbeatGraceMs: number;
  /** Outgoing bytes buffered for one connection before it counts as a slow consumer. @default 8388608 */
  maxOutgoingBuffer: number;
  /** Subscriptions per session. @default 1000 */
  maxSubscriptions: number;
  /** Messages kept per queue while nobody consumes. @default 10000 */
  queueMaxMessages: number;
  /** Bytes (stored size) of the messages waiting in one queue, in flight not counted. @default 67108864 */
  queueMaxBytes: number;
  /** Messages kept per inbox (user and destination). @default 1000 */
  inboxMaxMessages: number;
  /** Bytes (stored size) kept per user, across all the user's inboxes. @default 16777216 */
  inboxMaxBytes: number;
  /** Inbox expiry after its last message, seconds. @default 604800 */
  inboxTtlSeconds: number;
  /** A new message for a full inbox: refuse (ERR_INBOX_FULL) or drop-oldest (counted). @default refuse */
  inboxOverflow: InboxOverflow;
  /** Visibility timeout of a claim through POST /api/inbox/claim, ms (at most MAX_INBOX_CLAIM_TIMEOUT_MS). @default 30000 */
  inboxClaimTimeoutMs: number;
  /** auto: binary WebSocket messages only for non-UTF-8 bodies; always: every frame. @default auto */
  wsBinaryFrames: BinaryFrames;
  /** Frames written in one event-loop turn share one WebSocket message. @default true */
  wsCoalesceFrames: boolean;
  /** Destination prefixes (Spring's defaults). */
  topicPrefix: string;
  queuePrefix: string;
  userPrefix: string;
  appPrefix: string;
  /** Bound on graceful shutdown, ms. @default 5000 */
  shutdownTimeoutMs: number;
  /** pino level. @default info */
  logLevel: string;
  /** HMAC key of the `sb_session` cookie; every node of a cluster needs the same. @default random per process (with a warning) */
  sessionSecret: string | undefined;
  /** Lifetime of a login session (cookie), seconds. @default 86400 */
  sessionTtlSeconds: number;
  /** Mark the session cookie `Secure` even on plain HTTP (TLS terminated by a proxy). @default false */
  sessionCookieSecure: boolean;
  /** jwt mode: HS256 shared secret. */
  jwtSecret: string | undefined;
  /** jwt mode: RS256/ES256 public key, PEM text or a path to a PEM file. */
  jwtPublicKey: string | undefined;
  /** jwt mode: required `iss`, when set. */
  jwtIssuer: string | undefined;
  /** jwt mode: required `aud`, when set. */
  jwtAudience: string | undefined;
  /** Origins allowed to use the cookie session (WebSocket, SockJS, HTTP API): comma list, `*` for any. @default unset (same origin only) */
  allowedOrigins: string | undefined;
  /** SockJS transport heart-beat ('h' frame) interval, ms. @default 25000 */
  sockjsHeartbeatMs: number;
  /** STOMP over plain TCP on this port (0: any free port). @default unset (off) */
  stompTcpPort: number | undefined;
  /** STOMP over TLS on this port (0: any free port); needs stompTlsCert and stompTlsKey. @default unset (off) */
  stompTlsPort: number | undefined;
  /** TLS certificate chain, PEM text or a path to a PEM file. */
  stompTlsCert: string | undefined;
  /** TLS private key, PEM text or a path to a PEM file. */
  stompTlsKey: string | undefined;
  /** SENDs to appPrefix are POSTed here (JSON); unset, they are refused. @default unset */
  appProxyUrl: string | undefined;
  /** Bound on one application call, ms. @default 5000 */
  appProxyTimeoutMs: number;
  /** Open transactions per session. @default 8 */
  maxTransactions: number;
  /** SEND/ACK/NACK frames held by one transaction. @default 1000 */
  maxTransactionFrames: number;
  /** Body bytes held by one transaction. @default 8388608 */
  maxTransactionBytes: number;
  /** Unacknowledged messages per client-ack subscription, every destination kind (caps a queue's prefetch-count). @default 1000 */
  maxUnacked: number;
  /** Frames read but not yet handled, per session; past it the session is cut (SockJS cannot pause its client). @default 4096 */
  maxInputFrames: number;
  /** Body bytes read but not yet handled, per session; half of it pauses a WebSocket, all of it cuts the session. @default 16777216 */
  maxInputBytes: number;
  /** STOMP sessions on this node. @default 50000 */
  maxConnections: number;
  /** STOMP sessions of one user on this node. @default 100 */
  maxConnectionsPerUser: number;
  /** SENDs per second per session (token bucket, a second's worth of burst); 0: unbounded. Twice what one sender reaches on the bench's machine (p2p-1: 107k msg/s). @default 200000 */
  sendRateMessages: number;
  /** SEND body bytes per second per session (token bucket, burst a second's worth or one largest body); 0: unbounded. Above one p2p-1mib sender (~130 MiB/s). @default 268435456 */
  sendRateBytes: number;
  /** any: a user destination may name anyone; known: only users who logged in within INBOX_TTL_SECONDS (static mode: AUTH_USERS). @default any */
  recipientPolicy: RecipientPolicy;
  /** JSON rules file: who may subscribe / send to which destinations. @default unset (everyone may use every destination) */
  permissionsFile: string | undefined;
  /** jwt mode: claim holding `{ "subscribe": [...], "send": [...] }` destination patterns. @default unset */
  permissionsClaim: string | undefined;
}

type Kind = 'int' | 'string' | 'optional' | 'optional-int' | 'bool';

interface OptionSpec {
  env: string;
  flag: string;
  kind: Kind;
  choices?: readonly string[];
  /** For 'int': the largest value accepted. */
  max?: number;
  help: string;
}

export const DEFAULT_CONFIG: Readonly<Config> = Object.freeze({
  port: 8080,
  host: '127.0.0.1',
  wsPath: '/stomp',
  sockjsPath: '/chat-websocket',
  redisUrl: undefined,
  redisClusterNodes: undefined,
  redisSentinels: undefined,
  redisSentinelName: undefined,
  redisPrefix: 'sb:',
  redisWaitReplicas: 0,
  redisWaitTimeoutMs: 1000,
  nodeId: undefined,
  nodeBeatMs: 2000,
  nodeTimeoutMs: 6000,
  relayMaxStreamBytes: 64 * 1024 * 1024,
  relayPartitions: 0,
  relayPushReads: true,
  authMode: 'open',
  authUsers: undefined,
  allowOpenPublic: false,
  maxFrameSize: 1024 * 1024 + 64 * 1024,
  maxHeaders: 64,
  maxHeaderLineLength: 8192,
  maxBodySize: 1024 * 1024,
  heartbeatMinMs: 1000,
  heartbeatMaxMs: 30000,
  heartbeatGraceMs: 10000,
  maxOutgoingBuffer: 8 * 1024 * 1024,
  maxSubscriptions: 1000,
  queueMaxMessages: 10000,
  queueMaxBytes: 64 * 1024 * 1024,
  inboxMaxMessages: 1000,
  inboxMaxBytes: 16 * 1024 * 1024,
  inboxTtlSeconds: 7 * 24 * 3600,
  inboxOverflow: 'refuse',
  inboxClaimTimeoutMs: 30_000,
  wsBinaryFrames: 'auto',
  wsCoalesceFrames: true,
  topicPrefix: '/topic/',
  queuePrefix: '/queue/',
  userPrefix: '/user/',
  appPrefix: '/app/',
  shutdownTimeoutMs: 5000,
  logLevel: 'info',
  sessionSecret: undefined,
  sessionTtlSeconds: 24 * 3600,
  sessionCookieSecure: false,
  jwtSecret: undefined,
  jwtPublicKey: undefined,
  jwtIssuer: undefined,
  jwtAudience: undefined,
  allowedOrigins: undefined,
  sockjsHeartbeatMs: 25000,
  stompTcpPort: undefined,
  stompTlsPort: undefined,
  stompTlsCert: undefined,
  stompTlsKey: undefined,
  appProxyUrl: undefined,
  appProxyTimeoutMs: 5000,
  maxTransactions: 8,
  maxTransactionFrames: 1000,
  maxTransactionBytes: 8 * 1024 * 1024,
  maxUnacked: 1000,
  maxInputFrames: 4096,
  maxInputBytes: 16 * 1024 * 1024,
  maxConnections: 50000,
  maxConnectionsPerUser: 100,
  sendRateMessages: 200_000,
  sendRateBytes: 256 * 1024 * 1024,
  recipientPolicy: 'any',
  permissionsFile: undefined,
  permissionsClaim: undefined,
} satisfies Config);

export const OPTIONS: Readonly<Record<keyof Config, OptionSpec>> = {
  port: { env: 'PORT', flag: 'port', kind: 'int', help: 'HTTP and WebSocket port' },
  host: { env: 'HOST', flag: 'host', kind: 'string', help: 'bind address' },
  wsPath: { env: 'WS_PATH', flag: 'ws-path', kind: 'string', help: 'STOMP-over-WebSocket path' },
  sockjsPath: { env: 'SOCKJS_PATH', flag: 'sockjs-path', kind: 'string', help: 'SockJS endpoint path' },
  redisUrl: { env: 'REDIS_URL', flag: 'redis-url', kind: 'optional', help: 'one Redis server\'s URL: set, this node joins a cluster (one of the three Redis options at most)' },
  redisClusterNodes: {
    env: 'REDIS_CLUSTER_NODES',
    flag: 'redis-cluster-nodes',
    kind: 'optional',
    help: 'Redis Cluster seed nodes, host:port,...: set, this node joins a cluster on it',
  },
  redisSentinels: { env: 'REDIS_SENTINELS', flag: 'redis-sentinels', kind: 'optional', help: 'Redis Sentinels, host:port,...: set (with REDIS_SENTINEL_NAME), this node joins a cluster on the primary they name' },
  redisSentinelName: { env: 'REDIS_SENTINEL_NAME', flag: 'redis-sentinel-name', kind: 'optional', help: 'name of the primary the sentinels monitor' },
  redisPrefix: { env: 'REDIS_PREFIX', flag: 'redis-prefix', kind: 'string', help: 'prefix of Redis keys and channels' },
  redisWaitReplicas: {
    env: 'REDIS_WAIT_REPLICAS',
    flag: 'redis-wait-replicas',
    kind: 'int',
    help: 'replicas that must hold a write before its RECEIPT (Redis WAIT): 1 makes a RECEIPT survive a failover',
  },
  redisWaitTimeoutMs: { env: 'REDIS_WAIT_TIMEOUT_MS', flag: 'redis-wait-timeout-ms', kind: 'int', help: 'how long a write waits for its replicas before the send is refused, ms' },
  nodeId: { env: 'NODE_ID', flag: 'node-id', kind: 'optional', help: 'node id in the cluster (default: random)' },
  nodeBeatMs: { env: 'NODE_BEAT_MS', flag: 'node-beat-ms', kind: 'int', help: 'presence beat interval, ms' },
  nodeTimeoutMs: { env: 'NODE_TIMEOUT_MS', flag: 'node-timeout-ms', kind: 'int', help: 'a node silent this long leaves presence, ms' },
  relayMaxStreamBytes: {
    env: 'RELAY_MAX_STREAM_BYTES',
    flag: 'relay-max-stream-bytes',
    kind: 'int',
    help: 'bytes waiting for one node in its relay stream (in each partition of it); past it sends to that node get ERR_RELAY_FULL',
  },
  relayPartitions: {
    env: 'RELAY_PARTITIONS',
    flag: 'relay-partitions',
    kind: 'int',
    max: 64,
    help: "partitions of a node's relay stream on a Redis Cluster, spread over the masters (0: one per master); one stream off a cluster",
  },
  relayPushReads: {
    env: 'RELAY_PUSH_READS',
    flag: 'relay-push-reads',
    kind: 'bool',
    help: "off a cluster, read a node's relay stream by the pushes its writers publish, reading the stream only to catch up (false: XREAD BLOCK per wake-up)",
  },
  authMode: { env: 'AUTH_MODE', flag: 'auth-mode', kind: 'string', choices: ['open', 'static', 'jwt'], help: 'open | static | jwt' },
  authUsers: { env: 'AUTH_USERS', flag: 'auth-users', kind: 'optional', help: 'static mode users: name:password,...' },
  allowOpenPublic: { env: 'ALLOW_OPEN_PUBLIC', flag: 'allow-open-public', kind: 'bool', help: 'allow open mode on a non-loopback address' },
  maxFrameSize: { env: 'MAX_FRAME_SIZE', flag: 'max-frame-size', kind: 'int', help: 'largest STOMP frame, bytes' },
  maxHeaders: { env: 'MAX_HEADERS', flag: 'max-headers', kind: 'int', help: 'most headers per frame' },
  maxHeaderLineLength: { env: 'MAX_HEADER_LINE_LENGTH', flag: 'max-header-line-length', kind: 'int', help: 'longest header line, bytes' },
  maxBodySize: { env: 'MAX_BODY_SIZE', flag: 'max-body-size', kind: 'int', help: 'largest body, bytes' },
  heartbeatMinMs: { env: 'HEARTBEAT_MIN_MS', flag: 'heartbeat-min-ms', kind: 'int', help: 'shortest heart-beat interval granted to a client, either direction, ms' },
  heartbeatMaxMs: { env: 'HEARTBEAT_MAX_MS', flag: 'heartbeat-max-ms', kind: 'int', help: 'longest interval between the server\'s heart-beats, whatever the client asked, ms' },
  heartbeatGraceMs: { env: 'HEARTBEAT_GRACE_MS', flag: 'heartbeat-grace-ms', kind: 'int', help: 'silence tolerated past the interval, ms' },
  maxOutgoingBuffer: { env: 'MAX_OUTGOING_BUFFER', flag: 'max-outgoing-buffer', kind: 'int', help: 'slow-consumer bound, bytes' },
  maxSubscriptions: { env: 'MAX_SUBSCRIPTIONS', flag: 'max-subscriptions', kind: 'int', help: 'subscriptions per session' },
  queueMaxMessages: { env: 'QUEUE_MAX_MESSAGES', flag: 'queue-max-messages', kind: 'int', help: 'messages waiting per queue; past it a SEND gets ERR_QUEUE_FULL' },
  queueMaxBytes: { env: 'QUEUE_MAX_BYTES', flag: 'queue-max-bytes', kind: 'int', help: 'bytes waiting per queue (in flight not counted); past it a SEND gets ERR_QUEUE_FULL' },
  inboxMaxMessages: { env: 'INBOX_MAX_MESSAGES', flag: 'inbox-max-messages', kind: 'int', help: 'messages kept per inbox (user, destination)' },
  inboxMaxBytes: { env: 'INBOX_MAX_BYTES', flag: 'inbox-max-bytes', kind: 'int', help: "bytes kept per user, across all the user's inboxes (INBOX_OVERFLOW applies)" },
  inboxTtlSeconds: { env: 'INBOX_TTL_SECONDS', flag: 'inbox-ttl-seconds', kind: 'int', help: 'inbox expiry, seconds' },
  inboxOverflow: {
    env: 'INBOX_OVERFLOW',
    flag: 'inbox-overflow',
    kind: 'string',
    choices: ['refuse', 'drop-oldest'],
    help: 'a new message for a full inbox: refuse (ERROR / HTTP 507 ERR_INBOX_FULL) or drop-oldest (counted in stompbox_inbox_dropped_total)',
  },
  inboxClaimTimeoutMs: {
    env: 'INBOX_CLAIM_TIMEOUT_MS',
    flag: 'inbox-claim-timeout-ms',
    kind: 'int',
    max: MAX_INBOX_CLAIM_TIMEOUT_MS,
    help: `default visibility timeout of POST /api/inbox/claim, ms (at most ${MAX_INBOX_CLAIM_TIMEOUT_MS})`,
  },
  wsCoalesceFrames: { env: 'WS_COALESCE_FRAMES', flag: 'ws-coalesce-frames', kind: 'bool', help: 'several frames per WebSocket message or TCP write under load (false: one each)' },
  wsBinaryFrames: { env: 'WS_BINARY_FRAMES', flag: 'ws-binary-frames', kind: 'string', choices: ['auto', 'always'], help: 'auto | always' },
  topicPrefix: { env: 'TOPIC_PREFIX', flag: 'topic-prefix', kind: 'string', help: 'topic destination prefix' },
  queuePrefix: { env: 'QUEUE_PREFIX', flag: 'queue-prefix', kind: 'string', help: 'queue destination prefix' },
  userPrefix: { env: 'USER_PREFIX', flag: 'user-prefix', kind: 'string', help: 'user destination prefix' },
  appPrefix: { env: 'APP_PREFIX', flag: 'app-prefix', kind: 'string', help: 'application destination prefix' },
  shutdownTimeoutMs: { env: 'SHUTDOWN_TIMEOUT_MS', flag: 'shutdown-timeout-ms', kind: 'int', help: 'graceful shutdown bound, ms' },
  logLevel: { env: 'LOG_LEVEL', flag: 'log-level', kind: 'string', help: 'log level (trace..fatal, silent)' },
  sessionSecret: { env: 'SESSION_SECRET', flag: 'session-secret', kind: 'optional', help: 'HMAC key of the session cookie (set it, the same on every node)' },
  sessionTtlSeconds: { env: 'SESSION_TTL_SECONDS', flag: 'session-ttl-seconds', kind: 'int', help: 'login session lifetime, seconds' },
  sessionCookieSecure: { env: 'SESSION_COOKIE_SECURE', flag: 'session-cookie-secure', kind: 'bool', help: 'always mark the session cookie Secure (TLS at a proxy)' },
  jwtSecret: { env: 'JWT_SECRET', flag: 'jwt-secret', kind: 'optional', help: 'jwt mode: HS256 secret' },
  jwtPublicKey: { env: 'JWT_PUBLIC_KEY', flag: 'jwt-public-key', kind: 'optional', help: 'jwt mode: RS256/ES256 public key (PEM or file path)' },
  jwtIssuer: { env: 'JWT_ISSUER', flag: 'jwt-issuer', kind: 'optional', help: 'jwt mode: required iss claim' },
  jwtAudience: { env: 'JWT_AUDIENCE', flag: 'jwt-audience', kind: 'optional', help: 'jwt mode: required aud claim' },
  allowedOrigins: { env: 'ALLOWED_ORIGINS', flag: 'allowed-origins', kind: 'optional', help: 'origins allowed with the cookie session, comma list (default: same origin)' },
  sockjsHeartbeatMs: { env: 'SOCKJS_HEARTBEAT_MS', flag: 'sockjs-heartbeat-ms', kind: 'int', help: "SockJS 'h' frame interval, ms (keeps proxies from closing idle streams)" },
  stompTcpPort: { env: 'STOMP_TCP_PORT', flag: 'stomp-tcp-port', kind: 'optional-int', help: 'STOMP over TCP port (e.g. 61613; default: off)' },
  stompTlsPort: { env: 'STOMP_TLS_PORT', flag: 'stomp-tls-port', kind: 'optional-int', help: 'STOMP over TLS port (e.g. 61614; default: off)' },
  stompTlsCert: { env: 'STOMP_TLS_CERT', flag: 'stomp-tls-cert', kind: 'optional', help: 'TLS certificate chain (PEM or file path)' },
  stompTlsKey: { env: 'STOMP_TLS_KEY', flag: 'stomp-tls-key', kind: 'optional', help: 'TLS private key (PEM or file path)' },
  appProxyUrl: { env: 'APP_PROXY_URL', flag: 'app-proxy-url', kind: 'optional', help: 'SENDs to APP_PREFIX are POSTed here as JSON (default: refused)' },
  appProxyTimeoutMs: { env: 'APP_PROXY_TIMEOUT_MS', flag: 'app-proxy-timeout-ms', kind: 'int', help: 'bound on one application call, ms' },
  maxTransactions: { env: 'MAX_TRANSACTIONS', flag: 'max-transactions', kind: 'int', help: 'open transactions per session' },
  maxTransactionFrames: { env: 'MAX_TRANSACTION_FRAMES', flag: 'max-transaction-frames', kind: 'int', help: 'SEND/ACK/NACK frames per transaction' },
  maxTransactionBytes: { env: 'MAX_TRANSACTION_BYTES', flag: 'max-transaction-bytes', kind: 'int', help: 'body bytes per transaction' },
  maxUnacked: { env: 'MAX_UNACKED', flag: 'max-unacked', kind: 'int', help: 'unacked messages per client-ack subscription (caps prefetch-count)' },
  maxInputFrames: { env: 'MAX_INPUT_FRAMES', flag: 'max-input-frames', kind: 'int', help: 'frames read but not handled per session (SockJS cannot pause)' },
  maxInputBytes: { env: 'MAX_INPUT_BYTES', flag: 'max-input-bytes', kind: 'int', help: 'body bytes read but not handled per session (half pauses a WebSocket)' },
  maxConnections: { env: 'MAX_CONNECTIONS', flag: 'max-connections', kind: 'int', help: 'STOMP sessions per node' },
  maxConnectionsPerUser: { env: 'MAX_CONNECTIONS_PER_USER', flag: 'max-connections-per-user', kind: 'int', help: 'STOMP sessions per user on one node' },
  sendRateMessages: { env: 'SEND_RATE_MESSAGES', flag: 'send-rate-messages', kind: 'int', help: 'SENDs per second per session (token bucket; 0: unbounded)' },
  sendRateBytes: { env: 'SEND_RATE_BYTES', flag: 'send-rate-bytes', kind: 'int', help: 'SEND body bytes per second per session (token bucket; 0: unbounded)' },
  recipientPolicy: { env: 'RECIPIENT_POLICY', flag: 'recipient-policy', kind: 'string', choices: ['any', 'known'], help: 'any | known (users who logged in within the inbox TTL; static mode: AUTH_USERS)' },
  permissionsFile: { env: 'PERMISSIONS_FILE', flag: 'permissions-file', kind: 'optional', help: 'JSON rules: who may subscribe / send where (default: everyone everywhere)' },
  permissionsClaim: { env: 'PERMISSIONS_CLAIM', flag: 'permissions-claim', kind: 'optional', help: 'jwt mode: claim carrying subscribe / send patterns' },
};

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Reads env and argv over the defaults; `overrides` (from code, e.g. tests) win over both. */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  argv: readonly string[] = [],
  overrides: Partial<Config> = {},
): Config {
  const parsed = parseArgs({
    args: [...argv],
    options: Object.fromEntries(
      Object.values(OPTIONS).map((spec) => [spec.flag, { type: spec.kind === 'bool' ? 'boolean' : 'string' }] as const),
    ),
    strict: true,
    allowPositionals: false,
    // `--no-ws-coalesce-frames` turns a boolean off.
    allowNegative: true,
  }).values as Record<string, string | boolean | undefined>;

  const config: Record<string, unknown> = { ...DEFAULT_CONFIG };
  for (const key of Object.keys(OPTIONS) as Array<keyof Config>) {
    const spec = OPTIONS[key];
    const raw = parsed[spec.flag] ?? env[spec.env];
    if (raw === undefined || raw === '') continue;
    config[key] = convert(spec, raw);
  }
  Object.assign(config, overrides);
  checkRedisOptions(config as unknown as Config);
  return config as unknown as Config;
}

/** At most one way to reach Redis, each well formed. */
function checkRedisOptions(config: Config): void {
  const set = (['redisUrl', 'redisClusterNodes', 'redisSentinels'] as const).filter((key) => config[key] !== undefined && config[key] !== '');
  if (set.length > 1) {
    throw new ConfigError(`set one of REDIS_URL, REDIS_CLUSTER_NODES and REDIS_SENTINELS, not ${set.map((key) => OPTIONS[key].env).join(' and ')}`);
  }
  for (const key of ['redisClusterNodes', 'redisSentinels'] as const) {
    const value = config[key];
    if (value === undefined) continue;
    try {
      parseRedisAddresses(value);
    } catch (error) {
      throw new ConfigError(`${OPTIONS[key].env} / --${OPTIONS[key].flag}: ${(error as Error).message}`);
    }
  }
  if ((config.redisSentinels !== undefined) !== (config.redisSentinelName !== undefined)) {
    throw new ConfigError('REDIS_SENTINELS and REDIS_SENTINEL_NAME go together: the sentinels, and the name of the primary they monitor');
  }
}

/** The Redis this node uses (see lib/cluster/redis-target.ts); undefined: none, a single in-memory node. */
export function redisTargetOf(config: Config): RedisTarget | undefined {
  if (config.redisUrl) return config.redisUrl;
  if (config.redisClusterNodes) return { kind: 'cluster', nodes: parseRedisAddresses(config.redisClusterNodes) };
  if (config.redisSentinels && config.redisSentinelName) {
    return { kind: 'sentinel', sentinels: parseRedisAddresses(config.redisSentinels), name: config.redisSentinelName };
  }
  return undefined;
}

function convert(spec: OptionSpec, raw: string | boolean): string | number | boolean {
  if (spec.kind === 'bool') return raw === true || raw === 'true' || raw === '1' || raw === 'yes';
  const text = String(raw);
  if (spec.kind === 'int' || spec.kind === 'optional-int') {
    if (!/^\d+$/.test(text)) throw new ConfigError(`${spec.env} / --${spec.flag} must be a non-negative integer, got "${text}"`);
    if (spec.max !== undefined && Number(text) > spec.max) throw new ConfigError(`${spec.env} / --${spec.flag} must be at most ${spec.max}, got "${text}"`);
    return Number(text);
  }
  if (spec.choices && !spec.choices.includes(text)) {
    throw new ConfigError(`${spec.env} / --${spec.flag} must be one of ${spec.choices.join(', ')}, got "${text}"`);
  }
  return text;
}

/** The README's configuration table, generated so that it cannot drift. */
export function configTable(): string {
  const rows = (Object.keys(OPTIONS) as Array<keyof Config>).map((key) => {
    const spec = OPTIONS[key];
    const value = DEFAULT_CONFIG[key];
    return `| \`${spec.env}\` | \`--${spec.flag}\` | ${value === undefined ? '—' : `\`${String(value)}\``} | ${spec.help} |`;
  });
  return ['| variable | flag | default | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

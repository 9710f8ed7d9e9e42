/*
 * Redis connections for the cluster parts, all made by `createRedisClient`
 * with the same stance: fail fast, reconnect forever.
 *
 * - No offline queue and no retries of a command (`enableOfflineQueue:
 *   false`, `maxRetriesPerRequest: 0`): while Redis is unreachable a command
 *   is rejected at once, and one in flight when the connection drops is
 *   rejected at the drop. `redisCall` turns that into
 *   ERR_CLUSTER_UNAVAILABLE, so a SEND during an outage gets an error — never
 *   a silent loss, nor a queue growing without bound in this process.
 * - Reconnect with exponential backoff, bounded by `reconnectMaxDelayMs`,
 *   for as long as the process lives. Subscriber connections resubscribe by
 *   themselves (ioredis `autoResubscribe`); loops on blocking connections
 *   wait for `'ready'` (see `waitReady`) and carry on.
 * - Exactly one `'error'` listener per connection, which logs once per
 *   outage and once on recovery: an unhandled `'error'` would crash the node.
 *
 * Roles: `command` (scripts and ordinary commands, with a reply timeout),
 * `blocking` (XREAD BLOCK: no reply timeout, never shared) and `subscriber`
 * (pub/sub only).
 *
 * Targets (redis-target.ts): one server (`Redis`), a Redis Cluster
 * (`Cluster`: one connection per master, MOVED/ASK followed, slots
 * refreshed after a failover; the subscriber role also gets one sharded
 * subscriber per master for SSUBSCRIBE) or a primary found through Sentinel
 * (`Redis` in sentinel mode: it asks the sentinels where the primary is on
 * every connect, and drops its connection when they announce a failover or
 * the old primary answers READONLY). The stance above holds for all three:
 * on a Cluster, a command in flight on a connection that drops is not sent
 * again elsewhere (`retryDelayOnFailover: 0`), nor one refused with
 * CLUSTERDOWN (`retryDelayOnClusterDown: 0`); only redirections (MOVED, ASK,
 * TRYAGAIN), which Redis sends for commands it did not run, are followed.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { BrokerError } from '../core/errors.js';
import { createLogger } from '../log.js';
import { DEFAULT_KEY_PREFIX } from './redis-keys.js';
import type { RedisTarget } from './redis-target.js';

export type { RedisTarget } from './redis-target.js';

/** A connection to any target: `Cluster` for a Redis Cluster, `Redis` otherwise. */
export type RedisClient = Redis | Cluster;

export type RedisRole = 'command' | 'blocking' | 'subscriber';

/** The part of a pino logger the cluster uses. */
export interface ClusterLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RedisConnectionOptions {
  /** Prefix of every key and channel (see redis-keys.ts). @default 'sb:' */
  keyPrefix: string;
  /** First reconnect delay; it doubles on each failed attempt. @default 50 */
  reconnectMinDelayMs: number;
  /** Longest reconnect delay. @default 2000 */
  reconnectMaxDelayMs: number;
  /** A command without a reply this long is rejected (not for blocking reads). @default 5000 */
  commandTimeoutMs: number;
  /** Bound on establishing a connection, and on `start()` waiting for Redis. @default 5000 */
  connectTimeoutMs: number;
  /** @default a pino logger at level info */
  logger: ClusterLogger;
}

export const DEFAULT_REDIS_CONNECTION_OPTIONS: Readonly<Omit<RedisConnectionOptions, 'logger'>> = Object.freeze({
  keyPrefix: DEFAULT_KEY_PREFIX,
  reconnectMinDelayMs: 50,
  reconnectMaxDelayMs: 2000,
  commandTimeoutMs: 5000,
  connectTimeoutMs: 5000,
});

let defaultLogger: ClusterLogger | undefined;

/** Options with defaults filled in. */
export function resolveConnectionOptions(options: Partial<RedisConnectionOptions> = {}): RedisConnectionOptions {
  const logger = options.logger ?? (defaultLogger ??= createLogger('info'));
  return { ...DEFAULT_REDIS_CONNECTION_OPTIONS, ...options, logger };
}

/** The wait before reconnect attempt `attempt` (1-based): doubling from the minimum, bounded by the maximum. */
export function reconnectDelay(opts: Pick<RedisConnectionOptions, 'reconnectMinDelayMs' | 'reconnectMaxDelayMs'>, attempt: number): number {
  return Math.min(opts.reconnectMaxDelayMs, opts.reconnectMinDelayMs * 2 ** Math.min(attempt - 1, 20));
}

/**
 * A connection to `target` for `role`. `name` (the owning part, e.g.
 * `relay`) goes into CLIENT SETNAME and the logs.
 */
export function createRedisClient(
  target: RedisTarget,
  role: RedisRole,
  options: Partial<RedisConnectionOptions> & { name?: string; autoPipelining?: boolean } = {},
): RedisClient {
  const opts = resolveConnectionOptions(options);
  const name = options.name ?? role;
  const backoff = (attempt: number): number => reconnectDelay(opts, attempt);
  // What every server connection gets, whichever the target.
  const perConnection: RedisOptions = {
    connectionName: `stompbox:${name}:${role}`,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    autoResubscribe: true,
    connectTimeout: opts.connectTimeoutMs,
  };
  if (role === 'command') perConnection.commandTimeout = opts.commandTimeoutMs;
  // Off unless asked for: ioredis keeps one auto-pipeline in flight per connection, so a
  // command waits for the replies of the batch before it (the /queue path's p99 at 1000
  // msg/s across two nodes: 6.0 ms with it, 0.93 ms without). Redis pipelines what
  // arrives on one socket anyway; the hot paths batch themselves (the user router).
  const autoPipelining = role === 'command' && (options.autoPipelining ?? false);

  // Set once the client exists: Sentinel's READONLY hook reports through it.
  let outage = (_detail: string): void => {};
  let client: RedisClient;
  if (typeof target === 'string') {
    client = new Redis(target, { ...perConnection, enableOfflineQueue: false, enableAutoPipelining: autoPipelining, retryStrategy: backoff });
  } else if (target.kind === 'sentinel') {
    client = new Redis({
      ...perConnection,
      sentinels: target.sentinels.map(({ host, port }) => ({ host, port })),
      name: target.name,
      role: 'master',
      enableOfflineQueue: false,
      enableAutoPipelining: autoPipelining,
      retryStrategy: backoff,
      sentinelRetryStrategy: backoff,
      sentinelCommandTimeout: opts.connectTimeoutMs,
      // +switch-master from any sentinel: reconnect to the new primary at once.
      failoverDetector: true,
      // A demoted primary answers writes with READONLY: drop it and ask the sentinels again (the write is refused, not resent).
      reconnectOnError: (error) => {
        if (!error.message.startsWith('READONLY')) return false;
        outage('the primary was demoted (READONLY)');
        return true;
      },
    });
    reconnectAfterAbandonedConnect(client, backoff);
  } else {
    const clusterOptions: ClusterOptions = {
      redisOptions: perConnection,
      scaleReads: 'master',
      enableOfflineQueue: false,
      enableAutoPipelining: autoPipelining,
      clusterRetryStrategy: backoff,
      retryDelayOnFailover: 0,
      retryDelayOnClusterDown: 0,
      // Learn a promoted replica within a second even when no command meets a MOVED.
      slotsRefreshInterval: 1000,
      slotsRefreshTimeout: opts.connectTimeoutMs,
      shardedSubscribers: role === 'subscriber',
    };
    const cluster = new Cluster(
      target.nodes.map(({ host, port }) => ({ host, port })),
      clusterOptions,
    );
    // A master's connection is made lazily, by the first command for it; without an offline
    // queue a second command meanwhile is refused ("Connection is closed."). Connect each
    // one as soon as the cluster learns of it (at start, and a promoted replica after a failover).
    cluster.on('+node', (node: Redis) => {
      if (node.status === 'wait' && !node.options.readOnly) node.connect().catch(() => {});
    });
    client = cluster;
  }
  firstConnects.set(client, { timeoutMs: opts.connectTimeoutMs, promise: undefined });
  if (!(client instanceof Cluster)) client.once('ready', () => firstConnects.delete(client));
  outage = watchOutages(client, opts.logger, { module: 'redis', part: name, role });
  return client;
}

/**
 * ioredis (6.0.0, `Redis#_connect`) ends a client for good when its
 * connector's `connect()` rejects, without asking `retryStrategy`. A Sentinel
 * connector rejects so ("Connection is closed.") when the connection is cut
 * while it is still asking a sentinel for the primary — which is what its
 * failover detector does on `+switch-master` during a failover, right when
 * the client is reconnecting: the node would have lost Redis until restarted.
 * An end straight from `connecting` that nobody asked for (`disconnect()`
 * sets `manuallyClosing`) is that case: connect again after the backoff.
 */
function reconnectAfterAbandonedConnect(client: Redis, backoff: (attempt: number) => number): void {
  let previous = client.status;
  let attempt = 0;
  for (const status of ['connecting', 'connect', 'ready', 'close', 'reconnecting'] as const) client.on(status, () => (previous = status));
  client.on('ready', () => (attempt = 0));
  client.on('end', () => {
    const asked = (client as unknown as { manuallyClosing?: boolean }).manuallyClosing === true;
    if (previous !== 'connecting' || asked) return;
    setTimeout(() => {
      if (client.status === 'end' && !(client as unknown as { manuallyClosing?: boolean }).manuallyClosing) client.connect().catch(() => {});
    }, backoff(++attempt)).unref();
  });
}

/**
 * One `'error'` listener, logging once when `client` loses Redis and once
 * when it has it back; returns what marks an outage seen otherwise. A Cluster can also lose one of its servers while it
 * stays ready (a master killed, before its replica is promoted): logged
 * once per server until a connection to it is ready again.
 */
function watchOutages(client: RedisClient, logger: ClusterLogger, context: { module: 'redis'; part: string; role: RedisRole }): (detail: string) => void {
  let down = false;
  const markDown = (detail: string): void => {
    if (down) return;
    down = true;
    logger.warn({ ...context, error: detail }, 'redis unreachable; reconnecting');
  };
  // A reconnect that succeeds at its first attempt is no outage (Sentinel's failover detector
  // drops a connection the client may already have moved to the new primary): log from the
  // first error, or from the second attempt.
  let attempts = 0;
  client.on('error', (error: Error) => markDown(error.message));
  client.on('reconnecting', () => ++attempts > 1 && markDown('connection lost'));
  client.on('ready', () => {
    attempts = 0;
    if (!down) return;
    down = false;
    logger.info(context, 'redis reachable again');
  });
  if (!(client instanceof Cluster)) return markDown;
  const serversDown = new Set<string>();
  client.on('node error', (error: Error, server: string) => {
    if (serversDown.has(server)) return;
    serversDown.add(server);
    logger.warn({ ...context, server, error: error.message }, 'redis cluster server unreachable');
  });
  client.on('+node', (connection: Redis) => {
    const server = `${connection.options.host}:${connection.options.port}`;
    connection.once('ready', () => {
      if (serversDown.delete(server)) logger.info({ ...context, server }, 'redis cluster server reachable again');
    });
  });
  return markDown;
}

/**
 * Resolves once `client` is ready; rejects with ERR_CLUSTER_UNAVAILABLE
 * after `timeoutMs`. For `start()`: a node that cannot reach Redis should
 * not pretend to have joined the cluster.
 */
export async function connected(client: RedisClient, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  await readyWithin(client, timeoutMs);
  // A Cluster is ready once one server answered; its commands go to every master.
  if (client instanceof Cluster) {
    await Promise.all(client.nodes('master').map((node) => readyWithin(node, Math.max(0, deadline - Date.now()))));
    firstConnects.delete(client);
  }
}

async function readyWithin(client: RedisClient, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new BrokerError('ERR_CLUSTER_UNAVAILABLE', `redis not reachable within ${timeoutMs} ms (option connectTimeoutMs)`));
    }, timeoutMs);
    const onReady = (): void => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}

/** Resolves once `client` is ready again, or at once when `signal` aborts. Never rejects. */
export async function waitReady(client: RedisClient, signal: AbortSignal): Promise<void> {
  if (client.status === 'ready' || signal.aborted) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      client.off('ready', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    client.once('ready', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Closes politely when possible (QUIT after pending replies; resolves once
 * the connection ended, a Cluster's every server connection too, bounded),
 * else drops the socket.
 */
export async function closeClient(client: RedisClient): Promise<void> {
  if (client.status === 'end') return;
  if (client.status === 'ready') {
    const ended = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, QUIT_BOUND_MS);
      client.once('end', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    try {
      await client.quit();
      await ended;
      // (Narrowed to 'ready' above, but quit() changed it.)
      if ((client.status as string) === 'end') return;
    } catch {
      // fall through to a hard disconnect
    }
  }
  client.disconnect();
}

/** How long `closeClient` waits for the connections to end after QUIT was answered. */
const QUIT_BOUND_MS = 2000;

/** Replies that mean "Redis cannot serve now", as opposed to "this request is wrong". */
const TRANSIENT_REPLY = /^(LOADING|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN|NOSCRIPT)\b/;

/**
 * The BrokerError for a failed Redis call: ERR_CLUSTER_UNAVAILABLE when
 * Redis could not serve it (disconnected, timed out, loading), ERR_INTERNAL
 * when Redis answered with an error (a bug here, or a script's refusal).
 */
export function clusterError(error: unknown, what: string): BrokerError {
  if (error instanceof BrokerError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const isReply = error instanceof Error && error.name === 'ReplyError';
  if (isReply && !TRANSIENT_REPLY.test(message)) {
    return new BrokerError('ERR_INTERNAL', `redis refused ${what}: ${message}`);
  }
  return new BrokerError('ERR_CLUSTER_UNAVAILABLE', `redis unavailable (${what}): ${message}`);
}

/** Clients whose first connection is still being made: their connect timeout, and the wait for it. */
const firstConnects = new WeakMap<RedisClient, { timeoutMs: number; promise: Promise<void> | undefined }>();

/**
 * Runs a call on `client`, turning any failure into a BrokerError (see
 * `clusterError`). A client still making its first connection (a part used
 * right after it was created) is waited for, up to its connect timeout;
 * after that, calls fail fast whenever the client is not ready.
 */
export async function redisCall<T>(client: RedisClient, what: string, call: () => Promise<T>): Promise<T> {
  try {
    const first = firstConnects.get(client);
    // (A Cluster stays here until its masters' connections are ready too: see `connected`.)
    if (first !== undefined && (client instanceof Cluster || client.status === 'connecting' || client.status === 'connect' || client.status === 'wait')) {
      // One wait shared by every call made meanwhile; forgotten once settled, so a later call waits afresh.
      first.promise ??= connected(client, first.timeoutMs).finally(() => {
        first.promise = undefined;
      });
      await first.promise;
    }
    return await call();
  } catch (error) {
    throw clusterError(error, what);
  }
}

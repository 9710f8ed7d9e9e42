/*
 * The composition root: configuration → parts → a running node. Without
 * REDIS_URL every seam gets its in-memory implementation (one node); with it,
 * the Redis ones (a cluster member).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OpenAuthenticator, StaticAuthenticator, type Authenticator } from './broker/auth.js';
import { Broker, type BrokerParts } from './broker/broker.js';
import { MemoryHub } from './cluster/memory-hub.js';
import { MemoryPresence } from './cluster/memory-presence.js';
import { MemoryRelay } from './cluster/memory-relay.js';
import type { Config } from './config.js';
import { createApp } from './http/app.js';
import { MemoryInboxStore } from './inbox/memory-inbox-store.js';
import { createLogger, type Logger } from './log.js';
import { MemoryQueueStore } from './queue/memory-queue-store.js';
import { WebSocketTransport } from './transport/websocket-server.js';

export interface RunningNode {
  readonly config: Config;
  readonly broker: Broker;
  readonly server: Server;
  readonly log: Logger;
  /** `http://host:port` once listening. */
  readonly url: string;
  readonly port: number;
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
    case 'jwt':
      throw new Error('AUTH_MODE=jwt is not available yet');
  }
}

async function createParts(config: Config, log: Logger, nodeId: string): Promise<Omit<BrokerParts, 'config' | 'log' | 'auth'>> {
  if (config.redisUrl) {
    const { createRedisParts } = await import('./cluster/redis-parts.js');
    return createRedisParts(config, log, nodeId);
  }
  const hub = new MemoryHub();
  const presence = new MemoryPresence(nodeId, hub);
  return {
    nodeId,
    presence,
    relay: new MemoryRelay(nodeId, hub),
    inbox: new MemoryInboxStore(presence, { maxMessages: config.inboxMaxMessages, ttlSeconds: config.inboxTtlSeconds }),
    queues: new MemoryQueueStore({ maxMessages: config.queueMaxMessages }),
  };
}

export async function startNode(config: Config, log?: Logger): Promise<RunningNode> {
  const nodeId = config.nodeId ?? randomBytes(4).toString('hex');
  const logger = log ?? createLogger(config.logLevel, nodeId);
  const auth = createAuthenticator(config, logger);
  const parts = await createParts(config, logger, nodeId);
  const broker = new Broker({ ...parts, config, log: logger, auth });
  await broker.start();

  const app = createApp({ broker, log: logger });
  const server = createServer(app.callback());
  const transport = new WebSocketTransport(server, broker, logger, {
    path: config.wsPath,
    alwaysBinary: config.wsBinaryFrames === 'always',
    maxPayload: config.maxFrameSize * 2 + 1024,
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  logger.info({ url, ws: `ws://${host}:${address.port}${config.wsPath}`, cluster: config.redisUrl ? 'redis' : 'memory' }, 'stompbox node listening');

  let stopping: Promise<void> | undefined;
  return {
    config,
    broker,
    server,
    log: logger,
    url,
    port: address.port,
    stop(reason?: string) {
      stopping ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        await broker.shutdown(reason);
        await transport.close(config.shutdownTimeoutMs);
        server.closeAllConnections();
        await closed;
      })();
      return stopping;
    },
  };
}

/*
 * The Redis implementations of every seam, for a cluster node: presence,
 * relay, inbox and queues, all under one key prefix on one Redis target
 * (a server, a Redis Cluster or a Sentinel-watched primary).
 */
import { redisTargetOf, type Config } from '../config.js';
import { RedisInboxStore } from '../inbox/redis-inbox-store.js';
import type { Logger } from '../log.js';
import { RedisQueueStore } from '../queue/redis-queue-store.js';
import { closeClient, createRedisClient } from './redis-connection.js';
import { RedisPresence } from './redis-presence.js';
import { RedisRelay } from './redis-relay.js';
import { RedisUserRouter } from './redis-user-router.js';
import { RedisUserSessionCount } from './redis-user-sessions.js';

/** Every Redis seam of one node, as the broker takes them (structurally: this module does not depend on the broker). */
export interface RedisParts {
  nodeId: string;
  presence: RedisPresence;
  relay: RedisRelay;
  inbox: RedisInboxStore;
  queues: RedisQueueStore;
  router: RedisUserRouter;
  sessionCounts: RedisUserSessionCount;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export async function createRedisParts(config: Config, log: Logger, nodeId: string): Promise<RedisParts> {
  const target = redisTargetOf(config);
  if (target === undefined) throw new Error('createRedisParts needs REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS');
  if (nodeId.includes(':') || nodeId.includes('!')) throw new Error(`NODE_ID must contain neither ":" nor "!" (got "${nodeId}")`);
  const connection = { keyPrefix: config.redisPrefix, logger: log };
  const presence = new RedisPresence(nodeId, target, { ...connection, beatIntervalMs: config.nodeBeatMs, nodeTimeoutMs: config.nodeTimeoutMs });
  const relay = new RedisRelay(nodeId, target, { ...connection, maxStreamBytes: config.relayMaxStreamBytes, partitions: config.relayPartitions, pushReads: config.relayPushReads });
  relay.setLease(presence);
  // Writes a RECEIPT answers for wait for this many replicas (redis-durability.ts).
  const durability = { waitReplicas: config.redisWaitReplicas, waitTimeoutMs: config.redisWaitTimeoutMs };
  const limits = { maxMessages: config.inboxMaxMessages, maxBytes: config.inboxMaxBytes, ttlSeconds: config.inboxTtlSeconds, overflow: config.inboxOverflow };
  const inbox = new RedisInboxStore(target, { ...connection, ...durability, nodeId, ...limits });
  const queues = new RedisQueueStore(nodeId, target, { ...connection, ...durability, maxMessages: config.queueMaxMessages, maxBytes: config.queueMaxBytes });
  const router = new RedisUserRouter(nodeId, target, {
    ...connection,
    ...durability,
    maxStreamBytes: config.relayMaxStreamBytes,
    inboxMaxMessages: config.inboxMaxMessages,
    inboxTtlSeconds: config.inboxTtlSeconds,
    inboxOverflow: config.inboxOverflow,
    inboxMaxBytes: config.inboxMaxBytes,
  });
  const sessionCounts = new RedisUserSessionCount(nodeId, target, config.maxConnectionsPerUser, presence, connection);
  queues.setIncarnation(() => presence.incarnationTag());
  // Readiness probe: its own connection, so a busy part never delays /readyz.
  const probe = createRedisClient(target, 'command', { ...connection, name: 'readiness' });
  return {
    nodeId,
    presence,
    relay,
    inbox,
    queues,
    router,
    sessionCounts,
    async ping() {
      return (await probe.ping()) === 'PONG';
    },
    // Before presence closes: its last reap then removes whatever this node's fields still say.
    async close() {
      await sessionCounts.close();
      await router.close();
      await closeClient(probe);
    },
  };
}

/*
 * The targets the runner knows, by name. RabbitMQ Web-STOMP is the
 * reference every other figure is divided by.
 *
 *   rabbitmq                 RabbitMQ Web-STOMP, p2p through /queue/bench-{i}      (peers/rabbitmq.ts)
 *   stompbox-1               stompbox, one node, p2p through user destinations     (peers/stompbox.ts)
 *   stompbox-2-redis         stompbox, two nodes over Redis, user destinations,
 *                            publishers on node 1, receivers on node 2
 *   stompbox-1-queue         stompbox, one node, p2p through /queue/bench-{i}
 *   stompbox-2-redis-queue   stompbox, two nodes, /queue/bench-{i} (the Redis queue store)
 *   stompbox-2-rediscluster  stompbox-2-redis on a 3-master Redis Cluster, with per-master
 *                            command shares and Redis CPU per message   (redis-shards.ts)
 *   socketio-1               socket.io, one node                                   (peers/socketio.ts)
 *   socketio-2-redis         socket.io, two nodes, redis-adapter
 *   bare-ws-redis-2          plain ws + ioredis, two nodes, a Redis stream per node (peers/bare-relay.ts):
 *                            the ceiling of stompbox's two-node design
 *   bare-ws-redis-2-script   the same, its XADD made by a Lua script (as stompbox's decision)
 *   bare-ws-redis-2-push     the same, the script also PUBLISHes and the reader takes pushes (no XREAD)
 */
import type { BenchTarget } from './lib/target.js';
import { createBareRelayTarget } from './peers/bare-relay.js';
import { createRabbitMqTarget, type RabbitMqPeerOptions } from './peers/rabbitmq.js';
import { createSocketIoTarget } from './peers/socketio.js';
import { createStompboxTarget } from './peers/stompbox.js';
import { createRedisClusterTarget, REDIS_CLUSTER_TARGET } from './redis-shards.js';

export const REFERENCE_TARGET = 'rabbitmq';

export interface TargetSettings {
  rabbitmq: Partial<RabbitMqPeerOptions>;
}

export const TARGET_FACTORIES: Readonly<Record<string, (settings: TargetSettings) => BenchTarget>> = {
  rabbitmq: (settings) => createRabbitMqTarget(settings.rabbitmq),
  'stompbox-1': () => createStompboxTarget(1, 'user'),
  'stompbox-2-redis': () => createStompboxTarget(2, 'user'),
  'stompbox-1-queue': () => createStompboxTarget(1, 'queue'),
  'stompbox-2-redis-queue': () => createStompboxTarget(2, 'queue'),
  [REDIS_CLUSTER_TARGET]: () => createRedisClusterTarget(),
  'socketio-1': () => createSocketIoTarget(1),
  'socketio-2-redis': () => createSocketIoTarget(2),
  'bare-ws-redis-2': () => createBareRelayTarget(),
  'bare-ws-redis-2-script': () => createBareRelayTarget('script'),
  'bare-ws-redis-2-push': () => createBareRelayTarget('push'),
};

export function createTargets(names: string, settings: TargetSettings): BenchTarget[] {
  const list = names === 'all' ? Object.keys(TARGET_FACTORIES) : names.split(',').map((name) => name.trim());
  return list.map((name) => {
    const factory = TARGET_FACTORIES[name];
    if (factory === undefined) throw new Error(`unknown target "${name}"; known: ${Object.keys(TARGET_FACTORIES).join(', ')}`);
    return factory(settings);
  });
}

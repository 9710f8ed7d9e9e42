/*
 * The two ways a node runs, for specs that must hold in both: in memory, and
 * as a cluster member on a real redis-server (a fresh key prefix per node
 * set, so specs sharing one server never see each other's keys).
 */
import type { Config } from '../../lib/config.js';
import { uniquePrefix, type RedisServer } from './redis-server.js';

export type NodeMode = [name: string, config: () => Partial<Config>];

export function nodeModes(redis: { server: RedisServer }, prefix: string): NodeMode[] {
  return [
    ['in memory', () => ({})],
    ['in a cluster', () => ({ redisUrl: redis.server.url, redisPrefix: uniquePrefix(prefix) })],
  ];
}

/*
 * Which Redis a cluster node talks to: one server (a URL), a Redis Cluster
 * (a seed list of its nodes; ioredis discovers the rest and follows
 * failovers), or a primary found through Sentinel (the sentinels and the
 * name of the monitored primary). The parts take a `RedisTarget` and leave
 * the difference to `createRedisClient`; nothing else knows which it has.
 *
 * This module loads no Redis client: the configuration uses it too.
 */

export interface RedisAddress {
  readonly host: string;
  readonly port: number;
}

export interface RedisClusterTarget {
  readonly kind: 'cluster';
  /** Seeds: any reachable one is enough to discover the cluster. */
  readonly nodes: readonly RedisAddress[];
}

export interface RedisSentinelTarget {
  readonly kind: 'sentinel';
  readonly sentinels: readonly RedisAddress[];
  /** The monitored primary's name (`sentinel monitor <name> ...`). */
  readonly name: string;
}

/** A `redis://` URL of one server, a Redis Cluster, or Sentinel. */
export type RedisTarget = string | RedisClusterTarget | RedisSentinelTarget;

export type RedisMode = 'single' | 'cluster' | 'sentinel';

export function redisMode(target: RedisTarget): RedisMode {
  return typeof target === 'string' ? 'single' : target.kind;
}

/**
 * `host:port,host:port` (IPv6 as `[::1]:port`) as addresses; throws an
 * Error naming the bad item otherwise.
 */
export function parseRedisAddresses(text: string): RedisAddress[] {
  const items = text.split(',').map((item) => item.trim()).filter((item) => item !== '');
  if (items.length === 0) throw new Error('expected host:port[,host:port...], got nothing');
  return items.map((item) => {
    const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(item);
    const port = Number(match?.[3]);
    if (match === null || port < 1 || port > 65535) throw new Error(`expected host:port, got "${item}"`);
    return { host: match[1] ?? match[2]!, port };
  });
}

export function formatRedisAddresses(addresses: readonly RedisAddress[]): string {
  return addresses.map(({ host, port }) => `${host.includes(':') ? `[${host}]` : host}:${port}`).join(',');
}

/** The options that configure this target (REDIS_URL, or REDIS_CLUSTER_NODES, or REDIS_SENTINELS and REDIS_SENTINEL_NAME). */
export function redisTargetEnv(target: RedisTarget): Record<string, string> {
  if (typeof target === 'string') return { REDIS_URL: target };
  if (target.kind === 'cluster') return { REDIS_CLUSTER_NODES: formatRedisAddresses(target.nodes) };
  return { REDIS_SENTINELS: formatRedisAddresses(target.sentinels), REDIS_SENTINEL_NAME: target.name };
}

/** Where to read what a target is, for logs and notes. */
export function describeRedisTarget(target: RedisTarget): string {
  if (typeof target === 'string') return target;
  if (target.kind === 'cluster') return `redis cluster (seeds ${formatRedisAddresses(target.nodes)})`;
  return `redis sentinel "${target.name}" (${formatRedisAddresses(target.sentinels)})`;
}

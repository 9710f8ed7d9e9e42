/*
 * The Redis backend matrix: each Redis spec file runs its shared contract
 * on every backend a deployment may use — one Redis server, a 3-master
 * Redis Cluster, a primary behind Sentinel — each started once for the file
 * (in `before`) and flushed between tests.
 *
 *   SB_TEST_REDIS_BACKENDS=single,cluster,sentinel   (the default)
 *   SB_TEST_REDIS_BACKENDS=single                    (one Redis only: the quick run)
 */
import { Redis } from 'ioredis';
import type { RedisTarget } from '../../lib/cluster/redis-target.js';
import { useRedisSetup } from './redis-admin.js';
import { startRedisCluster } from './redis-cluster.js';
import { startRedisSentinel } from './redis-sentinel.js';
import { startRedisServer } from './redis-server.js';

export type RedisBackendName = 'single' | 'cluster' | 'sentinel';

const BACKENDS: readonly RedisBackendName[] = ['single', 'cluster', 'sentinel'];
const LABELS: Readonly<Record<RedisBackendName, string>> = { single: 'one Redis', cluster: 'Redis Cluster', sentinel: 'Redis Sentinel' };
/** Bound on starting one backend (a cluster takes ~2 s here, a sentinel setup as long). */
const START_TIMEOUT_MS = 40_000;

/** The backends SB_TEST_REDIS_BACKENDS names (default: all); an unknown name is an error, not a silent skip. */
export function selectedRedisBackends(env: NodeJS.ProcessEnv = process.env): RedisBackendName[] {
  const raw = env['SB_TEST_REDIS_BACKENDS'];
  if (raw === undefined || raw.trim() === '') return [...BACKENDS];
  const names = raw.split(',').map((name) => name.trim()).filter((name) => name !== '');
  const unknown = names.filter((name) => !(BACKENDS as readonly string[]).includes(name));
  if (unknown.length > 0) throw new Error(`SB_TEST_REDIS_BACKENDS: unknown backend(s) ${unknown.join(', ')}; known: ${BACKENDS.join(', ')}`);
  return names as RedisBackendName[];
}

export interface RedisBackend {
  readonly name: RedisBackendName;
  /** "one Redis", "Redis Cluster", "Redis Sentinel": for test titles. */
  readonly label: string;
  /** What the parts connect to; read it inside hooks and tests (set once `before` ran). */
  readonly target: RedisTarget;
}

/** A `describe` per selected backend, its setup started in `before`, flushed after each test, stopped in `after`. */
export function forEachRedisBackend(body: (backend: RedisBackend) => void): void {
  for (const name of selectedRedisBackends()) {
    describe(`on ${LABELS[name]}`, () => {
      const suite = useRedisSetup(() => startBackend(name), START_TIMEOUT_MS);
      body({
        name,
        label: LABELS[name],
        get target() {
          return suite.setup.target;
        },
      });
    });
  }
}

/** One backend, started: what the multi-process specs run their nodes on (no flushing: the nodes hold state). */
export async function startBackend(name: RedisBackendName): Promise<{ target: RedisTarget; flushAll(): Promise<void>; stop(): Promise<void> }> {
  if (name === 'cluster') return startRedisCluster();
  if (name === 'sentinel') return startRedisSentinel();
  const server = await startRedisServer();
  const admin = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  admin.on('error', () => {});
  return {
    target: server.url,
    async flushAll() {
      await admin.flushall();
    },
    async stop() {
      admin.disconnect();
      await server.dispose();
    },
  };
}

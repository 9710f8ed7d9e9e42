/*
 * The bare ws + ioredis relay peer, two nodes on a private Redis
 * (bare-relay-server.ts): the ceiling of stompbox's two-node design.
 * Publishers on the first node, receivers on the second (placement split):
 * every message crosses Redis. Sampled pids: sender node, receiver node, Redis.
 */
import { fileURLToPath } from 'node:url';
import { freePort, ownOpenFileLimit } from '../lib/system.js';
import { spawnTsNode, startPrivateRedis, type SpawnedProcess } from '../lib/spawned.js';
import type { BenchTarget, StartedTarget } from '../lib/target.js';

const SERVER = fileURLToPath(new URL('./bare-relay-server.ts', import.meta.url));

export type BareRelayMode = 'xread' | 'script' | 'push';

const MODE_NOTES: Record<BareRelayMode, string> = {
  xread: 'XADD + XREAD BLOCK',
  script: 'XADD in a Lua script (EVALSHA) + XREAD BLOCK',
  push: 'XADD + PUBLISH in a Lua script, the reader subscribed (no XREAD)',
};

export function createBareRelayTarget(mode: BareRelayMode = 'xread'): BenchTarget {
  let processes: SpawnedProcess[] = [];
  const target: BenchTarget = {
    name: mode === 'xread' ? 'bare-ws-redis-2' : `bare-ws-redis-2-${mode}`,
    protocol: 'raw',
    url: 'ws://127.0.0.1:0/',
    destinationTemplate: 'bench-{i}',
    fanoutDestination: 'bench-fanout',
    idleDestination: 'bench-idle-{i}',
    placement: 'split',
    async start(): Promise<StartedTarget> {
      const redis = await startPrivateRedis();
      processes.push(redis);
      const urls: string[] = [];
      const nodes: SpawnedProcess[] = [];
      for (const node of ['a', 'b']) {
        const port = await freePort();
        const spawned = await spawnTsNode(`bare-relay-${node}`, SERVER, ['--port', String(port), '--redis', redis.url, '--node-id', node, '--mode', mode], port);
        processes.push(spawned);
        nodes.push(spawned);
        urls.push(`ws://127.0.0.1:${port}/`);
      }
      target.url = urls[0]!;
      target.urls = urls;
      return {
        pids: [nodes[0]!.pid, nodes[1]!.pid, redis.pid],
        roles: ['sender node', 'receiver node', 'redis'],
        notes: [`bare relay nodes ${urls.join(', ')}, private redis ${redis.url}; a stream per node, ${MODE_NOTES[mode]}`],
        maxConnections: 2 * (ownOpenFileLimit() - 200),
      };
    },
    async stop(): Promise<void> {
      for (const process of processes.slice().reverse()) await process.stop();
      processes = [];
    },
  };
  return target;
}

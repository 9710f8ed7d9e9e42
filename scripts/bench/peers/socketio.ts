/*
 * socket.io peers: one node, or two nodes sharing rooms through
 * @socket.io/redis-adapter and a private Redis (redis-server on a free port,
 * --save '' --appendonly no). With two nodes, every p2p pair publishes on
 * the first node and receives on the second. Sampled pids: the nodes and Redis.
 */
import { fileURLToPath } from 'node:url';
import { freePort, ownOpenFileLimit } from '../lib/system.js';
import { spawnTsNode, startPrivateRedis, type SpawnedProcess } from '../lib/spawned.js';
import type { BenchTarget, StartedTarget } from '../lib/target.js';

const SERVER = fileURLToPath(new URL('./socketio-server.ts', import.meta.url));

export function createSocketIoTarget(nodes: 1 | 2): BenchTarget {
  let processes: SpawnedProcess[] = [];
  const target: BenchTarget = {
    name: nodes === 1 ? 'socketio-1' : 'socketio-2-redis',
    protocol: 'socketio',
    url: 'http://127.0.0.1:0',
    destinationTemplate: 'bench-{i}',
    fanoutDestination: 'bench-fanout',
    idleDestination: 'bench-idle',
    // Two nodes: every publisher on the first, every receiver on the second, as for stompbox.
    ...(nodes === 2 ? { placement: 'split' as const } : {}),
    async start(): Promise<StartedTarget> {
      const notes: string[] = [];
      const args: string[] = [];
      if (nodes === 2) {
        const redis = await startPrivateRedis();
        processes.push(redis);
        args.push('--redis', redis.url);
        notes.push(`private redis ${redis.url} (pid ${redis.pid})`);
      }
      const urls: string[] = [];
      for (let n = 0; n < nodes; n++) {
        const port = await freePort();
        const node = await spawnTsNode(`socketio-${n}`, SERVER, ['--port', String(port), ...args], port);
        processes.push(node);
        urls.push(`http://127.0.0.1:${port}`);
      }
      target.url = urls[0]!;
      target.urls = urls;
      notes.push(`socket.io nodes ${urls.join(', ')}`);
      // Each node inherits this process's open-file limit.
      const roles = nodes === 2 ? ['redis', 'sender node', 'receiver node'] : ['node'];
      return { pids: processes.map((process) => process.pid), roles, notes, maxConnections: nodes * (ownOpenFileLimit() - 200) };
    },
    async stop(): Promise<void> {
      // Nodes first, then Redis.
      for (const process of processes.slice().reverse()) await process.stop();
      processes = [];
    },
  };
  return target;
}

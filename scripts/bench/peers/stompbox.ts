/*
 * stompbox targets — SLOT, provisional wiring.
 *
 * The broker is being written alongside this harness; these targets start it
 * the way lib/main.ts + lib/config.ts read their options today:
 *
 *   node --import tsx lib/main.ts --port P --host 127.0.0.1 --auth-mode open --log-level warn
 *     [--redis-url redis://127.0.0.1:R --redis-prefix sb-bench-<run>: --node-id bench-<n>]
 *
 * and connect to ws://127.0.0.1:P/stomp. The broker's owners should check
 * (and adjust here) the flags, the WebSocket path, whether open auth is
 * what a benchmark should measure, and the per-process open-file limit for
 * the idle shape. Sampled pids: the node(s), plus the private Redis for the
 * two-node target.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, ownOpenFileLimit } from '../lib/system.js';
import { REPO_ROOT, spawnTsNode, startPrivateRedis, type SpawnedProcess } from '../lib/spawned.js';
import { TargetUnavailable, type BenchTarget, type StartedTarget } from '../lib/target.js';

const ENTRY = join(REPO_ROOT, 'lib', 'main.ts');
const WS_PATH = '/stomp';

export function createStompboxTarget(nodes: 1 | 2): BenchTarget {
  let processes: SpawnedProcess[] = [];
  const target: BenchTarget = {
    name: nodes === 1 ? 'stompbox-1' : 'stompbox-2-redis',
    protocol: 'stomp',
    url: `ws://127.0.0.1:0${WS_PATH}`,
    destinationTemplate: '/queue/bench-{i}',
    fanoutDestination: '/topic/bench-fanout',
    idleDestination: '/topic/bench-idle',
    login: 'bench',
    passcode: 'bench',
    async start(): Promise<StartedTarget> {
      if (!existsSync(ENTRY)) throw new TargetUnavailable(`stompbox entry ${ENTRY} not found: the broker is not built yet`);
      const notes: string[] = ['stompbox target wiring is provisional (scripts/bench/peers/stompbox.ts)'];
      const cluster: string[] = [];
      if (nodes === 2) {
        const redis = await startPrivateRedis();
        processes.push(redis);
        cluster.push('--redis-url', redis.url, '--redis-prefix', `sb-bench-${redis.port}:`);
        notes.push(`private redis ${redis.url} (pid ${redis.pid})`);
      }
      const urls: string[] = [];
      for (let n = 0; n < nodes; n++) {
        const port = await freePort();
        const args = ['--port', String(port), '--host', '127.0.0.1', '--auth-mode', 'open', '--log-level', 'warn', ...cluster];
        if (nodes === 2) args.push('--node-id', `bench-${n}`);
        processes.push(await spawnTsNode(`stompbox-${n}`, ENTRY, args, port));
        urls.push(`ws://127.0.0.1:${port}${WS_PATH}`);
      }
      target.url = urls[0]!;
      target.urls = urls;
      notes.push(`stompbox nodes ${urls.join(', ')}`);
      // Each node inherits this process's open-file limit.
      return { pids: processes.map((process) => process.pid), notes, maxConnections: nodes * (ownOpenFileLimit() - 200) };
    },
    async stop(): Promise<void> {
      for (const process of processes.slice().reverse()) await process.stop();
      processes = [];
    },
  };
  return target;
}

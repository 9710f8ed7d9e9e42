/*
 * stompbox-2-rediscluster: the stompbox-2-redis load (user destinations,
 * publishers on node 1, receivers on node 2) with the two nodes on a private
 * 3-master, 3-replica Redis Cluster (spec/helpers/redis-cluster.ts:
 * appendonly, everysec) instead of one Redis, and how the load spread over
 * the masters, per shape:
 *
 *   - each master's share of the commands (INFO commandstats deltas, less
 *     the housekeeping: INFO, CLUSTER, PING, CLIENT, ...); the busiest
 *     master's share is the figure (with 3 masters, even is 33 %; issue 11
 *     aims at ≤ 45 %);
 *   - the masters' CPU time (INFO cpu deltas, sys + user) per message the
 *     nodes delivered.
 *
 * On this 2-core machine six redis-servers, two nodes and the load
 * generator share two cores: a throughput gain from sharding is not
 * physically measurable here; the CPU per delivered message is the figure
 * to compare with stompbox-2-redis (whose Redis the sampled broker CPU
 * includes, as here the six redis-servers are).
 */
import { formatRedisAddresses } from '../../lib/cluster/redis-target.js';
import { startRedisCluster, type MasterStats, type RedisCluster } from '../../spec/helpers/redis-cluster.js';
import type { BenchTarget, StartedTarget, TargetNeeds } from './lib/target.js';
import { createStompboxTarget } from './peers/stompbox.js';

export const REDIS_CLUSTER_TARGET = 'stompbox-2-rediscluster';

/** Commands every client and server issue to keep the cluster going, not the load's. */
const HOUSEKEEPING = /^(info|cluster\|.*|ping|client\|.*|hello|command|command\|.*|readonly|readwrite|replconf|psync|select|config\|.*|quit)$/;

export function createRedisClusterTarget(): BenchTarget {
  let cluster: RedisCluster | undefined;
  let before: MasterStats[] = [];
  const base = createStompboxTarget(2, 'user', {
    name: REDIS_CLUSTER_TARGET,
    async start() {
      const started = await startRedisCluster({ appendfsync: 'everysec' });
      cluster = started;
      const pids = started.servers.map((s) => s.server.pid).filter((pid): pid is number => pid !== undefined);
      return {
        args: ['--redis-cluster-nodes', formatRedisAddresses(started.target.nodes)],
        // One entry stops the whole cluster; the others are there to be sampled.
        processes: pids.map((pid, i) => ({ pid, stop: i === 0 ? () => started.stop() : async () => {} })),
        notes: [`private Redis Cluster: masters ${(await started.masters()).join(', ')} of ${started.servers.map((s) => s.port).join(', ')} (appendonly, everysec; pids ${pids.join(', ')})`],
      };
    },
  });
  const target: BenchTarget = {
    ...base,
    async start(needs: TargetNeeds): Promise<StartedTarget> {
      const started = await base.start(needs);
      // The base sets the nodes' URLs on itself.
      target.url = base.url;
      target.urls = base.urls;
      return started;
    },
    async prepare() {
      await base.prepare?.();
      before = cluster === undefined ? [] : await cluster.masterStats();
    },
    async afterShape() {
      const lines = (await base.afterShape?.()) ?? [];
      if (cluster !== undefined) lines.push(...shardLines(before, await cluster.masterStats(), deliveredIn(lines)));
      return lines;
    },
    async stop() {
      await base.stop();
      cluster = undefined;
    },
  };
  return target;
}

/** Messages the nodes delivered, from the base target's per-node lines ("delivered N"). */
function deliveredIn(lines: readonly string[]): number | undefined {
  const counts = lines.map((line) => /\bdelivered (\d+)/.exec(line)?.[1]).filter((n): n is string => n !== undefined);
  return counts.length === 0 ? undefined : counts.reduce((sum, n) => sum + Number(n), 0);
}

/** Per master: its share of the load's commands, its top commands and CPU; then the busiest share and CPU per delivered message. */
export function shardLines(before: readonly MasterStats[], after: readonly MasterStats[], delivered: number | undefined): string[] {
  const deltas = after.map((stats) => {
    const earlier = before.find((b) => b.port === stats.port);
    const calls = Object.entries(stats.calls)
      .filter(([command]) => !HOUSEKEEPING.test(command))
      .map(([command, count]) => [command, count - (earlier?.calls[command] ?? 0)] as const)
      .filter(([, count]) => count > 0)
      .sort((a, b) => b[1] - a[1]);
    return { port: stats.port, calls, total: calls.reduce((sum, [, n]) => sum + n, 0), cpuUs: stats.cpuUs - (earlier?.cpuUs ?? stats.cpuUs) };
  });
  const total = deltas.reduce((sum, d) => sum + d.total, 0);
  const cpuUs = deltas.reduce((sum, d) => sum + d.cpuUs, 0);
  const percent = (part: number): string => (total === 0 ? '—' : `${((100 * part) / total).toFixed(1)} %`);
  const lines = deltas.map(
    (d) =>
      `redis master :${d.port}: ${percent(d.total)} of the commands (${d.total}; ${d.calls.slice(0, 3).map(([c, n]) => `${c} ${n}`).join(', ') || 'none'}), CPU ${(d.cpuUs / 1000).toFixed(0)} ms`,
  );
  const busiest = Math.max(0, ...deltas.map((d) => d.total));
  lines.push(
    `redis cluster: busiest master ${percent(busiest)} of ${total} commands over ${deltas.length} masters (even: ${deltas.length > 0 ? (100 / deltas.length).toFixed(0) : '—'} %); ` +
      `Redis CPU ${delivered ? `${(cpuUs / delivered).toFixed(1)} µs per delivered message (${(cpuUs / 1000).toFixed(0)} ms for ${delivered})` : `${(cpuUs / 1000).toFixed(0)} ms (no delivery count)`}`,
  );
  return lines;
}

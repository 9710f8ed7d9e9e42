/*
 * A private Redis Cluster: 3 masters and 3 replicas, each a redis-server
 * (spec/helpers/redis-server.ts) with `--cluster-enabled yes` on a free
 * 127.0.0.1 port (its bus on another free port) in its own temp dir, joined
 * by `redis-cli --cluster create ... --cluster-replicas 1`. Ready when every
 * node says `cluster_state:ok` with all 16384 slots assigned and every
 * replica's link to its master is up.
 *
 * Faults: `killMaster` (SIGKILL, then wait for the replica's promotion),
 * `failover` (CLUSTER FAILOVER on a replica), `restart` (a killed node
 * rejoins, as a replica). Per-master `INFO commandstats` / `INFO cpu` for
 * the figures of how evenly the load spreads.
 *
 * Every wait is a bounded poll of what the servers report: a cluster's
 * convergence has no event to await from outside.
 */
import { execFile } from 'node:child_process';
import type { RedisClusterTarget } from '../../lib/cluster/redis-target.js';
import { freePort } from './free-port.js';
import { AdminConnections, pollUntil, replicationOf, useRedisSetup } from './redis-admin.js';
import { startRedisServer, type RedisServer, type RedisServerOptions } from './redis-server.js';

export interface RedisClusterOptions {
  /** Masters; each gets one replica. @default 3 */
  masters: number;
  /** `cluster-node-timeout`: how long a master may be silent before its replica takes over. @default 1000 */
  nodeTimeoutMs: number;
  /** `appendfsync` of every node (appendonly is on). @default 'everysec' */
  appendfsync: RedisServerOptions['appendfsync'];
  /** Bound on the start and on each wait for the cluster to settle. @default 20000 */
  settleTimeoutMs: number;
  /** Each node appends its output to `<logDir>/redis-<port>.log`. @default none */
  logDir?: string;
}

const DEFAULTS: RedisClusterOptions = { masters: 3, nodeTimeoutMs: 1000, appendfsync: 'everysec', settleTimeoutMs: 20_000 };

/** One master's counters: calls per command (`cmdstat_*`) and CPU time used so far. */
export interface MasterStats {
  port: number;
  calls: Record<string, number>;
  /** used_cpu_sys + used_cpu_user, µs. */
  cpuUs: number;
}

export interface RedisClusterServer {
  readonly port: number;
  readonly server: RedisServer;
  /** Not running: killed and not restarted. */
  down: boolean;
}

export interface RedisCluster {
  /** Every node, masters and replicas, as a seed list. */
  readonly target: RedisClusterTarget;
  readonly servers: readonly RedisClusterServer[];
  /** Ports of the masters that serve slots now. */
  masters(): Promise<number[]>;
  /** The master serving `slotOrKey` now. */
  masterOf(slotOrKey: number | string): Promise<number>;
  /** Live replicas of master `port`, their links up. */
  replicasOf(port: number): Promise<number[]>;
  /** FLUSHALL on every master. */
  flushAll(): Promise<void>;
  /** SIGKILLs the master serving `slotOrKey`; resolves once its replica serves its slots and the cluster is ok. */
  killMaster(slotOrKey: number | string): Promise<{ killed: number; promoted: number }>;
  /** CLUSTER FAILOVER on replica `port` (default: the first live replica); resolves once it is master and the cluster is ok. */
  failover(port?: number): Promise<{ demoted: number; promoted: number }>;
  /** Starts a killed node again (same port and dir); resolves once it is back as a replica with its link up. */
  restart(port: number): Promise<void>;
  /** INFO commandstats and INFO cpu of every master. */
  masterStats(): Promise<MasterStats[]>;
  /** SIGKILL every node and remove their dirs. */
  stop(): Promise<void>;
}

const TOTAL_SLOTS = 16384;
/** How long one CLUSTER FAILOVER is given before it is asked again: Redis aborts a manual failover after 5 s. */
const MANUAL_FAILOVER_ATTEMPT_MS = 7000;

export async function startRedisCluster(options: Partial<RedisClusterOptions> = {}): Promise<RedisCluster> {
  const opts = { ...DEFAULTS, ...options };
  const servers = await Promise.all(Array.from({ length: opts.masters * 2 }, () => startClusterNode(opts)));
  const admins = new AdminConnections();
  const admin = (port: number) => admins.get(port);
  const live = (): RedisClusterServer[] => servers.filter((s) => !s.down);
  const stopAll = async (): Promise<void> => {
    admins.closeAll();
    await Promise.all(servers.map((s) => s.server.dispose()));
  };

  /** CLUSTER SLOTS from a live node: slot ranges with their master's port. */
  const slotMap = async (): Promise<Array<{ from: number; to: number; master: number }>> => {
    let lastError: unknown;
    for (const { port } of live()) {
      try {
        const reply = (await admin(port).call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number, string]]>;
        return reply.map(([from, to, master]) => ({ from, to, master: master[1] }));
      } catch (error) {
        lastError = error;
      }
    }
    throw new Error(`no node answers CLUSTER SLOTS: ${String(lastError)}`);
  };
  // INFO replication, not CLUSTER SLOTS: that lists a new replica only some seconds after it synced.
  const replicationOn = (port: number) => replicationOf(admin(port));
  const slotOf = async (slotOrKey: number | string): Promise<number> =>
    typeof slotOrKey === 'number' ? slotOrKey : Number(await admin(live()[0]!.port).call('CLUSTER', 'KEYSLOT', slotOrKey));
  const masterOf = async (slotOrKey: number | string): Promise<number> => {
    const slot = await slotOf(slotOrKey);
    const range = (await slotMap()).find((r) => r.from <= slot && slot <= r.to);
    if (range === undefined) throw new Error(`slot ${slot} is not served`);
    return range.master;
  };
  /** Every live node: state ok, every slot assigned and served by a live master; every other live node a replica of one, its link up. */
  const settled = async (): Promise<boolean> => {
    const livePorts = live().map((s) => s.port);
    const ranges = await slotMap();
    const masters = new Set(ranges.map((r) => r.master));
    if (ranges.reduce((sum, r) => sum + r.to - r.from + 1, 0) !== TOTAL_SLOTS || ![...masters].every((port) => livePorts.includes(port))) return false;
    for (const port of livePorts) {
      const info = String(await admin(port).call('CLUSTER', 'INFO'));
      if (!info.includes('cluster_state:ok') || !info.includes(`cluster_slots_ok:${TOTAL_SLOTS}`)) return false;
      if (masters.has(port)) continue;
      const replication = await replicationOn(port);
      if (replication.role !== 'slave' || !replication.linkUp || !masters.has(replication.masterPort!)) return false;
    }
    return true;
  };
  const settle = (what: string): Promise<void> => pollUntil(what, () => settled().catch(() => false), opts.settleTimeoutMs);

  try {
    await redisCli(['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '1', '--cluster-yes'], opts.settleTimeoutMs);
    await settle('the new cluster to settle');
  } catch (error) {
    await stopAll();
    throw error;
  }

  const roleOf = async (port: number): Promise<string> => (await replicationOn(port)).role;

  return {
    target: { kind: 'cluster', nodes: servers.map((s) => ({ host: '127.0.0.1', port: s.port })) },
    servers,
    async masters() {
      return [...new Set((await slotMap()).map((r) => r.master))].sort((a, b) => a - b);
    },
    masterOf,
    async replicasOf(master) {
      const replicas: number[] = [];
      for (const { port } of live()) {
        const replication = await replicationOn(port).catch(() => undefined);
        if (replication?.masterPort === master && replication.linkUp) replicas.push(port);
      }
      return replicas;
    },
    async flushAll() {
      const masters = [...new Set((await slotMap()).map((r) => r.master))];
      await Promise.all(masters.map((port) => admin(port).flushall()));
    },
    async killMaster(slotOrKey) {
      const slot = await slotOf(slotOrKey);
      const killed = await masterOf(slot);
      const node = servers.find((s) => s.port === killed)!;
      admins.drop(killed);
      await node.server.kill();
      node.down = true;
      await pollUntil(`a replica of ${killed} to take over slot ${slot}`, async () => (await masterOf(slot).catch(() => killed)) !== killed, opts.settleTimeoutMs);
      await settle(`the cluster to settle after killing ${killed}`);
      return { killed, promoted: await masterOf(slot) };
    },
    async failover(port) {
      const masters = new Set((await slotMap()).map((r) => r.master));
      const replica = port ?? live().find((s) => !masters.has(s.port))?.port;
      if (replica === undefined) throw new Error('no live replica to fail over to');
      const { masterPort: demoted } = await replicationOn(replica);
      if (demoted === undefined) throw new Error(`${replica} is not a replica`);
      // A manual failover needs the replica in step with its master first, and Redis aborts one that
      // does not complete within its own timeout (CLUSTER_MF_TIMEOUT, 5 s: an election without
      // enough votes in time, say) without a word; an operator then asks again, and so does this.
      await pollUntil(`${replica}'s link to ${demoted}`, async () => (await replicationOn(replica)).linkUp, opts.settleTimeoutMs);
      const promoted = async (): Promise<boolean> => (await roleOf(replica)) === 'master' && (await roleOf(demoted)) === 'slave';
      const deadline = Date.now() + opts.settleTimeoutMs;
      for (;;) {
        await admin(replica).call('CLUSTER', 'FAILOVER');
        try {
          await pollUntil(`${replica} to be promoted`, promoted, Math.max(1000, Math.min(MANUAL_FAILOVER_ATTEMPT_MS, deadline - Date.now())));
          break;
        } catch (error) {
          if (Date.now() >= deadline) throw error;
        }
      }
      await settle(`the cluster to settle after the failover to ${replica}`);
      return { demoted, promoted: replica };
    },
    async restart(port) {
      const node = servers.find((s) => s.port === port);
      if (node === undefined) throw new Error(`${port} is not a node of this cluster`);
      await node.server.restart();
      node.down = false;
      await pollUntil(`${port} to rejoin as a replica`, async () => (await roleOf(port).catch(() => '')) === 'slave', opts.settleTimeoutMs);
      await settle(`the cluster to settle after ${port} rejoined`);
    },
    async masterStats() {
      const masters = [...new Set((await slotMap()).map((r) => r.master))].sort((a, b) => a - b);
      return Promise.all(
        masters.map(async (port) => {
          const [commandstats, cpu] = await Promise.all([admin(port).info('commandstats'), admin(port).info('cpu')]);
          return { port, calls: parseCommandStats(commandstats), cpuUs: parseCpuUs(cpu) };
        }),
      );
    },
    stop: stopAll,
  };
}

/** One cluster node; a bus port taken meanwhile by someone else is tried again with another. */
async function startClusterNode(opts: RedisClusterOptions): Promise<RedisClusterServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const bus = await freePort();
    try {
      const server = await startRedisServer({
        appendonly: true,
        appendfsync: opts.appendfsync,
        ...(opts.logDir !== undefined ? { logFile: `${opts.logDir}/redis-bus-${bus}.log` } : {}),
        // A replica's full sync starts at once, not after the 5 s Redis 7 waits for more replicas by default.
        args: ['--repl-diskless-sync-delay', '0', '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-port', String(bus), '--cluster-node-timeout', String(opts.nodeTimeoutMs)],
      });
      return { port: server.port, server, down: false };
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

/** `cmdstat_<name>:calls=N,...` lines as { name: N }. */
export function parseCommandStats(info: string): Record<string, number> {
  const calls: Record<string, number> = {};
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[match[1]!] = Number(match[2]);
  return calls;
}

/** used_cpu_sys + used_cpu_user of INFO cpu, µs. */
export function parseCpuUs(info: string): number {
  const field = (name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return Math.round((field('used_cpu_sys') + field('used_cpu_user')) * 1e6);
}

function redisCli(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', args, { timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error) reject(new Error(`redis-cli ${args.join(' ')} failed: ${error.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

/**
 * A private Redis Cluster for the enclosing `describe`: started in
 * `before`, flushed after each test, stopped in `after`.
 */
export function useRedisCluster(options: Partial<RedisClusterOptions> = {}): { readonly cluster: RedisCluster } {
  const suite = useRedisSetup(() => startRedisCluster(options), (options.settleTimeoutMs ?? DEFAULTS.settleTimeoutMs) + 10_000);
  return {
    get cluster() {
      return suite.setup;
    },
  };
}

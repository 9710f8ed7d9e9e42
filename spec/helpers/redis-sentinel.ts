/*
 * A private Sentinel setup: a primary and a replica (spec/helpers/redis-server.ts,
 * appendonly) and three sentinels (`redis-server <conf> --sentinel`, each
 * with a generated config: `sentinel monitor <name> 127.0.0.1 <port> 2`,
 * short `down-after-milliseconds` and `failover-timeout`), all on free
 * 127.0.0.1 ports. Ready when the replica's link is up and every sentinel
 * knows the replica and the two other sentinels (else a failover could not
 * find a replica or reach quorum).
 *
 * Faults: `failover()` (SENTINEL FAILOVER) and `killPrimary()` (SIGKILL;
 * the sentinels elect a leader and promote the replica), each resolving
 * once every sentinel names the new primary; `restart(port)` brings a
 * killed server back, and the sentinels make it a replica of the new primary.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RedisSentinelTarget } from '../../lib/cluster/redis-target.js';
import { freePort } from './free-port.js';
import { AdminConnections, pollUntil, replicationOf, useRedisSetup } from './redis-admin.js';
import { ping, startRedisServer, type RedisServer, type RedisServerOptions } from './redis-server.js';

export interface RedisSentinelOptions {
  /** The monitored primary's name. @default 'stompbox' */
  name: string;
  /** `sentinel down-after-milliseconds`. @default 1000 */
  downAfterMs: number;
  /** `sentinel failover-timeout`. @default 3000 */
  failoverTimeoutMs: number;
  /** `appendfsync` of the primary and the replica (appendonly is on). @default 'everysec' */
  appendfsync: RedisServerOptions['appendfsync'];
  /** Bound on the start and on each wait for a failover. @default 20000 */
  settleTimeoutMs: number;
  /** Servers and sentinels append their output to files here. @default none */
  logDir?: string;
}

const DEFAULTS: RedisSentinelOptions = { name: 'stompbox', downAfterMs: 1000, failoverTimeoutMs: 3000, appendfsync: 'everysec', settleTimeoutMs: 20_000 };
const SENTINELS = 3;
const QUORUM = 2;

export interface RedisSentinelSetup {
  readonly target: RedisSentinelTarget;
  /** The primary now (as the sentinels name it). */
  readonly primary: RedisServer;
  readonly replica: RedisServer;
  readonly sentinelPorts: readonly number[];
  /** FLUSHALL on the primary. */
  flushAll(): Promise<void>;
  /** SENTINEL FAILOVER; resolves once every sentinel names the former replica as primary and the former primary replicates it. */
  failover(): Promise<{ demoted: number; promoted: number }>;
  /** SIGKILL to the primary; resolves once every sentinel names the replica as primary. The killed one stays down (see `restart`). */
  killPrimary(): Promise<{ killed: number; promoted: number }>;
  /** Starts a killed server again; resolves once it replicates the primary with its link up. */
  restart(port: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedisSentinel(options: Partial<RedisSentinelOptions> = {}): Promise<RedisSentinelSetup> {
  const opts = { ...DEFAULTS, ...options };
  const log = (name: string): Partial<RedisServerOptions> => (opts.logDir !== undefined ? { logFile: join(opts.logDir, `${name}.log`) } : {});
  // A replica's full sync starts at once, not after the 5 s Redis 7 waits for more replicas by default.
  const replication = ['--repl-diskless-sync-delay', '0'];
  const first = await startRedisServer({ appendonly: true, appendfsync: opts.appendfsync, args: replication, ...log('redis-a') });
  const sentinels: SentinelProcess[] = [];
  const servers: RedisServer[] = [first];
  const admins = new AdminConnections();
  const admin = (port: number) => admins.get(port);
  const stop = async (): Promise<void> => {
    admins.closeAll();
    await Promise.all([...sentinels.map((s) => s.dispose()), ...servers.map((s) => s.dispose())]);
  };
  const roleOf = (port: number) => replicationOf(admin(port));
  const named = async (sentinel: number): Promise<number | undefined> => {
    const reply = (await admin(sentinel).call('SENTINEL', 'get-master-addr-by-name', opts.name)) as [string, string] | null;
    return reply === null ? undefined : Number(reply[1]);
  };
  const everySentinelNames = async (port: number): Promise<boolean> => (await Promise.all(sentinels.map((s) => named(s.port).catch(() => undefined)))).every((p) => p === port);
  const replicates = async (replica: number, primary: number): Promise<boolean> => {
    const role = await roleOf(replica).catch(() => undefined);
    return role?.role === 'slave' && role.masterPort === primary && role.linkUp;
  };

  let state: { primary: RedisServer; replica: RedisServer };
  try {
    const second = await startRedisServer({ appendonly: true, appendfsync: opts.appendfsync, args: [...replication, '--replicaof', '127.0.0.1', String(first.port)], ...log('redis-b') });
    servers.push(second);
    state = { primary: first, replica: second };
    await pollUntil('the replica to sync', () => replicates(second.port, first.port), opts.settleTimeoutMs);
    sentinels.push(...(await Promise.all(Array.from({ length: SENTINELS }, (_, i) => startSentinel(first.port, opts, opts.logDir && join(opts.logDir, `sentinel-${i}.log`))))));
    await pollUntil(
      'every sentinel to know the replica and the other sentinels',
      async () => {
        for (const sentinel of sentinels) {
          const replicas = (await admin(sentinel.port).call('SENTINEL', 'REPLICAS', opts.name)) as unknown[];
          const peers = (await admin(sentinel.port).call('SENTINEL', 'SENTINELS', opts.name)) as unknown[];
          if (replicas.length < 1 || peers.length < SENTINELS - 1) return false;
        }
        return true;
      },
      opts.settleTimeoutMs,
    );
  } catch (error) {
    await stop();
    throw error;
  }

  /** Waits until every sentinel names `promoted`, and it says it is a primary. */
  const settleOn = (promoted: number, what: string): Promise<void> =>
    pollUntil(what, async () => (await everySentinelNames(promoted)) && (await roleOf(promoted).catch(() => undefined))?.role === 'master', opts.settleTimeoutMs);

  return {
    target: { kind: 'sentinel', name: opts.name, sentinels: sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })) },
    get primary() {
      return state.primary;
    },
    get replica() {
      return state.replica;
    },
    sentinelPorts: sentinels.map((s) => s.port),
    async flushAll() {
      await admin(state.primary.port).flushall();
    },
    async failover() {
      const { primary, replica } = state;
      await admin(sentinels[0]!.port).call('SENTINEL', 'FAILOVER', opts.name);
      await settleOn(replica.port, `the sentinels to name ${replica.port} after SENTINEL FAILOVER`);
      // What the sentinels do at their next INFO poll of the demoted primary (every 10 s), done now.
      await admin(primary.port).call('REPLICAOF', '127.0.0.1', String(replica.port));
      await pollUntil(`${primary.port} to replicate ${replica.port}`, () => replicates(primary.port, replica.port), opts.settleTimeoutMs);
      state = { primary: replica, replica: primary };
      return { demoted: primary.port, promoted: replica.port };
    },
    async killPrimary() {
      const { primary, replica } = state;
      admins.drop(primary.port);
      await primary.kill();
      await settleOn(replica.port, `the sentinels to promote ${replica.port} after ${primary.port} was killed`);
      state = { primary: replica, replica: primary };
      return { killed: primary.port, promoted: replica.port };
    },
    async restart(port) {
      const server = servers.find((s) => s.port === port);
      if (server === undefined) throw new Error(`${port} is not a server of this setup`);
      await server.restart();
      // The sentinels reconfigure a returning former primary as a replica of the current one.
      await pollUntil(`${port} to replicate ${state.primary.port}`, () => replicates(port, state.primary.port), opts.settleTimeoutMs);
    },
    stop,
  };
}

interface SentinelProcess {
  readonly port: number;
  dispose(): Promise<void>;
}

/** Sentinels still running when the test process exits are killed, their dirs removed. */
const liveSentinels = new Set<{ child: ChildProcess; dir: string }>();
process.once('exit', () => {
  for (const { child, dir } of liveSentinels) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

async function startSentinel(primaryPort: number, opts: RedisSentinelOptions, logFile: string | undefined): Promise<SentinelProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'stompbox-sentinel-'));
  const port = await freePort();
  const config = join(dir, 'sentinel.conf');
  // Sentinel rewrites its config file (what it learns): it must be its own, writable.
  writeFileSync(
    config,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${opts.name} 127.0.0.1 ${primaryPort} ${QUORUM}`,
      `sentinel down-after-milliseconds ${opts.name} ${opts.downAfterMs}`,
      `sentinel failover-timeout ${opts.name} ${opts.failoverTimeoutMs}`,
      `sentinel parallel-syncs ${opts.name} 1`,
      '',
    ].join('\n'),
  );
  const child = spawn('redis-server', [config, '--sentinel'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const entry = { child, dir };
  liveSentinels.add(entry);
  if (logFile !== undefined) {
    const log = createWriteStream(logFile, { flags: 'a' });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
  } else {
    child.stdout?.resume();
    child.stderr?.resume();
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const dispose = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    liveSentinels.delete(entry);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.race([ping(port, Date.now() + opts.settleTimeoutMs), exited.then(() => Promise.reject(new Error(`sentinel on ${port} exited while starting`)))]);
  } catch (error) {
    await dispose();
    throw error;
  }
  return { port, dispose };
}

/**
 * A private Sentinel setup for the enclosing `describe`: started in
 * `before`, flushed after each test, stopped in `after`.
 */
export function useRedisSentinel(options: Partial<RedisSentinelOptions> = {}): { readonly sentinel: RedisSentinelSetup } {
  const suite = useRedisSetup(() => startRedisSentinel(options), (options.settleTimeoutMs ?? DEFAULTS.settleTimeoutMs) + 10_000);
  return {
    get sentinel() {
      return suite.setup;
    },
  };
}

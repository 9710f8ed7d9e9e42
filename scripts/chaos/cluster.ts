/*
 * The cluster under test: a private Redis (appendonly, fsync every second,
 * as a typical deployment) and two stompbox node processes, A and B,
 * started with the spec helpers (spec/helpers/redis-server.ts,
 * spec/helpers/node-process.ts). The Redis is one server, or a 3-master,
 * 3-replica Redis Cluster (spec/helpers/redis-cluster.ts), or a primary,
 * its replica and three sentinels (spec/helpers/redis-sentinel.ts), as the
 * scenario says. Each node keeps its port and NODE_ID
 * across restarts (as scripts/local-cluster.sh runs them), so a client's
 * usual URL stays valid. Every process logs to a file in the run's dir.
 */
import { join } from 'node:path';
import type { RedisTarget } from '../../lib/cluster/redis-target.js';
import { spawnNode, type NodeProcess } from '../../spec/helpers/node-process.js';
import { startRedisCluster, type RedisCluster } from '../../spec/helpers/redis-cluster.js';
import { startRedisSentinel, type RedisSentinelSetup } from '../../spec/helpers/redis-sentinel.js';
import { startRedisServer, type RedisServer } from '../../spec/helpers/redis-server.js';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export type NodeName = 'A' | 'B';
export const NODE_NAMES: readonly NodeName[] = ['A', 'B'];

/** Which Redis the nodes stand on. */
export type RedisBackend = 'single' | 'cluster' | 'sentinel';

type StartedRedis =
  | { kind: 'single'; server: RedisServer }
  | { kind: 'cluster'; cluster: RedisCluster }
  | { kind: 'sentinel'; sentinel: RedisSentinelSetup };

export interface ClusterOptions {
  /** The run's temp dir: logs go here. */
  dir: string;
  /** @default 'single' */
  redis?: RedisBackend;
  beatMs: number;
  timeoutMs: number;
  /** Extra environment of every node (e.g. INBOX_MAX_MESSAGES). */
  nodeEnv: Record<string, string>;
}

/** A SIGTERM'd node that has not exited by then is killed (and the run says so). */
const STOP_BOUND_MS = 20_000;

/** Pids of every process started here, killed synchronously if this process exits with them still running. */
const livePids = new Set<number>();
process.once('exit', () => {
  for (const pid of livePids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

interface NodeSlot {
  readonly name: NodeName;
  readonly id: string;
  readonly port: number;
  readonly logFile: string;
  process: NodeProcess | undefined;
  paused: boolean;
  /** Every start of this node (their log records live on). */
  readonly starts: NodeProcess[];
}

export class Cluster {
  private readonly slots = new Map<NodeName, NodeSlot>();
  /** What happened to the processes, in order (for the report). */
  readonly events: string[] = [];
  private readonly startedAt = Date.now();

  private constructor(
    private readonly started: StartedRedis,
    private readonly options: ClusterOptions,
  ) {}

  static async start(options: ClusterOptions): Promise<Cluster> {
    mkdirSync(options.dir, { recursive: true });
    const cluster = new Cluster(await startRedis(options.redis ?? 'single', options.dir), options);
    try {
      for (const name of NODE_NAMES) {
        const port = await restartablePort();
        cluster.slots.set(name, { name, id: `chaos-${name.toLowerCase()}`, port, logFile: join(options.dir, `node-${name}.log`), process: undefined, paused: false, starts: [] });
      }
      await Promise.all(NODE_NAMES.map((name) => cluster.startNode(name)));
    } catch (error) {
      await cluster.dispose();
      throw error;
    }
    return cluster;
  }

  get logFiles(): string[] {
    return [...[...this.slots.values()].map((slot) => slot.logFile), this.started.kind === 'single' ? join(this.options.dir, 'redis.log') : `${this.options.dir}/redis-*.log, sentinel-*.log`];
  }

  /** The one redis-server (the `single` backend). */
  get redis(): RedisServer {
    if (this.started.kind !== 'single') throw new Error(`this scenario's Redis is a ${this.started.kind} setup, not one server`);
    return this.started.server;
  }

  /** The Redis Cluster (the `cluster` backend). */
  get redisCluster(): RedisCluster {
    if (this.started.kind !== 'cluster') throw new Error(`this scenario's Redis is ${this.started.kind}, not a Redis Cluster`);
    return this.started.cluster;
  }

  /** The Sentinel setup (the `sentinel` backend). */
  get sentinel(): RedisSentinelSetup {
    if (this.started.kind !== 'sentinel') throw new Error(`this scenario's Redis is ${this.started.kind}, not Sentinel`);
    return this.started.sentinel;
  }

  private get redisTarget(): RedisTarget {
    const started = this.started;
    return started.kind === 'single' ? started.server.url : started.kind === 'cluster' ? started.cluster.target : started.sentinel.target;
  }

  /** Records a fault done to Redis by a scenario, for the report. */
  redisEvent(what: string): void {
    this.event(what);
  }

  /** Log records of every node, every start. */
  get records(): ReadonlyArray<{ node: NodeName; record: Record<string, unknown> }> {
    return [...this.slots.values()].flatMap((slot) => slot.starts.flatMap((start) => start.logs.map((record) => ({ node: slot.name, record }))));
  }

  wsUrl(name: NodeName): string {
    return `ws://127.0.0.1:${this.slot(name).port}/stomp`;
  }

  httpUrl(name: NodeName): string {
    return `http://127.0.0.1:${this.slot(name).port}`;
  }

  /** WebSocket URLs, `first` first. */
  wsUrls(first: NodeName): string[] {
    return order(first).map((name) => this.wsUrl(name));
  }

  httpUrls(first: NodeName): string[] {
    return order(first).map((name) => this.httpUrl(name));
  }

  private event(what: string): void {
    this.events.push(`${((Date.now() - this.startedAt) / 1000).toFixed(1)}s ${what}`);
  }

  async startNode(name: NodeName): Promise<void> {
    const slot = this.slot(name);
    const started = Date.now();
    const node = await spawnNode({
      id: slot.id,
      redis: this.redisTarget,
      logFile: slot.logFile,
      env: {
        PORT: String(slot.port),
        NODE_BEAT_MS: String(this.options.beatMs),
        NODE_TIMEOUT_MS: String(this.options.timeoutMs),
        AUTH_MODE: 'open',
        SESSION_SECRET: 'chaos-session-secret-0123456789abcdef',
        ...this.options.nodeEnv,
      },
    });
    if (node.child.pid !== undefined) livePids.add(node.child.pid);
    slot.process = node;
    slot.paused = false;
    slot.starts.push(node);
    void node.exited.then(() => livePids.delete(node.child.pid ?? -1));
    this.event(`node ${name} started (${Date.now() - started} ms)`);
  }

  async killNode(name: NodeName): Promise<void> {
    const node = this.running(name);
    await node.kill();
    this.slot(name).process = undefined;
    this.event(`node ${name} SIGKILL`);
  }

  /** SIGTERM and wait for the exit, bounded; resolves with what happened. */
  async stopNode(name: NodeName): Promise<string> {
    const node = this.running(name);
    const started = Date.now();
    node.child.kill('SIGTERM');
    const code = await Promise.race([node.exited, sleepValue(STOP_BOUND_MS, 'timeout' as const)]);
    let outcome: string;
    if (code === 'timeout') {
      await node.kill();
      outcome = `did not exit within ${STOP_BOUND_MS} ms of SIGTERM: killed`;
    } else outcome = `exited with ${code} ${Date.now() - started} ms after SIGTERM`;
    this.slot(name).process = undefined;
    this.event(`node ${name} ${outcome}`);
    return outcome;
  }

  pauseNode(name: NodeName): void {
    this.running(name).child.kill('SIGSTOP');
    this.slot(name).paused = true;
    this.event(`node ${name} SIGSTOP`);
  }

  resumeNode(name: NodeName): void {
    this.running(name).child.kill('SIGCONT');
    this.slot(name).paused = false;
    this.event(`node ${name} SIGCONT`);
  }

  async redisDown(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    await (signal === 'SIGTERM' ? this.redis.stop() : this.redis.kill());
    this.event(`redis ${signal}`);
  }

  async redisUp(): Promise<void> {
    await this.redis.restart();
    this.event('redis restarted');
  }

  /** Kills whatever runs (a paused node too) and removes Redis's data dir; the logs stay. */
  async dispose(): Promise<void> {
    for (const slot of this.slots.values()) {
      const node = slot.process;
      slot.process = undefined;
      if (node === undefined) continue;
      if (slot.paused) node.child.kill('SIGCONT');
      await node.kill();
    }
    const started = this.started;
    await (started.kind === 'single' ? started.server.dispose() : started.kind === 'cluster' ? started.cluster.stop() : started.sentinel.stop());
  }

  private slot(name: NodeName): NodeSlot {
    return this.slots.get(name)!;
  }

  private running(name: NodeName): NodeProcess {
    const node = this.slot(name).process;
    if (node === undefined) throw new Error(`node ${name} is not running`);
    return node;
  }
}

async function startRedis(backend: RedisBackend, dir: string): Promise<StartedRedis> {
  if (backend === 'cluster') return { kind: 'cluster', cluster: await startRedisCluster({ appendfsync: 'everysec', logDir: dir }) };
  if (backend === 'sentinel') return { kind: 'sentinel', sentinel: await startRedisSentinel({ appendfsync: 'everysec', logDir: dir }) };
  return { kind: 'single', server: await startRedisServer({ appendonly: true, appendfsync: 'everysec', logFile: join(dir, 'redis.log') }) };
}

function order(first: NodeName): NodeName[] {
  return [first, ...NODE_NAMES.filter((name) => name !== first)];
}

function sleepValue<T>(ms: number, value: T): Promise<T> {
  return new Promise((resolve) => setTimeout(() => resolve(value), ms).unref());
}

/**
 * A free loopback port below the kernel's ephemeral range: a node keeps its
 * port across restarts, and a port from the ephemeral range can be taken
 * meanwhile as the local end of any outgoing connection (a load test with
 * thousands of them took one between a stop and a start: EADDRINUSE).
 */
async function restartablePort(): Promise<number> {
  const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  const top = Math.min(low ?? 32768, 32768);
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + Math.floor(Math.random() * (top - 20000));
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port below the ephemeral range');
}

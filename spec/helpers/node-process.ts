/*
 * Real node processes for multi-node specs: `node --import tsx lib/main.ts`
 * with its configuration in the environment, on a port the OS picks. Ready
 * when the node logs that it listens (an event, not a delay).
 */
import { redisTargetEnv, type RedisTarget } from '../../lib/cluster/redis-target.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const READY_TIMEOUT_MS = 30_000;

export interface NodeProcess {
  readonly id: string;
  readonly url: string;
  readonly wsUrl: string;
  /** STOMP over TCP port, when STOMP_TCP_PORT was set (0 picks one). */
  readonly tcpPort: number | undefined;
  readonly child: ChildProcess;
  /** Log records (parsed JSON lines) the node printed. */
  readonly logs: Array<Record<string, unknown>>;
  readonly exited: Promise<number | null>;
  /** SIGKILL: no cleanup, as a crash. */
  kill(): Promise<void>;
  /** SIGTERM: graceful shutdown. */
  stop(): Promise<number | null>;
  /** Resolves with the first log record (already printed, or to come) that matches; rejects after `timeoutMs`. */
  waitForLog(match: (record: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

const running = new Set<NodeProcess>();

export interface SpawnNodeOptions {
  id: string;
  redisUrl?: string;
  /** Any Redis target (a Redis Cluster, Sentinel): sets REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS(+_NAME). */
  redis?: RedisTarget;
  env?: Record<string, string>;
  /** Also append the node's stdout and stderr to this file (every start), for diagnosing a run. */
  logFile?: string;
}

export async function spawnNode(options: SpawnNodeOptions): Promise<NodeProcess> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: '0',
    HOST: '127.0.0.1',
    NODE_ID: options.id,
    LOG_LEVEL: 'info',
    NODE_BEAT_MS: '200',
    NODE_TIMEOUT_MS: '1000',
    // One secret for every node, so a session token from one is good on all (as behind a load balancer).
    SESSION_SECRET: 'spec-cluster-secret-0123456789abcdef',
    ...(options.redisUrl ? { REDIS_URL: options.redisUrl } : {}),
    ...(options.redis !== undefined ? redisTargetEnv(options.redis) : {}),
    ...options.env,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', 'lib/main.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Array<Record<string, unknown>> = [];
  const logWaiters = new Set<(record: Record<string, unknown>) => void>();
  if (options.logFile !== undefined) {
    const file = createWriteStream(options.logFile, { flags: 'a' });
    child.stdout!.pipe(file, { end: false });
    child.stderr!.pipe(file, { end: false });
    // 'close', not 'exit': the pipes may still hold output when the process exits.
    child.once('close', (code, signal) => file.end(`-- node ${options.id} exited (code ${code}, signal ${signal})\n`));
  }
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let tcpPort: number | undefined;
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node ${options.id} not ready in ${READY_TIMEOUT_MS} ms: ${stderr}`)), READY_TIMEOUT_MS);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let record: Record<string, unknown>;
      try {
        record = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(record);
      for (const wake of [...logWaiters]) wake(record);
      if (record.msg === 'stompbox node listening' && typeof record.url === 'string') {
        clearTimeout(timer);
        if (typeof record.stompTcpPort === 'number') tcpPort = record.stompTcpPort;
        resolve(record.url);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`node ${options.id} exited with ${code} before it was ready: ${stderr}`));
    });
  });
  const node: NodeProcess = {
    id: options.id,
    url,
    wsUrl: url.replace(/^http/, 'ws') + '/stomp',
    tcpPort,
    child,
    logs,
    exited,
    async kill() {
      child.kill('SIGKILL');
      await exited;
      running.delete(node);
    },
    async stop() {
      child.kill('SIGTERM');
      const code = await exited;
      running.delete(node);
      return code;
    },
    waitForLog(match, timeoutMs = 15_000) {
      const found = logs.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          logWaiters.delete(wake);
          reject(new Error(`node ${options.id}: no matching log record in ${timeoutMs} ms`));
        }, timeoutMs);
        const wake = (record: Record<string, unknown>): void => {
          if (!match(record)) return;
          clearTimeout(timer);
          logWaiters.delete(wake);
          resolve(record);
        };
        logWaiters.add(wake);
      });
    },
  };
  running.add(node);
  return node;
}

/** Kills whatever a spec left running (use in `after`/`afterEach`). */
export async function killAllNodes(): Promise<void> {
  await Promise.all([...running].map((node) => node.kill()));
}

/*
 * A private redis-server per suite: on a free 127.0.0.1 port, in its own temp
 * dir, started from the `redis-server` on PATH. Specs can stop, SIGKILL and
 * restart it (same port and dir) to exercise outages; with `appendonly: true`
 * every write is fsynced (unless `appendfsync` says `everysec`, as a typical
 * deployment runs it) so the data survives a kill.
 *
 * Readiness is awaited, never slept for: the server's "Ready to accept
 * connections" log line, then a PING that must answer +PONG, both bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServerOptions {
  /** Append-only file with `appendfsync always`: data survives kill and restart. @default false */
  appendonly: boolean;
  /** With `appendonly`: fsync after every write, or once a second (what a Redis crash may then lose). @default 'always' */
  appendfsync: 'always' | 'everysec';
  /** Bound on each start, ms. @default 10000 */
  startTimeoutMs: number;
  /** Append the server's output here (every start), for diagnosing a run. @default none */
  logFile?: string;
  /** More command-line options, after the ones above (e.g. `--cluster-enabled yes`, `--replicaof h p`). @default none */
  args?: readonly string[];
}

export interface RedisServer {
  readonly port: number;
  /** The running process's pid (undefined while stopped). */
  readonly pid: number | undefined;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** SIGTERM; resolves once the process exited. The dir stays for `restart()`. */
  stop(): Promise<void>;
  /** SIGKILL (a crash); resolves once the process exited. */
  kill(): Promise<void>;
  /** Stops it if running, starts it again on the same port and dir, resolves once it answers PING. */
  restart(): Promise<void>;
  /** SIGKILL if running, and removes its dir now rather than at process exit. */
  dispose(): Promise<void>;
}

const DEFAULTS: RedisServerOptions = { appendonly: false, appendfsync: 'always', startTimeoutMs: 10_000 };

/** Servers still running when the test process exits are killed, their dirs removed. */
const live = new Set<{ child: ChildProcess | undefined; dir: string }>();
process.once('exit', () => {
  for (const entry of live) {
    if (entry.child?.exitCode === null && entry.child.pid !== undefined) {
      try {
        process.kill(entry.child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(entry.dir, { recursive: true, force: true });
  }
});

export async function startRedisServer(options: Partial<RedisServerOptions> = {}): Promise<RedisServer> {
  const opts = { ...DEFAULTS, ...options };
  const dir = mkdtempSync(join(tmpdir(), 'stompbox-redis-'));
  const entry: { child: ChildProcess | undefined; dir: string } = { child: undefined, dir };
  live.add(entry);

  // A free port can be taken by someone else between probe and bind: retry a few.
  let port = 0;
  let lastError: unknown;
  for (let attempt = 0; attempt < 5 && entry.child === undefined; attempt++) {
    port = await freePort();
    try {
      entry.child = await launch(port, dir, opts);
    } catch (error) {
      lastError = error;
    }
  }
  if (entry.child === undefined) throw lastError instanceof Error ? lastError : new Error(String(lastError));

  const stopWith = async (signal: NodeJS.Signals): Promise<void> => {
    const child = entry.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
  };

  return {
    port,
    get pid() {
      return entry.child?.exitCode === null ? entry.child.pid : undefined;
    },
    url: `redis://127.0.0.1:${port}`,
    stop: () => stopWith('SIGTERM'),
    kill: () => stopWith('SIGKILL'),
    async restart() {
      await stopWith('SIGTERM');
      entry.child = await launch(port, dir, opts);
    },
    async dispose() {
      await stopWith('SIGKILL');
      live.delete(entry);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A key prefix no other test uses, so tests sharing one server never see each other's keys. */
let prefixCounter = 0;
export function uniquePrefix(label = 't'): string {
  prefixCounter++;
  return `sbtest:${process.pid}:${label}${prefixCounter}:${Math.random().toString(36).slice(2, 8)}:`;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function launch(port: number, dir: string, opts: RedisServerOptions): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no'];
  args.push(...(opts.appendonly ? ['--appendonly', 'yes', '--appendfsync', opts.appendfsync] : ['--appendonly', 'no']));
  args.push(...(opts.args ?? []));
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (opts.logFile !== undefined) {
    const log = createWriteStream(opts.logFile, { flags: 'a' });
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    child.once('close', (code, signal) => log.end(`-- redis-server exited (code ${code}, signal ${signal})\n`));
  }
  const deadline = Date.now() + opts.startTimeoutMs;

  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`redis-server on ${port} not ready in ${opts.startTimeoutMs} ms:\n${output}`)), opts.startTimeoutMs);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      if (output.includes('Ready to accept connections')) finish();
    };
    const onExit = (code: number | null): void => finish(new Error(`redis-server on ${port} exited (${code}) while starting:\n${output}`));
    const onError = (error: Error): void => finish(error);
    function finish(error?: Error): void {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
      if (error) {
        if (child.exitCode === null) child.kill('SIGKILL');
        reject(error);
      } else resolve();
    }
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
  // Keep draining the pipes so a chatty server never blocks on a full pipe.
  child.stdout?.resume();
  child.stderr?.resume();
  await ping(port, deadline);
  return child;
}

/** Resolves once the server answers PING with +PONG; retries until `deadline`. */
export async function ping(port: number, deadline: number): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host: '127.0.0.1' });
      let reply = '';
      const done = (result: boolean): void => {
        socket.destroy();
        resolve(result);
      };
      socket.setTimeout(Math.max(1, deadline - Date.now()), () => done(false));
      socket.once('error', () => done(false));
      socket.on('data', (chunk) => {
        reply += chunk.toString('latin1');
        if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
      });
      socket.once('connect', () => socket.write('PING\r\n'));
    });
    if (ok) return;
    if (Date.now() >= deadline) throw new Error(`redis-server on ${port} does not answer PING`);
    // A server still loading its AOF answers -LOADING: poll again shortly, bounded by `deadline`.
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * A private redis-server for the enclosing `describe`, with an admin client
 * for inspecting keys: started in `before`, stopped in `after`. Read the
 * fields inside hooks and tests (they are set once `before` ran).
 */
export function useRedisServer(options: Partial<RedisServerOptions> = {}): { server: RedisServer; admin: Redis } {
  const suite = {} as { server: RedisServer; admin: Redis };
  before(async () => {
    suite.server = await startRedisServer(options);
    suite.admin = new Redis(suite.server.url);
    // A spec may stop or restart the server: reconnect errors are expected (commands still reject).
    suite.admin.on('error', () => {});
  });
  after(async () => {
    suite.admin.disconnect();
    await suite.server.stop();
  });
  return suite;
}

/*
 * Processes a target starts for itself and stops again: a private Redis on
 * a free loopback port (no persistence), and Node servers run under tsx or,
 * compiled, by plain node.
 * Each is bound in time on start and stop, and logs to a file in the OS
 * temp dir so a failing start can be diagnosed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, onPath, portAnswers, runCommand, waitFor } from './system.js';
import { TargetUnavailable } from './target.js';

/** The repository root (scripts/bench/lib → ../../..). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface SpawnedProcess {
  pid: number;
  port: number;
  logFile: string;
  stop(): Promise<void>;
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

async function terminate(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * Spawns `command args` with its output in a temp log file, waits until
 * 127.0.0.1:port accepts connections, and returns a handle that stops it.
 */
export async function spawnListening(
  name: string,
  command: string,
  args: string[],
  port: number,
  options: { env?: NodeJS.ProcessEnv; cwd?: string; readyTimeoutMs?: number } = {},
): Promise<SpawnedProcess> {
  const logFile = join(tmpdir(), `stompbox-bench-${name}-${port}.log`);
  const fd = openSync(logFile, 'w');
  const child = spawn(command, args, {
    cwd: options.cwd ?? REPO_ROOT,
    env: options.env ?? process.env,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  let exitInfo: string | null = null;
  child.once('exit', (code, signal) => {
    exitInfo = `exited (code ${code}, signal ${signal})`;
  });
  const stop = (): Promise<void> => terminate(child);
  try {
    await waitFor(`${name} on 127.0.0.1:${port}`, async () => {
      if (exitInfo !== null) throw new Error(`${name} ${exitInfo}; log ${logFile}:\n${tail(logFile)}`);
      return portAnswers(port);
    }, options.readyTimeoutMs ?? 30_000, 200);
  } catch (error) {
    await stop();
    throw error;
  }
  if (child.pid === undefined) throw new Error(`${name} has no pid`);
  return { pid: child.pid, port, logFile, stop };
}

/** A Node (TypeScript) server run with tsx, as the project runs its own scripts. */
export async function spawnTsNode(
  name: string,
  entry: string,
  args: string[],
  port: number,
  env: NodeJS.ProcessEnv = {},
): Promise<SpawnedProcess> {
  return spawnListening(name, process.execPath, ['--import', 'tsx', entry, ...args], port, {
    env: { ...process.env, ...env },
  });
}

/** A compiled Node server run by plain `node` (no loader in the process); `env` adds to this process's environment. */
export async function spawnNode(
  name: string,
  entry: string,
  args: string[],
  port: number,
  env: NodeJS.ProcessEnv = {},
): Promise<SpawnedProcess> {
  return spawnListening(name, process.execPath, [entry, ...args], port, {
    env: { ...process.env, ...env },
  });
}

export const REDIS_INSTALL_HINT = 'redis-server is not installed: `apt-get install redis-server` (Debian/Ubuntu), then rerun.';

/** A private, non-persistent Redis on a free 127.0.0.1 port (never the shared one on 6379). */
export async function startPrivateRedis(): Promise<SpawnedProcess & { url: string }> {
  const binary = onPath('redis-server');
  if (binary === null) throw new TargetUnavailable(REDIS_INSTALL_HINT);
  const port = await freePort();
  const redis = await spawnListening('redis', binary, [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--protected-mode',
    'yes',
  ], port, { cwd: tmpdir() });
  const pong = await runCommand('redis-cli', ['-p', String(port), 'ping'], { timeoutMs: 5000 });
  if (pong.code === 0 && !pong.stdout.includes('PONG')) throw new Error(`private redis on ${port} did not answer PING`);
  return { ...redis, url: `redis://127.0.0.1:${port}` };
}

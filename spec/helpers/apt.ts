/*
 * Debian packages a spec needs (chromium, python3-stomp): where one is
 * missing and we are root, it is installed with apt-get (`apt-get update`
 * first, once per process); otherwise the spec fails saying how to install it.
 */
import { spawn } from 'node:child_process';

/** Bound on one apt-get run, ms. */
export const INSTALL_TIMEOUT_MS = 15 * 60_000;

let updated: Promise<void> | undefined;
const installs = new Map<string, Promise<void>>();

/** Installs `packages` unless `present()` already holds; resolves once it holds. */
export async function ensureDebianPackages(packages: string[], present: () => boolean | Promise<boolean>, why: string): Promise<void> {
  if (await present()) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`${why} needs ${packages.join(' ')}: install it (sudo apt-get install -y ${packages.join(' ')})`);
  }
  const key = packages.join(' ');
  let install = installs.get(key);
  if (!install) {
    install = (async () => {
      process.stderr.write(`${why}: installing ${key} with apt-get (once per machine)...\n`);
      updated ??= run('apt-get', ['update', '-qq']);
      await updated;
      await run('apt-get', ['install', '-y', '-qq', ...packages]);
    })();
    installs.set(key, install);
  }
  await install;
  if (!(await present())) throw new Error(`apt-get installed ${key} but it is still missing`);
}

/** Runs a command to its end; rejects with the last line of its stderr. */
export function run(command: string, args: string[], options: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? INSTALL_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive', ...options.env };
    const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`${command} ${args.join(' ')}: ${error.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code}: ${stderr.trim().split('\n').pop() ?? ''}`));
    });
  });
}

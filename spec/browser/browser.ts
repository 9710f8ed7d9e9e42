/*
 * Browser specs' setup: Debian's Chromium driven by playwright-core (which
 * downloads no browser of its own). Where /usr/bin/chromium is missing and we
 * are root, it is installed with apt-get (a few minutes, once per machine);
 * otherwise the spec fails saying how to install it.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';

/** @default /usr/bin/chromium (Debian's package), or CHROMIUM_PATH */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Bound on installing Chromium with apt-get, ms. */
export const INSTALL_TIMEOUT_MS = 15 * 60_000;

const LAUNCH_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

let installing: Promise<void> | undefined;

export async function ensureChromium(): Promise<string> {
  if (existsSync(CHROMIUM_PATH)) return CHROMIUM_PATH;
  if (process.env.CHROMIUM_PATH) throw new Error(`CHROMIUM_PATH=${CHROMIUM_PATH} does not exist`);
  if (process.getuid?.() !== 0) {
    throw new Error(`the browser specs need Chromium at ${CHROMIUM_PATH}: install it (sudo apt-get install -y chromium) or set CHROMIUM_PATH`);
  }
  installing ??= (async () => {
    process.stderr.write('browser specs: installing chromium with apt-get (once per machine)...\n');
    await run('apt-get', ['update', '-qq']);
    await run('apt-get', ['install', '-y', '-qq', 'chromium']);
  })();
  await installing;
  if (!existsSync(CHROMIUM_PATH)) throw new Error(`apt-get installed chromium but ${CHROMIUM_PATH} is still missing`);
  return CHROMIUM_PATH;
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), INSTALL_TIMEOUT_MS);
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

export async function launchBrowser(): Promise<Browser> {
  const executablePath = await ensureChromium();
  return chromium.launch({ executablePath, headless: true, args: LAUNCH_ARGS });
}

/**
 * Where screenshots go: docs/screenshots/ when STOMPBOX_SCREENSHOTS=1 (to
 * refresh the committed ones), else a temp dir so a test run leaves the tree clean.
 */
export function screenshotDir(): string {
  const dir = process.env.STOMPBOX_SCREENSHOTS
    ? fileURLToPath(new URL('../../docs/screenshots/', import.meta.url))
    : join(tmpdir(), 'stompbox-screenshots');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/*
 * Browser specs' setup: Debian's Chromium driven by playwright-core (which
 * downloads no browser of its own). Where /usr/bin/chromium is missing and we
 * are root, it is installed with apt-get (a few minutes, once per machine);
 * otherwise the spec fails saying how to install it.
 */
import { existsSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { ensureDebianPackages, INSTALL_TIMEOUT_MS } from '../helpers/apt.js';

export { INSTALL_TIMEOUT_MS };

/** @default /usr/bin/chromium (Debian's package), or CHROMIUM_PATH */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

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

export async function ensureChromium(): Promise<string> {
  if (existsSync(CHROMIUM_PATH)) return CHROMIUM_PATH;
  if (process.env.CHROMIUM_PATH) throw new Error(`CHROMIUM_PATH=${CHROMIUM_PATH} does not exist`);
  await ensureDebianPackages(['chromium'], () => existsSync(CHROMIUM_PATH), 'the browser specs');
  return CHROMIUM_PATH;
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

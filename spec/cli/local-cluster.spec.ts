/*
 * scripts/local-cluster.sh as a user runs it: Redis, three nodes and nginx
 * (deploy/nginx.conf) on free ports; the CLI talks to the cluster through
 * nginx and to single nodes; SIGTERM (as Ctrl-C) stops every process. Ready
 * when the script prints its banner (it waits for each node's /readyz and
 * nginx's /healthz itself). The script installs nginx with apt-get where it is
 * missing and we are root.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { freePort } from '../helpers/free-port.js';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCRIPT = fileURLToPath(new URL('../../scripts/local-cluster.sh', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/stompbox.js', import.meta.url));

/** `count` consecutive free ports (probed, then released). */
async function freeConsecutivePorts(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const servers = [];
    try {
      for (let i = 0; i < count; i++) {
        const server = createServer();
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(base + i, '127.0.0.1', resolve);
        });
        servers.push(server);
      }
      return base;
    } catch {
      // taken: try another range
    } finally {
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    }
  }
  throw new Error('no free port range');
}

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const tails = new Set<ChildProcess>();

/** `stompbox tail` that resolves once subscribed, with a promise of its output once it exits (wrapped: a promise would flatten). */
async function tail(args: string[]): Promise<{ output: Promise<string> }> {
  const child = spawn(process.execPath, [BIN, 'tail', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  tails.add(child);
  child.on('close', () => tails.delete(child));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes('subscribed to')) resolve();
    });
    void exited.then((code) => reject(new Error(`tail exited (${code}): ${stderr}`)));
  });
  const output = exited.then((code) => {
    if (code !== 0) throw new Error(`tail exited (${code}): ${stderr}`);
    return stdout;
  });
  return { output };
}

describe('scripts/local-cluster.sh (Redis, three nodes, nginx)', function () {
  this.timeout(120_000);
  let script: ChildProcess;
  let exited: Promise<number | null>;
  let banner = '';
  let lbPort: number;
  let basePort: number;

  before(async function () {
    this.timeout(15 * 60_000); // may install nginx with apt-get
    if (!existsSync('/usr/bin/redis-server') && !process.env.PATH?.split(':').some((dir) => existsSync(`${dir}/redis-server`))) {
      throw new Error('redis-server is needed (Debian: apt-get install -y redis-server)');
    }
    lbPort = await freePort();
    basePort = await freeConsecutivePorts(3);
    const redisPort = await freePort();
    script = spawn('bash', [SCRIPT], {
      cwd: ROOT,
      env: { ...process.env, LB_PORT: String(lbPort), BASE_PORT: String(basePort), REDIS_PORT: String(redisPort), NODES: '3', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: false,
    });
    exited = new Promise((resolve) => script.on('close', resolve));
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: script.stderr! }).on('line', (line) => {
        banner += line + '\n';
        if (line.includes('Ctrl-C stops everything')) resolve();
      });
      void exited.then((code) => reject(new Error(`local-cluster.sh exited (${code}) before it was ready:\n${banner}`)));
    });
  });

  afterEach(() => {
    for (const child of tails) child.kill('SIGKILL');
  });

  after(async () => {
    if (script && script.exitCode === null) {
      script.kill('SIGTERM');
      await exited;
    }
  });

  it('serves the pages and the API through nginx', async () => {
    const page = await fetch(`http://127.0.0.1:${lbPort}/`);
    expect(page.status).to.equal(200);
    expect(await page.text()).to.include('stompbox');
    const vendor = await fetch(`http://127.0.0.1:${lbPort}/vendor/sockjs-client/sockjs.min.js`);
    expect(vendor.status).to.equal(200);
    const info = (await (await fetch(`http://127.0.0.1:${lbPort}/chat-websocket/info`)).json()) as { websocket: boolean };
    expect(info.websocket).to.equal(true);
  });

  it('routes a message from a user on one node to a user on another, and through nginx', async function () {
    this.timeout(30_000);
    const first = `http://127.0.0.1:${basePort}`;
    const third = `http://127.0.0.1:${basePort + 2}`;
    const nginx = `http://127.0.0.1:${lbPort}`;
    const { output } = await tail(['--url', first, '-u', 'bob', '-n', '2', '/user/queue/reply']);
    const direct = await cli(['send', '--url', third, '-u', 'alice', '--to', 'bob', '-d', '/queue/reply', 'from node 3']);
    expect(direct.code, direct.stderr).to.equal(0);
    const proxied = await cli(['send', '--url', nginx, '-u', 'alice', '--to', 'bob', '-d', '/queue/reply', 'through nginx']);
    expect(proxied.code, proxied.stderr).to.equal(0);
    expect(await output).to.equal('from node 3\nthrough nginx\n');
  });

  it('a login through nginx is valid on every node (one SESSION_SECRET)', async () => {
    const login = await fetch(`http://127.0.0.1:${lbPort}/api/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ user: 'carol' }),
    });
    expect(login.status).to.equal(200);
    const cookie = login.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    for (let i = 0; i < 3; i++) {
      const me = await fetch(`http://127.0.0.1:${basePort + i}/api/me`, { headers: { Cookie: cookie } });
      expect(me.status, `node ${i + 1}`).to.equal(200);
      expect(((await me.json()) as { user: string }).user).to.equal('carol');
    }
  });

  it('stops every process on SIGTERM (as on Ctrl-C)', async () => {
    script.kill('SIGTERM');
    await exited;
    for (const port of [lbPort, basePort, basePort + 1, basePort + 2]) {
      const refused = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        () => false,
        () => true,
      );
      expect(refused, `port ${port} still answers`).to.equal(true);
    }
  });
});

/*
 * The chat page through nginx with deploy/nginx.conf as shipped (only its
 * ports rewritten, as scripts/local-cluster.sh does) in front of two nodes on
 * one Redis: Chromium sends its Origin header on the login POST and on the
 * WebSocket handshake, which the nodes accept only if nginx passes the
 * browser's Host on every location. Two users chat across the nodes, then the
 * node one of them is on is killed and started again: the page reconnects
 * through nginx and the conversation goes on.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import { freePort } from '../helpers/free-port.js';
import { killAllNodes, spawnNode, type NodeProcess } from '../helpers/node-process.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { ensureDebianPackages } from '../helpers/apt.js';
import { launchBrowser, INSTALL_TIMEOUT_MS } from './browser.js';
import { logIn, openPerson, sendTo, waitForIncoming, waitOnline, type Person } from './chat-page.js';

/** nginx's binary, if installed (looked up when the spec starts: the apt helper may have just installed it). */
const findNginx = (): string | undefined => ['/usr/sbin/nginx', ...(process.env.PATH ?? '').split(':').map((dir) => join(dir, 'nginx'))].find((path) => existsSync(path));
const CONF = new URL('../../deploy/nginx.conf', import.meta.url);

/** deploy/nginx.conf with its upstream servers and listen port replaced, in a private prefix directory. */
function nginxConfig(dir: string, lbPort: number, nodePorts: number[]): string {
  const servers = nodePorts.map((port) => `    server 127.0.0.1:${port} max_fails=3 fail_timeout=10s;`);
  const seen = new Set<number>();
  let block = 0;
  const lines: string[] = [];
  for (const line of readFileSync(CONF, 'utf8').split('\n')) {
    if (/^upstream /.test(line)) block++;
    if (/^ *server 127\.0\.0\.1:808\d /.test(line)) {
      if (!seen.has(block)) lines.push(...servers);
      seen.add(block);
      continue;
    }
    lines.push(line.replace('listen 127.0.0.1:8080;', `listen 127.0.0.1:${lbPort};`));
  }
  writeFileSync(join(dir, 'stompbox.conf'), lines.join('\n'));
  mkdirSync(join(dir, 'tmp'), { recursive: true, mode: 0o777 });
  const main = join(dir, 'nginx.conf');
  writeFileSync(
    main,
    `pid ${dir}/nginx.pid;\nerror_log ${dir}/error.log warn;\nevents {}\nhttp {\n  access_log off;\n` +
      ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `  ${kind}_temp_path ${dir}/tmp/${kind};\n`).join('') +
      `  include ${dir}/stompbox.conf;\n}\n`,
  );
  return main;
}

/** Resolves once `url` answers 200; nginx signals nothing when it listens, so this asks, for at most 10 s. */
async function answering(url: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${url} did not answer within 10 s`);
    await new Promise<void>((resolve) => setTimeout(resolve, 50));
  }
}

describe('chat page through nginx (deploy/nginx.conf), two nodes', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let nodes: NodeProcess[];
  let nodePorts: number[];
  let nginx: ChildProcess;
  let browser: Browser;
  let base: string;
  const people: Person[] = [];

  before(async function () {
    this.timeout(INSTALL_TIMEOUT_MS);
    // Like Chromium: installed with apt-get where missing (as root), else the spec says how.
    await ensureDebianPackages(['nginx'], () => findNginx() !== undefined, 'the nginx spec');
    const NGINX = findNginx()!;
    redis = await startRedisServer();
    nodePorts = [await freePort(), await freePort()];
    nodes = await Promise.all(['node-a', 'node-b'].map((id, i) => spawnNode({ id, redisUrl: redis.url, env: { PORT: String(nodePorts[i]) } })));
    const lbPort = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'stompbox-nginx-'));
    nginx = spawn(NGINX, ['-p', dir, '-e', join(dir, 'error.log'), '-c', nginxConfig(dir, lbPort, nodePorts), '-g', 'daemon off;'], { stdio: 'ignore' });
    base = `http://127.0.0.1:${lbPort}`;
    await answering(`${base}/healthz`);
    browser = await launchBrowser();
  });

  after(async () => {
    await Promise.allSettled(people.map((person) => person.context.close()));
    await browser?.close();
    nginx?.kill('SIGTERM');
    await killAllNodes();
    await redis?.stop();
  });

  it('two users log in through nginx with their Origin, chat across nodes, and go on after a node restart', async () => {
    const alice = await openPerson(browser);
    people.push(alice);
    await logIn(alice.page, base, 'alice', 'websocket');
    const aliceNode = await alice.page.getAttribute('#where', 'data-node');
    // nginx (least_conn) picks the node; bob comes again, a bounded number of times, until he is on the other one.
    let bob = await openPerson(browser);
    people.push(bob);
    await logIn(bob.page, base, 'bob', 'websocket');
    for (let attempt = 0; attempt < 8 && (await bob.page.getAttribute('#where', 'data-node')) === aliceNode; attempt++) {
      await bob.context.close();
      bob = await openPerson(browser);
      people.push(bob);
      await logIn(bob.page, base, 'bob', 'websocket');
    }
    await waitOnline(alice.page, 'bob', true);
    await sendTo(alice.page, 'bob', 'Hi Bob, through nginx');
    await waitForIncoming(bob.page, 'alice', ['Hi Bob, through nginx']);
    await sendTo(bob.page, 'alice', 'Hi Alice');
    await waitForIncoming(alice.page, 'bob', ['Hi Alice']);
    const bobNode = await bob.page.getAttribute('#where', 'data-node');
    expect(new Set([aliceNode, bobNode])).to.deep.equal(new Set(['node-a', 'node-b']));

    // alice's node dies and comes back on its port; her page reconnects through nginx.
    const index = aliceNode === 'node-a' ? 0 : 1;
    await nodes[index]!.kill();
    await alice.page.locator('#status[data-state="connecting"]').waitFor();
    nodes[index] = await spawnNode({ id: aliceNode!, redisUrl: redis.url, env: { PORT: String(nodePorts[index]) } });
    await alice.page.locator('#status[data-state="online"]').waitFor();
    await sendTo(bob.page, 'alice', 'Welcome back');
    await waitForIncoming(alice.page, 'bob', ['Hi Alice', 'Welcome back']);
    await sendTo(alice.page, 'bob', 'Thanks');
    await waitForIncoming(bob.page, 'alice', ['Hi Bob, through nginx', 'Thanks']);
    expect([...alice.errors, ...bob.errors]).to.deep.equal([]);
  });
});

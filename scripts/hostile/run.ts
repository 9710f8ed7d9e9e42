/*
 * `npm run hostile`: replays the attacks of issue 10 against a node and
 * prints, per attack, the node's answer, its RSS growth (peak of samples
 * every 50 ms over the attack, against just before it) and what a good pair
 * exchanging messages meanwhile delivered and lost.
 *
 *   npm run hostile                                   # starts its own node (RECIPIENT_POLICY=known, a rules file, a send rate)
 *   npm run hostile -- --url http://127.0.0.1:8080 --pid 1234   # a running node (RSS needs its pid)
 *
 * Target: every attack answered, the good pair 0 lost, RSS growth < 200 MB.
 * Exits 1 when one is missed. Loopback only; every loop bounded in count and time.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnTsNode, type SpawnedProcess } from '../bench/lib/spawned.js';
import { freePort } from '../bench/lib/system.js';
import { ATTACKS, type Target } from './attacks.js';
import { GoodPair } from './good-pair.js';

const RSS_TARGET = 200 * 1024 * 1024;

/** Everyone everywhere, but /queue/jobs: the rules the forbidden-destination attack meets. */
const RULES = {
  rules: [{ users: ['*'], subscribe: ['/user/{self}/**', '/topic/**', '/queue/public.**'], send: ['/user/*/**', '/topic/**', '/queue/**'] }],
};

function rssOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : undefined;
}

async function ownNode(): Promise<{ url: string; node: SpawnedProcess }> {
  const port = await freePort();
  const rules = join(tmpdir(), `stompbox-hostile-rules-${process.pid}.json`);
  writeFileSync(rules, JSON.stringify(RULES));
  const node = await spawnTsNode('hostile-node', 'lib/main.ts', [], port, {
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    RECIPIENT_POLICY: 'known',
    PERMISSIONS_FILE: rules,
    // The defaults sit above what one client reaches on a 2-core machine (README, "Limits and permissions").
    SEND_RATE_MESSAGES: '20000',
    SEND_RATE_BYTES: String(32 * 1024 * 1024),
  });
  return { url: `http://127.0.0.1:${port}`, node };
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { url: { type: 'string' }, pid: { type: 'string' } } });
  const own = values.url === undefined ? await ownNode() : undefined;
  const url = values.url ?? own!.url;
  if (!/^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/.test(url)) throw new Error(`--url must be a loopback http://host:port, got ${url}`);
  const pid = own?.node.pid ?? (values.pid !== undefined ? Number(values.pid) : undefined);
  const target: Target = { wsUrl: `${url.replace(/^http/, 'ws')}/stomp`, sockjsUrl: `${url.replace(/^http/, 'ws')}/chat-websocket` };
  let failures = 0;
  const rows: string[][] = [['attack', 'answer', 'RSS growth', 'good delivered', 'good lost']];
  try {
    const pair = await GoodPair.open(target.wsUrl);
    for (const attack of ATTACKS) {
      const before = rssOf(pid);
      let peak = before ?? 0;
      const sampler = setInterval(() => (peak = Math.max(peak, rssOf(pid) ?? 0)), 50);
      const { result, delivered, lost } = await pair.during(attack.run(target).catch((error: unknown) => `FAILED: ${error instanceof Error ? error.message : String(error)}`));
      clearInterval(sampler);
      peak = Math.max(peak, rssOf(pid) ?? 0);
      const growth = before === undefined ? undefined : peak - before;
      const ok = result === attack.expected && lost === 0 && (growth === undefined || growth < RSS_TARGET);
      if (!ok) failures++;
      rows.push([
        attack.name,
        result === attack.expected ? result : `${result} (expected ${attack.expected})`,
        growth === undefined ? 'n/a (no --pid)' : `${(growth / 1024 / 1024).toFixed(1)} MB`,
        String(delivered),
        String(lost),
      ]);
      process.stderr.write(`${ok ? 'ok  ' : 'MISS'} ${attack.name}\n`);
    }
    pair.close();
  } finally {
    await own?.node.stop();
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const row of rows) console.log(row.map((cell, c) => cell.padEnd(widths[c]!)).join(' | '));
  console.log(failures === 0 ? '\nevery attack answered, good pair lost nothing, RSS growth under 200 MB' : `\n${failures} attack(s) missed the target`);
  return failures === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(2);
  },
);

/*
 * Two builds of stompbox side by side at a moderate rate: the CPU each
 * process of a two-node run spends, with freshly started nodes, the builds
 * alternated round by round (A B, B A, A B, …) so that a drift of the shared
 * machine falls on both.
 *
 *   npx tsx scripts/bench/ab.ts --b /work/wt-main [--a .] [--rounds 4] [--rate 1000] [--pairs 10] [--warmup 3] [--duration 20]
 *   npx tsx scripts/bench/ab.ts --b . --flags-b=--single-threaded-gc   (one build, two ways of running it)
 *
 * Each directory is a checkout with its `dist/` built (`npx tsc -p
 * tsconfig.build.json`) and its node_modules installed; A defaults to this
 * one. Per run: a private Redis, node 0 (every sender) and node 1 (every
 * receiver) from `<dir>/dist/lib/main.js`, the project's generator
 * (loadgen.ts, split placement, user destinations), CPU read from /proc over
 * the measured window only.
 *
 * At `--rate 0` (unlimited, window-bounded) it is a saturation A/B: compare
 * msg/s and the servers' CPU µs per delivered message (both columns printed).
 *
 * Why a script of its own: on this 2-core VM the same warm nodes vary ±15 %
 * from one run to the next, more than a cut of a few per cent. Besides each
 * process's share, it prints the sending node's CPU divided by the receiving
 * node's: both run under the same disturbance, so a change to one of them
 * shows in that ratio through the noise (docs/bench/two-node-profile.md).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { formatMs, resolveOptions, runLoad } from './loadgen.js';
import { ProcSampler, type ProcStats } from './proc-stats.js';
import { REPO_ROOT, spawnListening, startPrivateRedis, type SpawnedProcess } from './lib/spawned.js';
import { freePort, runCommand, waitFor } from './lib/system.js';

const { values } = parseArgs({
  options: {
    a: { type: 'string', default: REPO_ROOT },
    b: { type: 'string' },
    rounds: { type: 'string', default: '4' },
    rate: { type: 'string', default: '1000' },
    pairs: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    duration: { type: 'string', default: '20' },
    /** Print Redis' INFO commandstats after each run (µs per call, nested script commands included). */
    commandstats: { type: 'boolean', default: false },
    /** CPU-profile one node (`sender` or `receiver`) of every run: --cpu-prof into <dir>/<build>-r<round> (read with profile-top.ts). */
    profile: { type: 'string' },
    'profile-dir': { type: 'string', default: '/tmp/stompbox-ab-profiles' },
    /** Node's own flags for A's / B's nodes, space-separated (e.g. `--single-threaded-gc`): one build run two ways. */
    'flags-a': { type: 'string', default: '' },
    'flags-b': { type: 'string', default: '' },
  },
});

interface Run {
  build: 'A' | 'B';
  round: number;
  /** % of one core over the measured window: sending node, receiving node, Redis. */
  sender: number;
  receiver: number;
  redis: number;
  p99: number;
  p999: number;
  lost: number;
  /** Delivered msg/s over the measured window (at --rate 0, the saturation figure). */
  throughput: number;
  /** Generator CPU, % of a core (on 2 cores, it competes with the servers at saturation). */
  client: number;
}

function entryOf(dir: string): string {
  const entry = resolve(dir, 'dist', 'lib', 'main.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: build it first (cd ${dir} && npx tsc -p tsconfig.build.json)`);
  return entry;
}

const flagsOf = (text: string): string[] => text.split(/\s+/).filter((flag) => flag !== '');

async function startNodes(entry: string, flags: string[], profileDir?: string): Promise<{ processes: SpawnedProcess[]; urls: string[]; redisPort: number }> {
  const redis = await startPrivateRedis();
  started.add(redis);
  const processes: SpawnedProcess[] = [redis];
  const urls: string[] = [];
  const env = { SESSION_SECRET: randomBytes(32).toString('hex'), NODE_OPTIONS: '' };
  for (let n = 0; n < 2; n++) {
    const port = await freePort();
    const args = ['--port', String(port), '--host', '127.0.0.1', '--auth-mode', 'open', '--log-level', 'warn'];
    args.push('--redis-url', redis.url, '--redis-prefix', `sb-ab-${redis.port}:`, '--node-id', `ab-${n}`);
    const profiled = profileDir !== undefined && n === (values.profile === 'sender' ? 0 : 1);
    const node =
      profiled
        ? await spawnListening(`stompbox-${n}`, process.execPath, [...flags, '--cpu-prof', `--cpu-prof-dir=${profileDir}`, entry, ...args], port, { env: { ...process.env, ...env } })
        : await spawnListening(`stompbox-${n}`, process.execPath, [...flags, entry, ...args], port, { env: { ...process.env, ...env } });
    started.add(node);
    processes.push(node);
    await waitFor(`node ${n} /readyz`, async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.ok === true, 15_000, 100);
    urls.push(`ws://127.0.0.1:${port}/stomp`);
  }
  return { processes, urls, redisPort: redis.port };
}

/** INFO commandstats, the busiest first: `cmd calls usec_per_call`. */
async function commandStats(port: number): Promise<string> {
  const info = await runCommand('redis-cli', ['-p', String(port), 'INFO', 'commandstats'], { timeoutMs: 5000 });
  const rows = [...info.stdout.matchAll(/^cmdstat_(\S+):calls=(\d+),usec=(\d+),usec_per_call=([\d.]+)/gm)].map((m) => ({
    cmd: m[1]!,
    calls: Number(m[2]),
    usec: Number(m[3]),
    perCall: Number(m[4]),
  }));
  rows.sort((x, y) => y.usec - x.usec);
  return rows
    .slice(0, 12)
    .map((row) => `      ${row.cmd.padEnd(20)} calls ${String(row.calls).padStart(8)}  usec ${String(row.usec).padStart(9)}  per call ${row.perCall.toFixed(2)}`)
    .join('\n');
}

/** What a run has started: stopped at its end, or on SIGINT / SIGTERM (a `timeout` around the script), never left behind. */
const started = new Set<SpawnedProcess>();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void Promise.all([...started].map((spawned) => spawned.stop())).finally(() => process.exit(130));
  });
}

async function runOnce(build: 'A' | 'B', dir: string, round: number): Promise<Run> {
  const profileDir = values.profile === undefined ? undefined : resolve(values['profile-dir'], `${build}-r${round}`);
  const flags = flagsOf(build === 'A' ? values['flags-a'] : values['flags-b']);
  const { processes, urls, redisPort } = await startNodes(entryOf(dir), flags, profileDir);
  try {
    const options = resolveOptions({
      urls,
      mode: 'p2p',
      pairs: Number(values.pairs),
      payload: 100,
      window: 100,
      rate: Number(values.rate),
      warmupS: Number(values.warmup),
      durationS: Number(values.duration),
      drainS: 2,
      subscribeDestination: '/user/queue/bench',
      sendDestination: '/user/bench-r{i}/queue/bench',
      destination: '/user/bench-r{i}/queue/bench',
      receiverLogin: 'bench-r{i}',
      senderLogin: 'bench-s{i}',
      placement: 'split',
    });
    let sampler: ProcSampler | undefined;
    let stats: ProcStats | undefined;
    const report = await runLoad(options, {
      log: () => {},
      onMeasureStart: () => {
        sampler = new ProcSampler(processes.map((p) => p.pid));
        sampler.start();
      },
      onMeasureEnd: () => {
        stats = sampler?.stop();
      },
    });
    if (stats === undefined) throw new Error('no CPU sample');
    if (values.commandstats) console.log(`   ${build} r${round}: redis INFO commandstats (whole run, warm-up included)\n${await commandStats(redisPort)}`);
    const [redis, sender, receiver] = stats.pids.map((pid) => pid.cpuPercent) as [number, number, number];
    return { build, round, sender, receiver, redis, p99: report.latency.p99Ms, p999: report.latency.p999Ms, lost: report.lost, throughput: report.deliveredPerSecond, client: report.clientCpuPercent };
  } finally {
    for (const spawned of processes.reverse()) {
      await spawned.stop();
      started.delete(spawned);
    }
  }
}

function median(list: number[]): number {
  const sorted = [...list].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const pct = (value: number): string => value.toFixed(1).padStart(5);
/** The servers' CPU µs per delivered message: % of a core × 10 000 / msg/s. */
const perMessage = (run: Run): number => (run.throughput > 0 ? ((run.sender + run.receiver + run.redis) * 10_000) / run.throughput : 0);

async function main(): Promise<void> {
  if (values.b === undefined) throw new Error('--b <dir> is required (a checkout with dist/ built)');
  if (values.profile !== undefined && values.profile !== 'sender' && values.profile !== 'receiver') throw new Error('--profile is sender or receiver');
  const dirs = { A: resolve(values.a), B: resolve(values.b) };
  entryOf(dirs.A);
  entryOf(dirs.B);
  console.log(`A = ${dirs.A} ${values['flags-a']}\nB = ${dirs.B} ${values['flags-b']}\n${values.pairs} pairs, ${values.rate} msg/s, ${values.warmup} s warm-up, ${values.duration} s measured, fresh nodes per run`);
  console.log('run      sender receiver redis  total  send/recv  p99 ms p99.9 ms  lost    msg/s  µs/msg  client');
  const runs: Run[] = [];
  for (let round = 1; round <= Number(values.rounds); round++) {
    const order: Array<'A' | 'B'> = round % 2 === 1 ? ['A', 'B'] : ['B', 'A'];
    for (const build of order) {
      const run = await runOnce(build, dirs[build], round);
      runs.push(run);
      const total = run.sender + run.receiver + run.redis;
      console.log(
        `${build} r${round}    ${pct(run.sender)}  ${pct(run.receiver)} ${pct(run.redis)}  ${pct(total)}     ${(run.sender / run.receiver).toFixed(2)}    ${formatMs(run.p99).padStart(6)}  ${formatMs(run.p999).padStart(7)}  ${String(run.lost).padStart(4)}  ${run.throughput.toFixed(0).padStart(7)}  ${perMessage(run).toFixed(1).padStart(6)}  ${pct(run.client)}`,
      );
    }
  }
  console.log('\nmedians  sender receiver redis  total  send/recv  p99 ms p99.9 ms        msg/s  µs/msg  client');
  for (const build of ['A', 'B'] as const) {
    const mine = runs.filter((run) => run.build === build);
    const col = (pick: (run: Run) => number): number => median(mine.map(pick));
    console.log(
      `${build}        ${pct(col((r) => r.sender))}  ${pct(col((r) => r.receiver))} ${pct(col((r) => r.redis))}  ${pct(col((r) => r.sender + r.receiver + r.redis))}     ${col((r) => r.sender / r.receiver).toFixed(2)}    ${formatMs(col((r) => r.p99)).padStart(6)}  ${formatMs(col((r) => r.p999)).padStart(7)}        ${col((r) => r.throughput).toFixed(0).padStart(7)}  ${col(perMessage).toFixed(1).padStart(6)}  ${pct(col((r) => r.client))}`,
    );
  }
}

try {
  await main();
} finally {
  await Promise.all([...started].map((spawned) => spawned.stop()));
}

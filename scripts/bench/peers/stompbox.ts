/*
 * stompbox targets: one node, or two nodes over a private Redis.
 *
 * Each node is started as the project runs in production, `node dist/lib/main.js`
 * (the `npm run build` output), so the measured process carries no TypeScript
 * loader:
 *
 *   node dist/lib/main.js --port P --host 127.0.0.1 --auth-mode open --log-level warn
 *     [--redis-url redis://127.0.0.1:R --redis-prefix sb-bench-<R>: --node-id bench-<n>]
 *
 * with SESSION_SECRET shared by the nodes (unused by the load, but a cluster
 * needs one key). start() rebuilds dist/ first when dist/lib/main.js is missing or
 * older than a lib/ source (`tsc -p tsconfig.build.json --noEmitOnError`, so a
 * failed build leaves no half-new dist/ that would later pass for fresh); when
 * the build fails, the node runs `lib/main.ts` under tsx and a note says so.
 * Clients connect to ws://127.0.0.1:P/stomp.
 *
 * Point to point goes through the product's own path, STOMP user
 * destinations: every connection authenticates with CONNECT `login` (open
 * mode: any name, no password); receiver i logs in as bench-r{i} and
 * subscribes to /user/queue/bench, publisher i (bench-s{i}) sends to
 * /user/bench-r{i}/queue/bench, and the broker delivers to every session of
 * bench-r{i} subscribed to /user/queue/bench (the MESSAGE `destination`).
 * The `-queue` targets send p2p through /queue/bench-{i} instead (one
 * consumer per queue), the path RabbitMQ's figures are for. Fan-out uses
 * /topic/bench-fanout; idle connections (user bench-r{i}) subscribe to
 * /user/queue/idle with heart-beats.
 *
 * Two nodes: every publisher connects to the first node and every receiver
 * to the second (placement `split`), so each p2p message is routed through
 * Redis (presence lookup, relay stream) to the other node. After each shape
 * the nodes' /metrics counters say how messages were routed (local, remote,
 * inbox) and how many came in over the relay: the check that they did cross.
 *
 * Sampled pids: the node(s), plus the private Redis for two nodes.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { freePort, ownOpenFileLimit, runCommand, waitFor } from '../lib/system.js';
import { REPO_ROOT, spawnNode, spawnTsNode, startPrivateRedis, type SpawnedProcess } from '../lib/spawned.js';
import { TargetUnavailable, type BenchTarget, type StartedTarget, type TargetNeeds } from '../lib/target.js';

const SOURCE_DIR = join(REPO_ROOT, 'lib');
const TS_ENTRY = join(SOURCE_DIR, 'main.ts');
const DIST_ENTRY = join(REPO_ROOT, 'dist', 'lib', 'main.js');
/** Besides lib/**.ts, what a build depends on. */
const BUILD_INPUTS = ['tsconfig.json', 'tsconfig.build.json', 'package.json'].map((file) => join(REPO_ROOT, file));
const TSC = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const BUILD_TIMEOUT_MS = 300_000;
const WS_PATH = '/stomp';

/** p2p through user destinations (the product's point-to-point path) or through queues. */
export type StompboxP2p = 'user' | 'queue';

export function stompboxTargetName(nodes: 1 | 2, p2p: StompboxP2p): string {
  return `${nodes === 1 ? 'stompbox-1' : 'stompbox-2-redis'}${p2p === 'queue' ? '-queue' : ''}`;
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function newestInput(): number {
  let newest = newestSource(SOURCE_DIR);
  for (const file of BUILD_INPUTS) if (existsSync(file)) newest = Math.max(newest, statSync(file).mtimeMs);
  return newest;
}

interface Runnable {
  /** `dist`: node dist/lib/main.js; `tsx`: node --import tsx lib/main.ts. */
  kind: 'dist' | 'tsx';
  entry: string;
  notes: string[];
}

function firstLines(text: string, count = 3): string {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .slice(0, count)
    .join(' | ');
}

/**
 * dist/lib/main.js, rebuilt first when missing or older than its inputs; lib/main.ts
 * under tsx when the build fails. One build serves every target of the run.
 */
async function ensureBuild(log: (line: string) => void): Promise<Runnable> {
  const distPath = relative(REPO_ROOT, DIST_ENTRY);
  const newest = newestInput();
  if (existsSync(DIST_ENTRY) && statSync(DIST_ENTRY).mtimeMs >= newest) {
    return { kind: 'dist', entry: DIST_ENTRY, notes: [`running ${distPath} (build newer than every lib/ source)`] };
  }
  const why = existsSync(DIST_ENTRY) ? 'older than lib/' : 'missing';
  log(`   ${distPath} ${why}: building (tsc -p tsconfig.build.json --noEmitOnError) …`);
  const started = Date.now();
  const result = existsSync(TSC)
    ? await runCommand(process.execPath, [TSC, '-p', 'tsconfig.build.json', '--noEmitOnError'], { cwd: REPO_ROOT, timeoutMs: BUILD_TIMEOUT_MS })
    : await runCommand('npx', ['--no-install', 'tsc', '-p', 'tsconfig.build.json', '--noEmitOnError'], { cwd: REPO_ROOT, timeoutMs: BUILD_TIMEOUT_MS });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (result.code !== 0 || !existsSync(DIST_ENTRY)) {
    const detail = firstLines(result.stdout + '\n' + result.stderr) || `exit code ${result.code}`;
    return {
      kind: 'tsx',
      entry: TS_ENTRY,
      notes: [
        `build failed (${distPath} ${why}; tsc after ${seconds} s: ${detail.slice(0, 300)}): running lib/main.ts under tsx instead — the measured process carries the tsx loader`,
      ],
    };
  }
  const notes = [`built dist/ (tsc -p tsconfig.build.json, ${seconds} s): running ${distPath}`];
  if (newestInput() > started) notes.push('lib/ changed during the build: the running build may lag the working tree');
  return { kind: 'dist', entry: DIST_ENTRY, notes };
}

/** What is measured: the commit, and whether lib/ differs from it (others edit it). */
async function sourceNote(): Promise<string | null> {
  const head = await runCommand('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, timeoutMs: 10_000 });
  if (head.code !== 0) return null;
  const status = await runCommand('git', ['status', '--porcelain', '--', 'lib'], { cwd: REPO_ROOT, timeoutMs: 10_000 });
  const changed = status.code === 0 ? status.stdout.split('\n').filter((line) => line.trim().length > 0).length : 0;
  return `lib/ at ${head.stdout.trim()}${changed > 0 ? ` with ${changed} uncommitted change(s) (the working tree is what runs)` : ''}`;
}

/** The environment of a node: this one's, minus any tsx loader in NODE_OPTIONS (dist runs loader-free). */
function nodeEnv(kind: Runnable['kind'], sessionSecret: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { SESSION_SECRET: sessionSecret };
  const options = process.env['NODE_OPTIONS'];
  if (kind === 'dist' && options !== undefined && options.includes('tsx')) {
    env['NODE_OPTIONS'] = options
      .split(/\s+/)
      .filter((part, i, parts) => !part.includes('tsx') && !(parts[i + 1]?.includes('tsx') && /^--(import|require|loader)$/.test(part)))
      .join(' ');
  }
  return env;
}

function commandLine(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((arg) => arg.length > 0);
  } catch {
    return [];
  }
}

/** Counters of one node's /metrics (Prometheus text), keyed `name` or `name{route}`. */
async function readCounters(port: number): Promise<Map<string, number>> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (!response.ok) throw new Error(`GET /metrics on ${port}: HTTP ${response.status}`);
  const counters = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    const match = /^stompbox_([a-z_]+_total)(?:\{([^}]*)\})?\s+(\S+)$/.exec(line);
    if (match === null) continue;
    const route = /route="([^"]+)"/.exec(match[2] ?? '')?.[1];
    const code = /code="([^"]+)"/.exec(match[2] ?? '')?.[1];
    const key = `${match[1]!}${route ? `{${route}}` : code ? `{${code}}` : ''}`;
    counters.set(key, (counters.get(key) ?? 0) + Number(match[3]));
  }
  return counters;
}

interface Node {
  id: string;
  port: number;
  process: SpawnedProcess;
}

/** The Redis of a two-node target other than the default private one (e.g. a Redis Cluster: scripts/bench/redis-shards.ts). */
export interface StompboxRedis {
  /** The nodes' Redis options, e.g. ['--redis-cluster-nodes', '127.0.0.1:7000,...']. */
  args: string[];
  /** Its processes: sampled with the nodes, stopped after them. */
  processes: Array<Pick<SpawnedProcess, 'pid' | 'stop'>>;
  notes: string[];
}

export function createStompboxTarget(nodes: 1 | 2, p2p: StompboxP2p = 'user', redis?: { name: string; start(): Promise<StompboxRedis> }): BenchTarget {
  let processes: Array<Pick<SpawnedProcess, 'pid' | 'stop'>> = [];
  let running: Node[] = [];
  let before: Array<Map<string, number>> = [];
  const target: BenchTarget = {
    name: redis?.name ?? stompboxTargetName(nodes, p2p),
    protocol: 'stomp',
    url: `ws://127.0.0.1:0${WS_PATH}`,
    // The user variant's single template is its send form; receivers subscribe to the subscribe form.
    destinationTemplate: p2p === 'user' ? '/user/bench-r{i}/queue/bench' : '/queue/bench-{i}',
    ...(p2p === 'user' ? { subscribeDestinationTemplate: '/user/queue/bench', sendDestinationTemplate: '/user/bench-r{i}/queue/bench' } : {}),
    fanoutDestination: '/topic/bench-fanout',
    idleDestination: '/user/queue/idle',
    receiverLoginTemplate: 'bench-r{i}',
    senderLoginTemplate: 'bench-s{i}',
    placement: 'split',
    async start(needs: TargetNeeds): Promise<StartedTarget> {
      if (!existsSync(TS_ENTRY)) throw new TargetUnavailable(`stompbox entry ${TS_ENTRY} not found`);
      const runnable = await ensureBuild(needs.log);
      const notes: string[] = [...runnable.notes];
      const source = await sourceNote();
      if (source !== null) notes.push(source);
      const cluster: string[] = [];
      if (nodes === 2 && redis !== undefined) {
        const started = await redis.start();
        processes.push(...started.processes);
        cluster.push(...started.args, '--redis-prefix', 'sb-bench:');
        notes.push(...started.notes);
      } else if (nodes === 2) {
        const redis = await startPrivateRedis();
        processes.push(redis);
        cluster.push('--redis-url', redis.url, '--redis-prefix', `sb-bench-${redis.port}:`);
        notes.push(`private redis ${redis.url} (pid ${redis.pid})`);
      }
      const env = nodeEnv(runnable.kind, randomBytes(32).toString('hex'));
      const urls: string[] = [];
      for (let n = 0; n < nodes; n++) {
        const port = await freePort();
        const id = `bench-${n}`;
        const args = ['--port', String(port), '--host', '127.0.0.1', '--auth-mode', 'open', '--log-level', 'warn', ...cluster];
        if (nodes === 2) args.push('--node-id', id);
        const spawned =
          runnable.kind === 'dist'
            ? await spawnNode(`stompbox-${n}`, runnable.entry, args, port, env)
            : await spawnTsNode(`stompbox-${n}`, runnable.entry, args, port, env);
        processes.push(spawned);
        running.push({ id, port, process: spawned });
        await waitFor(
          `stompbox-${n} /readyz`,
          async () => (await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2000) }).catch(() => null))?.ok === true,
          15_000,
          200,
        );
        const argv = commandLine(spawned.pid);
        const loader = argv.some((arg) => arg.includes('tsx')) ? 'tsx loader' : 'no loader';
        notes.push(`node ${id} pid ${spawned.pid}: ${relative(REPO_ROOT, runnable.entry)} (${loader}), ws://127.0.0.1:${port}${WS_PATH}`);
        urls.push(`ws://127.0.0.1:${port}${WS_PATH}`);
      }
      target.url = urls[0]!;
      target.urls = urls;
      notes.push(
        p2p === 'user'
          ? 'p2p: bench-s{i} sends to /user/bench-r{i}/queue/bench; bench-r{i} subscribes to /user/queue/bench'
          : 'p2p: /queue/bench-{i} (send and subscribe); logins bench-s{i} / bench-r{i}',
      );
      if (nodes === 2) notes.push(`placement split: publishers on ${running[0]!.id}, receivers and fanout subscribers on ${running[1]!.id}; idle connections on both`);
      // Each node inherits this process's open-file limit.
      // Redis first (one server, or every server of a cluster: summed as one role), then the nodes.
      const redisCount = processes.length - nodes;
      const roles = nodes === 2 ? processes.map((_, i) => (i < redisCount ? 'redis' : i === redisCount ? 'sender node' : 'receiver node')) : ['node'];
      return { pids: processes.map((process) => process.pid), roles, notes, maxConnections: nodes * (ownOpenFileLimit() - 200) };
    },
    async prepare(): Promise<void> {
      before = await Promise.all(running.map((node) => readCounters(node.port).catch(() => new Map<string, number>())));
    },
    async afterShape(): Promise<string[]> {
      const lines: string[] = [];
      let routed = 0;
      let remote = 0;
      for (const [k, node] of running.entries()) {
        const after = await readCounters(node.port);
        const delta = (key: string): number => (after.get(key) ?? 0) - (before[k]?.get(key) ?? 0);
        const errors = [...after.keys()]
          .filter((key) => key.startsWith('errors_total{') && delta(key) > 0)
          .map((key) => `${key.slice('errors_total{'.length, -1)} ${delta(key)}`);
        routed += delta('messages_routed_total{local}') + delta('messages_routed_total{remote}') + delta('messages_routed_total{inbox}');
        remote += delta('messages_routed_total{remote}');
        lines.push(
          `${node.id}: frames in ${delta('frames_in_total')}, delivered ${delta('messages_delivered_total')}; user messages routed` +
            ` local ${delta('messages_routed_total{local}')} / remote ${delta('messages_routed_total{remote}')} / inbox ${delta('messages_routed_total{inbox}')};` +
            ` relay received ${delta('relay_received_total')}; dropped ${delta('messages_dropped_total')}` +
            (errors.length > 0 ? `; errors ${errors.join(', ')}` : ''),
        );
      }
      if (nodes === 2 && routed > 0) lines.push(`user messages that crossed nodes: ${remote} of ${routed} routed`);
      return lines;
    },
    async stop(): Promise<void> {
      for (const process of processes.slice().reverse()) await process.stop();
      processes = [];
      running = [];
    },
  };
  return target;
}

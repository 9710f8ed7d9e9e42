/*
 * RabbitMQ Web-STOMP as a benchmark peer.
 *
 * - Not installed: says how to install it (apt-get install rabbitmq-server)
 *   and the target is skipped.
 * - Not running: `rabbitmq-server -detached`, then waits for the node.
 * - Web-STOMP not listening: enables `rabbitmq_web_stomp` on the running
 *   node (default listener port 15674, path /ws) and waits for the port.
 *   Both it and the STOMP plugin it pulls in are bound to 127.0.0.1: the
 *   listener settings are put in the node's application environment before
 *   the plugins start (and passed as `-app key value` arguments when this
 *   script starts the node), so nothing listens beyond loopback.
 * - The broker's pid is the beam.smp of the node; it is what the runner
 *   samples for CPU and RSS.
 *
 * Connections: the node's open-file limit bounds how many WebSocket clients
 * it holds: its file-handle cache grants ~0.9 × (ulimit − 100) sockets
 * (832 with `ulimit -n 1024`, 17910 with 20000); beyond that a handshake
 * just waits. A run that
 * needs more can restart the node with a higher per-process limit
 * (`restartForFds`, CLI --restart-for-fds); it is opt-in because it restarts
 * a broker that may be in use. Nothing system-wide is changed.
 *
 * The guest/guest user is accepted from loopback only: fine here.
 *
 * CLI: npx tsx scripts/bench/peers/rabbitmq.ts [--connections N] [--restart-for-fds]
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { StompConnection } from '../lib/stomp-connection.js';
import { findPids, onPath, openFileLimits, portAnswers, runCommand, waitFor } from '../lib/system.js';
import { TargetUnavailable, type BenchTarget, type StartedTarget, type TargetNeeds } from '../lib/target.js';

export interface RabbitMqPeerOptions {
  /** Web-STOMP port. @default 15674 */
  webStompPort: number;
  /** Port of the STOMP plugin that Web-STOMP depends on. @default 61613 */
  stompPort: number;
  /** Restart the node with a higher open-file limit when a run needs more connections than it can hold. @default false */
  restartForFds: boolean;
  /** Open-file limit for a node this script (re)starts, capped by this process's hard limit. @default 65536 */
  nofile: number;
  /** Bound on starting the node and on the plugin coming up. @default 120000 */
  timeoutMs: number;
  log(line: string): void;
}

export const DEFAULT_RABBITMQ_OPTIONS: RabbitMqPeerOptions = {
  webStompPort: 15674,
  stompPort: 61613,
  restartForFds: false,
  nofile: 65536,
  timeoutMs: 120_000,
  log: (line) => console.error(line),
};

export const RABBITMQ_INSTALL_HINT =
  'RabbitMQ is not installed: `apt-get install rabbitmq-server` (Debian/Ubuntu; root), then rerun. The RabbitMQ peer is skipped.';

/**
 * RabbitMQ 3.x grants sockets through its file-handle cache: about
 * 0.9 × (ulimit − 100); a connection beyond that waits for a free handle
 * (the client sees a handshake timeout). `rabbitmq-diagnostics status`
 * prints the exact figure; this estimate is the fallback.
 */
function estimatedSocketLimit(fdLimit: number): number {
  return Math.max(0, Math.floor((fdLimit - 100) * 0.9));
}

/** Connections kept free below the node's socket limit (probes, CLI, other users). */
const SOCKET_HEADROOM = 20;

async function socketLimit(fdLimit: number): Promise<number> {
  const status = await runCommand('rabbitmq-diagnostics', ['status'], { timeoutMs: 60_000 });
  const match = /Sockets: \d+, limit: (\d+)/.exec(status.stdout);
  return match ? Number(match[1]) : estimatedSocketLimit(fdLimit);
}

export interface RabbitMqStatus {
  url: string;
  pids: number[];
  fdSoftLimit: number;
  /** Sockets RabbitMQ's file-handle cache grants (from rabbitmq-diagnostics status). */
  socketLimit: number;
  /** Client connections the benchmark may open (socket limit less a little headroom). */
  maxConnections: number;
  version: string;
  startedByUs: boolean;
  notes: string[];
}

function beamPids(): number[] {
  return findPids((argv) => /beam(\.smp)?$/.test(argv[0] ?? '') && argv.includes('rabbit') && argv.includes('boot'));
}

/** `-app key value` flags so a node we start binds STOMP and Web-STOMP to loopback. */
function loopbackErlArgs(options: RabbitMqPeerOptions): string {
  return [
    `-rabbitmq_web_stomp tcp_config [{ip,"127.0.0.1"},{port,${options.webStompPort}}]`,
    `-rabbitmq_stomp tcp_listeners [{"127.0.0.1",${options.stompPort}}]`,
  ].join(' ');
}

async function nodeAnswers(): Promise<boolean> {
  const result = await runCommand('rabbitmq-diagnostics', ['-q', 'ping'], { timeoutMs: 15_000 });
  return result.code === 0;
}

async function startNode(options: RabbitMqPeerOptions): Promise<void> {
  // A per-process limit for the node only, within this process's own hard limit: nothing system-wide.
  const hard = openFileLimits(process.pid)?.hard ?? 1024;
  const nofile = Math.min(options.nofile, hard);
  options.log(`rabbitmq: starting the node (rabbitmq-server -detached, ulimit -n ${nofile} for that process only)`);
  const env = { ...process.env, RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: loopbackErlArgs(options) };
  // As root, /usr/sbin/rabbitmq-server switches to the rabbitmq user through `su`, whose pam_limits
  // resets the soft limit to 1024: raise it (up to the inherited hard limit) after the switch instead.
  const asRoot = process.getuid?.() === 0 && (await runCommand('id', ['-u', 'rabbitmq'], { timeoutMs: 5000 })).code === 0;
  const script = `ulimit -n ${nofile} && exec rabbitmq-server -detached`;
  const started = asRoot
    ? await runCommand('su', ['rabbitmq', '-s', '/bin/sh', '-c', `cd /var/lib/rabbitmq && ${script}`], { env, timeoutMs: 60_000 })
    : await runCommand('sh', ['-c', script], { env, timeoutMs: 60_000 });
  if (started.code !== 0) throw new Error(`rabbitmq-server -detached failed (${started.code}): ${started.stderr.trim()}`);
  await waitFor('the RabbitMQ node to answer', nodeAnswers, options.timeoutMs, 1000);
  const awaited = await runCommand('rabbitmqctl', ['await_startup', '--timeout', String(Math.ceil(options.timeoutMs / 1000))], {
    timeoutMs: options.timeoutMs + 5000,
  });
  if (awaited.code !== 0) throw new Error(`rabbitmqctl await_startup failed: ${awaited.stderr.trim()}`);
}

async function stopNode(options: RabbitMqPeerOptions): Promise<void> {
  options.log('rabbitmq: stopping the node (rabbitmqctl stop)');
  const before = beamPids();
  await runCommand('rabbitmqctl', ['stop'], { timeoutMs: 60_000 });
  await waitFor('the RabbitMQ node to exit', async () => beamPids().every((pid) => !before.includes(pid)), 60_000, 500);
}

async function enableWebStomp(options: RabbitMqPeerOptions): Promise<void> {
  // Set the listeners in the application environment first: the plugins read it when they start.
  const expression =
    'application:load(rabbitmq_stomp), application:load(rabbitmq_web_stomp), ' +
    `ok = application:set_env(rabbitmq_web_stomp, tcp_config, [{ip, "127.0.0.1"}, {port, ${options.webStompPort}}]), ` +
    `ok = application:set_env(rabbitmq_stomp, tcp_listeners, [{"127.0.0.1", ${options.stompPort}}]).`;
  const env = await runCommand('rabbitmqctl', ['eval', expression], { timeoutMs: 30_000 });
  if (env.code !== 0) options.log(`rabbitmq: could not pin the listeners to 127.0.0.1 (${env.stderr.trim()}); they use the node's config`);
  options.log('rabbitmq: enabling rabbitmq_web_stomp');
  const enabled = await runCommand('rabbitmq-plugins', ['enable', 'rabbitmq_web_stomp'], { timeoutMs: 120_000 });
  if (enabled.code !== 0) throw new Error(`rabbitmq-plugins enable rabbitmq_web_stomp failed: ${enabled.stderr.trim() || enabled.stdout.trim()}`);
}

async function probeWebStomp(url: string): Promise<void> {
  const connection = new StompConnection({
    url,
    login: 'guest',
    passcode: 'guest',
    host: '/',
    heartbeat: [0, 0],
    binaryFrames: false,
    coalesce: false,
    corkTurn: false,
    sendHeaders: {},
    subscribeHeaders: {},
    timeoutMs: 10_000,
  });
  try {
    await connection.connect();
  } finally {
    await connection.close();
  }
}

/**
 * Deletes the harness's queues (`bench-*` in vhost /): RabbitMQ keeps `/queue/...`
 * queues (durable) and any message a run left in them, which would slow the next shape.
 */
export async function deleteBenchQueues(): Promise<number> {
  const expression =
    'length([rabbit_amqqueue:delete(Q, false, false, <<"stompbox-bench">>) || Q <- rabbit_amqqueue:list(<<"/">>), ' +
    'case amqqueue:get_name(Q) of {resource, _, queue, <<"bench-", _/binary>>} -> true; _ -> false end]).';
  const result = await runCommand('rabbitmqctl', ['eval', expression], { timeoutMs: 60_000 });
  const count = Number(result.stdout.trim().split('\n').pop());
  return result.code === 0 && Number.isFinite(count) ? count : 0;
}

async function version(): Promise<string> {
  const result = await runCommand('rabbitmqctl', ['version'], { timeoutMs: 15_000 });
  return result.code === 0 ? result.stdout.trim() : 'unknown';
}

/**
 * Makes Web-STOMP answer on 127.0.0.1 and returns its URL and the broker pid.
 * Throws TargetUnavailable when RabbitMQ is not installed.
 */
export async function ensureRabbitMqWebStomp(
  partial: Partial<RabbitMqPeerOptions> = {},
  connectionsNeeded = 0,
): Promise<RabbitMqStatus> {
  const options: RabbitMqPeerOptions = { ...DEFAULT_RABBITMQ_OPTIONS, ...partial };
  const notes: string[] = [];
  if (onPath('rabbitmq-server') === null || onPath('rabbitmq-plugins') === null) throw new TargetUnavailable(RABBITMQ_INSTALL_HINT);

  let startedByUs = false;
  if (beamPids().length === 0 || !(await nodeAnswers())) {
    await startNode(options);
    startedByUs = true;
  }

  let pids = beamPids();
  let limit = pids.length > 0 ? (openFileLimits(pids[0]!)?.soft ?? 1024) : 1024;
  if (connectionsNeeded + SOCKET_HEADROOM > estimatedSocketLimit(limit)) {
    if (options.restartForFds) {
      options.log(
        `rabbitmq: node open-file limit ${limit} (~${estimatedSocketLimit(limit)} sockets) < ${connectionsNeeded} connections needed; restarting it with a higher one`,
      );
      await stopNode(options);
      await startNode(options);
      startedByUs = true;
      pids = beamPids();
      limit = pids.length > 0 ? (openFileLimits(pids[0]!)?.soft ?? 1024) : 1024;
      notes.push(`node restarted with ulimit -n ${limit}`);
    } else {
      notes.push(
        `node open-file limit ${limit} holds ~${estimatedSocketLimit(limit)} connections; shapes needing more are skipped` +
          ' (--rabbit-restart-for-fds restarts the node with a higher limit)',
      );
    }
  }

  const url = `ws://127.0.0.1:${options.webStompPort}/ws`;
  if (!(await portAnswers(options.webStompPort))) {
    await enableWebStomp(options);
    await waitFor(`Web-STOMP on 127.0.0.1:${options.webStompPort}`, () => portAnswers(options.webStompPort), 60_000);
  }
  await probeWebStomp(url);
  if (pids.length === 0) throw new Error('RabbitMQ answers but no beam.smp process of the node was found in /proc');
  const sockets = await socketLimit(limit);
  const status: RabbitMqStatus = {
    url,
    pids,
    fdSoftLimit: limit,
    socketLimit: sockets,
    maxConnections: Math.max(0, sockets - SOCKET_HEADROOM),
    version: await version(),
    startedByUs,
    notes,
  };
  notes.unshift(`RabbitMQ ${status.version}, beam.smp pid ${pids.join(',')}, open-file limit ${limit}, socket limit ${sockets}`);
  return status;
}

/**
 * The RabbitMQ Web-STOMP target. Queues `/queue/bench-{i}` are RabbitMQ
 * durable queues (created on SUBSCRIBE); messages are transient. They are
 * deleted before each shape and at the end; a message left from an earlier
 * run would carry another run id and be ignored anyway.
 */
export function createRabbitMqTarget(partial: Partial<RabbitMqPeerOptions> = {}): BenchTarget {
  const options: RabbitMqPeerOptions = { ...DEFAULT_RABBITMQ_OPTIONS, ...partial };
  let status: RabbitMqStatus | null = null;
  return {
    name: 'rabbitmq',
    protocol: 'stomp',
    url: `ws://127.0.0.1:${options.webStompPort}/ws`,
    destinationTemplate: '/queue/bench-{i}',
    fanoutDestination: '/topic/bench-fanout',
    idleDestination: '/topic/bench-idle',
    login: 'guest',
    passcode: 'guest',
    async start(needs: TargetNeeds): Promise<StartedTarget> {
      status = await ensureRabbitMqWebStomp({ ...options, log: needs.log }, needs.connections);
      return { pids: status.pids, roles: status.pids.map(() => 'beam'), notes: status.notes, maxConnections: status.maxConnections };
    },
    async prepare(): Promise<void> {
      await deleteBenchQueues();
    },
    async stop(): Promise<void> {
      await deleteBenchQueues();
      // A node that was already running is left as found; one we started from nothing is stopped.
      // (A node restarted for a higher fd limit stays up: it was running before.)
      if (status?.startedByUs && status.notes.every((note) => !note.startsWith('node restarted'))) await stopNode(options);
      status = null;
    },
  };
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      connections: { type: 'string' },
      'restart-for-fds': { type: 'boolean' },
      nofile: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write('Usage: npx tsx scripts/bench/peers/rabbitmq.ts [--connections N] [--restart-for-fds] [--nofile 65536]\n');
    return;
  }
  try {
    const status = await ensureRabbitMqWebStomp(
      { restartForFds: values['restart-for-fds'] ?? false, nofile: Number(values.nofile ?? DEFAULT_RABBITMQ_OPTIONS.nofile) },
      Number(values.connections ?? '0'),
    );
    process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
  } catch (error) {
    if (error instanceof TargetUnavailable) {
      process.stdout.write(`${error.message}\n`);
      return;
    }
    throw error;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(`rabbitmq peer: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}

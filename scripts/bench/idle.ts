/*
 * Idle connections: open K subscribed connections with heart-beats on, hold
 * them, and measure the broker's RSS delta per connection.
 *
 * Client side, nothing system-wide is raised. Each process may hold
 * `ulimit -n` descriptors (20000 here, soft = hard), so the connections are
 * split over worker processes (at most 9000 each by default); a source
 * address gives ~28k ephemeral ports (32768-60999) towards one broker port,
 * so above 20000 connections the sources rotate over 127.0.0.1, 127.0.0.2, ...
 * (all loopback). The broker needs an open-file limit above K as well.
 *
 * Module: runIdle({ urls, connections, pids, ... })
 * CLI:    npx tsx scripts/bench/idle.ts --url ws://127.0.0.1:15674/ws --login guest --passcode guest \
 *           --pid <broker pid> [--connections 20000] [--hold 20] [--heartbeat 10000,10000]
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { formatReport, localAddresses, resolveOptions, runLoad, type LoadReport } from './loadgen.js';
import type { LoadOptions } from './lib/options.js';
import { ownOpenFileLimit } from './lib/system.js';
import { ProcSampler, formatBytes, totalRssBytes, type ProcStats } from './proc-stats.js';

/** Connections per worker process: well under a 20000 descriptor limit. */
const CONNECTIONS_PER_PROCESS = 9000;
/** Connections per loopback source address (of ~28k ephemeral ports, leaving room for TIME_WAIT). */
const CONNECTIONS_PER_SOURCE = 20000;

export interface IdleOptions {
  urls: string[];
  login?: string;
  passcode?: string;
  protocol?: LoadOptions['protocol'];
  /** @default 20000 */
  connections: number;
  /** @default [10000, 10000] */
  heartbeat: [number, number];
  /** Seconds the connections are held after the RSS is read (heart-beats flow meanwhile). @default 20 */
  holdS: number;
  /** Seconds between the last SUBSCRIBE receipt and the RSS reading. @default 3 */
  settleS: number;
  /** Destination; `{i}` = connection index. @default '/topic/bench-idle' */
  destination: string;
  /** Broker pids whose RSS is measured. */
  pids: number[];
  /** @default ceil(connections / 9000) */
  procs?: number;
  localAddresses?: string[];
  log?(line: string): void;
}

export interface IdleReport {
  requested: number;
  opened: number;
  failed: number;
  procs: number;
  setupSeconds: number;
  connectionsPerSecond: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  /** (RSS with the connections open − RSS before) / connections opened. */
  rssPerConnectionBytes: number;
  holdSeconds: number;
  /** Broker CPU and RSS while the idle connections heart-beat. */
  broker: ProcStats | null;
  openAtEnd: number;
  heartbeatsReceived: number;
  load: LoadReport;
}

export async function runIdle(options: IdleOptions): Promise<IdleReport> {
  const log = options.log ?? ((line: string) => console.error(line));
  const procs = options.procs ?? Math.max(1, Math.ceil(options.connections / CONNECTIONS_PER_PROCESS));
  const perProcess = Math.ceil(options.connections / procs);
  const fdLimit = ownOpenFileLimit();
  if (perProcess + 100 > fdLimit) {
    throw new Error(`${perProcess} connections per process exceed ulimit -n ${fdLimit}: raise --procs`);
  }
  const sources = options.localAddresses ?? localAddresses(String(Math.ceil(options.connections / CONNECTIONS_PER_SOURCE)));
  log(`idle: ulimit -n ${fdLimit} per client process; ${procs} process(es) of ~${perProcess}; sources ${sources.join(',')}`);

  const rssBefore = totalRssBytes(options.pids);
  let rssAfter = rssBefore;
  let sampler: ProcSampler | null = null;
  let broker: ProcStats | null = null;
  const load = await runLoad(
    resolveOptions({
      urls: options.urls,
      protocol: options.protocol ?? 'stomp',
      mode: 'idle',
      connections: options.connections,
      heartbeat: options.heartbeat,
      destination: options.destination,
      login: options.login,
      passcode: options.passcode,
      durationS: options.holdS,
      warmupS: 0,
      drainS: 0,
      procs,
      localAddresses: sources,
      tolerateConnectFailures: true,
      timeoutMs: 30_000,
      connectConcurrency: 100,
    }),
    {
      log,
      afterSetup: async () => {
        await new Promise((resolve) => setTimeout(resolve, options.settleS * 1000));
        rssAfter = totalRssBytes(options.pids);
      },
      onMeasureStart: () => {
        sampler = new ProcSampler(options.pids);
        sampler.start();
      },
      onMeasureEnd: () => {
        broker = (sampler as ProcSampler | null)?.stop() ?? null;
      },
    },
  );
  const opened = load.connections.opened;
  return {
    requested: options.connections,
    opened,
    failed: load.connections.failed,
    procs,
    setupSeconds: load.connections.setupSeconds,
    connectionsPerSecond: load.connections.perSecond,
    rssBeforeBytes: rssBefore,
    rssAfterBytes: rssAfter,
    rssPerConnectionBytes: opened > 0 ? (rssAfter - rssBefore) / opened : Number.NaN,
    holdSeconds: options.holdS,
    broker,
    openAtEnd: load.openAtEnd,
    heartbeatsReceived: load.heartbeatsReceived,
    load,
  };
}

export function formatIdle(report: IdleReport): string {
  const broker: ProcStats | null = report.broker;
  return [
    `idle: ${report.opened}/${report.requested} connections opened (${report.failed} failed) in ${report.setupSeconds.toFixed(1)} s` +
      ` = ${report.connectionsPerSecond.toFixed(0)} conn/s, ${report.procs} client process(es)`,
    `broker RSS: ${formatBytes(report.rssBeforeBytes)} → ${formatBytes(report.rssAfterBytes)}` +
      ` = ${(report.rssPerConnectionBytes / 1024).toFixed(1)} KiB per connection`,
    `held ${report.holdSeconds} s: ${report.openAtEnd} still open, ${report.heartbeatsReceived} broker heart-beats received` +
      (broker !== null ? `, broker cpu ${broker.cpuPercent.toFixed(1)} % of one core` : ''),
    ...report.load.errors.slice(0, 5).map((error) => `  error: ${error}`),
  ].join('\n');
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string', multiple: true },
      login: { type: 'string' },
      passcode: { type: 'string' },
      protocol: { type: 'string' },
      connections: { type: 'string' },
      heartbeat: { type: 'string' },
      hold: { type: 'string' },
      settle: { type: 'string' },
      dest: { type: 'string' },
      pid: { type: 'string', multiple: true },
      procs: { type: 'string' },
      'local-addrs': { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || values.url === undefined) {
    process.stdout.write(
      'Usage: npx tsx scripts/bench/idle.ts --url WS_URL [--login L --passcode P] --pid BROKER_PID [--pid ...]\n' +
        '         [--connections 20000] [--hold 20] [--settle 3] [--heartbeat 10000,10000] [--dest /topic/bench-idle]\n' +
        '         [--procs K] [--local-addrs N|LIST] [--protocol stomp|socketio] [--json FILE]\n',
    );
    return;
  }
  const heartbeat = (values.heartbeat ?? '10000,10000').split(',').map(Number) as [number, number];
  const report = await runIdle({
    urls: values.url.flatMap((url) => url.split(',')),
    login: values.login,
    passcode: values.passcode,
    protocol: values.protocol === 'socketio' ? 'socketio' : 'stomp',
    connections: Number(values.connections ?? '20000'),
    heartbeat,
    holdS: Number(values.hold ?? '20'),
    settleS: Number(values.settle ?? '3'),
    destination: values.dest ?? '/topic/bench-idle',
    pids: (values.pid ?? []).flatMap((pid) => pid.split(',')).map(Number),
    procs: values.procs === undefined ? undefined : Number(values.procs),
    localAddresses: values['local-addrs'] === undefined ? undefined : localAddresses(values['local-addrs']),
  });
  process.stdout.write(`${formatIdle(report)}\n${formatReport(report.load)}\n`);
  if (values.json !== undefined) {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(values.json, JSON.stringify(report, null, 2) + '\n');
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(`idle: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    },
  );
}

/*
 * STOMP 1.2 over WebSocket load generator for any broker (stompbox, RabbitMQ
 * Web-STOMP, ...), plus a socket.io mode for the socket.io peer.
 *
 * Module: `runLoad(options, hooks)` returns a LoadReport.
 * CLI:    npx tsx scripts/bench/loadgen.ts --help
 *
 * Modes
 *   p2p     N publisher connections and N receiver connections; publisher i
 *           sends to its own destination, `--dest` with {i}, read by receiver i
 *           (or `--send-dest` / `--sub-dest` when the two sides name it
 *           differently, as STOMP user destinations do: send to
 *           /user/bench-r{i}/queue/bench, subscribe to /user/queue/bench
 *           as the user bench-r{i}, `--receiver-login bench-r{i}`).
 *   fanout  1 publisher, M subscribers of one destination (a /topic/...).
 *   idle    K subscribed connections that only heart-beat.
 *
 * Every body carries (run id, pair, seq, send time); the receiving side
 * counts delivered, latency (mergeable log histogram: p50/p99/p99.9),
 * lost (still missing after the drain), reordered, duplicates, and MESSAGE
 * headers that do not match the subscription (`destination`, `subscription`). Publishing is
 * either at a fixed total rate or unlimited with at most `--window` messages
 * in flight per publisher. Each run is bounded: setup timeouts, warm-up +
 * duration + drain, and a lifetime watchdog on every worker process.
 */
import { randomInt } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { minPayload } from './lib/body.js';
import { LatencyHistogram, type LatencySummary } from './lib/histogram.js';
import { LoadWorker, MAX_DRAIN_MS, type DeliveryChecks, type SetupReport, type StopReport, type WorkerApi, type WorkerResult } from './lib/load-worker.js';
import { DEFAULT_LOAD_OPTIONS, defaultDestination, planWorkers, type LoadMode, type LoadOptions, type Placement } from './lib/options.js';
import { RemoteWorker } from './lib/worker-ipc.js';
import { ProcSampler, formatBytes, type ProcStats } from './proc-stats.js';
import { rerunAsQuietInstrument } from './lib/instrument.js';
import type { Protocol } from './lib/connection.js';

export { DEFAULT_LOAD_OPTIONS, defaultDestination, type LoadOptions, type LoadMode, type Placement } from './lib/options.js';

export interface LoadReport extends DeliveryChecks {
  mode: LoadMode;
  protocol: Protocol;
  urls: string[];
  placement: Placement;
  /** Templates: what publishers sent to, what receivers subscribed to (`{i}` = pair index). */
  sendDestination: string;
  subscribeDestination: string;
  pairs: number;
  subscribers: number;
  payload: number;
  binary: boolean;
  rate: number;
  window: number;
  procs: number;
  durationS: number;
  warmupS: number;
  connections: {
    requested: number;
    opened: number;
    failed: number;
    /** Wall time of the CONNECT → CONNECTED phase (workers in parallel: the slowest). */
    setupSeconds: number;
    perSecond: number;
    handshakeP50Ms: number;
    handshakeP99Ms: number;
    subscribeSeconds: number;
  };
  windowSeconds: number;
  /** Time spent after the window waiting for messages in flight (the slowest worker). */
  drainSeconds: number;
  sent: number;
  sentPerSecond: number;
  delivered: number;
  deliveredInWindow: number;
  deliveredPerSecond: number;
  /** Load generator CPU during the window, % of one core summed over its processes. */
  clientCpuPercent: number;
  latency: LatencySummary;
  /**
   * The generator's own pauses over the window, beside the latency (not in
   * it): the worst worker's event-loop delay p99 / max, and at a fixed rate
   * how late SENDs left against their schedule (p99 / max over all).
   */
  generatorLag: { loopDelayP99Ms: number; loopDelayMaxMs: number; sendLagP99Ms: number; sendLagMaxMs: number };
  rateSkipped: number;
  heartbeatsReceived: number;
  openAtEnd: number;
  errorCount: number;
  errors: string[];
}

export interface LoadHooks {
  /** All connections are open and subscribed; nothing is published yet. */
  afterSetup?(setup: SetupReport[]): Promise<void> | void;
  /** The measured window starts (after the warm-up). */
  onMeasureStart?(): Promise<void> | void;
  /** The measured window ends; publishing has stopped, the drain follows. */
  onMeasureEnd?(): Promise<void> | void;
  /** Progress lines; default: stderr. */
  log?(line: string): void;
}

export function resolveOptions(partial: Partial<LoadOptions> & { urls: string[] }): LoadOptions {
  const mode = partial.mode ?? DEFAULT_LOAD_OPTIONS.mode;
  const idle = mode === 'idle';
  const destination = partial.destination ?? defaultDestination(mode);
  const options: LoadOptions = {
    ...DEFAULT_LOAD_OPTIONS,
    heartbeat: idle ? [10000, 10000] : DEFAULT_LOAD_OPTIONS.heartbeat,
    tolerateConnectFailures: idle,
    run: randomInt(1, 0xffffffff),
    ...partial,
    // Callers pass these through from a target, where they may be undefined: fall back rather than override.
    destination,
    subscribeDestination: partial.subscribeDestination ?? destination,
    sendDestination: partial.sendDestination ?? destination,
    placement: partial.placement ?? DEFAULT_LOAD_OPTIONS.placement,
  };
  if (options.placement !== 'alternate' && options.placement !== 'split') throw new Error('--placement must be alternate or split');
  if (options.urls.length === 0) throw new Error('at least one broker URL is needed (option --url)');
  for (const url of options.urls) assertLoopback(url);
  for (const address of options.localAddresses) {
    if (!address.startsWith('127.')) throw new Error(`local address ${address} is not a 127.x loopback address (option --local-addrs)`);
  }
  if (options.payload < minPayload(options.binary)) {
    throw new Error(`--payload must be at least ${minPayload(options.binary)} bytes for ${options.binary ? 'binary' : 'text'} bodies`);
  }
  if (options.window < 1) throw new Error('--window must be at least 1');
  const units = options.mode === 'p2p' ? options.pairs : options.mode === 'fanout' ? options.subscribers : options.connections;
  if (!Number.isInteger(units) || units < 1) {
    throw new Error(`${options.mode === 'p2p' ? '--pairs' : options.mode === 'fanout' ? '--subscribers' : '--connections'} must be a positive integer`);
  }
  if (!Number.isInteger(options.procs) || options.procs < 1) throw new Error('--procs must be a positive integer');
  if (options.durationS <= 0 || options.durationS > 3600) throw new Error('--duration must be in (0, 3600] seconds');
  return options;
}

/** Load is only ever sent to this machine. */
export function assertLoopback(url: string): void {
  const host = new URL(url).hostname;
  if (!(host.startsWith('127.') || host === 'localhost' || host === '[::1]')) {
    throw new Error(`refusing non-loopback target ${url}: benchmarks only run against 127.0.0.0/8 or [::1]`);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function totalConnections(options: LoadOptions): number {
  return options.mode === 'p2p' ? 2 * options.pairs : options.mode === 'fanout' ? options.subscribers + 1 : options.connections;
}

export async function runLoad(options: LoadOptions, hooks: LoadHooks = {}): Promise<LoadReport> {
  const log = hooks.log ?? ((line: string) => console.error(line));
  const plans = planWorkers(options);
  const connections = totalConnections(options);
  const lifetimeMs = 1000 * (options.warmupS + options.durationS) + MAX_DRAIN_MS + 120_000 + connections * 10;
  const remote = plans.length > 1 ? plans.map((plan) => new RemoteWorker(options, plan, lifetimeMs)) : [];
  const workers: WorkerApi[] = remote.length > 0 ? remote : [new LoadWorker(options, plans[0]!)];
  let watchdogFired = false;
  const watchdog = setTimeout(() => {
    watchdogFired = true;
    log(`loadgen: run exceeded its ${lifetimeMs} ms bound; stopping workers`);
    for (const worker of remote) worker.kill();
  }, lifetimeMs);
  watchdog.unref();

  const all = <T>(call: (worker: WorkerApi) => Promise<T>): Promise<T[]> => Promise.all(workers.map(call));
  try {
    log(`loadgen: ${options.mode} ${describe(options)} — opening ${connections} connections in ${workers.length} process(es)`);
    const setups = await all((worker) => worker.setup());
    const opened = setups.reduce((sum, setup) => sum + setup.connections, 0);
    log(`loadgen: ${opened}/${connections} connections open and subscribed`);
    await hooks.afterSetup?.(setups);

    await all((worker) => worker.startPublishing());
    if (options.warmupS > 0) await sleep(options.warmupS * 1000);
    await all((worker) => worker.beginMeasure());
    await hooks.onMeasureStart?.();
    await sleep(options.durationS * 1000);
    const stops: StopReport[] = await all((worker) => worker.endMeasure());
    await hooks.onMeasureEnd?.();
    const sentByStream = stops.flatMap((stop) => stop.sentByStream);
    if (options.mode !== 'idle') await all((worker) => worker.drain(sentByStream, options.drainS * 1000));
    const results = await all((worker) => worker.result());
    return aggregate(options, setups, results, workers.length);
  } catch (error) {
    if (watchdogFired) throw new Error(`load run exceeded its ${lifetimeMs} ms bound`);
    throw error;
  } finally {
    clearTimeout(watchdog);
    await Promise.all(workers.map((worker) => worker.close().catch(() => undefined)));
  }
}

function describe(options: LoadOptions): string {
  const what =
    options.mode === 'p2p' ? `${options.pairs} pairs` : options.mode === 'fanout' ? `1→${options.subscribers}` : `${options.connections} idle`;
  const pace = options.mode === 'idle' ? '' : options.rate > 0 ? `, ${options.rate} msg/s` : `, window ${options.window}`;
  if (options.mode === 'idle') return `${what} on ${options.subscribeDestination}, heart-beat ${options.heartbeat.join(',')}, held ${options.durationS} s`;
  const route =
    options.sendDestination === options.subscribeDestination
      ? options.sendDestination
      : `send ${options.sendDestination} → subscribe ${options.subscribeDestination}`;
  const nodes = options.urls.length > 1 ? `, ${options.urls.length} nodes (${options.placement})` : '';
  return `${what}, ${route}${nodes}, ${options.payload} B${options.binary ? ' binary' : ''}${pace}, ${options.warmupS}+${options.durationS} s`;
}

function aggregate(options: LoadOptions, setups: SetupReport[], results: WorkerResult[], procs: number): LoadReport {
  const sum = (pick: (result: WorkerResult) => number): number => results.reduce((total, result) => total + pick(result), 0);
  const latency = new LatencyHistogram();
  for (const result of results) latency.merge(result.latency);
  const handshake = new LatencyHistogram();
  for (const setup of setups) handshake.merge(setup.handshake);
  const sendLag = new LatencyHistogram();
  for (const result of results) sendLag.merge(result.lag.sendLag);
  const worst = (pick: (result: WorkerResult) => number): number => {
    const values = results.map(pick).filter(Number.isFinite);
    return values.length > 0 ? Math.max(...values) : Number.NaN;
  };
  const setupSeconds = Math.max(...setups.map((setup) => setup.connectSeconds));
  const opened = setups.reduce((total, setup) => total + setup.connections, 0);
  const windowSeconds = Math.max(...results.map((result) => result.windowMs)) / 1000;
  // Each worker's count over its own window, so a late IPC message does not skew the rate.
  const perSecond = (pick: (result: WorkerResult) => number): number =>
    results.reduce((total, result) => total + (result.windowMs > 0 ? (pick(result) * 1000) / result.windowMs : 0), 0);
  // A worker's result keeps its setup errors too.
  const errors = results.flatMap((result) => result.errors);
  return {
    mode: options.mode,
    protocol: options.protocol,
    urls: options.urls,
    placement: options.placement,
    sendDestination: options.sendDestination,
    subscribeDestination: options.subscribeDestination,
    pairs: options.mode === 'p2p' ? options.pairs : 1,
    subscribers: options.mode === 'fanout' ? options.subscribers : options.mode === 'p2p' ? options.pairs : options.connections,
    payload: options.payload,
    binary: options.binary,
    rate: options.rate,
    window: options.window,
    procs,
    durationS: options.durationS,
    warmupS: options.warmupS,
    connections: {
      requested: totalConnections(options),
      opened,
      failed: setups.reduce((total, setup) => total + setup.failed, 0),
      setupSeconds,
      perSecond: setupSeconds > 0 ? opened / setupSeconds : 0,
      handshakeP50Ms: handshake.quantile(0.5),
      handshakeP99Ms: handshake.quantile(0.99),
      subscribeSeconds: Math.max(...setups.map((setup) => setup.subscribeSeconds)),
    },
    windowSeconds,
    drainSeconds: Math.max(...results.map((result) => result.drainMs)) / 1000,
    sent: sum((result) => result.sent),
    sentPerSecond: perSecond((result) => result.sentInWindow),
    delivered: sum((result) => result.delivered),
    deliveredInWindow: sum((result) => result.deliveredInWindow),
    deliveredPerSecond: perSecond((result) => result.deliveredInWindow),
    clientCpuPercent: perSecond((result) => result.clientCpuMs) / 10,
    latency: latency.summary(),
    generatorLag: {
      loopDelayP99Ms: worst((result) => result.lag.loopDelayP99Ms),
      loopDelayMaxMs: worst((result) => result.lag.loopDelayMaxMs),
      sendLagP99Ms: sendLag.count > 0 ? sendLag.quantile(0.99) : Number.NaN,
      sendLagMaxMs: sendLag.count > 0 ? sendLag.summary().maxMs : Number.NaN,
    },
    expected: sum((result) => result.expected),
    lost: sum((result) => result.lost),
    duplicates: sum((result) => result.duplicates),
    reordered: sum((result) => result.reordered),
    stale: sum((result) => result.stale),
    misrouted: sum((result) => result.misrouted),
    foreign: sum((result) => result.foreign),
    headerMismatches: sum((result) => result.headerMismatches),
    rateSkipped: sum((result) => result.rateSkipped),
    heartbeatsReceived: sum((result) => result.heartbeatsReceived),
    openAtEnd: sum((result) => result.openAtEnd),
    errorCount: sum((result) => result.errorCount),
    errors: errors.slice(0, 20),
  };
}

export function formatMs(value: number): string {
  if (!Number.isFinite(value)) return '-';
  return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0);
}

export function formatReport(report: LoadReport): string {
  const c = report.connections;
  const lines = [
    `connections: ${c.opened}/${c.requested} opened (${c.failed} failed) in ${c.setupSeconds.toFixed(2)} s = ${c.perSecond.toFixed(0)} conn/s` +
      ` (handshake p50 ${formatMs(c.handshakeP50Ms)} ms, p99 ${formatMs(c.handshakeP99Ms)} ms); subscribed in ${c.subscribeSeconds.toFixed(2)} s`,
  ];
  if (report.mode !== 'idle') {
    const l = report.latency;
    lines.push(
      `window: ${report.windowSeconds.toFixed(2)} s; sent ${report.sent} (${report.sentPerSecond.toFixed(0)} msg/s), delivered ${report.delivered}` +
        ` (${report.deliveredPerSecond.toFixed(0)} msg/s in window); client cpu ${report.clientCpuPercent.toFixed(0)} %; drained in ${report.drainSeconds.toFixed(1)} s`,
      `latency ms: p50 ${formatMs(l.p50Ms)}  p90 ${formatMs(l.p90Ms)}  p99 ${formatMs(l.p99Ms)}  p99.9 ${formatMs(l.p999Ms)}  max ${formatMs(l.maxMs)}  (${l.count} samples)`,
      `generator lag (beside, not in, the latency): event-loop delay p99 ${formatMs(report.generatorLag.loopDelayP99Ms)} / max ${formatMs(report.generatorLag.loopDelayMaxMs)} ms` +
        (report.rate > 0 ? `; SENDs late against schedule p99 ${formatMs(report.generatorLag.sendLagP99Ms)} / max ${formatMs(report.generatorLag.sendLagMaxMs)} ms` : ''),
      `checks: expected ${report.expected}, lost ${report.lost}, reordered ${report.reordered}, duplicates ${report.duplicates}` +
        `, misrouted ${report.misrouted}, stale ${report.stale}, foreign ${report.foreign}, header mismatches ${report.headerMismatches}${report.rateSkipped ? `, rate-skipped ${report.rateSkipped}` : ''}`,
    );
  }
  lines.push(`open at end: ${report.openAtEnd}; heart-beats received: ${report.heartbeatsReceived}; errors: ${report.errorCount}`);
  for (const error of report.errors.slice(0, 5)) lines.push(`  error: ${error}`);
  return lines.join('\n');
}

const USAGE = `Usage: npx tsx scripts/bench/loadgen.ts --url ws://127.0.0.1:15674/ws [options]

  --url URL[,URL]        broker WebSocket URL(s), loopback only; with two, pairs cross nodes
  --protocol P           stomp (default) | socketio | raw (the bare relay peer)
  --mode M               p2p (default) | fanout | idle
  --pairs N              p2p publisher/receiver pairs (default 10)
  --subscribers M        fanout subscribers (default 100)
  --connections K        idle connections (default 20000; needs --procs >= 2 under ulimit -n 20000)
  --payload BYTES        body size incl. the 46-byte text / 24-byte binary header (default 100)
  --binary               binary bodies, sent as WebSocket binary frames
  --rate N               total msg/s over all publishers (default 0 = unlimited, window-bounded)
  --window N             max in flight per publisher, sent - received (default 100)
  --duration S           measured seconds (default 10); idle: hold time
  --warmup S             seconds of load before measuring (default 2)
  --drain S              at the end, wait for in-flight messages until none arrives for S s (default 5; 120 s cap)
  --dest TEMPLATE        destination of both sides; {i} or <i> = pair index
                         (default /queue/bench-{i}; fanout /topic/bench-fanout; idle /topic/bench-idle)
  --sub-dest TEMPLATE    what receivers subscribe to (default --dest); every MESSAGE must carry it as destination
  --send-dest TEMPLATE   what publishers send to (default --dest)
                         e.g. stompbox user destinations: --sub-dest /user/queue/bench --send-dest /user/bench-r{i}/queue/bench
  --login L --passcode P credentials; {i} in --login is replaced by the connection index
  --receiver-login L     login of receivers / subscribers / idle connections, {i} = pair index (default --login)
  --sender-login L       login of publishers, {i} = pair index (default --login)
  --placement P          with several URLs: alternate (default; pair i sends on node i, receives on node i+1)
                         | split (all publishers on the first URL, all receivers on the others)
  --host H               STOMP host header / vhost (default /)
  --heartbeat CX,CY      STOMP heart-beat (default 0,0; idle 10000,10000)
  --send-header K:V      extra SEND header (repeatable)
  --subscribe-header K:V extra SUBSCRIBE header (repeatable)
  --coalesce             several STOMP frames per WebSocket message (one per frame by default)
  --pids PID[,PID]       broker processes: report their CPU % and peak RSS over the window
  --procs K              split the connections over K worker processes (default 1)
  --connect-concurrency N  handshakes in flight during setup (default 200)
  --timeout MS           bound on each handshake / RECEIPT (default 10000)
  --local-addrs N|LIST   source addresses: N = 127.0.0.1..N, or a comma list of 127.x addresses
  --json FILE            also write the report as JSON
`;

function headerPairs(values: string[] | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const value of values ?? []) {
    const colon = value.indexOf(':');
    if (colon <= 0) throw new Error(`header "${value}" is not NAME:VALUE`);
    headers[value.slice(0, colon)] = value.slice(colon + 1);
  }
  return headers;
}

export function localAddresses(spec: string): string[] {
  if (/^\d+$/.test(spec)) return Array.from({ length: Math.max(1, Number(spec)) }, (_, i) => `127.0.0.${i + 1}`);
  return spec.split(',').map((address) => address.trim());
}

function positive(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got "${value}"`);
  return n;
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string', multiple: true },
      protocol: { type: 'string' },
      mode: { type: 'string' },
      pairs: { type: 'string' },
      subscribers: { type: 'string' },
      connections: { type: 'string' },
      payload: { type: 'string' },
      binary: { type: 'boolean' },
      rate: { type: 'string' },
      window: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      drain: { type: 'string' },
      dest: { type: 'string' },
      'sub-dest': { type: 'string' },
      'send-dest': { type: 'string' },
      login: { type: 'string' },
      'receiver-login': { type: 'string' },
      'sender-login': { type: 'string' },
      placement: { type: 'string' },
      passcode: { type: 'string' },
      host: { type: 'string' },
      heartbeat: { type: 'string' },
      'send-header': { type: 'string', multiple: true },
      'subscribe-header': { type: 'string', multiple: true },
      coalesce: { type: 'boolean' },
      pids: { type: 'string' },
      procs: { type: 'string' },
      'connect-concurrency': { type: 'string' },
      timeout: { type: 'string' },
      'local-addrs': { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || values.url === undefined) {
    process.stdout.write(USAGE);
    return;
  }
  const mode = (values.mode ?? 'p2p') as LoadMode;
  if (!['p2p', 'fanout', 'idle'].includes(mode)) throw new Error(`--mode must be p2p, fanout or idle`);
  const protocol = (values.protocol ?? 'stomp') as Protocol;
  if (!['stomp', 'socketio', 'raw'].includes(protocol)) throw new Error(`--protocol must be stomp, socketio or raw`);
  const partial: Partial<LoadOptions> & { urls: string[] } = {
    urls: values.url.flatMap((url) => url.split(',')).filter((url) => url.length > 0),
    mode,
    protocol,
  };
  const set = <K extends keyof LoadOptions>(key: K, value: LoadOptions[K] | undefined): void => {
    if (value !== undefined) partial[key] = value;
  };
  set('pairs', positive(values.pairs, 'pairs'));
  set('subscribers', positive(values.subscribers, 'subscribers'));
  set('connections', positive(values.connections, 'connections'));
  set('payload', positive(values.payload, 'payload'));
  set('binary', values.binary);
  set('rate', positive(values.rate, 'rate'));
  set('window', positive(values.window, 'window'));
  set('durationS', positive(values.duration, 'duration'));
  set('warmupS', positive(values.warmup, 'warmup'));
  set('drainS', positive(values.drain, 'drain'));
  set('destination', values.dest);
  set('subscribeDestination', values['sub-dest']);
  set('sendDestination', values['send-dest']);
  set('login', values.login);
  set('receiverLogin', values['receiver-login']);
  set('senderLogin', values['sender-login']);
  if (values.placement !== undefined) partial.placement = values.placement as Placement;
  set('passcode', values.passcode);
  set('host', values.host);
  if (values.heartbeat !== undefined) {
    const [cx, cy] = values.heartbeat.split(',').map(Number);
    if (!Number.isFinite(cx) || !Number.isFinite(cy)) throw new Error('--heartbeat must be CX,CY in ms');
    partial.heartbeat = [cx!, cy!];
  }
  if (values['send-header']) partial.sendHeaders = headerPairs(values['send-header']);
  if (values['subscribe-header']) partial.subscribeHeaders = headerPairs(values['subscribe-header']);
  set('coalesce', values.coalesce);
  set('procs', positive(values.procs, 'procs'));
  set('connectConcurrency', positive(values['connect-concurrency'], 'connect-concurrency'));
  set('timeoutMs', positive(values.timeout, 'timeout'));
  if (values['local-addrs'] !== undefined) partial.localAddresses = localAddresses(values['local-addrs']);

  const options = resolveOptions(partial);
  const pids = values.pids === undefined ? [] : values.pids.split(',').map(Number);
  let sampler: ProcSampler | null = null;
  const measured: { broker: ProcStats | null } = { broker: null };
  const report = await runLoad(options, {
    onMeasureStart: () => {
      if (pids.length > 0) (sampler = new ProcSampler(pids)).start();
    },
    onMeasureEnd: () => {
      measured.broker = sampler?.stop() ?? null;
    },
  });
  process.stdout.write(formatReport(report) + '\n');
  const stats = measured.broker;
  if (stats !== null) {
    process.stdout.write(`broker pids ${pids.join(',')}: cpu ${stats.cpuPercent.toFixed(0)} % of one core, rss peak ${formatBytes(stats.rssPeakBytes)}\n`);
  }
  if (values.json !== undefined) {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(values.json, JSON.stringify({ ...report, broker: stats }, null, 2) + '\n');
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rerun = rerunAsQuietInstrument();
  const run = rerun ?? main(process.argv.slice(2)).then(() => 0);
  run.then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(`loadgen: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    },
  );
}

/*
 * The benchmark runner: every selected shape against every selected target,
 * one table of figures, and a JSON record in docs/bench/.
 *
 *   npx tsx scripts/bench/run.ts --targets rabbitmq --shape p2p-10 [--quick]
 *   npx tsx scripts/bench/run.ts --list
 *
 * Columns: delivered msg/s in the measured window, the ratio of that to
 * RabbitMQ's for the same shape (idle: RSS per connection ratio), latency
 * p50/p99/p99.9 in ms, lost/reordered/duplicates, broker CPU (% of one core,
 * summed over its processes, averaged over the window), broker peak RSS,
 * the load generator's own CPU, and connection setup rate.
 *
 * Two generators measure every figure: the project's (loadgen.ts, idle.ts)
 * and an independent cross-check on @stomp/stompjs (crosscheck/), each in a
 * run of its own against a freshly started target (as a user would measure
 * it: no shape runs on nodes an earlier shape warmed up). Systems are
 * interleaved — repeat → shape → target → generator, the generator order
 * alternating per repeat — so that a disturbance of the shared machine
 * falls on all of them. The last table puts both generators' medians side
 * by side and says where they agree within 20 %.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, totalmem, type } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeChart } from './chart.js';
import { runCrosscheck, type CrosscheckResult, type CrosscheckSpec } from './crosscheck/run-crosscheck.js';
import { formatCrossTable } from './cross-table.js';
import { formatIdle, runIdle, type IdleReport } from './idle.js';
import { DEFAULT_LOAD_OPTIONS, formatMs, formatReport, resolveOptions, runLoad, type LoadOptions, type LoadReport } from './loadgen.js';
import { INSTRUMENT_FLAGS, rerunAsQuietInstrument } from './lib/instrument.js';
import { TargetUnavailable, type BenchTarget, type StartedTarget } from './lib/target.js';
import { ProcSampler, formatBytes, type ProcStats } from './proc-stats.js';
import { SHAPES, findShapes, shapeConnections, type IdleShape, type LoadShape } from './shapes.js';
import { REFERENCE_TARGET, TARGET_FACTORIES, createTargets } from './targets.js';

/** `loadgen`: the project's generator; `crosscheck`: the independent one on @stomp/stompjs. */
export type GeneratorName = 'loadgen' | 'crosscheck';

export interface ShapeResult {
  target: string;
  shape: string;
  generator?: GeneratorName;
  /** Per sampled pid, what it is (StartedTarget.roles), in the order of broker.pids. */
  roles?: string[];
  crosscheck?: CrosscheckResult;
  /** 1-based repetition (--repeat). */
  repeat: number;
  description: string;
  status: 'ok' | 'skipped' | 'error';
  reason?: string;
  notes: string[];
  load?: LoadReport;
  idle?: IdleReport;
  broker?: ProcStats | null;
}

export interface RunRecord {
  date: string;
  machine: {
    os: string;
    cpuModel: string;
    cpuCount: number;
    totalMemBytes: number;
    node: string;
    /** V8 flags of the load generator's process (lib/instrument.ts). */
    instrumentFlags?: string[];
    /** 1-minute load average before and after: this machine may be shared. */
    loadAverageStart: number;
    loadAverageEnd?: number;
  };
  quick: boolean;
  targets: Array<{ name: string; notes: string[]; status: 'ok' | 'skipped' | 'error'; reason?: string }>;
  results: ShapeResult[];
}

const DOCS_DIR = fileURLToPath(new URL('../../docs/bench/', import.meta.url));
const PAUSE_BETWEEN_SHAPES_MS = 2000;
/** Machine CPU (% of one core) used by neither broker nor load generator above which a run is flagged as noisy. */
const NOISY_OTHER_CPU = 25;

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

interface RunSettings {
  quick: boolean;
  /** Runs of each shape (a shared machine is noisy: compare the spread). @default 1 */
  repeat: number;
  /** Overrides every load shape's measured seconds. */
  durationS?: number;
  procs?: number;
  coalesce: boolean;
  generators: GeneratorName[];
}

async function runLoadShape(target: BenchTarget, started: StartedTarget, shape: LoadShape, settings: RunSettings): Promise<ShapeResult> {
  const fanout = shape.options.mode === 'fanout';
  const options = resolveOptions({
    urls: target.urls ?? [target.url],
    protocol: target.protocol,
    destination: fanout ? target.fanoutDestination : target.destinationTemplate,
    subscribeDestination: fanout ? target.fanoutDestination : (target.subscribeDestinationTemplate ?? target.destinationTemplate),
    sendDestination: fanout ? target.fanoutDestination : (target.sendDestinationTemplate ?? target.destinationTemplate),
    login: target.login,
    passcode: target.passcode,
    receiverLogin: target.receiverLoginTemplate,
    senderLogin: target.senderLoginTemplate,
    placement: target.placement,
    sendHeaders: target.sendHeaders ?? {},
    subscribeHeaders: target.subscribeHeaders ?? {},
    ...loadOptionsFor(shape, settings),
    ...(settings.procs !== undefined ? { procs: settings.procs } : {}),
    ...(settings.coalesce ? { coalesce: true } : {}),
  });
  let sampler: ProcSampler | null = null;
  const measured: { broker: ProcStats | null } = { broker: null };
  const load = await runLoad(options, {
    log,
    onMeasureStart: () => {
      sampler = new ProcSampler(started.pids);
      sampler.start();
    },
    onMeasureEnd: () => {
      measured.broker = (sampler as ProcSampler | null)?.stop() ?? null;
    },
  });
  log(formatReport(load));
  return { target: target.name, shape: shape.name, repeat: 1, description: shape.description, status: 'ok', notes: [], load, broker: measured.broker };
}

async function runIdleShape(target: BenchTarget, started: StartedTarget, shape: IdleShape, settings: RunSettings): Promise<ShapeResult> {
  const notes: string[] = [];
  let connections = settings.quick ? shape.quick.connections : shape.connections;
  if (started.maxConnections !== undefined && connections > started.maxConnections) {
    notes.push(`capped at ${started.maxConnections} connections by the target's open-file limit (wanted ${connections})`);
    connections = started.maxConnections;
  }
  const idle = await runIdle({
    urls: target.urls ?? [target.url],
    protocol: target.protocol,
    login: target.receiverLoginTemplate ?? target.login,
    passcode: target.passcode,
    connections,
    heartbeat: shape.heartbeat,
    holdS: settings.quick ? shape.quick.holdS : shape.holdS,
    settleS: 3,
    destination: target.idleDestination,
    pids: started.pids,
    log,
  });
  log(formatIdle(idle));
  return { target: target.name, shape: shape.name, repeat: 1, description: shape.description, status: 'ok', notes, idle, broker: idle.broker };
}

/** Load options of a shape against a target, as the project's generator takes them. */
function loadOptionsFor(shape: LoadShape, settings: RunSettings): Partial<LoadOptions> {
  return {
    ...shape.options,
    ...(settings.quick ? shape.quick : {}),
    ...(settings.durationS !== undefined ? { durationS: settings.durationS } : {}),
  };
}

/**
 * A source address of its own for each cross-check run (127.0.1.x; the project's generator uses
 * 127.0.0.x): closed connections hold their ports in TIME_WAIT for 60 s, and one address has
 * 28 232 ephemeral ports here — two idle runs of 15 000 back to back on one address could not
 * all connect (T0928: the second opened 13 292, the rest "WebSocket error").
 */
let crosscheckRuns = 0;
function nextCrosscheckSource(): string {
  crosscheckRuns = (crosscheckRuns % 254) + 1;
  return `127.0.1.${crosscheckRuns}`;
}

async function runCrosscheckShape(target: BenchTarget, started: StartedTarget, shape: LoadShape | IdleShape, settings: RunSettings): Promise<ShapeResult> {
  const urls = target.urls ?? [target.url];
  const base = {
    protocol: target.protocol,
    senderUrl: urls[0]!,
    receiverUrl: urls[urls.length - 1]!,
    senderLogin: target.senderLoginTemplate ?? target.login,
    receiverLogin: target.receiverLoginTemplate ?? target.login,
    passcode: target.passcode,
    pids: started.pids,
    localAddress: nextCrosscheckSource(),
  };
  let spec: CrosscheckSpec;
  const notes: string[] = [];
  if (shape.kind === 'idle') {
    let connections = settings.quick ? shape.quick.connections : shape.connections;
    if (started.maxConnections !== undefined && connections > started.maxConnections) {
      notes.push(`capped at ${started.maxConnections} connections by the target's open-file limit (wanted ${connections})`);
      connections = started.maxConnections;
    }
    spec = { ...base, mode: 'idle', pairs: 0, connections, sendDestination: target.idleDestination, subscribeDestination: target.idleDestination, payload: 100, rate: 0, window: 0, warmupS: 0, durationS: 0 };
  } else {
    const options = { ...DEFAULT_LOAD_OPTIONS, ...loadOptionsFor(shape, settings) };
    spec = {
      ...base,
      mode: 'load',
      pairs: options.pairs,
      connections: 0,
      sendDestination: target.sendDestinationTemplate ?? target.destinationTemplate,
      subscribeDestination: target.subscribeDestinationTemplate ?? target.destinationTemplate,
      payload: options.payload,
      rate: options.rate,
      window: options.window,
      warmupS: options.warmupS,
      durationS: options.durationS,
    };
  }
  const result = await runCrosscheck(spec);
  for (const error of result.errors) notes.push(`cross-check: ${error}`);
  const line =
    shape.kind === 'idle'
      ? `cross-check: ${result.idle?.opened ?? 0} idle connections, ${((result.idle?.bytesPerConnection ?? Number.NaN) / 1024).toFixed(1)} KiB per connection`
      : `cross-check: ${result.deliveredPerSecond.toFixed(0)} msg/s, p50 ${formatMs(result.p50Ms)} p99 ${formatMs(result.p99Ms)} p99.9 ${formatMs(result.p999Ms)} ms` +
        ` (${result.samples} samples, lost ${result.lost}); server cpu ${result.cpuPercent.toFixed(0)} %, ${result.cpuMicrosPerMessage.toFixed(1)} µs/msg; client cpu ${result.clientCpuPercent.toFixed(0)} % (${((result.clientCpuPercent * 1e4) / result.deliveredPerSecond).toFixed(1)} µs/msg); sends late p99 ${formatMs(result.sendLagP99Ms)} ms, event-loop delay p99 ${formatMs(result.loopDelayP99Ms)} / max ${formatMs(result.loopDelayMaxMs)} ms`;
  log(line);
  return { target: target.name, shape: shape.name, repeat: 1, description: shape.description, status: 'ok', notes, crosscheck: result };
}

/** Starts `target` afresh, measures `shape` with one generator, stops it. */
async function runOnce(
  target: BenchTarget,
  shape: LoadShape | IdleShape,
  generator: GeneratorName,
  repeat: number,
  settings: RunSettings,
  record: RunRecord,
): Promise<void> {
  const connections = shapeConnections(shape, settings.quick);
  const label = `${target.name} / ${shape.name} / ${generator}${settings.repeat > 1 ? ` [run ${repeat}/${settings.repeat}]` : ''}`;
  const failed = (status: 'skipped' | 'error', reason: string): void => {
    log(`-- ${label}: ${status}: ${reason}`);
    record.results.push({ target: target.name, shape: shape.name, generator, repeat, description: shape.description, status, reason, notes: [] });
  };
  let started: StartedTarget;
  try {
    started = await target.start({ connections, log });
  } catch (error) {
    await target.stop().catch(() => undefined);
    return failed(error instanceof TargetUnavailable ? 'skipped' : 'error', error instanceof Error ? error.message : String(error));
  }
  if (!record.targets.some((known) => known.name === target.name)) {
    const notes = started.notes ?? [];
    for (const note of notes) log(`   ${note}`);
    record.targets.push({ name: target.name, notes, status: 'ok' });
  }
  try {
    if (shape.kind === 'load' && started.maxConnections !== undefined && connections > started.maxConnections) {
      return failed('skipped', `needs ${connections} connections; ${target.name} holds ~${started.maxConnections} (open-file limit)`);
    }
    log(`-- ${label}: ${shape.description}${settings.quick ? ' (quick)' : ''}`);
    await target.prepare?.();
    const result =
      generator === 'crosscheck'
        ? await runCrosscheckShape(target, started, shape, settings)
        : shape.kind === 'load'
          ? await runLoadShape(target, started, shape, settings)
          : await runIdleShape(target, started, shape, settings);
    const seen = (await target.afterShape?.().catch((error: unknown) => [`afterShape failed: ${error instanceof Error ? error.message : String(error)}`])) ?? [];
    for (const note of seen) log(`   ${note}`);
    record.results.push({ ...result, generator, roles: started.roles, notes: [...result.notes, ...seen], repeat });
  } catch (error) {
    failed('error', error instanceof Error ? error.message : String(error));
  } finally {
    await target.stop();
    await new Promise((resolve) => setTimeout(resolve, PAUSE_BETWEEN_SHAPES_MS));
  }
}

/** Repeat → shape → target → generator (order alternating per repeat): every system sees the same machine. */
async function runInterleaved(targets: readonly BenchTarget[], shapes: readonly (LoadShape | IdleShape)[], settings: RunSettings, record: RunRecord): Promise<void> {
  for (let repeat = 1; repeat <= settings.repeat; repeat++) {
    const generators = repeat % 2 === 1 ? settings.generators : settings.generators.slice().reverse();
    for (const shape of shapes) {
      // The cross-check has no fan-out or binary mode: those shapes are the project's generator's alone.
      const supported = shape.kind === 'idle' || (shape.options.mode !== 'fanout' && shape.options.binary !== true);
      for (const target of targets) {
        for (const generator of generators) {
          if (generator === 'crosscheck' && !supported) continue;
          await runOnce(target, shape, generator, repeat, settings, record);
        }
      }
    }
  }
}

/** CPU used on the machine by neither the broker nor the load generator: other work skews the figures. */
export function otherCpu(broker: ProcStats, clientCpuPercent: number): number {
  return Math.max(0, broker.systemCpuPercent - broker.cpuPercent - clientCpuPercent);
}


function cell(value: string, width: number, left = false): string {
  return left ? value.padEnd(width) : value.padStart(width);
}

export function formatTable(record: RunRecord): string {
  // With --repeat, the reference for a shape is RabbitMQ's median run.
  const referenceRuns = new Map<string, ShapeResult[]>();
  for (const result of record.results) {
    if (result.target !== REFERENCE_TARGET || result.status !== 'ok') continue;
    referenceRuns.set(result.shape, [...(referenceRuns.get(result.shape) ?? []), result]);
  }
  const reference = new Map<string, ShapeResult>();
  for (const [shape, runs] of referenceRuns) {
    const key = (run: ShapeResult): number => run.load?.deliveredPerSecond ?? run.idle?.rssPerConnectionBytes ?? 0;
    const sorted = runs.slice().sort((a, b) => key(a) - key(b));
    reference.set(shape, sorted[Math.floor((sorted.length - 1) / 2)]!);
  }
  const runsOf = new Map<string, number>();
  for (const result of record.results) runsOf.set(`${result.target}/${result.shape}`, (runsOf.get(`${result.target}/${result.shape}`) ?? 0) + 1);
  const shapeLabel = (result: ShapeResult): string =>
    (runsOf.get(`${result.target}/${result.shape}`) ?? 1) > 1 ? `${result.shape}#${result.repeat}` : result.shape;
  const header = ['target', 'shape', 'msg/s', 'x rmq', 'p50 ms', 'p99 ms', 'p99.9', 'lost', 'reord', 'dup', 'brk cpu%', 'brk rss', 'cli cpu%', 'othr%', 'conn/s'];
  const widths = [22, 17, 9, 6, 7, 7, 7, 6, 6, 5, 9, 14, 9, 6, 7];
  const rows: string[][] = [];
  for (const result of record.results) {
    if (result.status !== 'ok') {
      rows.push([result.target, shapeLabel(result), `${result.status}: ${(result.reason ?? '').slice(0, 90)}`]);
      continue;
    }
    const broker = result.broker ?? null;
    const ref = reference.get(result.shape);
    if (result.load !== undefined) {
      const load = result.load;
      const refRate = ref?.load?.deliveredPerSecond;
      rows.push([
        result.target,
        shapeLabel(result),
        load.deliveredPerSecond.toFixed(0),
        refRate ? (load.deliveredPerSecond / refRate).toFixed(2) : '-',
        formatMs(load.latency.p50Ms),
        formatMs(load.latency.p99Ms),
        formatMs(load.latency.p999Ms),
        String(load.lost),
        String(load.reordered),
        String(load.duplicates),
        broker ? broker.cpuPercent.toFixed(0) : '-',
        broker ? formatBytes(broker.rssPeakBytes) : '-',
        load.clientCpuPercent.toFixed(0),
        broker ? otherCpu(broker, load.clientCpuPercent).toFixed(0) : '-',
        load.connections.perSecond.toFixed(0),
      ]);
    } else if (result.idle !== undefined) {
      const idle = result.idle;
      const refPerConn = ref?.idle?.rssPerConnectionBytes;
      rows.push([
        result.target,
        shapeLabel(result),
        `${idle.opened} idle`,
        refPerConn ? (idle.rssPerConnectionBytes / refPerConn).toFixed(2) : '-',
        '-',
        '-',
        '-',
        '-',
        '-',
        '-',
        broker ? broker.cpuPercent.toFixed(1) : '-',
        `${(idle.rssPerConnectionBytes / 1024).toFixed(1)} KiB/conn`,
        '-',
        '-',
        idle.connectionsPerSecond.toFixed(0),
      ]);
    }
  }
  const line = (values: string[]): string =>
    values.length === 3
      ? `${cell(values[0]!, widths[0]!, true)} ${cell(values[1]!, widths[1]!, true)} ${values[2]}`
      : values.map((value, i) => cell(value, widths[i]!, i < 2)).join(' ');
  return [line(header), ...rows.map(line)].join('\n');
}

function machineInfo(): RunRecord['machine'] {
  const list = cpus();
  return {
    os: `${type()} ${release()}`,
    cpuModel: list[0]?.model ?? 'unknown',
    cpuCount: list.length,
    totalMemBytes: totalmem(),
    node: process.version,
    instrumentFlags: INSTRUMENT_FLAGS,
    loadAverageStart: loadavg()[0]!,
  };
}

const USAGE = `Usage: npx tsx scripts/bench/run.ts [options]

  --targets LIST          comma list or "all" (default: rabbitmq); known: ${Object.keys(TARGET_FACTORIES).join(', ')}
  --shape LIST            comma list or "all" (default: all); known: ${SHAPES.map((shape) => shape.name).join(', ')}
  --quick                 short durations (5 s measured, 1 s warm-up; idle: 2000 connections, 5 s) for a smoke run
  --duration S            measured seconds for every load shape (overrides the shape and --quick)
  --repeat N              run each shape N times (default 1); x rmq divides by RabbitMQ's median run
  --procs K               load generator worker processes for every load shape (default 1)
  --no-crosscheck         only the project's generator (default: it and the @stomp/stompjs cross-check, each on a fresh target)
  --coalesce              several STOMP frames per WebSocket message (default: one frame per message)
  --rabbit-restart-for-fds  restart RabbitMQ with a higher per-process open-file limit when a shape needs
                          more connections than it holds (otherwise those shapes are skipped for it)
  --out FILE              JSON record (default docs/bench/results-<date>.json); its chart (scripts/bench/chart.ts)
                          goes beside it, .json → .svg; --no-write to skip both
  --list                  print targets and shapes
`;

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      targets: { type: 'string' },
      shape: { type: 'string' },
      quick: { type: 'boolean' },
      procs: { type: 'string' },
      duration: { type: 'string' },
      repeat: { type: 'string' },
      coalesce: { type: 'boolean' },
      'no-crosscheck': { type: 'boolean' },
      'rabbit-restart-for-fds': { type: 'boolean' },
      out: { type: 'string' },
      'no-write': { type: 'boolean' },
      list: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (values.list) {
    process.stdout.write(`targets: ${Object.keys(TARGET_FACTORIES).join(', ')}\nshapes:\n`);
    for (const shape of SHAPES) process.stdout.write(`  ${shape.name.padEnd(16)} ${shape.description}\n`);
    return;
  }
  const settings: RunSettings = {
    quick: values.quick ?? false,
    repeat: Math.max(1, Math.min(20, Number(values.repeat ?? '1'))),
    procs: values.procs === undefined ? undefined : Number(values.procs),
    durationS: values.duration === undefined ? undefined : Number(values.duration),
    coalesce: values.coalesce ?? false,
    generators: values['no-crosscheck'] ? ['loadgen'] : ['loadgen', 'crosscheck'],
  };
  const shapes = findShapes(values.shape ?? 'all');
  const targets = createTargets(values.targets ?? REFERENCE_TARGET, {
    rabbitmq: { restartForFds: values['rabbit-restart-for-fds'] ?? false },
  });
  const now = new Date();
  const record: RunRecord = { date: now.toISOString(), machine: machineInfo(), quick: settings.quick, targets: [], results: [] };
  log(`bench: ${record.machine.cpuCount} × ${record.machine.cpuModel}, ${formatBytes(record.machine.totalMemBytes)}, node ${record.machine.node}; load generator ${INSTRUMENT_FLAGS.join(' ')}`);
  await runInterleaved(targets, shapes, settings, record);
  record.machine.loadAverageEnd = loadavg()[0]!;

  process.stdout.write(`\n${formatTable(record)}\n`);
  process.stdout.write(`\n${formatCrossTable(record)}\n`);
  process.stdout.write(
    `(msg/s delivered in the window; x rmq = ratio to RabbitMQ for the shape; cpu % of one core over the window, ${record.machine.cpuCount} cores;` +
      ` othr% = machine CPU used by neither broker nor load generator: high values mean a shared, noisy run; load average ${record.machine.loadAverageStart.toFixed(2)} → ${record.machine.loadAverageEnd.toFixed(2)})\n`,
  );
  for (const result of record.results) for (const note of result.notes) process.stdout.write(`note: ${result.target}/${result.shape}: ${note}\n`);
  for (const result of record.results) {
    const load = result.load;
    if (load !== undefined && (load.headerMismatches > 0 || load.misrouted > 0)) {
      process.stdout.write(
        `warning: ${result.target}/${result.shape}: ${load.misrouted} misrouted, ${load.headerMismatches} MESSAGE(s) whose destination/subscription headers do not match the subscription\n`,
      );
    }
  }
  const noisy = record.results.filter((result) => result.load !== undefined && result.broker && otherCpu(result.broker, result.load.clientCpuPercent) > NOISY_OTHER_CPU);
  if (noisy.length > 0) {
    process.stdout.write(
      `warning: ${noisy.length} run(s) shared the machine with other work (othr% > ${NOISY_OTHER_CPU}): their figures are low and not comparable; rerun on a quiet machine or use --repeat\n`,
    );
  }
  if (!values['no-write']) {
    const stamp = now.toISOString().slice(0, 16).replace(':', '');
    const file = values.out ?? `${DOCS_DIR}results-${stamp}.json`;
    await mkdir(DOCS_DIR, { recursive: true });
    await writeFile(file, JSON.stringify(record, null, 2) + '\n');
    process.stdout.write(`wrote ${file}\n`);
    // The chart next to it (results-<stamp>.svg); a chart failure does not fail the run.
    // The chart draws the project's generator's runs; the cross-check's figures are in the JSON and the table.
    await writeChart({ ...record, results: record.results.filter((result) => result.generator !== 'crosscheck') }, file).then(
      (svg) => process.stdout.write(`wrote ${svg}\n`),
      (error: unknown) => log(`chart: not written: ${error instanceof Error ? error.message : String(error)}`),
    );
  }
}

(rerunAsQuietInstrument() ?? main(process.argv.slice(2)).then(() => 0)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);

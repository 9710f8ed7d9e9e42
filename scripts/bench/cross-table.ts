/*
 * The two generators side by side: for each target and shape, the median
 * over repeats of each figure as the project's generator (A, loadgen.ts /
 * idle.ts) and the @stomp/stompjs cross-check (B, crosscheck/) measured it,
 * and whether the two agree within 20 %. A figure is published only where
 * they do.
 */
import { formatMs } from './loadgen.js';
import type { RunRecord, ShapeResult } from './run.js';

/** Two figures agree when the larger is at most this much above the smaller. */
export const AGREEMENT = 0.2;

export interface Figures {
  msgPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  cpuPercent: number;
  cpuMicrosPerMessage: number;
  /** Server CPU % per role (sender node, receiver node, redis, beam, node). */
  cpuByRole: Record<string, number>;
  idleKiBPerConnection: number;
  /** The generator's own event-loop delay p99 over the window, ms: beside the latency, not in it. */
  generatorLoopDelayP99Ms: number;
  runs: number;
}

function median(values: number[]): number {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const middle = Math.floor(finite.length / 2);
  return finite.length % 2 === 1 ? finite[middle]! : (finite[middle - 1]! + finite[middle]!) / 2;
}

function byRole(roles: string[] | undefined, perPid: number[]): Record<string, number> {
  const out: Record<string, number> = {};
  perPid.forEach((cpu, k) => {
    const role = roles?.[k] ?? `pid ${k}`;
    out[role] = (out[role] ?? 0) + cpu;
  });
  return out;
}

/** One run's figures, whichever generator took them. */
export function figuresOf(result: ShapeResult): Omit<Figures, 'runs'> | null {
  if (result.status !== 'ok') return null;
  const nan = Number.NaN;
  if (result.crosscheck !== undefined) {
    const c = result.crosscheck;
    return {
      msgPerSecond: c.deliveredPerSecond,
      p50Ms: c.p50Ms,
      p99Ms: c.p99Ms,
      p999Ms: c.p999Ms,
      cpuPercent: c.cpuPercent,
      cpuMicrosPerMessage: c.cpuMicrosPerMessage,
      cpuByRole: byRole(result.roles, c.cpuPercentPerPid),
      idleKiBPerConnection: c.idle === undefined ? nan : c.idle.bytesPerConnection / 1024,
      generatorLoopDelayP99Ms: c.loopDelayP99Ms,
    };
  }
  const broker = result.broker ?? null;
  if (result.load !== undefined) {
    const load = result.load;
    const cpuSeconds = broker === null ? nan : broker.pids.reduce((sum, pid) => sum + pid.cpuSeconds, 0);
    return {
      msgPerSecond: load.deliveredPerSecond,
      p50Ms: load.latency.p50Ms,
      p99Ms: load.latency.p99Ms,
      p999Ms: load.latency.p999Ms,
      cpuPercent: broker?.cpuPercent ?? nan,
      cpuMicrosPerMessage: load.deliveredInWindow > 0 ? (cpuSeconds * 1e6) / load.deliveredInWindow : nan,
      cpuByRole: byRole(result.roles, broker?.pids.map((pid) => pid.cpuPercent) ?? []),
      idleKiBPerConnection: nan,
      generatorLoopDelayP99Ms: load.generatorLag.loopDelayP99Ms,
    };
  }
  if (result.idle !== undefined) {
    return { msgPerSecond: nan, p50Ms: nan, p99Ms: nan, p999Ms: nan, cpuPercent: nan, cpuMicrosPerMessage: nan, cpuByRole: {}, idleKiBPerConnection: result.idle.rssPerConnectionBytes / 1024, generatorLoopDelayP99Ms: nan };
  }
  return null;
}

/** Medians over the runs of one target, shape and generator. */
export function medianFigures(runs: ShapeResult[]): Figures | null {
  const all = runs.map(figuresOf).filter((figures): figures is Omit<Figures, 'runs'> => figures !== null);
  if (all.length === 0) return null;
  const roles = [...new Set(all.flatMap((figures) => Object.keys(figures.cpuByRole)))];
  return {
    msgPerSecond: median(all.map((f) => f.msgPerSecond)),
    p50Ms: median(all.map((f) => f.p50Ms)),
    p99Ms: median(all.map((f) => f.p99Ms)),
    p999Ms: median(all.map((f) => f.p999Ms)),
    cpuPercent: median(all.map((f) => f.cpuPercent)),
    cpuMicrosPerMessage: median(all.map((f) => f.cpuMicrosPerMessage)),
    cpuByRole: Object.fromEntries(roles.map((role) => [role, median(all.map((f) => f.cpuByRole[role] ?? Number.NaN))])),
    idleKiBPerConnection: median(all.map((f) => f.idleKiBPerConnection)),
    generatorLoopDelayP99Ms: median(all.map((f) => f.generatorLoopDelayP99Ms)),
    runs: all.length,
  };
}

/** True when both are finite and within AGREEMENT of each other; null when either is missing. */
export function agree(a: number, b: number): boolean | null {
  if (!Number.isFinite(a) || !Number.isFinite(b)) return null;
  const low = Math.min(a, b);
  const high = Math.max(a, b);
  return high <= low * (1 + AGREEMENT) || high - low < 1e-9;
}

const FIGURES: Array<{ key: keyof Omit<Figures, 'cpuByRole' | 'runs' | 'generatorLoopDelayP99Ms'>; label: string; format(value: number): string }> = [
  { key: 'msgPerSecond', label: 'msg/s', format: (v) => v.toFixed(0) },
  { key: 'p50Ms', label: 'p50 ms', format: formatMs },
  { key: 'p99Ms', label: 'p99 ms', format: formatMs },
  { key: 'p999Ms', label: 'p99.9 ms', format: formatMs },
  { key: 'cpuPercent', label: 'server cpu %', format: (v) => v.toFixed(0) },
  { key: 'cpuMicrosPerMessage', label: 'cpu µs/msg', format: (v) => v.toFixed(1) },
  { key: 'idleKiBPerConnection', label: 'idle KiB/conn', format: (v) => v.toFixed(1) },
];

export function formatCrossTable(record: RunRecord): string {
  const groups = new Map<string, { target: string; shape: string; a: ShapeResult[]; b: ShapeResult[] }>();
  for (const result of record.results) {
    const key = `${result.target}\u0000${result.shape}`;
    let group = groups.get(key);
    if (group === undefined) groups.set(key, (group = { target: result.target, shape: result.shape, a: [], b: [] }));
    (result.generator === 'crosscheck' ? group.b : group.a).push(result);
  }
  const lines = [
    `Both generators, medians over the runs (A = scripts/bench/loadgen.ts, B = @stomp/stompjs cross-check); each cell A / B;` +
      ` "=" agree within ${AGREEMENT * 100} %, "≠" do not`,
  ];
  for (const group of groups.values()) {
    const a = medianFigures(group.a);
    const b = medianFigures(group.b);
    if (a === null && b === null) {
      lines.push(`${group.target.padEnd(22)} ${group.shape.padEnd(16)} no figures (${[...group.a, ...group.b].map((r) => r.reason ?? r.status).join('; ').slice(0, 120)})`);
      continue;
    }
    const cells: string[] = [];
    for (const figure of FIGURES) {
      const va = a?.[figure.key] ?? Number.NaN;
      const vb = b?.[figure.key] ?? Number.NaN;
      if (!Number.isFinite(va) && !Number.isFinite(vb)) continue;
      const verdict = agree(va, vb);
      const show = (v: number): string => (Number.isFinite(v) ? figure.format(v) : '-');
      cells.push(`${figure.label} ${show(va)} / ${show(vb)} ${verdict === null ? '' : verdict ? '=' : '≠'}`.trimEnd());
    }
    lines.push(`${group.target.padEnd(22)} ${group.shape.padEnd(16)} [${a?.runs ?? 0}+${b?.runs ?? 0} runs] ${cells.join(' | ')}`);
    const lagA = a?.generatorLoopDelayP99Ms ?? Number.NaN;
    const lagB = b?.generatorLoopDelayP99Ms ?? Number.NaN;
    if (Number.isFinite(lagA) || Number.isFinite(lagB)) {
      lines.push(`${''.padEnd(40)} generator event-loop delay p99 (beside the latency, not in it): ${formatMs(lagA)} / ${formatMs(lagB)} ms`);
    }
    const roles = a !== null ? Object.keys(a.cpuByRole) : [];
    if (roles.length > 1) {
      const share = (f: Figures | null, role: string): string => (f !== null && Number.isFinite(f.cpuByRole[role] ?? Number.NaN) ? f.cpuByRole[role]!.toFixed(0) : '-');
      lines.push(`${''.padEnd(40)} server cpu % by process: ${roles.map((role) => `${role} ${share(a, role)} / ${share(b, role)}`).join(', ')}`);
    }
    lines.push(...cpuSpread(group, groups.get(`${REFERENCE}\u0000${group.shape}`)));
  }
  return lines.join('\n');
}

/** The target a shape's CPU is compared with (issue 13: "server CPU ≤ 2× RabbitMQ's in the same run"). */
const REFERENCE = 'rabbitmq';

/** A run's server CPU by repeat, for one generator's runs. */
function cpuByRepeat(runs: ShapeResult[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const run of runs) {
    const cpu = figuresOf(run)?.cpuPercent ?? Number.NaN;
    if (Number.isFinite(cpu)) out.set(run.repeat, cpu);
  }
  return out;
}

/**
 * With several runs: each run's server CPU (a run's spread on a small machine
 * can exceed the difference being judged), and against the reference target
 * of the same shape, the ratio of the medians and the range of the ratios of
 * runs of the same repeat.
 */
function cpuSpread(group: { target: string; a: ShapeResult[]; b: ShapeResult[] }, reference: { a: ShapeResult[]; b: ShapeResult[] } | undefined): string[] {
  const mine = { a: cpuByRepeat(group.a), b: cpuByRepeat(group.b) };
  if (Math.max(mine.a.size, mine.b.size) < 2) return [];
  const list = (runs: Map<number, number>): string => ([...runs.values()].map((cpu) => cpu.toFixed(1)).join(' ') || '-');
  const lines = [`${''.padEnd(40)} server cpu % per run: ${list(mine.a)} / ${list(mine.b)}`];
  if (reference === undefined || group.target === REFERENCE) return lines;
  const ratios = (own: Map<number, number>, theirs: Map<number, number>): string => {
    const medianRatio = median([...own.values()]) / median([...theirs.values()]);
    const paired = [...own].filter(([repeat]) => theirs.has(repeat)).map(([repeat, cpu]) => cpu / theirs.get(repeat)!);
    if (!Number.isFinite(medianRatio)) return '-';
    return paired.length > 1 ? `${medianRatio.toFixed(2)}× (runs ${Math.min(...paired).toFixed(2)}–${Math.max(...paired).toFixed(2)}×)` : `${medianRatio.toFixed(2)}×`;
  };
  lines.push(`${''.padEnd(40)} server cpu against ${REFERENCE}'s, medians (runs of the same repeat): ${ratios(mine.a, cpuByRepeat(reference.a))} / ${ratios(mine.b, cpuByRepeat(reference.b))}`);
  return lines;
}

/*
 * An SVG chart of one benchmark record (docs/bench/results-<stamp>.json),
 * written next to it as results-<stamp>.svg. No dependencies: plain SVG text.
 *
 *   npx tsx scripts/bench/chart.ts                      # the newest docs/bench/results-*.json
 *   npx tsx scripts/bench/chart.ts docs/bench/results-2026-11-23T1627.json [--out FILE.svg]
 *
 * Panels: delivered msg/s per shape and target (label: value and ratio to
 * RabbitMQ for the shape), p99 latency per shape and target (tick: p50), and
 * broker RSS per idle connection when the record has the idle shape. Each
 * shape has its own linear scale (a 1 MiB body shape runs at ~100 msg/s,
 * small bodies at ~100k): compare bars within a shape, not across shapes.
 * With --repeat, a bar is the run with the median msg/s (as run.ts's table
 * uses for the reference), and a whisker spans the runs' min–max.
 *
 * run.ts calls writeChart() after writing its JSON.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { RunRecord, ShapeResult } from './run.js';

/** run.ts's REFERENCE_TARGET (not imported: targets.ts pulls in every peer). */
const REFERENCE = 'rabbitmq';
/** run.ts's NOISY_OTHER_CPU: machine CPU (% of one core) used by neither broker nor load generator. */
const NOISY_OTHER_CPU = 25;
const DOCS_DIR = fileURLToPath(new URL('../../docs/bench/', import.meta.url));

const SHAPE_ORDER = ['p2p-1', 'p2p-10', 'p2p-100', 'p2p-1000', 'p2p-1000-r1000', 'fanout-1000', 'p2p-1mib'];
const TARGET_ORDER = [
  'rabbitmq',
  'stompbox-1',
  'stompbox-2-redis',
  'stompbox-1-queue',
  'stompbox-2-redis-queue',
  'socketio-1',
  'socketio-2-redis',
];
/** Okabe–Ito based: RabbitMQ orange, stompbox blues/greens, socket.io pink/vermillion. */
const TARGET_COLOURS: Record<string, string> = {
  rabbitmq: '#E69F00',
  'stompbox-1': '#0072B2',
  'stompbox-2-redis': '#56B4E9',
  'stompbox-1-queue': '#009E73',
  'stompbox-2-redis-queue': '#7FD1B9',
  'socketio-1': '#CC79A7',
  'socketio-2-redis': '#D55E00',
};
const FALLBACK_COLOURS = ['#6A3D9A', '#B15928', '#33A02C', '#FB9A99', '#999999', '#1F78B4'];

// Layout (px).
const WIDTH = 1400;
const MARGIN = 24;
const LABEL_W = 180;
const RATE_X = MARGIN + LABEL_W;
const RATE_W = 640;
const PANEL_GAP = 36;
const LAT_X = RATE_X + RATE_W + PANEL_GAP;
const LAT_W = WIDTH - MARGIN - LAT_X;
const ROW = 20;
const BAR_H = 14;
const FONT = "'DejaVu Sans', 'Liberation Sans', Arial, Helvetica, sans-serif";
const VALUE_FONT_SIZE = 11;
/** Average advance of DejaVu Sans at 1 px font size, for reserving room for labels. */
const CHAR_EM = 0.62;

interface Pick {
  /** The run shown: median by the figure of interest. */
  run: ShapeResult;
  runs: ShapeResult[];
}

interface Row {
  target: string;
  pick?: Pick;
  /** Why there is no figure (skipped / error). */
  missing?: string;
}

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function textWidth(text: string, size: number): number {
  return text.length * size * CHAR_EM;
}

function formatRate(value: number): string {
  if (!Number.isFinite(value)) return '-';
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1);
}

function formatMs(value: number): string {
  if (!Number.isFinite(value)) return '-';
  if (value >= 1000) return Math.round(value).toLocaleString('en-US');
  return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0);
}

function formatRatio(value: number): string {
  return value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

/** Tick step of 1, 2 or 5 × 10^k giving about `count` ticks up to max. */
function niceStep(max: number, count: number): number {
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = raw / power;
  return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power;
}

function formatTick(value: number): string {
  if (value >= 1_000_000) return `${+(value / 1_000_000).toFixed(1)}M`;
  if (value >= 1000) return `${+(value / 1000).toFixed(1)}k`;
  return `${+value.toFixed(2)}`;
}

/** CPU used on the machine by neither the broker nor the load generator (run.ts's otherCpu). */
function otherCpu(result: ShapeResult): number | null {
  if (!result.broker || !result.load) return null;
  return Math.max(0, result.broker.systemCpuPercent - result.broker.cpuPercent - result.load.clientCpuPercent);
}

function isNoisy(result: ShapeResult): boolean {
  const other = otherCpu(result);
  return other !== null && other > NOISY_OTHER_CPU;
}

function median(runs: ShapeResult[], key: (run: ShapeResult) => number): Pick {
  const sorted = runs.slice().sort((a, b) => key(a) - key(b));
  return { run: sorted[Math.floor((sorted.length - 1) / 2)]!, runs };
}

function sortTargets(names: Iterable<string>, recordOrder: string[]): string[] {
  const rank = (name: string): number => {
    const known = TARGET_ORDER.indexOf(name);
    return known >= 0 ? known : TARGET_ORDER.length + recordOrder.indexOf(name);
  };
  return [...new Set(names)].sort((a, b) => rank(a) - rank(b));
}

function colourFor(target: string, all: string[]): string {
  const known = TARGET_COLOURS[target];
  if (known !== undefined) return known;
  const unknown = all.filter((name) => TARGET_COLOURS[name] === undefined);
  return FALLBACK_COLOURS[unknown.indexOf(target) % FALLBACK_COLOURS.length]!;
}

/** The load rows of each shape that has load figures, in shape order. */
function loadGroups(record: RunRecord, targets: string[]): Array<{ shape: string; description: string; rows: Row[] }> {
  const shapes = [...new Set(record.results.filter((r) => r.status === 'ok' && r.load !== undefined).map((r) => r.shape))];
  shapes.sort((a, b) => {
    const ra = SHAPE_ORDER.indexOf(a);
    const rb = SHAPE_ORDER.indexOf(b);
    return (ra < 0 ? SHAPE_ORDER.length : ra) - (rb < 0 ? SHAPE_ORDER.length : rb);
  });
  return shapes.map((shape) => {
    const ofShape = record.results.filter((r) => r.shape === shape);
    const rows: Row[] = [];
    for (const target of targets) {
      const results = ofShape.filter((r) => r.target === target);
      if (results.length === 0) continue;
      const ok = results.filter((r) => r.status === 'ok' && r.load !== undefined);
      if (ok.length > 0) rows.push({ target, pick: median(ok, (r) => r.load!.deliveredPerSecond) });
      else rows.push({ target, missing: `${results[0]!.status}${results[0]!.reason ? `: ${results[0]!.reason}` : ''}` });
    }
    return { shape, description: ofShape.find((r) => r.status === 'ok')?.description ?? '', rows };
  });
}

function idleRows(record: RunRecord, targets: string[]): { shape: string; description: string; rows: Row[] } | null {
  const idle = record.results.filter((r) => r.status === 'ok' && r.idle !== undefined);
  if (idle.length === 0) return null;
  const shape = idle[0]!.shape;
  const rows: Row[] = [];
  for (const target of targets) {
    const results = record.results.filter((r) => r.shape === shape && r.target === target);
    if (results.length === 0) continue;
    const ok = results.filter((r) => r.status === 'ok' && r.idle !== undefined);
    if (ok.length > 0) rows.push({ target, pick: median(ok, (r) => r.idle!.rssPerConnectionBytes) });
    else rows.push({ target, missing: `${results[0]!.status}${results[0]!.reason ? `: ${results[0]!.reason}` : ''}` });
  }
  return { shape, description: idle[0]!.description, rows };
}

function attributes(attrs: Record<string, string | number>): string {
  return Object.entries(attrs)
    .map(([key, value]) => ` ${key}="${escapeXml(String(value))}"`)
    .join('');
}

class Svg {
  readonly parts: string[] = [];

  text(x: number, y: number, content: string, attrs: Record<string, string | number> = {}, tail?: { content: string; attrs: Record<string, string | number> }): void {
    const after = tail === undefined ? '' : `<tspan${attributes(tail.attrs)}>${escapeXml(tail.content)}</tspan>`;
    this.parts.push(`<text x="${x.toFixed(1)}" y="${y.toFixed(1)}"${attributes(attrs)}>${escapeXml(content)}${after}</text>`);
  }

  rect(x: number, y: number, w: number, h: number, fill: string, extra = ''): void {
    this.parts.push(`<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(0, w).toFixed(1)}" height="${h.toFixed(1)}" fill="${fill}"${extra}/>`);
  }

  line(x1: number, y1: number, x2: number, y2: number, stroke: string, width = 1, extra = ''): void {
    this.parts.push(
      `<line x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${y2.toFixed(1)}" stroke="${stroke}" stroke-width="${width}"${extra}/>`,
    );
  }
}

interface BarSpec {
  value: number;
  min?: number;
  max?: number;
  /** A tick inside the bar (p50 on the latency panel). */
  tick?: number;
  label: string;
  /** Appended in red (losses). */
  warning?: string;
  colour: string;
}

/** One horizontal bar in [x0, x0 + width): scale maps the group's max to barMax px. */
function drawBar(svg: Svg, x0: number, y: number, barMax: number, scaleMax: number, spec: BarSpec): void {
  const px = (v: number): number => (scaleMax > 0 ? (Math.max(0, v) / scaleMax) * barMax : 0);
  const w = Math.max(1, px(spec.value));
  svg.rect(x0, y, w, BAR_H, spec.colour, ' rx="1.5"');
  if (spec.tick !== undefined && Number.isFinite(spec.tick)) {
    const tx = x0 + px(spec.tick);
    svg.line(tx, y + 1, tx, y + BAR_H - 1, '#1a1a1a', 2);
  }
  let end = x0 + w;
  if (spec.min !== undefined && spec.max !== undefined && spec.max > spec.min) {
    const mid = y + BAR_H / 2;
    const a = x0 + px(spec.min);
    const b = x0 + px(spec.max);
    svg.line(a, mid, b, mid, '#333', 1.2);
    svg.line(a, mid - 4, a, mid + 4, '#333', 1.2);
    svg.line(b, mid - 4, b, mid + 4, '#333', 1.2);
    end = Math.max(end, b);
  }
  const labelX = end + 6;
  const baseline = y + BAR_H - 3;
  const warning = spec.warning ? { content: ` · ${spec.warning}`, attrs: { fill: '#C00000', 'font-weight': 'bold' } } : undefined;
  svg.text(labelX, baseline, spec.label, { 'font-size': VALUE_FONT_SIZE, fill: '#222' }, warning);
}

/** Faint gridlines and tick labels for a group's scale, from top to bottom. */
function drawGrid(svg: Svg, x0: number, top: number, bottom: number, barMax: number, scaleMax: number): void {
  if (!(scaleMax > 0)) return;
  const step = niceStep(scaleMax, 4);
  for (let v = 0; v <= scaleMax * 1.0001; v += step) {
    const x = x0 + (v / scaleMax) * barMax;
    svg.line(x, top, x, bottom, v === 0 ? '#999' : '#e3e3e3', 1);
    svg.text(x, bottom + 11, formatTick(v), { 'font-size': 9, fill: '#888', 'text-anchor': 'middle' });
  }
}

function truncate(text: string, chars: number): string {
  return text.length > chars ? `${text.slice(0, chars - 1)}…` : text;
}

/** The SVG document for a record. */
export function renderChart(record: RunRecord): string {
  const recordOrder = record.targets.map((t) => t.name);
  const allTargets = sortTargets([...recordOrder, ...record.results.map((r) => r.target)], recordOrder);
  const loadTargets = allTargets.filter((t) => record.results.some((r) => r.target === t && r.status === 'ok' && r.load !== undefined));
  const groups = loadGroups(record, loadTargets);
  const idle = idleRows(
    record,
    allTargets.filter((t) => record.results.some((r) => r.target === t && r.status === 'ok' && r.idle !== undefined)),
  );
  const legendTargets = allTargets.filter((t) => loadTargets.includes(t) || idle?.rows.some((row) => row.target === t && row.pick));
  const colour = (t: string): string => colourFor(t, allTargets);

  const svg = new Svg();
  let y = MARGIN + 18;

  // Title and machine.
  const date = record.date.replace('T', ' ').slice(0, 16) + ' UTC';
  const m = record.machine;
  svg.text(MARGIN, y, `stompbox benchmark — ${date}${record.quick ? ' — quick (smoke) run' : ''}`, { 'font-size': 20, 'font-weight': 'bold', fill: '#111' });
  y += 22;
  const load = `load average ${m.loadAverageStart.toFixed(2)}${m.loadAverageEnd !== undefined ? ` → ${m.loadAverageEnd.toFixed(2)}` : ''}`;
  svg.text(MARGIN, y, `${m.cpuModel}, ${m.cpuCount} cores, ${(m.totalMemBytes / 2 ** 30).toFixed(1)} GiB, ${m.os}, node ${m.node}; ${load}`, {
    'font-size': 13,
    fill: '#333',
  });
  y += 18;
  const repeated = record.results.some((r) => r.repeat > 1);
  const notes = [
    'Each shape has its own linear scale: compare bars within a shape, not across shapes.',
    repeated ? 'Repeated runs: the bar is the run with the median msg/s; the whisker spans min–max of the runs.' : '',
  ].filter((line) => line !== '');
  svg.text(MARGIN, y, notes.join(' '), { 'font-size': 12, fill: '#555' });
  y += 20;

  // Legend.
  let lx = MARGIN;
  for (const target of legendTargets) {
    const w = 14 + 6 + textWidth(target, 12) + 18;
    if (lx + w > WIDTH - MARGIN) {
      lx = MARGIN;
      y += 20;
    }
    svg.rect(lx, y - 11, 14, 14, colour(target), ' rx="2"');
    svg.text(lx + 20, y, target, { 'font-size': 12, fill: '#222' });
    lx += w;
  }
  y += 16;

  const anyNoisy = groups.some((g) => g.rows.some((row) => row.pick && isNoisy(row.pick.run)));
  const anyLost = groups.some((g) => g.rows.some((row) => row.pick && row.pick.run.load!.lost > 0));

  if (groups.length > 0) {
    // Panel headings.
    y += 16;
    svg.text(RATE_X, y, 'Delivered msg/s (higher is better)', { 'font-size': 15, 'font-weight': 'bold', fill: '#111' });
    svg.text(LAT_X, y, 'p99 latency, ms (lower is better)', { 'font-size': 15, 'font-weight': 'bold', fill: '#111' });
    y += 15;
    svg.text(RATE_X, y, `label: msg/s · ratio to ${REFERENCE} for the shape`, { 'font-size': 11, fill: '#555' });
    svg.text(LAT_X, y, 'black tick in the bar: p50', { 'font-size': 11, fill: '#555' });
    y += 6;

    // Label texts first: the room they need sets the bars' length.
    const rateLabels = new Map<Row, BarSpec>();
    const latLabels = new Map<Row, BarSpec>();
    for (const group of groups) {
      const ref = group.rows.find((row) => row.target === REFERENCE)?.pick?.run.load?.deliveredPerSecond;
      for (const row of group.rows) {
        if (!row.pick) continue;
        const run = row.pick.run;
        const report = run.load!;
        const rates = row.pick.runs.map((r) => r.load!.deliveredPerSecond);
        const ratio =
          row.target === REFERENCE ? ' · reference' : ref !== undefined && ref > 0 ? ` · ${formatRatio(report.deliveredPerSecond / ref)}× ${REFERENCE}` : '';
        const runsNote = row.pick.runs.length > 1 ? ` (median of ${row.pick.runs.length})` : '';
        const noisy = isNoisy(run) ? ' *' : '';
        rateLabels.set(row, {
          value: report.deliveredPerSecond,
          min: Math.min(...rates),
          max: Math.max(...rates),
          label: `${formatRate(report.deliveredPerSecond)}${ratio}${runsNote}${noisy}`,
          warning: report.lost > 0 ? `lost ${report.lost.toLocaleString('en-US')}` : undefined,
          colour: colour(row.target),
        });
        const p99s = row.pick.runs.map((r) => r.load!.latency.p99Ms).filter(Number.isFinite);
        const hasLatency = report.latency.count > 0 && Number.isFinite(report.latency.p99Ms);
        latLabels.set(row, {
          value: hasLatency ? report.latency.p99Ms : 0,
          min: p99s.length > 1 ? Math.min(...p99s) : undefined,
          max: p99s.length > 1 ? Math.max(...p99s) : undefined,
          tick: hasLatency ? report.latency.p50Ms : undefined,
          label: hasLatency ? `${formatMs(report.latency.p99Ms)} ms (p50 ${formatMs(report.latency.p50Ms)})` : 'no latency samples',
          colour: colour(row.target),
        });
      }
    }
    const reserve = (specs: Iterable<BarSpec>): number =>
      Math.max(
        80,
        ...[...specs].map((s) => textWidth(s.label, VALUE_FONT_SIZE) + (s.warning ? textWidth(` · ${s.warning}`, VALUE_FONT_SIZE) : 0) + 12),
      );
    const rateBarMax = Math.max(150, RATE_W - reserve(rateLabels.values()));
    const latBarMax = Math.max(120, LAT_W - reserve(latLabels.values()));

    for (const group of groups) {
      y += 24;
      svg.text(MARGIN, y, group.shape, { 'font-size': 14, 'font-weight': 'bold', fill: '#111' });
      svg.text(MARGIN + textWidth(group.shape, 14) + 8, y, group.description, { 'font-size': 12, fill: '#555' });
      y += 8;
      const top = y;
      const bottom = y + group.rows.length * ROW;
      const rateSpecs = group.rows.map((row) => rateLabels.get(row)).filter((s): s is BarSpec => s !== undefined);
      const latSpecs = group.rows.map((row) => latLabels.get(row)).filter((s): s is BarSpec => s !== undefined);
      const rateMax = Math.max(0, ...rateSpecs.map((s) => Math.max(s.value, s.max ?? 0)));
      const latMax = Math.max(0, ...latSpecs.map((s) => Math.max(s.value, s.max ?? 0)));
      drawGrid(svg, RATE_X, top, bottom, rateBarMax, rateMax);
      drawGrid(svg, LAT_X, top, bottom, latBarMax, latMax);
      for (const row of group.rows) {
        const rowY = y + (ROW - BAR_H) / 2;
        svg.text(RATE_X - 8, rowY + BAR_H - 3, row.target, { 'font-size': 12, fill: '#222', 'text-anchor': 'end' });
        const rate = rateLabels.get(row);
        const lat = latLabels.get(row);
        if (rate && lat) {
          drawBar(svg, RATE_X, rowY, rateBarMax, rateMax, rate);
          drawBar(svg, LAT_X, rowY, latBarMax, latMax, lat);
        } else {
          svg.text(RATE_X + 6, rowY + BAR_H - 3, truncate(row.missing ?? 'no figures', 100), { 'font-size': 11, fill: '#888', 'font-style': 'italic' });
        }
        y += ROW;
      }
      y += 14; // tick labels
    }
  }

  if (idle !== null) {
    y += 34;
    svg.text(RATE_X, y, 'Idle connections: broker RSS per connection, KiB (lower is better)', { 'font-size': 15, 'font-weight': 'bold', fill: '#111' });
    y += 15;
    svg.text(RATE_X, y, `${idle.shape}: ${idle.description}`, { 'font-size': 11, fill: '#555' });
    y += 8;
    const refPerConn = idle.rows.find((row) => row.target === REFERENCE)?.pick?.run.idle?.rssPerConnectionBytes;
    const specs = new Map<Row, BarSpec>();
    for (const row of idle.rows) {
      if (!row.pick) continue;
      const report = row.pick.run.idle!;
      const kib = report.rssPerConnectionBytes / 1024;
      const values = row.pick.runs.map((r) => r.idle!.rssPerConnectionBytes / 1024);
      const ratio =
        row.target === REFERENCE
          ? ' · reference'
          : refPerConn !== undefined && refPerConn > 0
            ? ` · ${formatRatio(report.rssPerConnectionBytes / refPerConn)}× ${REFERENCE}`
            : '';
      specs.set(row, {
        value: kib,
        min: Math.min(...values),
        max: Math.max(...values),
        label: `${kib.toFixed(1)} KiB${ratio} · ${report.opened.toLocaleString('en-US')} connections${row.pick.runs.length > 1 ? ` (median of ${row.pick.runs.length})` : ''}`,
        colour: colour(row.target),
      });
    }
    const labelRoom = Math.max(80, ...[...specs.values()].map((s) => textWidth(s.label, VALUE_FONT_SIZE) + 12));
    const barMax = Math.max(150, RATE_W - labelRoom);
    const max = Math.max(0, ...[...specs.values()].map((s) => Math.max(s.value, s.max ?? 0)));
    drawGrid(svg, RATE_X, y, y + idle.rows.length * ROW, barMax, max);
    for (const row of idle.rows) {
      const rowY = y + (ROW - BAR_H) / 2;
      svg.text(RATE_X - 8, rowY + BAR_H - 3, row.target, { 'font-size': 12, fill: '#222', 'text-anchor': 'end' });
      const spec = specs.get(row);
      if (spec) drawBar(svg, RATE_X, rowY, barMax, max, spec);
      else svg.text(RATE_X + 6, rowY + BAR_H - 3, truncate(row.missing ?? 'no figures', 100), { 'font-size': 11, fill: '#888', 'font-style': 'italic' });
      y += ROW;
    }
    y += 14;
  }

  if (groups.length === 0 && idle === null) {
    y += 30;
    svg.text(MARGIN, y, 'No load or idle figures in this record.', { 'font-size': 14, fill: '#555' });
  }

  // Footnotes.
  const footnotes = [
    anyNoisy ? `* othr% > ${NOISY_OTHER_CPU}: other work shared the machine during this run; its figures are low and not comparable.` : '',
    anyLost ? 'lost: messages sent but never received after the drain.' : '',
    groups.some((g) => g.shape.startsWith('fanout')) ? 'fanout: msg/s counts deliveries (publishes/s × subscribers).' : '',
  ].filter((line) => line !== '');
  y += 14;
  for (const line of footnotes) {
    y += 16;
    svg.text(MARGIN, y, line, { 'font-size': 11, fill: '#555' });
  }
  y += MARGIN;

  const height = Math.ceil(y);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="${escapeXml(FONT)}">`,
    `<rect x="0" y="0" width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    ...svg.parts,
    '</svg>',
    '',
  ].join('\n');
}

/** The SVG path next to a results JSON: results-<stamp>.json → results-<stamp>.svg. */
export function chartPathFor(jsonPath: string): string {
  return jsonPath.replace(/\.json$/i, '') + '.svg';
}

/** Writes the chart of a record next to its JSON file; returns the SVG path. */
export async function writeChart(record: RunRecord, jsonPath: string, svgPath = chartPathFor(jsonPath)): Promise<string> {
  await writeFile(svgPath, renderChart(record));
  return svgPath;
}

async function newestResults(): Promise<string> {
  const names = (await readdir(DOCS_DIR)).filter((name) => /^results-.*\.json$/.test(name)).sort();
  const newest = names.at(-1);
  if (newest === undefined) throw new Error(`no results-*.json in ${DOCS_DIR}`);
  return join(DOCS_DIR, newest);
}

const USAGE = `Usage: npx tsx scripts/bench/chart.ts [RESULTS.json] [--out FILE.svg]

  RESULTS.json   a record written by run.ts (default: the newest docs/bench/results-*.json)
  --out FILE     the SVG (default: the JSON's path with .svg)
`;

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { out: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (positionals.length > 1) throw new Error(`one results file at a time\n${USAGE}`);
  const jsonPath = positionals[0] !== undefined ? resolve(positionals[0]) : await newestResults();
  const record = JSON.parse(await readFile(jsonPath, 'utf8')) as RunRecord;
  if (!Array.isArray(record.results) || typeof record.machine !== 'object') throw new Error(`${jsonPath}: not a run.ts results record`);
  process.stdout.write(`wrote ${await writeChart(record, jsonPath, values.out ?? chartPathFor(jsonPath))}\n`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(`chart: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}

/*
 * The chaos matrix's output: one table per scenario (a row per run and
 * mode), a one-line verdict per scenario, and the files in docs/chaos/.
 * The verdict only reads the counts; it never excuses a loss.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Scenario } from './faults.js';
import type { PairResult, RunResult, RunSettings } from './run-once.js';
import { PRE_FAULT_MARGIN_MS } from './tally.js';

export interface MatrixRecord {
  date: string;
  command: string;
  /** The tree measured: `git describe`-like, with "+changes" when the worktree was dirty. */
  tree: string;
  machine: { cpus: number; node: string; loadAverageStart: number; loadAverageEnd?: number };
  settings: Omit<RunSettings, 'baseDir'> & { runs: number; quick: boolean };
  scenarios: Array<{ name: string; summary: string; verdict: Verdict; runs: RunResult[] }>;
}

export interface Verdict {
  pass: boolean;
  line: string;
}

const HEADER = ['scenario', 'run', 'mode', 'receipted', 'delivered', 'lost', 'dup same id', 'dup other id', 'dup pre-fault', 'reordered', 'refused', 'unconfirmed', 'stranded'];

function refusedCell(refused: Record<string, number>): string {
  const entries = Object.entries(refused);
  if (entries.length === 0) return '0';
  return entries.map(([code, count]) => `${count} ${code.replace(/^ERR_/, '')}`).join(', ');
}

function row(run: RunResult, pair: PairResult): string[] {
  return [
    run.scenario,
    String(run.run),
    pair.mode,
    String(pair.receipted),
    String(pair.delivered),
    pair.lost === null ? 'n/a' : String(pair.lost),
    String(pair.dupSameId),
    String(pair.dupOtherId),
    String(pair.dupPreFault),
    String(pair.reordered),
    refusedCell(pair.refused),
    String(pair.unconfirmed),
    String(pair.stranded),
  ];
}

function markdownTable(rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(HEADER), line(HEADER.map(() => '---')), ...rows.map(line)].join('\n');
}

/** The table of one scenario's runs; a run that could not measure says why under it. */
export function scenarioTable(runs: readonly RunResult[]): string {
  const rows = runs.flatMap((run) => run.pairs.map((pair) => row(run, pair)));
  const errors = runs.filter((run) => run.error !== undefined).map((run) => `- run ${run.run}: **${run.error}**`);
  return [rows.length > 0 ? markdownTable(rows) : '(no counts)', ...(errors.length > 0 ? ['', ...errors] : [])].join('\n');
}

const sum = (pairs: readonly PairResult[], pick: (pair: PairResult) => number): number => pairs.reduce((total, pair) => total + pick(pair), 0);

export function verdict(scenario: Scenario, runs: readonly RunResult[]): Verdict {
  const problems: string[] = [];
  const facts: string[] = [];
  const errors = runs.filter((run) => run.error !== undefined);
  for (const run of errors) problems.push(`run ${run.run}: ${run.error}`);
  const measured = runs.filter((run) => run.error === undefined);
  // Under ack:auto a MESSAGE counts as delivered once written (STOMP 1.2 "SUBSCRIBE"): what was on
  // the wire when the receiver's own connection dropped is that session's, not a broken RECEIPT.
  // It stays in the table's lost column and is named here; every other loss fails the scenario.
  const onWire = (pair: PairResult): number => (pair.mode === 'auto' ? Math.min(pair.lostAtDrop, pair.lost ?? 0) : 0);
  const lostPerRun = measured.map((run) => sum(run.pairs, (pair) => (pair.lost ?? 0) - onWire(pair)));
  const autoOnWire = sum(measured.flatMap((run) => run.pairs), onWire);
  const lossyRuns = lostPerRun.filter((lost) => lost > 0).length;
  if (lossyRuns > 0) problems.push(`lost ${lostPerRun.join(' / ')} (receipted, never received) in ${lossyRuns} of ${measured.length} runs`);
  else if (measured.length > 0) facts.push(`0 lost in ${measured.length} of ${measured.length} runs`);
  if (autoOnWire > 0) {
    facts.push(`${autoOnWire} ack:auto messages written to a receiver connection that then dropped (delivered by auto's definition; counted in the lost column)`);
  }
  const all = measured.flatMap((run) => run.pairs);
  const stranded = sum(all, (pair) => pair.stranded);
  if (stranded > 0) problems.push(`${stranded} receipted messages reached a live subscriber only after it reconnected (stranded)`);
  const dupSame = sum(all, (pair) => pair.dupSameId);
  const dupOther = sum(all, (pair) => pair.dupOtherId);
  if (dupOther > 0) problems.push(`${dupOther} duplicates with another message-id (a client cannot drop them)`);
  const dupPre = sum(all, (pair) => pair.dupPreFault);
  if (dupPre > 0) problems.push(`${dupPre} duplicates of messages received more than ${PRE_FAULT_MARGIN_MS} ms before the fault (not in flight at it)`);
  if (scenario.noDuplicates === true && dupSame + dupOther > 0) problems.push(`${dupSame + dupOther} duplicates after a graceful restart`);
  else if (measured.length > 0) facts.push(`duplicates ${dupSame} with the same message-id${dupPre === 0 && dupSame > 0 ? ' (all of messages in flight at the fault)' : ''}`);
  const foreign = sum(all, (pair) => pair.foreign);
  if (foreign > 0) problems.push(`${foreign} deliveries of another pair's messages`);
  const reordered = sum(all, (pair) => pair.reordered);
  if (reordered > 0) facts.push(`reordered ${reordered}`);
  const refusedDelivered = sum(all, (pair) => pair.deliveredUnreceipted);
  if (refusedDelivered > 0) facts.push(`${refusedDelivered} delivered without a RECEIPT (refused or unconfirmed)`);
  if (scenario.kind === 'inbox-full' && measured.length > 0) {
    const full = sum(all, (pair) => pair.refused['ERR_INBOX_FULL'] ?? 0);
    if (full === 0) problems.push('no SEND refused with ERR_INBOX_FULL: the cap did not refuse');
    else facts.push(`${full} refused with ERR_INBOX_FULL`);
  }
  const pass = problems.length === 0;
  return { pass, line: `${scenario.name}: ${pass ? 'PASS' : 'FAIL'} — ${[...problems, ...facts].join('; ')}` };
}

/** The whole record as markdown: verdicts first, then each scenario's table, what happened and where the logs are. */
export function markdown(record: MatrixRecord): string {
  const out: string[] = [
    `# Chaos matrix, ${record.date}`,
    '',
    `Tree: ${record.tree}.`,
    '',
    `\`${record.command}\` — ${record.settings.runs} run(s) per scenario${record.settings.quick ? ' (--quick)' : ''}; ` +
      `${record.settings.ratePerS} receipted SEND/s per pair, 3 pairs; NODE_BEAT_MS ${record.settings.beatMs}, NODE_TIMEOUT_MS ${record.settings.timeoutMs}; ` +
      `${record.machine.cpus} cores, node ${record.machine.node}, load average ${record.machine.loadAverageStart.toFixed(2)} → ${record.machine.loadAverageEnd?.toFixed(2) ?? '?'}.`,
    '',
    '## Verdicts',
    '',
    ...record.scenarios.map((scenario) => `- ${scenario.verdict.line}`),
  ];
  for (const scenario of record.scenarios) {
    out.push('', `## ${scenario.name}`, '', scenario.summary, '', scenario.verdict.line, '', scenarioTable(scenario.runs));
    for (const run of scenario.runs) {
      const details = [...run.events.map((event) => `  - ${event}`), ...run.notes.map((line) => `  - ${line}`)];
      const logs = Object.entries(run.logSummary).map(([line, count]) => `  - log ${count}× ${line}`);
      out.push('', `- run ${run.run} (${(run.durationMs / 1000).toFixed(0)} s)${run.logDir ? `, logs kept in \`${run.logDir}\`` : ''}:`, ...details, ...logs);
    }
  }
  return `${out.join('\n')}\n`;
}

/** Writes results-<stamp>.md and .json; returns their paths. */
export function writeRecord(dir: string, record: MatrixRecord): string[] {
  mkdirSync(dir, { recursive: true });
  const stamp = record.date.replace(/:/g, '').slice(0, 17);
  const md = join(dir, `results-${stamp}.md`);
  const json = join(dir, `results-${stamp}.json`);
  writeFileSync(md, markdown(record));
  writeFileSync(json, `${JSON.stringify(record, null, 2)}\n`);
  return [md, json];
}

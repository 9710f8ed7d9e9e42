/*
 * The chaos matrix (issue 9): every scenario of faults.ts, each run on a
 * fresh private redis-server and two real node processes, under a steady
 * receipted load; prints a table per scenario and a verdict, and writes
 * docs/chaos/results-<timestamp>.md and .json.
 *
 *   npm run chaos                                   # every scenario, 3 runs each
 *   npm run chaos -- --quick                        # 1 run each, Redis outages of 1 and 10 s only
 *   npm run chaos -- --scenario node-kill --runs 5
 *   npm run chaos -- --list
 *
 * Exit code: 0 when every verdict passes, 1 otherwise, 2 for a usage error.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmdirSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SCENARIOS, findScenarios, type Scenario } from './faults.js';
import { scenarioTable, verdict, writeRecord, type MatrixRecord } from './report.js';
import { activeCleanups, runOnce, type RunResult, type RunSettings } from './run-once.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DOCS_DIR = join(REPO_ROOT, 'docs/chaos/');
const log = (line: string): void => void process.stderr.write(`${line}\n`);

function usage(message: string): never {
  process.stderr.write(`chaos: ${message}\n(see the comment at the top of scripts/chaos/run.ts, or --list)\n`);
  process.exit(2);
}

function parse(): { scenarios: Scenario[]; runs: number; quick: boolean; rate: number; write: boolean } {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        scenario: { type: 'string', multiple: true },
        runs: { type: 'string' },
        quick: { type: 'boolean', default: false },
        rate: { type: 'string' },
        list: { type: 'boolean', default: false },
        'no-write': { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    usage(error instanceof Error ? error.message : String(error));
  }
  if (values.list) {
    for (const scenario of SCENARIOS) process.stdout.write(`${scenario.name.padEnd(20)} ${scenario.quick ? 'quick ' : '      '}${scenario.summary}\n`);
    process.exit(0);
  }
  const names = (values.scenario ?? []).flatMap((name) => name.split(',')).filter((name) => name !== '');
  const runs = Number(values.runs ?? (values.quick ? 1 : 3));
  const rate = Number(values.rate ?? 70);
  if (!Number.isInteger(runs) || runs < 1 || runs > 20) usage('--runs must be an integer 1..20');
  if (!(rate > 0 && rate <= 2000)) usage('--rate must be 1..2000 SEND/s per pair');
  try {
    return { scenarios: findScenarios(names, values.quick), runs, quick: values.quick, rate, write: !values['no-write'] };
  } catch (error) {
    usage(error instanceof Error ? error.message : String(error));
  }
}

/** Which code was measured: the commit, the main commit it is based on, and whether the worktree had changes. */
function describeTree(): string {
  const git = (...args: string[]): string => execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    const dirty = git('status', '--porcelain', '--untracked-files=no') !== '' ? ', with uncommitted changes' : '';
    let base = '';
    try {
      base = `, on main ${git('log', '-1', '--format=%h (%s)', git('merge-base', 'HEAD', 'main'))}`;
    } catch {
      // no main branch here
    }
    return `${git('rev-parse', '--abbrev-ref', 'HEAD')} ${git('rev-parse', '--short', 'HEAD')}${base}${dirty}`;
  } catch {
    return 'unknown (no git)';
  }
}

async function main(): Promise<void> {
  const options = parse();
  const baseDir = mkdtempSync(join(tmpdir(), 'stompbox-chaos-'));
  const settings: RunSettings = { ratePerS: options.rate, warmupMs: 3000, afterMs: 4000, drainMs: 60_000, quietMs: 8000, beatMs: 2000, timeoutMs: 6000, baseDir };
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    log(`\n${signal}: stopping the cluster and cleaning up`);
    // Bounded: whatever is still running after this is SIGKILLed by the exit hooks (cluster.ts, redis-server.ts).
    const bound = setTimeout(() => process.exit(130), 10_000);
    void Promise.allSettled([...activeCleanups].map((cleanup) => cleanup())).then(() => {
      clearTimeout(bound);
      rmSync(baseDir, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const { baseDir: _tempDir, ...recorded } = settings;
  const record: MatrixRecord = {
    date: new Date().toISOString(),
    tree: describeTree(),
    command: `npm run chaos --${process.argv.slice(2).map((arg) => ` ${arg}`).join('')}`.replace(/ --$/, ''),
    machine: { cpus: cpus().length, node: process.version, loadAverageStart: loadavg()[0]! },
    settings: { ...recorded, runs: options.runs, quick: options.quick },
    scenarios: [],
  };
  const started = Date.now();
  for (const scenario of options.scenarios) {
    const runs: RunResult[] = [];
    for (let run = 1; run <= options.runs && !interrupted; run++) {
      log(`== ${scenario.name} run ${run}/${options.runs} (${((Date.now() - started) / 1000).toFixed(0)} s into the matrix)`);
      const result = await runOnce(scenario, run, settings, log);
      if (interrupted) return;
      runs.push(result);
      if (result.error !== undefined) log(`   error: ${result.error}`);
    }
    const judged = verdict(scenario, runs);
    record.scenarios.push({ name: scenario.name, summary: scenario.summary, verdict: judged, runs });
    process.stdout.write(`\n${scenarioTable(runs)}\n\n${judged.line}\n`);
  }
  record.machine.loadAverageEnd = loadavg()[0]!;
  process.stdout.write(`\n## Verdicts (${((Date.now() - started) / 60_000).toFixed(1)} min)\n\n${record.scenarios.map((s) => `- ${s.verdict.line}`).join('\n')}\n`);
  if (options.write) for (const file of writeRecord(DOCS_DIR, record)) log(`wrote ${file}`);
  else log('not written (--no-write)');
  // Dirs of failed runs stay (their logs); the base dir goes only when empty.
  try {
    rmdirSync(baseDir);
  } catch {
    log(`logs of failed runs are under ${baseDir}`);
  }
  process.exitCode = record.scenarios.every((scenario) => scenario.verdict.pass) ? 0 : 1;
}

main().catch((error: unknown) => {
  log(`chaos: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});

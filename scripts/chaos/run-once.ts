/*
 * One run of one scenario: a fresh cluster, the load, the fault, the wait
 * for every receipted message, the counts. Every phase is bounded in time;
 * the cluster is torn down whatever happens.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Cluster } from './cluster.js';
import { INBOX_FULL_SENDS, type Scenario } from './faults.js';
import { ACK_MODES, Receiver, Sender, sleep } from './load.js';
import { PULL_MODES, Puller } from './pull.js';
import { PairTally, type PairCounts } from './tally.js';

export interface RunSettings {
  /** SENDs per second per pair. */
  ratePerS: number;
  warmupMs: number;
  /** Load after the fault ended. */
  afterMs: number;
  /** Bound on the wait for every receipted message. */
  drainMs: number;
  /** The wait gives up (or renews the receivers) after this long without a new delivery. */
  quietMs: number;
  beatMs: number;
  timeoutMs: number;
  /** Where each run's temp dir goes. */
  baseDir: string;
}

export interface PairResult extends PairCounts {
  mode: string;
  /** Connections the receiver (or HTTP puller) needed, the first included; pullers: claims. */
  receiverConnections: number;
  senderConnections: number;
}

export interface RunResult {
  scenario: string;
  run: number;
  startedAt: string;
  durationMs: number;
  /** The run could not measure what it should (setup failed, API missing...). */
  error?: string;
  notes: string[];
  /** Process events with their time since the cluster started. */
  events: string[];
  pairs: PairResult[];
  /** Kept only when the run failed (else removed). */
  logDir?: string;
  /** Node log lines at warn level or above, and recovery lines, by node and message. */
  logSummary: Record<string, number>;
}

/** Cleanups of the run in progress, for Ctrl-C. */
export const activeCleanups = new Set<() => Promise<void>>();

interface Load {
  tallies: PairTally[];
  senders: Sender[];
  receivers: Receiver[];
  pullers: Puller[];
}

function buildLoad(scenario: Scenario, cluster: Cluster, settings: RunSettings): Load {
  const pull = scenario.kind === 'pull';
  const modes: readonly string[] = pull ? PULL_MODES : ACK_MODES;
  const tallies = modes.map((mode) => new PairTally(mode));
  const senders = tallies.map(
    (tally) =>
      new Sender({
        pair: tally.pair,
        login: `send-${tally.pair}`,
        receiver: `recv-${tally.pair}`,
        urls: () => cluster.wsUrls('A'),
        tally,
        ratePerS: settings.ratePerS,
        ...(scenario.kind === 'inbox-full' ? { limit: INBOX_FULL_SENDS } : {}),
      }),
  );
  const receivers = pull
    ? []
    : ACK_MODES.map((ackMode, i) => new Receiver({ pair: ackMode, login: `recv-${ackMode}`, ackMode, urls: () => cluster.wsUrls('B'), tally: tallies[i]! }));
  const pullers = pull
    ? PULL_MODES.map((mode, i) => new Puller({ pair: mode, login: `recv-${mode}`, mode, urls: () => cluster.httpUrls('B'), tally: tallies[i]! }))
    : [];
  return { tallies, senders, receivers, pullers };
}

export async function runOnce(scenario: Scenario, run: number, settings: RunSettings, log: (line: string) => void): Promise<RunResult> {
  const started = Date.now();
  const dir = join(settings.baseDir, `${scenario.name}-${run}`);
  const result: RunResult = { scenario: scenario.name, run, startedAt: new Date(started).toISOString(), durationMs: 0, notes: [], events: [], pairs: [], logSummary: {} };
  const note = (line: string): void => {
    result.notes.push(line);
    log(`   ${line}`);
  };
  let cluster: Cluster | undefined;
  let load: Load | undefined;
  const teardown = async (): Promise<void> => {
    await Promise.allSettled([...(load?.senders.map((s) => s.stop(0)) ?? []), ...(load?.receivers.map((r) => r.stop()) ?? []), ...(load?.pullers.map((p) => p.stop()) ?? [])]);
    await cluster?.dispose();
  };
  activeCleanups.add(teardown);
  try {
    cluster = await Cluster.start({ dir, beatMs: settings.beatMs, timeoutMs: settings.timeoutMs, nodeEnv: scenario.nodeEnv ?? {}, redis: scenario.redis ?? 'single' });
    load = buildLoad(scenario, cluster, settings);
    if (scenario.kind === 'live') await runLive(scenario, cluster, load, settings, note);
    else if (scenario.kind === 'inbox-full') await runInboxFull(load, settings, note);
    else await runPull(load, settings, note);
    const missing = load.pullers.find((puller) => puller.apiMissing !== undefined)?.apiMissing;
    if (missing !== undefined) result.error = missing;
  } catch (error) {
    result.error = `run failed: ${error instanceof Error ? error.message : String(error)}`;
  } finally {
    await teardown().catch((error: unknown) => note(`teardown: ${String(error)}`));
    activeCleanups.delete(teardown);
  }
  result.durationMs = Date.now() - started;
  if (cluster !== undefined) {
    result.events = cluster.events;
    result.logSummary = summariseLogs(cluster);
  }
  if (load !== undefined) {
    const { senders, receivers, pullers } = load;
    result.pairs = load.tallies.map((tally, i) => ({
      mode: tally.pair,
      ...tally.counts(result.error === undefined),
      senderConnections: senders[i]!.connections,
      receiverConnections: receivers[i]?.connections ?? pullers[i]?.claims ?? 0,
    }));
    for (const pair of result.pairs) if ((pair.lost ?? 0) > 0) note(`${pair.mode}: lost sequence numbers ${pair.lostSample.join(', ')}${(pair.lost ?? 0) > pair.lostSample.length ? ', …' : ''}`);
    for (const pair of result.pairs) {
      if (pair.dupSample.length === 0 || !(scenario.noDuplicates === true || pair.dupOtherId > 0 || pair.dupPreFault > 0)) continue;
      const where = (ms: number, connection: number): string => `${ms} ms after the fault on connection ${connection}`;
      for (const d of pair.dupSample) note(`${pair.mode}: ${d.sameId ? 'same' : 'other'}-id duplicate of ${d.seq}: first ${where(d.firstMs, d.firstConnection)}, again ${where(d.againMs, d.againConnection)}`);
    }
    for (const sender of senders) if (sender.otherErrors.size > 0) note(`${sender.login}: ERROR frames naming no SEND: ${JSON.stringify(Object.fromEntries(sender.otherErrors))}`);
    for (const puller of pullers) {
      note(`${puller.mode}: ${puller.claims} claims, ${puller.abandoned} abandoned, ${puller.dropped} cut before the answer was read`);
      if (puller.failures.size > 0) note(`${puller.mode}: failed calls ${JSON.stringify(Object.fromEntries(puller.failures))}`);
    }
  }
  if (runFailed(scenario, result)) {
    result.logDir = dir;
    log(`   logs kept: ${cluster?.logFiles.join(' ') ?? dir}`);
  } else rmSync(dir, { recursive: true, force: true });
  return result;
}

/** Whatever the verdict counts as a failure keeps the run's logs. */
export function runFailed(scenario: Scenario, result: RunResult): boolean {
  if (result.error !== undefined) return true;
  return result.pairs.some(
    (pair) =>
      (pair.lost ?? 0) > 0 ||
      pair.stranded > 0 ||
      pair.dupOtherId > 0 ||
      pair.dupPreFault > 0 ||
      pair.foreign > 0 ||
      (scenario.noDuplicates === true && pair.dupSameId > 0),
  );
}

async function runLive(scenario: Scenario, cluster: Cluster, load: Load, settings: RunSettings, note: (line: string) => void): Promise<void> {
  await Promise.all(load.receivers.map((receiver) => receiver.start()));
  for (const sender of load.senders) sender.start();
  await sleep(settings.warmupMs);
  for (const tally of load.tallies) tally.markFault();
  try {
    await scenario.fault?.({ cluster, receivers: load.receivers, nodeTimeoutMs: settings.timeoutMs, note });
  } catch (error) {
    note(`the fault did not go as planned: ${error instanceof Error ? error.message : String(error)}`);
  }
  await sleep(settings.afterMs);
  await Promise.all(load.senders.map((sender) => sender.stop()));
  await drain(load, settings, note);
}

async function runInboxFull(load: Load, settings: RunSettings, note: (line: string) => void): Promise<void> {
  for (const sender of load.senders) sender.start();
  // Bounded: at the rate, plus time for the reconnects that refusals cause.
  const deadline = Date.now() + (INBOX_FULL_SENDS / settings.ratePerS) * 1000 + 30_000;
  while (!load.senders.every((sender) => sender.done) && Date.now() < deadline) await sleep(100);
  if (!load.senders.every((sender) => sender.done)) note(`senders not done after the bound: ${load.senders.map((s) => `${s.attempts} sent`).join(', ')}`);
  await Promise.all(load.senders.map((sender) => sender.stop()));
  await Promise.all(load.receivers.map((receiver) => receiver.start()));
  await drain(load, settings, note);
}

async function runPull(load: Load, settings: RunSettings, note: (line: string) => void): Promise<void> {
  for (const sender of load.senders) sender.start();
  for (const puller of load.pullers) puller.start();
  // The load lasts as long as a live scenario's; a missing API ends it early.
  const until = Date.now() + settings.warmupMs + 8000 + settings.afterMs;
  while (Date.now() < until && load.pullers.every((puller) => puller.apiMissing === undefined)) await sleep(100);
  await Promise.all(load.senders.map((sender) => sender.stop()));
  if (load.pullers.some((puller) => puller.apiMissing !== undefined)) return;
  await drain(load, settings, note);
  await Promise.all(load.pullers.map((puller) => puller.stop()));
}

/**
 * Waits until every receipted message was received: bounded by `drainMs`,
 * and by `quietMs` without any new delivery. If some are still missing,
 * the receivers start fresh sessions (as a user reloading the page) and the
 * wait goes on: what arrives then was held back from a live subscriber
 * ("stranded"); what never arrives is lost.
 */
async function drain(load: Load, settings: RunSettings, note: (line: string) => void): Promise<void> {
  const deadline = Date.now() + settings.drainMs;
  const missing = (): number => load.tallies.reduce((sum, tally) => sum + tally.missing(), 0);
  const wait = async (): Promise<void> => {
    const since = Date.now();
    while (missing() > 0 && Date.now() < deadline) {
      const last = Math.max(since, ...load.tallies.map((tally) => tally.lastDeliveryAt));
      if (Date.now() - last > settings.quietMs) return;
      await sleep(100);
    }
  };
  await wait();
  if (missing() === 0 || load.receivers.length === 0) return;
  note(`${missing()} receipted messages missing after the wait; the receivers start fresh sessions`);
  for (const tally of load.tallies) tally.markStrandedPhase();
  await Promise.all(load.receivers.map((receiver) => receiver.renew().catch((error: unknown) => note(String(error)))));
  await wait();
}

/** Warn/error lines and recovery lines of every node, counted by node and message: where a loss starts. */
function summariseLogs(cluster: Cluster): Record<string, number> {
  const summary: Record<string, number> = {};
  for (const { node, record } of cluster.records) {
    const level = typeof record.level === 'number' ? record.level : 0;
    const msg = typeof record.msg === 'string' ? record.msg : '';
    if (level < 40 && !/recover|reap|re-?regist|dead|shutting down/i.test(msg)) continue;
    const key = `${node} ${level >= 50 ? 'error' : level >= 40 ? 'warn' : 'info'}: ${msg}`;
    summary[key] = (summary[key] ?? 0) + 1;
  }
  return summary;
}

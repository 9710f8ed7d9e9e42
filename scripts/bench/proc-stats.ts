/*
 * CPU and memory of broker processes during a run, from /proc (Linux):
 * CPU = utime + stime of /proc/<pid>/stat (clock ticks), as % of one core
 * over the sampled span; RSS = VmRSS of /proc/<pid>/status. Sampled every
 * 500 ms by default; reports average CPU % and peak RSS per pid and summed.
 *
 * Module: `const sampler = new ProcSampler([pid]); sampler.start(); ...; const stats = sampler.stop();`
 * CLI:    npx tsx scripts/bench/proc-stats.ts --pid 1234 [--pid 5678] [--seconds 10] [--interval 500]
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

/** USER_HZ: clock ticks per second of /proc/<pid>/stat times. */
export const CLOCK_TICKS = ((): number => {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process (all its threads) in seconds; null when it is gone. */
export function readCpuSeconds(pid: number): number | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / CLOCK_TICKS;
}

/** Busy CPU time of the whole machine (all cores, everything but idle and iowait), seconds. */
export function readSystemBusySeconds(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const ticks = line.trim().split(/\s+/).slice(1).map(Number);
    const total = ticks.slice(0, 8).reduce((sum, value) => sum + value, 0);
    const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
    return (total - idle) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** VmRSS in bytes; null when the process is gone. */
export function readRssBytes(pid: number): number | null {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return match ? Number(match[1]) * 1024 : null;
}

/** Summed RSS of `pids` in bytes (missing processes count 0). */
export function totalRssBytes(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + (readRssBytes(pid) ?? 0), 0);
}

export interface PidStats {
  pid: number;
  /** Average CPU over the span, % of one core (200 % = two cores busy). */
  cpuPercent: number;
  cpuSeconds: number;
  rssStartBytes: number;
  rssEndBytes: number;
  rssPeakBytes: number;
  samples: number;
  /** The process disappeared during the span. */
  exited: boolean;
}

export interface ProcStats {
  seconds: number;
  pids: PidStats[];
  /** Sum over pids. */
  cpuPercent: number;
  /** Peak of the summed RSS over the samples. */
  rssPeakBytes: number;
  rssEndBytes: number;
  /** The whole machine's busy CPU over the span, % of one core (this includes the load generator and anything else running). */
  systemCpuPercent: number;
}

interface Track {
  pid: number;
  cpuStart: number | null;
  cpuLast: number | null;
  rssStart: number;
  rssLast: number;
  rssPeak: number;
  samples: number;
  exited: boolean;
}

export class ProcSampler {
  private tracks: Track[] = [];
  private timer: NodeJS.Timeout | null = null;
  private startedAt = 0;
  private summedRssPeak = 0;
  private systemBusyStart = 0;

  constructor(
    private readonly pids: readonly number[],
    private readonly intervalMs = 500,
  ) {}

  start(): void {
    this.startedAt = performance.now();
    this.systemBusyStart = readSystemBusySeconds();
    this.tracks = this.pids.map((pid) => {
      const cpu = readCpuSeconds(pid);
      const rss = readRssBytes(pid) ?? 0;
      return { pid, cpuStart: cpu, cpuLast: cpu, rssStart: rss, rssLast: rss, rssPeak: rss, samples: 1, exited: cpu === null };
    });
    this.summedRssPeak = this.tracks.reduce((sum, track) => sum + track.rssLast, 0);
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  private sample(): void {
    let summed = 0;
    for (const track of this.tracks) {
      const cpu = readCpuSeconds(track.pid);
      const rss = readRssBytes(track.pid);
      if (cpu === null || rss === null) {
        track.exited = true;
        continue;
      }
      track.cpuLast = cpu;
      track.rssLast = rss;
      if (rss > track.rssPeak) track.rssPeak = rss;
      track.samples++;
      summed += rss;
    }
    if (summed > this.summedRssPeak) this.summedRssPeak = summed;
  }

  stop(): ProcStats {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.sample();
    const seconds = (performance.now() - this.startedAt) / 1000;
    const systemBusy = readSystemBusySeconds() - this.systemBusyStart;
    const pids = this.tracks.map((track): PidStats => {
      const cpuSeconds = track.cpuStart === null || track.cpuLast === null ? 0 : track.cpuLast - track.cpuStart;
      return {
        pid: track.pid,
        cpuPercent: seconds > 0 ? (100 * cpuSeconds) / seconds : 0,
        cpuSeconds,
        rssStartBytes: track.rssStart,
        rssEndBytes: track.rssLast,
        rssPeakBytes: track.rssPeak,
        samples: track.samples,
        exited: track.exited,
      };
    });
    return {
      seconds,
      pids,
      cpuPercent: pids.reduce((sum, pid) => sum + pid.cpuPercent, 0),
      rssPeakBytes: this.summedRssPeak,
      rssEndBytes: pids.reduce((sum, pid) => sum + pid.rssEndBytes, 0),
      systemCpuPercent: seconds > 0 ? (100 * systemBusy) / seconds : 0,
    };
  }
}

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '-';
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024).toFixed(0)} KiB`;
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      pid: { type: 'string', multiple: true },
      seconds: { type: 'string' },
      interval: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || values.pid === undefined) {
    process.stdout.write('Usage: npx tsx scripts/bench/proc-stats.ts --pid PID [--pid PID ...] [--seconds 10] [--interval 500]\n');
    return;
  }
  const pids = values.pid.flatMap((pid) => pid.split(',')).map(Number);
  const seconds = Math.min(3600, Number(values.seconds ?? '10'));
  const sampler = new ProcSampler(pids, Number(values.interval ?? '500'));
  sampler.start();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const stats = sampler.stop();
  for (const pid of stats.pids) {
    process.stdout.write(
      `pid ${pid.pid}: cpu ${pid.cpuPercent.toFixed(1)} % of one core (${pid.cpuSeconds.toFixed(2)} s), rss peak ${formatBytes(pid.rssPeakBytes)}` +
        ` (start ${formatBytes(pid.rssStartBytes)}, end ${formatBytes(pid.rssEndBytes)})${pid.exited ? ', exited' : ''}\n`,
    );
  }
  process.stdout.write(
    `total: cpu ${stats.cpuPercent.toFixed(1)} %, rss peak ${formatBytes(stats.rssPeakBytes)} over ${stats.seconds.toFixed(1)} s` +
      ` (whole machine busy ${stats.systemCpuPercent.toFixed(0)} % of one core)\n`,
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(`proc-stats: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}

/*
 * The load generator is the measuring instrument: a GC pause in its process
 * lands in the latency of every message received meanwhile, and is charged
 * to the broker under test. V8's memory reducer runs full collections when it
 * sees allocation slow down, as it does in a rate-limited run (three 2-5 ms
 * pauses in one 10 s window at 1000 msg/s, measured with --trace-gc-nvp).
 * The flag must be given when the process starts (V8 reads it once, at heap
 * setup), so a process started without it runs itself again with it.
 * Forked load workers inherit it through process.execArgv (worker-ipc.ts).
 */
import { spawn } from 'node:child_process';

export const INSTRUMENT_FLAGS = ['--no-memory-reducer'];

/** True when this process already runs with INSTRUMENT_FLAGS. */
export function isQuietInstrument(): boolean {
  return INSTRUMENT_FLAGS.every((flag) => process.execArgv.includes(flag));
}

/**
 * Runs this script again under INSTRUMENT_FLAGS and resolves with its exit
 * code, or resolves null when this process is already the quiet one.
 * Signals sent to this process are passed on.
 */
export function rerunAsQuietInstrument(): Promise<number> | null {
  if (isQuietInstrument()) return null;
  const child = spawn(process.execPath, [...INSTRUMENT_FLAGS, ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
  const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
  process.on('SIGINT', forward('SIGINT'));
  process.on('SIGTERM', forward('SIGTERM'));
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? (signal === null ? 1 : 128)));
    child.on('error', () => resolve(1));
  });
}

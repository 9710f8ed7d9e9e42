/*
 * How late a 1 ms timer fires in a Node process on this machine: the floor
 * under every latency tail measured here. Run it on the idle machine before
 * a latency run (a VM whose own timers stall for milliseconds cannot show a
 * p99.9 below that), or beside one.
 *
 *   npx tsx scripts/bench/timer-probe.ts [--seconds 20]
 *
 * Each tick re-arms a 1 ms timer and records how much later than asked it
 * fired. Figures: docs/bench/results.md, "session 16".
 */
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '20' } } });
const seconds = Number(values.seconds);
if (!(seconds > 0)) {
  console.error('--seconds: a positive number');
  process.exit(2);
}

const lates: number[] = [];
const end = performance.now() + seconds * 1000;
let expected = performance.now() + 1;

function report(): void {
  lates.sort((x, y) => x - y);
  const at = (q: number): string => lates[Math.min(lates.length - 1, Math.floor(q * lates.length))]!.toFixed(3);
  console.log(
    `timer 1 ms, ${lates.length} ticks in ${seconds} s: late p50 ${at(0.5)}  p99 ${at(0.99)}  p99.9 ${at(0.999)}  max ${lates[lates.length - 1]!.toFixed(3)} ms`,
  );
}

function tick(): void {
  const now = performance.now();
  lates.push(now - expected);
  expected = now + 1;
  if (now < end) setTimeout(tick, 1);
  else report();
}

setTimeout(tick, 1);

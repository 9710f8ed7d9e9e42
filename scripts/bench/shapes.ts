/*
 * The benchmark shapes, selectable by name (run.ts --shape). Durations are
 * the full ones; `quick` shortens them for a smoke run (run.ts --quick).
 */
import type { LoadOptions } from './lib/options.js';

export interface LoadShape {
  kind: 'load';
  name: string;
  description: string;
  /** Load options; URLs, destinations and credentials come from the target. */
  options: Partial<LoadOptions>;
  /** Overrides for --quick. */
  quick: Partial<LoadOptions>;
}

export interface IdleShape {
  kind: 'idle';
  name: string;
  description: string;
  connections: number;
  holdS: number;
  heartbeat: [number, number];
  quick: { connections: number; holdS: number };
}

export type Shape = LoadShape | IdleShape;

const FULL = { warmupS: 3, durationS: 20, drainS: 5 } satisfies Partial<LoadOptions>;
const QUICK = { warmupS: 1, durationS: 5, drainS: 3 } satisfies Partial<LoadOptions>;

function p2p(name: string, description: string, options: Partial<LoadOptions>): LoadShape {
  return { kind: 'load', name, description, options: { mode: 'p2p', payload: 100, window: 100, ...FULL, ...options }, quick: QUICK };
}

export const SHAPES: readonly Shape[] = [
  p2p('p2p-1', 'p2p, 1 pair, 100 B, unlimited (window 100)', { pairs: 1 }),
  p2p('p2p-10', 'p2p, 10 pairs, 100 B, unlimited (window 100)', { pairs: 10 }),
  p2p('p2p-100', 'p2p, 100 pairs, 100 B, unlimited (window 100)', { pairs: 100 }),
  p2p('p2p-1000', 'p2p, 1000 pairs, 100 B, unlimited (window 100)', { pairs: 1000 }),
  // Steady-state latency: 2000 connections have just opened, and for the first
  // seconds both cores also compile and grow heaps (two-node p99 1.8-2.3 ms
  // after 2 s of warm-up, 0.7-1.05 ms after 10 s, same build, same machine).
  // Issue 13's cross-check shape: 10 pairs at a fixed 1000 msg/s in total, 3 s warm-up, 10 s measured.
  p2p('p2p-10-r1000', 'p2p, 10 pairs, 100 B, 1000 msg/s in total, 3 s warm-up, 10 s measured', { pairs: 10, rate: 1000, warmupS: 3, durationS: 10 }),
  p2p('p2p-1000-r1000', 'p2p, 1000 pairs, 100 B, 1000 msg/s in total, 10 s warm-up', { pairs: 1000, rate: 1000, warmupS: 10 }),
  {
    kind: 'load',
    name: 'fanout-1000',
    description: 'fanout, 1 publisher → 1000 subscribers of one topic, 100 B, unlimited (window 10)',
    options: { mode: 'fanout', subscribers: 1000, payload: 100, window: 10, ...FULL },
    quick: QUICK,
  },
  {
    kind: 'idle',
    name: 'idle-15000',
    description: '15000 idle subscribed connections, heart-beats 10000,10000: server RSS per connection (issue 13)',
    connections: 15000,
    holdS: 5,
    heartbeat: [10000, 10000],
    quick: { connections: 2000, holdS: 2 },
  },
  {
    kind: 'idle',
    name: 'idle-20000',
    description: '20000 idle subscribed connections, heart-beats 10000,10000: broker RSS per connection',
    connections: 20000,
    holdS: 20,
    heartbeat: [10000, 10000],
    quick: { connections: 2000, holdS: 5 },
  },
  p2p('p2p-1mib', 'p2p, 4 pairs, 1 MiB binary bodies, window 4', { pairs: 4, payload: 1024 * 1024, binary: true, window: 4 }),
];

export function findShapes(names: string): Shape[] {
  if (names === 'all') return SHAPES.slice();
  return names.split(',').map((name) => {
    const shape = SHAPES.find((candidate) => candidate.name === name.trim());
    if (shape === undefined) throw new Error(`unknown shape "${name}"; known: ${SHAPES.map((s) => s.name).join(', ')}`);
    return shape;
  });
}

/** Simultaneous connections a shape opens. */
export function shapeConnections(shape: Shape, quick: boolean): number {
  if (shape.kind === 'idle') return quick ? shape.quick.connections : shape.connections;
  const options = shape.options;
  if (options.mode === 'fanout') return (options.subscribers ?? 0) + 1;
  return 2 * (options.pairs ?? 0);
}

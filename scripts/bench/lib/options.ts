/*
 * Load generator options, one defaults object, and the split of a run's
 * connections over K worker processes.
 */
import type { Protocol } from './connection.js';

export type LoadMode = 'p2p' | 'fanout' | 'idle';

/**
 * How connections spread over several broker URLs (a cluster):
 * - `alternate`: pair i publishes on urls[i % n] and receives on urls[(i + 1) % n]
 *   (fanout: subscriber j on urls[j % n], the publisher on urls[0]);
 * - `split`: every publisher on urls[0], every receiver / fanout subscriber on
 *   urls[1..] (round-robin), so with two nodes all senders are on the first
 *   and all receivers on the second.
 * Either way, with n > 1 every p2p message crosses nodes. Idle connections
 * are spread over all URLs (urls[i % n]). One URL: everything on it.
 */
export type Placement = 'alternate' | 'split';

export interface LoadOptions {
  /** Broker WebSocket URL(s). With several, every p2p pair crosses nodes; which node each side uses is `placement`'s. */
  urls: string[];
  /** @default 'stomp' */
  protocol: Protocol;
  /** @default 'p2p' */
  mode: LoadMode;
  /** p2p: publisher/receiver pairs (2 × pairs connections). @default 10 */
  pairs: number;
  /** fanout: subscribers of the one topic (1 publisher). @default 100 */
  subscribers: number;
  /** idle: subscribed connections that only heart-beat. @default 20000 */
  connections: number;
  /** Body size in bytes, header included. @default 100 */
  payload: number;
  /** Binary bodies (NUL bytes included) sent as WebSocket binary frames. @default false */
  binary: boolean;
  /** Total msg/s over all publishers; 0 = as fast as the window allows. @default 0 */
  rate: number;
  /** Most messages in flight per publisher (sent − received); fanout counts the average subscriber. @default 100 */
  window: number;
  /** Measured seconds (idle: how long the connections are held). @default 10 */
  durationS: number;
  /** Seconds of publishing before measuring. @default 2 */
  warmupS: number;
  /** After publishing stops, wait for messages in flight until none arrives for this many seconds (at most 120 s in all); then what is missing is lost. @default 5 */
  drainS: number;
  /** Destination template for both sides; `{i}` (or `<i>`) is the pair index (fanout: always 0). @default '/queue/bench-{i}' (fanout: '/topic/bench-fanout', idle: '/topic/bench-idle') */
  destination: string;
  /**
   * What receivers subscribe to (fanout subscribers, idle connections too); `{i}` = pair index
   * (fanout: 0, idle: connection index). Every MESSAGE must carry this as its `destination`.
   * @default destination
   */
  subscribeDestination: string;
  /** What publishers send to; `{i}` = pair index (fanout: 0). @default destination */
  sendDestination: string;
  /** CONNECT login of every connection; `{i}` = connection index (p2p: 2i publisher, 2i+1 receiver; fanout: 0 publisher, j+1 subscriber j). Used where receiverLogin / senderLogin are not set. */
  login?: string;
  passcode?: string;
  /** CONNECT login of receivers (fanout subscribers, idle connections); `{i}` = pair index (fanout: subscriber index, idle: connection index). @default login */
  receiverLogin?: string;
  /** CONNECT login of publishers; `{i}` = pair index (fanout: 0). @default login */
  senderLogin?: string;
  /** Spread of the connections over several URLs. @default 'alternate' */
  placement: Placement;
  /** STOMP `host` header. @default '/' */
  host: string;
  /** STOMP heart-beat cx,cy (ms). @default [0, 0] ([10000, 10000] for idle) */
  heartbeat: [number, number];
  /** Extra SEND headers. @default {} */
  sendHeaders: Record<string, string>;
  /** Extra SUBSCRIBE headers. @default {} */
  subscribeHeaders: Record<string, string>;
  /** Several STOMP frames per WebSocket message (see ConnectionOptions.coalesce). @default false */
  coalesce: boolean;
  /** Worker processes sharing the connections. @default 1 */
  procs: number;
  /** Handshakes in flight at once during setup. @default 200 */
  connectConcurrency: number;
  /** Bound on each handshake and each RECEIPT. @default 10000 */
  timeoutMs: number;
  /** Loopback source addresses used round-robin (more than one lifts the ~28k ephemeral-port bound). @default ['127.0.0.1'] */
  localAddresses: string[];
  /** Keep going when some connections fail to open (idle: report how many opened). @default false (true for idle) */
  tolerateConnectFailures: boolean;
  /** Run id written in every body; messages of another run (left in a durable queue) are counted as stale and ignored. */
  run: number;
}

export const DEFAULT_LOAD_OPTIONS: Readonly<Omit<LoadOptions, 'urls' | 'run' | 'subscribeDestination' | 'sendDestination'>> = {
  protocol: 'stomp',
  mode: 'p2p',
  pairs: 10,
  subscribers: 100,
  connections: 20000,
  payload: 100,
  binary: false,
  rate: 0,
  window: 100,
  durationS: 10,
  warmupS: 2,
  drainS: 5,
  destination: '/queue/bench-{i}',
  placement: 'alternate',
  host: '/',
  heartbeat: [0, 0],
  sendHeaders: {},
  subscribeHeaders: {},
  coalesce: false,
  procs: 1,
  connectConcurrency: 200,
  timeoutMs: 10000,
  localAddresses: ['127.0.0.1'],
  tolerateConnectFailures: false,
};

export function defaultDestination(mode: LoadMode): string {
  return mode === 'fanout' ? '/topic/bench-fanout' : mode === 'idle' ? '/topic/bench-idle' : '/queue/bench-{i}';
}

export function destinationFor(template: string, index: number): string {
  return template.replaceAll('{i}', String(index)).replaceAll('<i>', String(index));
}

/** URL of p2p publisher i (fanout: the publisher, i = 0). */
export function senderUrl(options: Pick<LoadOptions, 'urls' | 'placement'>, i: number): string {
  const urls = options.urls;
  return options.placement === 'split' ? urls[0]! : urls[i % urls.length]!;
}

/** URL of p2p receiver i, or of fanout subscriber i. */
export function receiverUrl(options: Pick<LoadOptions, 'urls' | 'placement' | 'mode'>, i: number): string {
  const urls = options.urls;
  if (options.placement === 'split' && urls.length > 1) return urls[1 + (i % (urls.length - 1))]!;
  return options.mode === 'p2p' ? urls[(i + 1) % urls.length]! : urls[i % urls.length]!;
}

/** What one worker process owns: contiguous index ranges of the global run. */
export interface WorkerPlan {
  worker: number;
  /** p2p: pair indices [from, to); idle: connection indices. */
  from: number;
  to: number;
  /** fanout: subscriber indices [subFrom, subTo); this worker also publishes when `publisher`. */
  subFrom: number;
  subTo: number;
  publisher: boolean;
}

function split(total: number, parts: number, k: number): [number, number] {
  const base = Math.floor(total / parts);
  const extra = total % parts;
  const from = k * base + Math.min(k, extra);
  return [from, from + base + (k < extra ? 1 : 0)];
}

export function planWorkers(options: LoadOptions): WorkerPlan[] {
  const units = options.mode === 'p2p' ? options.pairs : options.mode === 'fanout' ? options.subscribers : options.connections;
  const procs = Math.max(1, Math.min(options.procs, units));
  const plans: WorkerPlan[] = [];
  for (let k = 0; k < procs; k++) {
    const [from, to] = split(units, procs, k);
    if (options.mode === 'fanout') plans.push({ worker: k, from: 0, to: 0, subFrom: from, subTo: to, publisher: k === 0 });
    else plans.push({ worker: k, from, to, subFrom: 0, subTo: 0, publisher: options.mode === 'p2p' });
  }
  return plans;
}

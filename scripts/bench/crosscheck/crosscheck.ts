/*
 * The cross-check load generator: a second, independent instrument beside
 * scripts/bench/loadgen.ts, sharing none of its code. STOMP through
 * @stomp/stompjs (the client most STOMP-over-WebSocket pages use), socket.io
 * through socket.io-client, the bare relay through plain `ws`. Its own
 * pacing (a self-rescheduling timeout, not a 1 ms interval), its own clock
 * use (performance.now() in one process: sender and receiver are both here),
 * its own quantiles (every sample kept and sorted: exact, no buckets), and
 * its own reading of the servers' CPU and RSS from /proc.
 *
 * Timing, as a client's application sees it: the send time is taken just
 * before `client.publish()` / `emit()` / `ws.send()`, the receive time in the
 * message callback. Sends that leave late against their schedule are timed
 * from when they left; how late is reported beside (sendLagP99Ms).
 *
 * Usage (one JSON spec in, one JSON result line out, as the runner calls it):
 *   npx tsx scripts/bench/crosscheck/crosscheck.ts '<spec JSON>'
 * Spec: see CrosscheckSpec. Bounded: the process exits by itself after
 * warm-up + duration + 60 s (idle: + 300 s for connecting).
 */
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Client, type IFrame, type IMessage } from '@stomp/stompjs';
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';

export interface CrosscheckSpec {
  protocol: 'stomp' | 'socketio' | 'raw';
  /** Sender URL and receiver URL (the same for one node). */
  senderUrl: string;
  receiverUrl: string;
  mode: 'load' | 'idle';
  pairs: number;
  /** Templates, `{i}` = pair (idle: connection) index. */
  sendDestination: string;
  subscribeDestination: string;
  senderLogin?: string;
  receiverLogin?: string;
  passcode?: string;
  payload: number;
  /** Total msg/s; 0 = saturation, `window` in flight per pair. */
  rate: number;
  window: number;
  warmupS: number;
  durationS: number;
  /** Idle: connections to hold (each subscribed, heart-beats 10 s both ways), spread over both URLs. */
  connections: number;
  /** Server processes whose CPU (load) or RSS (idle) is read. */
  pids: number[];
  /** Source address of every connection (keeps its ports apart from the other generator's). */
  localAddress: string;
}

export interface CrosscheckResult {
  generator: 'stompjs-crosscheck';
  sent: number;
  delivered: number;
  deliveredPerSecond: number;
  lost: number;
  reordered: number;
  samples: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  sendLagP99Ms: number;
  /** This process's event-loop delay over the window (perf_hooks, 1 ms resolution), p99 and max, ms: beside the latency. */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  /** Server CPU over the window per pid (in the order of the spec's pids), % of one core. */
  cpuPercentPerPid: number[];
  cpuPercent: number;
  /** Server CPU µs per message delivered in the window. */
  cpuMicrosPerMessage: number;
  /** This process's CPU over the window, % of one core. */
  clientCpuPercent: number;
  windowSeconds: number;
  idle?: { opened: number; rssBeforeBytes: number; rssAfterBytes: number; bytesPerConnection: number };
  errors: string[];
}

/** One connection, whatever the protocol. */
interface Endpoint {
  open(): Promise<void>;
  subscribe(destination: string, onBody: (body: string) => void): Promise<void>;
  send(destination: string, body: string): void;
  close(): void;
}

const TICKS = 100; // USER_HZ on Linux

function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return Number.NaN;
  }
}

function rssBytes(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function fill(template: string, i: number): string {
  return template.split('{i}').join(String(i));
}

function stompEndpoint(url: string, login: string | undefined, passcode: string | undefined, localAddress: string, heartbeatMs: number): Endpoint {
  const client = new Client({
    webSocketFactory: () => new WebSocket(url, ['v12.stomp', 'v11.stomp', 'v10.stomp'], { localAddress, perMessageDeflate: false }),
    connectHeaders: { ...(login !== undefined ? { login } : {}), ...(passcode !== undefined ? { passcode } : {}), host: '/' },
    heartbeatIncoming: heartbeatMs,
    heartbeatOutgoing: heartbeatMs,
    reconnectDelay: 0,
    debug: () => {},
  });
  let receipt = 0;
  return {
    open: () =>
      new Promise<void>((resolve, reject) => {
        client.onConnect = () => resolve();
        client.onStompError = (frame: IFrame) => reject(new Error(`STOMP ERROR: ${frame.headers['message'] ?? ''}`));
        client.onWebSocketError = () => reject(new Error(`WebSocket error on ${url}`));
        client.activate();
      }),
    subscribe: (destination, onBody) =>
      new Promise<void>((resolve) => {
        const id = `cc-${receipt++}`;
        client.watchForReceipt(id, () => resolve());
        client.subscribe(destination, (message: IMessage) => onBody(message.body), { receipt: id });
      }),
    send: (destination, body) => client.publish({ destination, body }),
    close: () => void client.deactivate({ force: true }),
  };
}

function socketIoEndpoint(url: string, localAddress: string): Endpoint {
  let socket: Socket | null = null;
  const handlers = new Map<string, (body: string) => void>();
  return {
    open: () =>
      new Promise<void>((resolve, reject) => {
        const options: Parameters<typeof io>[1] & { localAddress?: string } = { transports: ['websocket'], forceNew: true, reconnection: false, localAddress };
        socket = io(url, options);
        socket.on('message', (destination: string, body: Buffer) => handlers.get(destination)?.(body.toString('latin1')));
        socket.once('connect', () => resolve());
        socket.once('connect_error', (error: Error) => reject(error));
      }),
    subscribe: (destination, onBody) =>
      new Promise<void>((resolve, reject) => {
        handlers.set(destination, onBody);
        socket!.timeout(10_000).emit('subscribe', destination, (timeout: Error | null, error: string | null) => (timeout || error ? reject(new Error(String(timeout ?? error))) : resolve()));
      }),
    send: (destination, body) => void socket!.emit('send', destination, Buffer.from(body, 'latin1')),
    close: () => void socket?.disconnect(),
  };
}

function rawEndpoint(url: string, localAddress: string): Endpoint {
  let ws: WebSocket | null = null;
  const handlers = new Map<string, (body: string) => void>();
  const acks = new Map<string, () => void>();
  return {
    open: () =>
      new Promise<void>((resolve, reject) => {
        ws = new WebSocket(url, { localAddress, perMessageDeflate: false });
        ws.on('message', (data: Buffer) => {
          const text = data.toString('latin1');
          if (text[0] === 'M') {
            const newline = text.indexOf('\n');
            handlers.get(text.slice(1, newline))?.(text.slice(newline + 1));
          } else if (text[0] === 'A') acks.get(text.slice(1))?.();
        });
        ws.once('open', () => resolve());
        ws.once('error', reject);
      }),
    subscribe: (destination, onBody) =>
      new Promise<void>((resolve) => {
        handlers.set(destination, onBody);
        acks.set(destination, resolve);
        ws!.send(`S${destination}`);
      }),
    send: (destination, body) => ws!.send(`P${destination}\n${body}`),
    close: () => ws?.close(),
  };
}

function endpoint(spec: CrosscheckSpec, url: string, login: string | undefined, heartbeatMs: number): Endpoint {
  if (spec.protocol === 'socketio') return socketIoEndpoint(url, spec.localAddress);
  if (spec.protocol === 'raw') return rawEndpoint(url, spec.localAddress);
  return stompEndpoint(url, login, spec.passcode, spec.localAddress, heartbeatMs);
}

/** Exact quantile of sorted samples (nearest rank). */
function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

async function limited<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await task(items[next++]!);
  }));
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function runIdle(spec: CrosscheckSpec, result: CrosscheckResult): Promise<void> {
  const rssBefore = spec.pids.reduce((sum, pid) => sum + rssBytes(pid), 0);
  const endpoints: Endpoint[] = [];
  const indices = Array.from({ length: spec.connections }, (_, i) => i);
  let opened = 0;
  await limited(indices, 100, async (i) => {
    const url = i % 2 === 0 ? spec.senderUrl : spec.receiverUrl;
    const connection = endpoint(spec, url, spec.receiverLogin === undefined ? undefined : fill(spec.receiverLogin, i), 10_000);
    try {
      await connection.open();
      await connection.subscribe(fill(spec.subscribeDestination, i), () => {});
      endpoints.push(connection);
      opened++;
    } catch (error) {
      if (result.errors.length < 5) result.errors.push(error instanceof Error ? error.message : String(error));
    }
  });
  await sleep(3000);
  const rssAfter = spec.pids.reduce((sum, pid) => sum + rssBytes(pid), 0);
  result.idle = { opened, rssBeforeBytes: rssBefore, rssAfterBytes: rssAfter, bytesPerConnection: opened > 0 ? (rssAfter - rssBefore) / opened : Number.NaN };
  for (const connection of endpoints) connection.close();
}

async function runLoad(spec: CrosscheckSpec, result: CrosscheckResult): Promise<void> {
  const senders: Endpoint[] = [];
  const receivers: Endpoint[] = [];
  const sent = new Array<number>(spec.pairs).fill(0);
  const received = new Array<number>(spec.pairs).fill(0);
  const lastSeq = new Array<number>(spec.pairs).fill(-1);
  let measuring = false;
  let windowStart = Number.POSITIVE_INFINITY;
  let windowEnd = Number.POSITIVE_INFINITY;
  let deliveredInWindow = 0;
  let publishing = true;
  const samples: number[] = [];
  const lags: number[] = [];
  const padding = 'y'.repeat(spec.payload);
  const bodyOf = (pair: number, seq: number, at: number): string => {
    const head = `cc|${pair}|${seq}|${at.toFixed(4)}|`;
    return head + padding.slice(head.length);
  };
  const destinations = Array.from({ length: spec.pairs }, (_, i) => fill(spec.sendDestination, i));
  const send = (pair: number): number => {
    const at = performance.now();
    senders[pair]!.send(destinations[pair]!, bodyOf(pair, sent[pair]!, at));
    sent[pair]!++;
    return at;
  };
  for (let i = 0; i < spec.pairs; i++) {
    const receiver = endpoint(spec, spec.receiverUrl, spec.receiverLogin === undefined ? undefined : fill(spec.receiverLogin, i), 0);
    const sender = endpoint(spec, spec.senderUrl, spec.senderLogin === undefined ? undefined : fill(spec.senderLogin, i), 0);
    await receiver.open();
    await sender.open();
    const pair = i;
    await receiver.subscribe(fill(spec.subscribeDestination, i), (body) => {
      const now = performance.now();
      const [, , seqText, atText] = body.split('|', 4);
      const seq = Number(seqText);
      const at = Number(atText);
      received[pair]!++;
      if (seq < lastSeq[pair]!) result.reordered++;
      else lastSeq[pair] = seq;
      if (at >= windowStart && at < windowEnd) samples.push(now - at);
      if (measuring) deliveredInWindow++;
      // Saturation: one more each time one arrives, `window` in flight per pair.
      if (spec.rate === 0 && publishing) send(pair);
    });
    senders.push(sender);
    receivers.push(receiver);
  }

  let timer: NodeJS.Timeout | null = null;
  if (spec.rate > 0) {
    const intervalMs = 1000 / spec.rate;
    const start = performance.now();
    let issued = 0;
    const tick = (): void => {
      const now = performance.now();
      while (publishing && start + (issued + 1) * intervalMs <= now) {
        const due = start + (issued + 1) * intervalMs;
        const at = send(issued % spec.pairs);
        if (measuring) lags.push(at - due);
        issued++;
      }
      if (publishing) timer = setTimeout(tick, Math.max(0, start + (issued + 1) * intervalMs - performance.now()));
    };
    tick();
  } else {
    for (let pair = 0; pair < spec.pairs; pair++) for (let k = 0; k < spec.window; k++) send(pair);
  }

  await sleep(spec.warmupS * 1000);
  const cpuStart = spec.pids.map(cpuSeconds);
  const ownStart = process.cpuUsage();
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  windowStart = performance.now();
  measuring = true;
  await sleep(spec.durationS * 1000);
  measuring = false;
  windowEnd = performance.now();
  const cpuEnd = spec.pids.map(cpuSeconds);
  const own = process.cpuUsage(ownStart);
  loopDelay.disable();
  result.loopDelayP99Ms = loopDelay.percentile(99) / 1e6;
  result.loopDelayMaxMs = loopDelay.max / 1e6;
  publishing = false;
  if (timer !== null) clearTimeout(timer);
  // Drain: until every pair has what it was sent, or 5 s without progress.
  let last = -1;
  for (let quiet = 0; quiet < 50; ) {
    const total = received.reduce((a, b) => a + b, 0);
    if (total >= sent.reduce((a, b) => a + b, 0)) break;
    if (total === last) quiet++;
    else quiet = 0;
    last = total;
    await sleep(100);
  }
  const seconds = (windowEnd - windowStart) / 1000;
  const sorted = Float64Array.from(samples).sort();
  const sortedLags = Float64Array.from(lags).sort();
  result.sent = sent.reduce((a, b) => a + b, 0);
  result.delivered = received.reduce((a, b) => a + b, 0);
  result.lost = result.sent - result.delivered;
  result.deliveredPerSecond = deliveredInWindow / seconds;
  result.samples = sorted.length;
  result.p50Ms = quantile(sorted, 0.5);
  result.p99Ms = quantile(sorted, 0.99);
  result.p999Ms = quantile(sorted, 0.999);
  result.maxMs = sorted.length > 0 ? sorted[sorted.length - 1]! : Number.NaN;
  result.sendLagP99Ms = quantile(sortedLags, 0.99);
  result.windowSeconds = seconds;
  let cpuTotal = 0;
  spec.pids.forEach((pid, k) => {
    const used = cpuEnd[k]! - cpuStart[k]!;
    void pid;
    result.cpuPercentPerPid.push((100 * used) / seconds);
    cpuTotal += used;
  });
  result.cpuPercent = (100 * cpuTotal) / seconds;
  result.cpuMicrosPerMessage = deliveredInWindow > 0 ? (cpuTotal * 1e6) / deliveredInWindow : Number.NaN;
  result.clientCpuPercent = ((own.user + own.system) / 1e6 / seconds) * 100;
  for (const connection of [...senders, ...receivers]) connection.close();
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '{}') as CrosscheckSpec;
  const boundS = spec.warmupS + spec.durationS + 60 + (spec.mode === 'idle' ? 300 : 0);
  setTimeout(() => {
    process.stderr.write(`crosscheck: exceeded its ${boundS} s bound\n`);
    process.exit(2);
  }, boundS * 1000).unref();
  const result: CrosscheckResult = {
    generator: 'stompjs-crosscheck',
    sent: 0,
    delivered: 0,
    deliveredPerSecond: Number.NaN,
    lost: 0,
    reordered: 0,
    samples: 0,
    p50Ms: Number.NaN,
    p99Ms: Number.NaN,
    p999Ms: Number.NaN,
    maxMs: Number.NaN,
    sendLagP99Ms: Number.NaN,
    loopDelayP99Ms: Number.NaN,
    loopDelayMaxMs: Number.NaN,
    cpuPercentPerPid: [],
    cpuPercent: Number.NaN,
    cpuMicrosPerMessage: Number.NaN,
    clientCpuPercent: Number.NaN,
    windowSeconds: 0,
    errors: [],
  };
  if (spec.mode === 'idle') await runIdle(spec, result);
  else await runLoad(spec, result);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().then(
  () => setTimeout(() => process.exit(0), 200),
  (error: unknown) => {
    process.stderr.write(`crosscheck: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);

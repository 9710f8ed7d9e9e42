/*
 * The part of a load run that one process executes: its share of the
 * connections, publishing, and the receive-side checks (delivered, latency,
 * lost, reordered, duplicates). The coordinator (loadgen.ts) drives every
 * worker through the same phases, in-process or over IPC:
 *
 *   setup → startPublishing → (warm-up) → beginMeasure → (duration)
 *         → endMeasure → drain → result → close
 *
 * What the latency is (what any client would see): the send time is taken
 * just before the SEND frame is serialized and written to the socket (at a
 * fixed rate each frame is written at once, not corked for the turn), the
 * receive time when the socket hands up the WebSocket message that holds
 * the MESSAGE, before parsing. The generator's own pauses are not hidden in
 * it, but not added either: a message due while this process was paused (a
 * GC, a late timer) leaves late and is timed from when it left. How late is
 * reported beside the figure: the send lag (actual − scheduled send time,
 * per message) and the event-loop delay of this process over the window.
 * A pause on the receiving side lands in the latency of what arrives
 * meanwhile, as it would in a client.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { nowMs, createBodyTemplate, readStamp, stampBody } from './body.js';
import type { BenchConnection, ConnectionOptions } from './connection.js';
import { LatencyHistogram, type HistogramSnapshot } from './histogram.js';
import { destinationFor, receiverUrl, senderUrl, type LoadOptions, type WorkerPlan } from './options.js';
import { SocketIoConnection } from './socketio-connection.js';
import { RawConnection } from './raw-connection.js';
import { StompConnection } from './stomp-connection.js';

export interface SetupReport {
  worker: number;
  connections: number;
  failed: number;
  /** From the first CONNECT to the last CONNECTED of this worker. */
  connectSeconds: number;
  handshake: HistogramSnapshot;
  subscribeSeconds: number;
  errors: string[];
}

export interface StopReport {
  sentByStream: Array<[number, number]>;
}

/** What the receivers checked of every delivery: one record, per worker and for the whole run. */
export interface DeliveryChecks {
  expected: number;
  lost: number;
  duplicates: number;
  reordered: number;
  /** Bench messages of another run id (left in a durable queue). */
  stale: number;
  /** Delivered to the receiver of another pair. */
  misrouted: number;
  /** Bodies without a bench header. */
  foreign: number;
  /** Deliveries whose MESSAGE `destination` / `subscription` do not match the subscription (BenchConnection.headerMismatches). */
  headerMismatches: number;
}

/** This process's own pauses over the window, reported beside the latency (not in it). */
export interface GeneratorLag {
  /** Event-loop delay (perf_hooks, 1 ms resolution), p99 and max, ms. */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  /** Fixed rate: how late each SEND left against its schedule. */
  sendLag: HistogramSnapshot;
}

export interface WorkerResult extends DeliveryChecks {
  lag: GeneratorLag;
  worker: number;
  connections: number;
  openAtEnd: number;
  sent: number;
  sentInWindow: number;
  /** Sends skipped in rate mode because the window was full. */
  rateSkipped: number;
  delivered: number;
  deliveredInWindow: number;
  windowMs: number;
  /** How long the drain took. */
  drainMs: number;
  /** This process's own CPU (user + system) during the window, ms: is the client the bottleneck? */
  clientCpuMs: number;
  unique: number;
  heartbeatsReceived: number;
  errorCount: number;
  errors: string[];
  latency: HistogramSnapshot;
}

export interface WorkerApi {
  setup(): Promise<SetupReport>;
  startPublishing(): Promise<void>;
  beginMeasure(): Promise<void>;
  endMeasure(): Promise<StopReport>;
  drain(sentByStream: Array<[number, number]>, timeoutMs: number): Promise<void>;
  result(): Promise<WorkerResult>;
  close(): Promise<void>;
}

interface Publisher {
  stream: number;
  connection: BenchConnection;
  destination: string;
  body: Buffer;
  sent: number;
  /** Deliveries of this stream to subscribers in this process. */
  received: number;
  localSubscribers: number;
}

interface Subscriber {
  stream: number;
  connection: BenchConnection;
  destination: string;
  /** One bit per sequence number seen. */
  seen: Uint8Array;
  maxSeq: number;
  unique: number;
}

const MAX_KEPT_ERRORS = 20;
/** Bound on a drain that keeps making progress (a deep broker backlog). */
export const MAX_DRAIN_MS = 120_000;

/** Runs `tasks` with at most `limit` in flight; resolves when all have settled. */
export async function runLimited(tasks: Array<() => Promise<void>>, limit: number): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, tasks.length)) }, async () => {
    while (next < tasks.length) {
      const task = tasks[next++]!;
      await task();
    }
  });
  await Promise.all(lanes);
}

export function createConnection(options: LoadOptions, index: number, url: string, login?: string): BenchConnection {
  const connectionOptions: ConnectionOptions = {
    url,
    login,
    passcode: options.passcode,
    host: options.host,
    heartbeat: options.heartbeat,
    binaryFrames: options.binary,
    coalesce: options.coalesce,
    corkTurn: options.rate === 0,
    sendHeaders: options.sendHeaders,
    subscribeHeaders: options.subscribeHeaders,
    localAddress: options.localAddresses[index % options.localAddresses.length],
    timeoutMs: options.timeoutMs,
  };
  if (options.protocol === 'socketio') return new SocketIoConnection(connectionOptions);
  if (options.protocol === 'raw') return new RawConnection(connectionOptions);
  return new StompConnection(connectionOptions);
}

export class LoadWorker implements WorkerApi {
  private readonly publishers: Publisher[] = [];
  private readonly publisherByStream = new Map<number, Publisher>();
  private readonly subscribers: Subscriber[] = [];
  private readonly connections: BenchConnection[] = [];
  private readonly latency = new LatencyHistogram();
  private readonly sendLag = new LatencyHistogram();
  private loopDelay: IntervalHistogram | null = null;
  private loopDelayP99Ms = Number.NaN;
  private loopDelayMaxMs = Number.NaN;
  private readonly errors: string[] = [];
  private errorCount = 0;
  private publishing = false;
  private measuring = false;
  private measureStart = Number.POSITIVE_INFINITY;
  private measureEnd = Number.POSITIVE_INFINITY;
  private rateTimer: NodeJS.Timeout | null = null;
  private cpuAtStart: NodeJS.CpuUsage | null = null;
  private clientCpuMs = 0;
  private drainMs = 0;
  private rateSkipped = 0;
  private sentInWindow = 0;
  private delivered = 0;
  private deliveredInWindow = 0;
  private duplicates = 0;
  private reordered = 0;
  private stale = 0;
  private misrouted = 0;
  private foreign = 0;
  private expected = new Map<number, number>();

  constructor(
    private readonly options: LoadOptions,
    private readonly plan: WorkerPlan,
  ) {}

  async setup(): Promise<SetupReport> {
    const { options, plan } = this;
    const urls = options.urls;
    // `login` is a per-connection template; receiverLogin / senderLogin take the pair (subscriber) index.
    const login = (template: string | undefined, unit: number, index: number): string | undefined =>
      template !== undefined ? destinationFor(template, unit) : options.login === undefined ? undefined : destinationFor(options.login, index);
    const addSubscriber = (stream: number, index: number, url: string, destination: string, user: string | undefined): void => {
      const connection = createConnection(options, index, url, user);
      const subscriber: Subscriber = { stream, connection, destination, seen: new Uint8Array(1024), maxSeq: -1, unique: 0 };
      connection.onMessage = (body, receivedMs) => this.receive(subscriber, body, receivedMs);
      this.subscribers.push(subscriber);
      this.connections.push(connection);
    };
    const addPublisher = (stream: number, index: number, url: string, destination: string, user: string | undefined): void => {
      const connection = createConnection(options, index, url, user);
      const publisher: Publisher = {
        stream,
        connection,
        destination,
        body: createBodyTemplate(options.payload, options.binary),
        sent: 0,
        received: 0,
        localSubscribers: 0,
      };
      this.publishers.push(publisher);
      this.publisherByStream.set(stream, publisher);
      this.connections.push(connection);
    };

    if (options.mode === 'p2p') {
      for (let i = plan.from; i < plan.to; i++) {
        addSubscriber(i, 2 * i + 1, receiverUrl(options, i), destinationFor(options.subscribeDestination, i), login(options.receiverLogin, i, 2 * i + 1));
        addPublisher(i, 2 * i, senderUrl(options, i), destinationFor(options.sendDestination, i), login(options.senderLogin, i, 2 * i));
      }
    } else if (options.mode === 'fanout') {
      const subscribeTo = destinationFor(options.subscribeDestination, 0);
      for (let j = plan.subFrom; j < plan.subTo; j++) {
        addSubscriber(0, j + 1, receiverUrl(options, j), subscribeTo, login(options.receiverLogin, j, j + 1));
      }
      if (plan.publisher) addPublisher(0, 0, senderUrl(options, 0), destinationFor(options.sendDestination, 0), login(options.senderLogin, 0, 0));
    } else {
      for (let i = plan.from; i < plan.to; i++) {
        addSubscriber(i, i, urls[i % urls.length]!, destinationFor(options.subscribeDestination, i), login(options.receiverLogin, i, i));
      }
    }
    for (const subscriber of this.subscribers) {
      const publisher = this.publisherByStream.get(subscriber.stream);
      if (publisher !== undefined) publisher.localSubscribers++;
    }
    for (const connection of this.connections) connection.onFailure = (error) => this.recordError(error);

    const handshake = new LatencyHistogram();
    const opened = new Set<BenchConnection>();
    let failed = 0;
    const connectStart = nowMs();
    await runLimited(
      this.connections.map((connection) => async () => {
        const started = nowMs();
        try {
          await connection.connect();
          handshake.record(nowMs() - started);
          opened.add(connection);
        } catch (error) {
          failed++;
          this.recordError(error);
        }
      }),
      options.connectConcurrency,
    );
    const connectSeconds = (nowMs() - connectStart) / 1000;

    const subscribeStart = nowMs();
    await runLimited(
      this.subscribers
        .filter((subscriber) => opened.has(subscriber.connection))
        .map((subscriber) => async () => {
          try {
            await subscriber.connection.subscribe(subscriber.destination);
          } catch (error) {
            failed++;
            this.recordError(error);
          }
        }),
      options.connectConcurrency,
    );
    const subscribeSeconds = (nowMs() - subscribeStart) / 1000;
    if (failed > 0 && !options.tolerateConnectFailures) {
      throw new Error(`worker ${plan.worker}: ${failed} of ${this.connections.length} connections/subscriptions failed; first: ${this.errors[0]}`);
    }
    return {
      worker: plan.worker,
      connections: opened.size,
      failed,
      connectSeconds,
      handshake: handshake.snapshot(),
      subscribeSeconds,
      errors: this.errors.slice(),
    };
  }

  async startPublishing(): Promise<void> {
    if (this.publishers.length === 0) return;
    this.publishing = true;
    if (this.options.rate > 0) this.startRateTimer();
    else for (const publisher of this.publishers) this.pump(publisher);
  }

  async beginMeasure(): Promise<void> {
    this.measureStart = nowMs();
    this.measureEnd = Number.POSITIVE_INFINITY;
    this.measuring = true;
    this.cpuAtStart = process.cpuUsage();
    this.loopDelay = monitorEventLoopDelay({ resolution: 1 });
    this.loopDelay.enable();
  }

  async endMeasure(): Promise<StopReport> {
    this.measuring = false;
    this.measureEnd = nowMs();
    this.publishing = false;
    if (this.loopDelay !== null) {
      this.loopDelay.disable();
      // perf_hooks reports ns; with 1 ms resolution a turn that was not late reads ~1 ms.
      this.loopDelayP99Ms = this.loopDelay.percentile(99) / 1e6;
      this.loopDelayMaxMs = this.loopDelay.max / 1e6;
      this.loopDelay = null;
    }
    if (this.cpuAtStart !== null) {
      const used = process.cpuUsage(this.cpuAtStart);
      this.clientCpuMs = (used.user + used.system) / 1000;
    }
    if (this.rateTimer !== null) {
      clearInterval(this.rateTimer);
      this.rateTimer = null;
    }
    return { sentByStream: this.publishers.map((publisher) => [publisher.stream, publisher.sent]) };
  }

  /**
   * Waits for what is still in flight: until every local subscriber has seen
   * every message of its stream, or nothing arrived for `idleMs` (what is
   * missing then counts as lost), or MAX_DRAIN_MS in all.
   */
  async drain(sentByStream: Array<[number, number]>, idleMs: number): Promise<void> {
    this.expected = new Map(sentByStream);
    const started = nowMs();
    let lastDelivered = this.delivered;
    let lastProgress = started;
    const complete = (): boolean =>
      this.subscribers.every((subscriber) => subscriber.unique >= (this.expected.get(subscriber.stream) ?? 0));
    for (;;) {
      const now = nowMs();
      if (this.delivered !== lastDelivered) {
        lastDelivered = this.delivered;
        lastProgress = now;
      }
      if (complete() || now - lastProgress >= idleMs || now - started >= MAX_DRAIN_MS) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    this.drainMs = nowMs() - started;
  }

  async result(): Promise<WorkerResult> {
    let unique = 0;
    let expected = 0;
    let lost = 0;
    for (const subscriber of this.subscribers) {
      const want = this.expected.get(subscriber.stream) ?? 0;
      unique += subscriber.unique;
      expected += want;
      lost += Math.max(0, want - subscriber.unique);
    }
    let heartbeatsReceived = 0;
    let openAtEnd = 0;
    let headerMismatches = 0;
    let firstMismatch: string | null = null;
    for (const connection of this.connections) {
      heartbeatsReceived += connection.heartbeatsReceived;
      if (connection.open) openAtEnd++;
      headerMismatches += connection.headerMismatches;
      firstMismatch ??= connection.firstHeaderMismatch;
    }
    const errors = this.errors.slice();
    if (firstMismatch !== null) errors.unshift(`${headerMismatches} MESSAGE(s) with mismatched headers; first: ${firstMismatch}`);
    return {
      worker: this.plan.worker,
      connections: this.connections.length,
      openAtEnd,
      sent: this.publishers.reduce((sum, publisher) => sum + publisher.sent, 0),
      sentInWindow: this.sentInWindow,
      rateSkipped: this.rateSkipped,
      delivered: this.delivered,
      deliveredInWindow: this.deliveredInWindow,
      windowMs: Number.isFinite(this.measureEnd) ? this.measureEnd - this.measureStart : 0,
      clientCpuMs: this.clientCpuMs,
      drainMs: this.drainMs,
      unique,
      expected,
      lost,
      duplicates: this.duplicates,
      reordered: this.reordered,
      stale: this.stale,
      misrouted: this.misrouted,
      foreign: this.foreign,
      headerMismatches,
      heartbeatsReceived,
      errorCount: this.errorCount,
      errors,
      latency: this.latency.snapshot(),
      lag: { loopDelayP99Ms: this.loopDelayP99Ms, loopDelayMaxMs: this.loopDelayMaxMs, sendLag: this.sendLag.snapshot() },
    };
  }

  async close(): Promise<void> {
    this.publishing = false;
    if (this.rateTimer !== null) clearInterval(this.rateTimer);
    await runLimited(
      this.connections.map((connection) => () => connection.close()),
      500,
    );
  }

  private recordError(error: unknown): void {
    this.errorCount++;
    if (this.errors.length < MAX_KEPT_ERRORS) this.errors.push(error instanceof Error ? error.message : String(error));
  }

  /** Stamps the body with the time now and writes the frame: nothing runs between the two but serializing it. */
  private send(publisher: Publisher): number {
    const sentMs = nowMs();
    stampBody(publisher.body, this.options.binary, {
      run: this.options.run,
      stream: publisher.stream,
      seq: publisher.sent,
      sentMs,
    });
    publisher.connection.publish(publisher.destination, publisher.body);
    publisher.sent++;
    if (this.measuring) this.sentInWindow++;
    return sentMs;
  }

  /** Messages of `publisher` not yet seen by (the average of) its local subscribers. */
  private inFlight(publisher: Publisher): number {
    return publisher.sent - Math.floor(publisher.received / Math.max(1, publisher.localSubscribers));
  }

  /** Unlimited mode: keep `window` messages in flight. */
  private pump(publisher: Publisher): void {
    const window = this.options.window;
    while (this.publishing && publisher.connection.open && this.inFlight(publisher) < window) this.send(publisher);
  }

  /**
   * Fixed rate: messages are numbered globally and dealt round-robin over the
   * local publishers, message g due at g / rate; a 1 ms timer sends what is
   * due. The window still bounds memory when the broker falls behind.
   */
  private startRateTimer(): void {
    const totalPublishers = this.options.mode === 'p2p' ? this.options.pairs : 1;
    const perMs = (this.options.rate * this.publishers.length) / totalPublishers / 1000;
    const start = nowMs();
    let issued = 0;
    const count = this.publishers.length;
    this.rateTimer = setInterval(() => {
      const due = Math.floor((nowMs() - start) * perMs);
      while (issued < due && this.publishing) {
        const publisher = this.publishers[issued % count]!;
        // Message `issued` was due at start + (issued + 1) / perMs: how late it leaves is this process's lag.
        const scheduledMs = start + (issued + 1) / perMs;
        issued++;
        if (publisher.connection.open && this.inFlight(publisher) < this.options.window) {
          const sentMs = this.send(publisher);
          if (this.measuring) this.sendLag.record(sentMs - scheduledMs);
        } else this.rateSkipped++;
      }
    }, 1);
  }

  private receive(subscriber: Subscriber, body: Buffer, receivedMs: number): void {
    const now = receivedMs;
    const stamp = readStamp(body);
    if (stamp === null) {
      this.foreign++;
      return;
    }
    if (stamp.run !== this.options.run) {
      this.stale++;
      return;
    }
    if (stamp.stream !== subscriber.stream) {
      this.misrouted++;
      return;
    }
    this.delivered++;
    if (this.measuring) this.deliveredInWindow++;
    if (stamp.sentMs >= this.measureStart && stamp.sentMs < this.measureEnd) this.latency.record(now - stamp.sentMs);

    const seq = stamp.seq;
    const byte = seq >>> 3;
    if (byte >= subscriber.seen.length) {
      let size = subscriber.seen.length * 2;
      while (size <= byte) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(subscriber.seen);
      subscriber.seen = grown;
    }
    const bit = 1 << (seq & 7);
    if ((subscriber.seen[byte]! & bit) !== 0) {
      this.duplicates++;
    } else {
      subscriber.seen[byte]! |= bit;
      subscriber.unique++;
      if (seq < subscriber.maxSeq) {
        this.reordered++;
        // Which message and when: a reorder with no fault is a bug to find (docs/bench/results.md, session 14).
        if (this.reordered <= 5) {
          const window = this.measureStart === Number.POSITIVE_INFINITY ? 'warm-up' : `${Math.round(now - this.measureStart)} ms into the window`;
          console.error(`load worker: reordered on stream ${subscriber.stream}: seq ${seq} after ${subscriber.maxSeq}, sent ${Math.round(now - stamp.sentMs)} ms ago, ${window}`);
        }
      } else subscriber.maxSeq = seq;
    }

    const publisher = this.publisherByStream.get(subscriber.stream);
    if (publisher !== undefined) {
      publisher.received++;
      if (this.publishing && this.options.rate === 0) this.pump(publisher);
    }
  }
}

/*
 * The STOMP clients of the chaos load: a sender that sends receipted SENDs at
 * a steady rate, and a receiver that subscribes to /user/queue/chaos and
 * acknowledges as its ack mode says. Both reconnect by themselves when their
 * connection drops (to their usual node first, else the next one), like an
 * application would; a sender never re-sends a sequence number.
 */
import type { StompFrame } from '../../lib/stomp/index.js';
import { StompLink } from './stomp-link.js';
import { messageBody, type PairTally } from './tally.js';

export type AckMode = 'client-individual' | 'client' | 'auto';
export const ACK_MODES: readonly AckMode[] = ['client-individual', 'client', 'auto'];

export const CHAOS_DESTINATION = '/queue/chaos';
const RECONNECT_MIN_MS = 50;
const RECONNECT_MAX_MS = 1000;
/** SENDs awaiting an answer past which a sender waits (a frozen node must not grow it without bound). */
const MAX_PENDING = 2000;
const TICK_MS = 10;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Node URLs, the client's usual one first. Read at each attempt: nodes restart. */
export type UrlList = () => string[];

/**
 * Keeps one StompLink up: connects, and after a drop reconnects with a
 * bounded backoff, trying the URLs in turn from the usual one. Stops for good
 * on `closeLink()`. Subclasses say what to do on each connection and frame.
 */
abstract class ReconnectingClient {
  protected link: StompLink | undefined;
  protected closing = false;
  private delayMs = RECONNECT_MIN_MS;
  private attempt = 0;
  private loop: Promise<void> | undefined;
  /** Connections made, the first included. */
  connections = 0;
  lastCloseReason = '';

  constructor(
    readonly login: string,
    private readonly urls: UrlList,
  ) {}

  protected abstract onConnected(link: StompLink): void;
  protected abstract onFrame(frame: StompFrame): void;
  protected abstract onDropped(): void;

  /** An answer came back on this connection: the node works, reconnect fast next time. */
  protected healthy(): void {
    this.delayMs = RECONNECT_MIN_MS;
  }

  protected ensureConnected(): void {
    if (this.closing || this.link !== undefined || this.loop !== undefined) return;
    this.loop = this.connectLoop().finally(() => (this.loop = undefined));
  }

  private async connectLoop(): Promise<void> {
    while (!this.closing && this.link === undefined) {
      const urls = this.urls();
      const url = urls[this.attempt++ % urls.length]!;
      try {
        const link = await StompLink.connect(url, this.login, {
          onFrame: (frame) => this.onFrame(frame),
          onClose: (reason) => {
            if (this.link !== link) return;
            this.link = undefined;
            this.lastCloseReason = reason;
            this.onDropped();
            this.ensureConnected();
          },
        });
        if (this.closing) {
          link.terminate('closing');
          return;
        }
        this.link = link;
        this.attempt = 0;
        this.connections++;
        this.onConnected(link);
        return;
      } catch (error) {
        this.lastCloseReason = error instanceof Error ? error.message : String(error);
      }
      await sleep(this.delayMs);
      this.delayMs = Math.min(RECONNECT_MAX_MS, this.delayMs * 2);
    }
  }

  protected async closeLink(): Promise<void> {
    this.closing = true;
    const link = this.link;
    this.link = undefined;
    await link?.disconnect();
  }
}

export interface SenderOptions {
  pair: string;
  login: string;
  receiver: string;
  urls: UrlList;
  tally: PairTally;
  ratePerS: number;
  /** Stop after this many SENDs (inbox-full). @default unbounded */
  limit?: number;
}

export class Sender extends ReconnectingClient {
  private readonly pending = new Map<string, number>();
  private seq = 0;
  private credit = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastTick = 0;
  /** ERROR frames that named no SEND of ours (e.g. a connection-level failure). */
  readonly otherErrors = new Map<string, number>();

  constructor(private readonly options: SenderOptions) {
    super(options.login, options.urls);
  }

  get attempts(): number {
    return this.seq;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  start(): void {
    this.ensureConnected();
    this.lastTick = Date.now();
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  /** Stops sending, waits (bounded) for the answers still due, then disconnects; what is left is unconfirmed. */
  async stop(answerWaitMs = 5000): Promise<void> {
    clearInterval(this.timer);
    const deadline = Date.now() + answerWaitMs;
    while (this.pending.size > 0 && this.link !== undefined && Date.now() < deadline) await sleep(20);
    this.dropPending();
    await this.closeLink();
  }

  get done(): boolean {
    return this.options.limit !== undefined && this.seq >= this.options.limit && this.pending.size === 0;
  }

  private tick(): void {
    const now = Date.now();
    const elapsed = now - this.lastTick;
    this.lastTick = now;
    const link = this.link;
    // Disconnected time earns no credit: the sender does not burst to catch up after a reconnect.
    if (link === undefined || !link.open) {
      this.credit = 0;
      return;
    }
    this.credit = Math.min(this.credit + (elapsed * this.options.ratePerS) / 1000, 5);
    while (this.credit >= 1 && this.pending.size < MAX_PENDING && (this.options.limit === undefined || this.seq < this.options.limit)) {
      this.credit--;
      const seq = this.seq++;
      const receipt = `s-${seq}`;
      this.pending.set(receipt, seq);
      this.options.tally.onSent();
      link.send({
        command: 'SEND',
        headers: { destination: `/user/${this.options.receiver}${CHAOS_DESTINATION}`, receipt, 'content-type': 'text/plain' },
        body: messageBody(this.options.pair, seq),
      });
    }
  }

  protected onConnected(): void {}

  protected onFrame(frame: StompFrame): void {
    const receiptId = frame.headers['receipt-id'];
    const seq = receiptId === undefined ? undefined : this.pending.get(receiptId);
    if (frame.command === 'RECEIPT' && seq !== undefined) {
      this.pending.delete(receiptId!);
      this.options.tally.onReceipt(seq);
      this.healthy();
    } else if (frame.command === 'ERROR') {
      const code = frame.headers.code ?? 'no code';
      if (seq !== undefined) {
        this.pending.delete(receiptId!);
        this.options.tally.onRefused(seq, code);
        this.healthy();
      } else this.otherErrors.set(code, (this.otherErrors.get(code) ?? 0) + 1);
    }
  }

  protected onDropped(): void {
    this.dropPending();
  }

  /** SENDs without an answer when their connection ended: nobody can say whether they were kept. */
  private dropPending(): void {
    for (const seq of this.pending.values()) this.options.tally.onUnconfirmed(seq);
    this.pending.clear();
  }
}

export interface ReceiverOptions {
  pair: string;
  login: string;
  ackMode: AckMode;
  urls: UrlList;
  tally: PairTally;
}

/** Cumulative ACK (ack: client) after this many messages or this long, whichever first. */
const CLIENT_ACK_EVERY = 10;
const CLIENT_ACK_AFTER_MS = 50;

export class Receiver extends ReconnectingClient {
  private subscribed = false;
  private subscriptions = 0;
  private unackedId: string | undefined;
  private unackedCount = 0;
  private ackTimer: NodeJS.Timeout | undefined;
  private readonly receiptWaiters = new Map<string, () => void>();
  private receiptCounter = 0;
  private readonly subscribeWaiters = new Set<() => void>();

  constructor(private readonly options: ReceiverOptions) {
    super(options.login, options.urls);
  }

  get mode(): AckMode {
    return this.options.ackMode;
  }

  get isSubscribed(): boolean {
    return this.subscribed;
  }

  /** Connects and subscribes; resolves once the subscription's RECEIPT came (bounded). */
  async start(timeoutMs = 15_000): Promise<void> {
    this.closing = false;
    this.ensureConnected();
    await this.untilSubscribed(timeoutMs);
  }

  /** A dropped connection (no DISCONNECT); resolves once the client has re-subscribed by itself. */
  async flap(timeoutMs = 15_000): Promise<void> {
    this.link?.terminate('flap');
    await this.untilSubscribed(timeoutMs);
  }

  /** A fresh session, as a user reloading the page: ACKs flushed, DISCONNECT, connect and subscribe again. */
  async renew(timeoutMs = 15_000): Promise<void> {
    await this.stop();
    await this.start(timeoutMs);
  }

  /** ACKs flushed (with a receipt), then DISCONNECT; no reconnect. */
  async stop(): Promise<void> {
    await this.flushAck(true);
    this.subscribed = false;
    await this.closeLink();
  }

  private untilSubscribed(timeoutMs: number): Promise<void> {
    if (this.subscribed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.subscribeWaiters.delete(done);
        reject(new Error(`${this.options.pair} receiver not subscribed within ${timeoutMs} ms (last close: ${this.lastCloseReason || 'none'})`));
      }, timeoutMs);
      this.subscribeWaiters.add(done);
    });
  }

  protected onConnected(link: StompLink): void {
    const receipt = `sub-${++this.subscriptions}`;
    this.receiptWaiters.set(receipt, () => {
      this.subscribed = true;
      for (const waiter of [...this.subscribeWaiters]) waiter();
      this.subscribeWaiters.clear();
    });
    link.send({ command: 'SUBSCRIBE', headers: { id: 'chaos', destination: `/user${CHAOS_DESTINATION}`, ack: this.options.ackMode, receipt } });
  }

  protected onFrame(frame: StompFrame): void {
    if (frame.command === 'MESSAGE') {
      if (this.closing) return;
      this.options.tally.onDelivery(frame.body.toString('utf8'), frame.headers['message-id'] ?? '', this.connections);
      const ackId = frame.headers.ack;
      if (this.options.ackMode === 'client-individual' && ackId !== undefined) this.link?.send({ command: 'ACK', headers: { id: ackId } });
      else if (this.options.ackMode === 'client' && ackId !== undefined) this.noteForCumulativeAck(ackId);
    } else if (frame.command === 'RECEIPT') {
      const id = frame.headers['receipt-id'] ?? '';
      this.receiptWaiters.get(id)?.();
      this.receiptWaiters.delete(id);
    }
  }

  protected onDropped(): void {
    this.options.tally.onReceiverDrop();
    this.subscribed = false;
    // Unacked messages of the dropped session are the broker's to return; nothing to ACK any more.
    this.unackedId = undefined;
    this.unackedCount = 0;
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    this.receiptWaiters.clear();
  }

  private noteForCumulativeAck(ackId: string): void {
    this.unackedId = ackId;
    if (++this.unackedCount >= CLIENT_ACK_EVERY) return void this.flushAck(false);
    this.ackTimer ??= setTimeout(() => void this.flushAck(false), CLIENT_ACK_AFTER_MS);
  }

  /** Sends the pending cumulative ACK; with `confirmed`, waits (bounded) for its RECEIPT. */
  private async flushAck(confirmed: boolean): Promise<void> {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    const id = this.unackedId;
    this.unackedId = undefined;
    this.unackedCount = 0;
    const link = this.link;
    if (link === undefined) return;
    if (!confirmed) {
      if (id !== undefined) link.send({ command: 'ACK', headers: { id } });
      return;
    }
    // A barrier even without a pending ACK: client-individual ACKs already written are handled before it.
    const receipt = `ack-${++this.receiptCounter}`;
    const answered = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      this.receiptWaiters.set(receipt, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    if (id !== undefined) {
      link.send({ command: 'ACK', headers: { id, receipt } });
    } else {
      link.send({ command: 'BEGIN', headers: { transaction: receipt, receipt } });
      link.send({ command: 'ABORT', headers: { transaction: receipt } });
    }
    await answered;
  }
}

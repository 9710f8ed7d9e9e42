/*
 * One STOMP session: one per transport connection. It owns the parser, the
 * session state machine (connecting → connected → closed), subscriptions,
 * unacknowledged deliveries, open transactions and heart-beat bookkeeping.
 * Frames are handled strictly in arrival order (one at a time) so that what
 * one client sends keeps its order through routing.
 */
import { frameTooLargeError, HEARTBEAT_EOL, serializeFrame, StompParser, type OutgoingFrame, type ParserHandlers, type StompFrame, type StompVersion } from '../stomp/index.js';
import { StompCodecError } from '../stomp/errors.js';
import type { AcceptOutcome, Broker } from './broker.js';
import type { Connection, TransportContext } from './connection.js';
import type { Destination } from './destinations.js';
import { BrokerError, toBrokerError } from '../core/errors.js';
import { dispatchFrame } from './handlers/index.js';
import type { HeartbeatClient } from './heartbeat-wheel.js';
import { messageFrame } from './message-frame.js';
import type { BrokerMessage } from '../core/message.js';
import type { Claims } from './permissions.js';
import type { Subscription } from './subscription.js';
import type { RelayHold } from '../cluster/relay.js';
import { TokenBucket } from './token-bucket.js';
import type { Transaction } from './transaction.js';

export type SessionState = 'connecting' | 'connected' | 'closed';

/** Where a delivered message came from, which decides what ACK/NACK and session end do with it. */
export type DeliverySource = 'topic' | 'queue' | 'user' | 'inbox';

export interface PendingAck {
  readonly key: string;
  readonly subscription: Subscription;
  readonly message: BrokerMessage;
  readonly source: DeliverySource;
  /** Lets the relay forget the message's stream entry: called once it is acked or kept elsewhere. */
  readonly release?: () => void;
  /** Delivered while the subscription's inbox was drained (not counted against MAX_UNACKED). */
  readonly drained?: boolean;
}

/** SENDs routed concurrently per session; beyond, the session waits for them. */
const MAX_PIPELINED = 128;
const INPUT_QUEUE_HIGH = 256;
const INPUT_QUEUE_LOW = 32;
/** A client must send CONNECT within this long of opening the connection. */
export const CONNECT_TIMEOUT_MS = 10_000;

let sessionCounter = 0;
/** The pipeline's tail before any SEND: one settled promise for every session. */
const SETTLED: Promise<void> = Promise.resolve();
const NONE_PENDING: ReadonlyMap<string, PendingAck> = new Map();
const NONE_OPEN: ReadonlyMap<string, Transaction> = new Map();

export class Session implements HeartbeatClient, ParserHandlers {
  readonly id: string;
  user: string | undefined;
  /** jwt mode: the claims of the token the session connected with (permissions.ts reads them). */
  claims: Claims | undefined;
  version: StompVersion = '1.2';
  state: SessionState = 'connecting';
  readonly parser: StompParser;
  readonly subscriptions = new Map<string, Subscription>();
  /**
   * ACKs settled here whose stores are still being told (Broker.acknowledge).
   * This, `pendingAcks` and `openTransactions` are made on first use: an empty
   * Map or Set is ~0.2–0.3 KiB, and most connections never ACK or open a
   * transaction (an idle subscribed connection is ~11 KiB in all).
   */
  acknowledging: Set<Promise<void>> | undefined;
  private pendingAcks: Map<string, PendingAck> | undefined;
  private openTransactions: Map<string, Transaction> | undefined;
  /** The last SEND destination and its parse (handlers/send.ts). */
  lastSendDestination: { name: string; destination: Destination } | undefined;
  /** Milliseconds between our beats (0: none) and the client's allowed silence (0: unchecked). */
  sendIntervalMs = 0;
  receiveTimeoutMs = 0;
  lastReceivedAt: number;
  lastSentAt: number;

  private readonly input: StompFrame[] = [];
  /** Body bytes of the frames in `input`. */
  private inputBytes = 0;
  /** The send rate bound (messages, bytes), made on the first SEND. */
  private sendBuckets: { messages: TokenBucket; bytes: TokenBucket } | undefined;
  private processing = false;
  /** SENDs being routed, in frame order: each answered (RECEIPT or ERROR) once every earlier one is. */
  private readonly sends: SendTicket[] = [];
  /** processInput waits for `sends` to empty (settled when it does). */
  private answeredWaiter: { promise: Promise<void>; resolve: () => void } | undefined;
  private paused = false;
  private ackCounter = 0;

  /** Unacknowledged deliveries in delivery order. */
  get pending(): ReadonlyMap<string, PendingAck> {
    return this.pendingAcks ?? NONE_PENDING;
  }

  get transactions(): ReadonlyMap<string, Transaction> {
    return this.openTransactions ?? NONE_OPEN;
  }

  openTransaction(transaction: Transaction): void {
    (this.openTransactions ??= new Map()).set(transaction.id, transaction);
  }

  /** False when `id` was not open. */
  closeTransaction(id: string): boolean {
    return this.openTransactions?.delete(id) ?? false;
  }

  constructor(
    readonly broker: Broker,
    readonly connection: Connection,
    readonly transport: TransportContext = {},
  ) {
    this.id = `${broker.nodeId}-${(++sessionCounter).toString(36)}`;
    // The session is the parser's handlers (onFrame, onError): no closures per connection.
    this.parser = new StompParser(this, broker.frameLimits);
    this.lastReceivedAt = this.lastSentAt = broker.wheel.now;
    broker.wheel.schedule(this, Date.now() + broker.connectTimeoutMs);
  }

  /** Not closed (yet): re-read after an await, where TypeScript's narrowing of `state` goes stale. */
  get open(): boolean {
    return this.state !== 'closed';
  }

  get connected(): boolean {
    return this.state === 'connected';
  }

  /** The outgoing buffer is past half its bound: queue dispatch skips this session. */
  get congested(): boolean {
    return this.connection.bufferedAmount > this.broker.config.maxOutgoingBuffer / 2;
  }

  // ---- input -------------------------------------------------------------

  /** Bytes from the transport. */
  receive(chunk: Buffer | string): void {
    if (this.state === 'closed') return;
    this.lastReceivedAt = this.broker.wheel.now;
    this.broker.stats.bytesIn += chunk.length;
    this.parser.push(chunk);
  }

  /**
   * The transport cut a message over its own bound before the parser saw it
   * (a WebSocket or SockJS message): the client learns why, as for any frame
   * over maxFrameSize (STOMP 1.2 "ERROR"), before the close.
   */
  frameTooLarge(): void {
    this.fail(frameTooLargeError(this.broker.frameLimits.maxFrameSize));
  }

  /** The transport closed (client went away, or after our close). */
  transportClosed(): void {
    this.end();
  }

  /** ParserHandlers: a whole frame arrived; frames are handled one at a time, in order. */
  onFrame(frame: StompFrame): void {
    if (this.state === 'closed') return;
    this.broker.stats.framesIn++;
    this.input.push(frame);
    this.inputBytes += frame.body.length;
    const { maxInputFrames, maxInputBytes } = this.broker.config;
    // A transport that cannot pause (SockJS) or one chunk holding many frames: cut, do not grow.
    if (this.input.length > maxInputFrames || this.inputBytes > maxInputBytes) {
      this.fail(
        new BrokerError('ERR_INPUT_OVERFLOW', `more than ${maxInputFrames} frames or ${maxInputBytes} body bytes wait to be handled (limits maxInputFrames, maxInputBytes)`),
      );
      return;
    }
    if (!this.paused && (this.input.length > INPUT_QUEUE_HIGH || this.inputBytes > maxInputBytes / 2)) {
      this.paused = true;
      this.connection.pause();
    }
    if (!this.processing) void this.processInput();
  }

  private async processInput(): Promise<void> {
    this.processing = true;
    try {
      let frame: StompFrame | undefined;
      while (this.state !== 'closed' && (frame = this.input.shift()) !== undefined) {
        this.inputBytes -= frame.body.length;
        // Only SENDs overlap; any other frame sees every earlier SEND done (and answered).
        if (this.sends.length > 0 && (frame.command !== 'SEND' || this.sends.length >= MAX_PIPELINED)) {
          await this.sendsAnswered();
          if (!this.open) return;
        }
        try {
          const pending = dispatchFrame(this, frame);
          if (pending) await pending;
        } catch (error) {
          this.fail(error, frame);
          return;
        }
        if (this.paused && this.input.length < INPUT_QUEUE_LOW && this.inputBytes <= this.broker.config.maxInputBytes / 4) {
          this.paused = false;
          this.connection.resume();
        }
      }
    } finally {
      this.processing = false;
    }
  }

  /**
   * A SEND's ticket: routing runs while later frames are read (routing calls
   * are issued in frame order, so one sender's messages keep their order,
   * while the wait for the cluster store overlaps); its RECEIPT — or the
   * ERROR when it is refused — follows every earlier SEND's answer. A ticket,
   * not a promise chain: with four promises and seven closures per SEND gone,
   * the sending node's GC went 9.6 → 7.5 % of its samples at saturation.
   */
  sendTicket(frame: StompFrame): SendTicket {
    const ticket = new SendTicket(this, frame);
    this.sends.push(ticket);
    return ticket;
  }

  /** Answers the settled SENDs at the head of `sends` (SendTicket calls it as each settles). */
  answerSends(): void {
    const sends = this.sends;
    let head: SendTicket | undefined;
    while ((head = sends[0]) !== undefined && head.state !== TicketState.Routing) {
      sends.shift();
      if (head.state === TicketState.Accepted) {
        if (this.state !== 'closed') this.sendReceipt(head.frame);
      } else {
        this.fail(head.error, head.frame);
      }
    }
    if (sends.length === 0 && this.answeredWaiter !== undefined) {
      const { resolve } = this.answeredWaiter;
      this.answeredWaiter = undefined;
      resolve();
    }
  }

  /** Resolves once every SEND dispatched so far (and any dispatched meanwhile) is answered. */
  sendsAnswered(): Promise<void> {
    if (this.sends.length === 0) return SETTLED;
    if (this.answeredWaiter === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((settle) => (resolve = settle));
      this.answeredWaiter = { promise, resolve };
    }
    return this.answeredWaiter.promise;
  }

  // ---- output ------------------------------------------------------------

  write(data: Buffer, binary: boolean): void {
    if (this.state === 'closed') return;
    this.lastSentAt = this.broker.wheel.now;
    this.broker.stats.bytesOut += data.length;
    this.broker.stats.framesOut++;
    this.connection.send(data, binary || this.transport.alwaysBinary === true);
  }

  sendFrame(frame: OutgoingFrame): void {
    this.write(serializeFrame(frame, this.version), false);
  }

  /** STOMP 1.2 "Header receipt": any client frame may ask for a RECEIPT. */
  sendReceipt(frame: StompFrame): void {
    const receipt = frame.headers.receipt;
    if (receipt !== undefined) this.sendFrame({ command: 'RECEIPT', headers: { 'receipt-id': receipt } });
  }

  /**
   * Writes a MESSAGE for `subscription`. Returns false, without writing, when
   * this session is a slow consumer (its outgoing buffer is past the bound):
   * the caller then keeps the message elsewhere and the session is ended.
   */
  deliver(subscription: Subscription, message: BrokerMessage, source: DeliverySource, hold?: RelayHold): boolean {
    if (this.state !== 'connected') return false;
    if (this.connection.bufferedAmount > this.broker.config.maxOutgoingBuffer) {
      this.fail(
        new BrokerError('ERR_SLOW_CONSUMER', `outgoing buffer passed ${this.broker.config.maxOutgoingBuffer} bytes (limit maxOutgoingBuffer)`),
      );
      return false;
    }
    let ack: string | undefined;
    if (subscription.ackMode !== 'auto') {
      // Queues hold back at their prefetch (capped at maxUnacked); what the inbox held when the
      // subscription began (drained while its backlog gathers live messages) is bounded by the
      // inbox's own cap. Live topic and user deliveries past the bound cut the session, and the
      // caller keeps the message (inbox, another node) as for a slow consumer.
      const drained = source === 'inbox' && subscription.backlog !== null;
      if (!drained && subscription.unacked - subscription.unackedDrained >= this.broker.config.maxUnacked) {
        this.fail(
          new BrokerError('ERR_TOO_MANY_UNACKED', `subscription "${subscription.id.slice(0, 64)}" holds ${this.broker.config.maxUnacked} unacknowledged messages (limit maxUnacked)`),
        );
        return false;
      }
      const key = this.version === '1.2' ? String(++this.ackCounter) : `${subscription.id}\0${message.id}`;
      if (this.version === '1.2') ack = key;
      (this.pendingAcks ??= new Map()).set(key, { key, subscription, message, source, release: hold?.(), drained });
      subscription.unacked++;
      if (drained) subscription.unackedDrained++;
    } else {
      hold?.unconfirmed();
    }
    const frame = messageFrame(message, this.version, subscription.destination, subscription.id, ack);
    this.write(frame.data, frame.binary);
    this.broker.stats.messagesDelivered++;
    return true;
  }

  /** Charges one SEND of `bytes` body bytes to the session's send rate; ERR_RATE_LIMITED past it. */
  chargeSend(bytes: number): void {
    const { sendRateMessages, sendRateBytes, maxBodySize } = this.broker.config;
    this.sendBuckets ??= {
      messages: new TokenBucket(sendRateMessages, sendRateMessages),
      bytes: new TokenBucket(sendRateBytes, Math.max(sendRateBytes, maxBodySize)),
    };
    // One clock read for both buckets (the clock was ~1.5 % of the sending node at saturation).
    const now = performance.now();
    if (!this.sendBuckets.messages.take(1, now) || !this.sendBuckets.bytes.take(bytes, now)) {
      throw new BrokerError('ERR_RATE_LIMITED', `sending faster than ${sendRateMessages} messages or ${sendRateBytes} bytes a second (limits sendRateMessages, sendRateBytes)`);
    }
  }

  heartbeat(): void {
    this.write(HEARTBEAT_EOL, false);
  }

  /** Pending deliveries an ACK/NACK frame refers to (STOMP 1.2 "ACK"; 1.1 uses message-id + subscription). */
  findPending(frame: StompFrame): PendingAck[] {
    const h = frame.headers;
    let key: string | undefined;
    if (this.version === '1.2') {
      key = h.id;
      if (key === undefined) throw new BrokerError('ERR_MISSING_HEADER', `${frame.command} requires an "id" header`);
    } else {
      if (h['message-id'] === undefined) throw new BrokerError('ERR_MISSING_HEADER', `${frame.command} requires a "message-id" header`);
      const subId = h.subscription ?? this.onlySubscriptionId();
      key = `${subId}\0${h['message-id']}`;
    }
    const target = this.pending.get(key) ?? (this.version === '1.2' ? undefined : this.pendingByMessageId(h['message-id']!));
    if (!target) throw new BrokerError('ERR_UNKNOWN_ACK', `${frame.command} for an unknown or already acknowledged message`);
    if (target.subscription.ackMode === 'client-individual') return [target];
    // `client` mode is cumulative: everything up to this message on the subscription.
    const covered: PendingAck[] = [];
    for (const entry of this.pending.values()) {
      if (entry.subscription === target.subscription) covered.push(entry);
      if (entry === target) break;
    }
    return covered;
  }

  /** Forgets pending deliveries (after ACK/NACK or unsubscribe). */
  settle(entries: readonly PendingAck[]): void {
    for (const entry of entries) {
      if (this.pendingAcks?.delete(entry.key) !== true) continue;
      entry.subscription.unacked--;
      if (entry.drained) entry.subscription.unackedDrained--;
    }
  }

  /**
   * A 1.0/1.1 ACK whose `subscription` matches none of ours (stomp.py's 1.1
   * helper sends one): the message id alone decides, when exactly one pending
   * delivery of this session carries it (RabbitMQ acknowledges by message id).
   */
  private pendingByMessageId(messageId: string): PendingAck | undefined {
    let found: PendingAck | undefined;
    for (const entry of this.pending.values()) {
      if (entry.message.id !== messageId) continue;
      if (found) return undefined; // ambiguous: delivered on several subscriptions
      found = entry;
    }
    return found;
  }

  private onlySubscriptionId(): string {
    // STOMP 1.0 ACK carries only message-id; find its subscription.
    return this.subscriptions.size === 1 ? this.subscriptions.keys().next().value! : '';
  }

  // ---- heart-beats -------------------------------------------------------

  /**
   * STOMP 1.2 "Heart-beating": the client's `cx,cy` is honoured within
   * HEARTBEAT_MIN_MS and HEARTBEAT_MAX_MS; 0 (or no header: 1.0 clients, and
   * the spec's default `0,0`) means none in that direction. CONNECTED then
   * carries the intervals themselves, so the client's own max(cx, sy) and
   * max(cy, sx) come out as exactly what the server does. No ceiling on what
   * the server expects: a client cannot beat faster than the cx it offered.
   */
  negotiateHeartbeat(header: string | undefined): string {
    const { heartbeatMinMs: floor, heartbeatMaxMs: ceiling, heartbeatGraceMs } = this.broker.config;
    let cx = 0;
    let cy = 0;
    if (header !== undefined) {
      const match = /^\s*(\d+)\s*,\s*(\d+)\s*$/.exec(header);
      if (!match) throw new BrokerError('ERR_INVALID_HEADER', `invalid heart-beat header "${header.slice(0, 32)}"`);
      cx = Number(match[1]);
      cy = Number(match[2]);
    }
    this.sendIntervalMs = cy === 0 ? 0 : Math.max(floor, Math.min(cy, ceiling));
    const receiveIntervalMs = cx === 0 ? 0 : Math.max(floor, cx);
    this.receiveTimeoutMs = receiveIntervalMs === 0 ? 0 : receiveIntervalMs + heartbeatGraceMs;
    this.scheduleHeartbeat();
    return `${this.sendIntervalMs},${receiveIntervalMs}`;
  }

  scheduleHeartbeat(): void {
    this.broker.wheel.schedule(this, this.nextHeartbeatAt());
  }

  onHeartbeatDue(now: number): number {
    if (this.state === 'closed') return 0;
    if (this.state === 'connecting') {
      this.fail(new BrokerError('ERR_NOT_CONNECTED', `no CONNECT frame within ${this.broker.connectTimeoutMs} ms`));
      return 0;
    }
    if (this.receiveTimeoutMs > 0 && now - this.lastReceivedAt > this.receiveTimeoutMs) {
      this.fail(new BrokerError('ERR_HEARTBEAT_TIMEOUT', `no data from the client for ${this.receiveTimeoutMs} ms (negotiated heart-beat plus grace)`));
      return 0;
    }
    if (this.sendIntervalMs > 0 && now - this.lastSentAt >= this.sendIntervalMs) this.heartbeat();
    return this.nextHeartbeatAt();
  }

  private nextHeartbeatAt(): number {
    let next = 0;
    if (this.sendIntervalMs > 0) next = this.lastSentAt + this.sendIntervalMs;
    if (this.receiveTimeoutMs > 0) {
      const deadline = this.lastReceivedAt + this.receiveTimeoutMs + 1;
      next = next === 0 ? deadline : Math.min(next, deadline);
    }
    return next;
  }

  // ---- ending ------------------------------------------------------------

  /** ParserHandlers: the input is not STOMP or passes a limit; the parser has stopped. */
  onError(error: StompCodecError): void {
    this.fail(error);
  }

  /**
   * Sends an ERROR frame (STOMP 1.2 "ERROR": `message` header, `receipt-id`
   * when the offending frame asked for a receipt) and closes: the server
   * MUST close the connection after an ERROR. Logged once.
   */
  fail(error: unknown, frame?: StompFrame): void {
    if (this.state === 'closed') return;
    const brokerError = error instanceof StompCodecError ? new BrokerError(error.code, error.message) : toBrokerError(error);
    if (brokerError.code === 'ERR_INTERNAL') this.broker.log.error({ err: error, session: this.id }, 'internal error in session');
    else this.broker.log.info({ session: this.id, user: this.user, code: brokerError.code, detail: brokerError.message }, 'session error');
    this.broker.stats.countError(brokerError.code);
    const headers: Record<string, string> = {
      message: brokerError.message.slice(0, 200),
      code: brokerError.code,
      'content-type': 'text/plain',
    };
    const receipt = frame?.headers.receipt;
    if (receipt !== undefined) headers['receipt-id'] = receipt;
    if (brokerError.code === 'ERR_UNSUPPORTED_VERSION') headers.version = '1.0,1.1,1.2';
    this.sendFrame({ command: 'ERROR', headers, body: `${brokerError.code}: ${brokerError.message}\n` });
    this.close(1000, brokerError.code);
  }

  /** Closes the connection (after flushing) and ends the session. */
  close(code = 1000, reason = ''): void {
    if (this.state === 'closed') return;
    this.connection.close(code, reason);
    this.end();
  }

  private end(): void {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    this.input.length = 0;
    this.inputBytes = 0;
    this.broker.wheel.cancel(this);
    this.openTransactions = undefined;
    this.broker.sessionEnded(this, wasConnected);
  }
}

const enum TicketState {
  Routing,
  Accepted,
  Refused,
}

/** One SEND being routed (Session.sendTicket): told its end once, answered by the session in frame order. */
export class SendTicket implements AcceptOutcome {
  state = TicketState.Routing;
  error: unknown;

  constructor(
    private readonly session: Session,
    readonly frame: StompFrame,
  ) {}

  accepted(): void {
    if (this.state !== TicketState.Routing) return;
    this.state = TicketState.Accepted;
    this.session.answerSends();
  }

  refused(error: unknown): void {
    if (this.state !== TicketState.Routing) return;
    this.state = TicketState.Refused;
    this.error = error;
    this.session.answerSends();
  }
}

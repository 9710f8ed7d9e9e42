/*
 * What happened to each message of one sender→receiver pair. The sender
 * records each SEND's outcome by sequence number; the receiver records each
 * delivery with its message-id. "Lost" is only ever computed from these two
 * records: a RECEIPT the broker gave for a sequence number that never arrived.
 */

/** A message body: the pair's name and the sequence number, nothing else. */
export function messageBody(pair: string, seq: number): string {
  return `${pair}:${seq}`;
}

export function parseBody(body: string): { pair: string; seq: number } | undefined {
  const colon = body.lastIndexOf(':');
  const seq = Number(body.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(seq)) return undefined;
  return { pair: body.slice(0, colon), seq };
}

export interface PairCounts {
  pair: string;
  /** SENDs written to a socket. */
  sent: number;
  receipted: number;
  /** Distinct sequence numbers received (receipted or not). */
  delivered: number;
  /** Receipted, never received. null when the run could not measure it (e.g. an API missing). */
  lost: number | null;
  dupSameId: number;
  dupOtherId: number;
  /** Duplicates (either kind) of messages first received more than PRE_FAULT_MARGIN_MS before the fault began: not in flight at it. */
  dupPreFault: number;
  /** First deliveries whose sequence number is below one already received. */
  reordered: number;
  refused: Record<string, number>;
  unconfirmed: number;
  /** Receipted messages first received only by a fresh session after the wait (held back from a live subscriber). */
  stranded: number;
  /** Delivered although the SEND was refused or unconfirmed (a refusal that was not one). */
  deliveredUnreceipted: number;
  /** Deliveries that were not this pair's (wrong body or pair): should be 0. */
  foreign: number;
  /** The first few lost sequence numbers, for the logs. */
  lostSample: number[];
  /** Lost messages that were among the next few after one the receiver had when its connection dropped: in flight then. */
  lostAtDrop: number;
  /** The first few duplicates, for the logs: where each copy came (ms after the fault began, receiver connection number). */
  dupSample: DuplicateSample[];
}

export interface DuplicateSample {
  seq: number;
  sameId: boolean;
  firstMs: number;
  againMs: number;
  firstConnection: number;
  againConnection: number;
}

const DUP_SAMPLE_SIZE = 10;

/** A message first received this long before the fault began was not in flight at it. */
export const PRE_FAULT_MARGIN_MS = 1000;
/** How many messages past the last one received may have been on the wire when a connection dropped (~70 ms at 70 msg/s). */
const IN_FLIGHT_AT_DROP = 5;

export class PairTally {
  private readonly receipted = new Set<number>();
  private readonly refused = new Map<string, number>();
  private readonly unconfirmed = new Set<number>();
  /** Sequence number → the message-ids it arrived with, and when it first did. */
  private readonly deliveries = new Map<number, { ids: Set<string>; firstAt: number; connection: number }>();
  private readonly dupSample: DuplicateSample[] = [];
  private faultAt: number | undefined;
  private dupPreFault = 0;
  private sent = 0;
  private maxSeq = -1;
  private dupSameId = 0;
  private dupOtherId = 0;
  private reordered = 0;
  private foreign = 0;
  private strandedPhase = false;
  /** The highest sequence number received when each receiver connection dropped. */
  private readonly drops: number[] = [];
  private stranded = 0;
  /** Set by the run when a delivery arrives: the wait watches it for progress. */
  lastDeliveryAt = 0;

  constructor(readonly pair: string) {}

  onSent(): void {
    this.sent++;
  }

  onReceipt(seq: number): void {
    this.receipted.add(seq);
    this.unconfirmed.delete(seq);
  }

  onRefused(seq: number, code: string): void {
    this.refused.set(code, (this.refused.get(code) ?? 0) + 1);
  }

  onUnconfirmed(seq: number): void {
    this.unconfirmed.add(seq);
  }

  /** `connection`: which of the receiver's connections it came on (1 = the first). */
  onDelivery(body: string, messageId: string, connection = 0): void {
    this.lastDeliveryAt = Date.now();
    const parsed = parseBody(body);
    if (parsed === undefined || parsed.pair !== this.pair) {
      this.foreign++;
      return;
    }
    const { seq } = parsed;
    const seen = this.deliveries.get(seq);
    if (seen !== undefined) {
      const sameId = seen.ids.has(messageId);
      if (sameId) this.dupSameId++;
      else this.dupOtherId++;
      if (this.dupSample.length < DUP_SAMPLE_SIZE) {
        const since = this.faultAt ?? 0;
        this.dupSample.push({ seq, sameId, firstMs: seen.firstAt - since, againMs: this.lastDeliveryAt - since, firstConnection: seen.connection, againConnection: connection });
      }
      if (this.faultAt !== undefined && seen.firstAt < this.faultAt - PRE_FAULT_MARGIN_MS) this.dupPreFault++;
      seen.ids.add(messageId);
      return;
    }
    this.deliveries.set(seq, { ids: new Set([messageId]), firstAt: this.lastDeliveryAt, connection });
    if (seq < this.maxSeq) this.reordered++;
    else this.maxSeq = seq;
    if (this.strandedPhase && this.receipted.has(seq)) this.stranded++;
  }

  /** The receiver's connection dropped. */
  onReceiverDrop(): void {
    this.drops.push(this.maxSeq);
  }

  /** The fault begins now: later duplicates of what arrived well before it were not in flight at it. */
  markFault(): void {
    this.faultAt = Date.now();
  }

  /** From now on, first deliveries of receipted messages count as stranded. */
  markStrandedPhase(): void {
    this.strandedPhase = true;
  }

  /** Receipted sequence numbers not received yet. */
  missing(): number {
    let count = 0;
    for (const seq of this.receipted) if (!this.deliveries.has(seq)) count++;
    return count;
  }

  counts(measured: boolean): PairCounts {
    const lost = [...this.receipted].filter((seq) => !this.deliveries.has(seq)).sort((a, b) => a - b);
    let deliveredUnreceipted = 0;
    for (const seq of this.deliveries.keys()) if (!this.receipted.has(seq)) deliveredUnreceipted++;
    return {
      pair: this.pair,
      sent: this.sent,
      receipted: this.receipted.size,
      delivered: this.deliveries.size,
      lost: measured ? lost.length : null,
      dupSameId: this.dupSameId,
      dupOtherId: this.dupOtherId,
      dupPreFault: this.dupPreFault,
      reordered: this.reordered,
      refused: Object.fromEntries(this.refused),
      unconfirmed: this.unconfirmed.size,
      stranded: this.stranded,
      deliveredUnreceipted,
      foreign: this.foreign,
      lostSample: lost.slice(0, 20),
      lostAtDrop: lost.filter((seq) => this.drops.some((last) => seq > last && seq <= last + IN_FLIGHT_AT_DROP)).length,
      dupSample: [...this.dupSample],
    };
  }
}

/*
 * A fixed, mergeable latency histogram (HDR-like): log-spaced buckets of 1 %
 * width from 1 µs to 100 s, preallocated once. Recording is O(1) with no
 * allocation, and histograms from several processes add up bucket by bucket,
 * which raw sample arrays would not do cheaply across IPC.
 */

/** Bucket growth factor: a reported percentile is within 1 % of the sample. */
const GROWTH = 1.01;
const LOG_GROWTH = Math.log(GROWTH);
/** Values are kept in microseconds; bucket 0 holds everything below 1 µs. */
const MAX_MICROS = 100_000_000;
const BUCKETS = 2 + Math.ceil(Math.log(MAX_MICROS) / LOG_GROWTH);

/** A serializable form: non-empty buckets only, as [index, count] pairs. */
export interface HistogramSnapshot {
  buckets: Array<[number, number]>;
  count: number;
  sumMs: number;
  minMs: number;
  maxMs: number;
}

export interface LatencySummary {
  count: number;
  meanMs: number;
  minMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  count = 0;
  private sumMs = 0;
  private minMs = Number.POSITIVE_INFINITY;
  private maxMs = 0;

  record(ms: number): void {
    const micros = ms * 1000;
    let index: number;
    if (!(micros >= 1)) index = 0; // also catches NaN and negatives (clock skew)
    else if (micros >= MAX_MICROS) index = BUCKETS - 1;
    else index = 1 + Math.floor(Math.log(micros) / LOG_GROWTH);
    this.counts[index]! += 1;
    this.count++;
    this.sumMs += ms;
    if (ms < this.minMs) this.minMs = ms;
    if (ms > this.maxMs) this.maxMs = ms;
  }

  merge(snapshot: HistogramSnapshot): void {
    for (const [index, count] of snapshot.buckets) this.counts[index]! += count;
    this.count += snapshot.count;
    this.sumMs += snapshot.sumMs;
    if (snapshot.count > 0) {
      this.minMs = Math.min(this.minMs, snapshot.minMs);
      this.maxMs = Math.max(this.maxMs, snapshot.maxMs);
    }
  }

  snapshot(): HistogramSnapshot {
    const buckets: Array<[number, number]> = [];
    for (let i = 0; i < BUCKETS; i++) {
      const c = this.counts[i]!;
      if (c > 0) buckets.push([i, c]);
    }
    return { buckets, count: this.count, sumMs: this.sumMs, minMs: this.minMs, maxMs: this.maxMs };
  }

  /** The value at quantile q (0..1), as the geometric middle of its bucket, clamped to the observed min/max. */
  quantile(q: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) {
        const middle = i === 0 ? 0.0005 : Math.pow(GROWTH, i - 0.5) / 1000;
        return Math.min(this.maxMs, Math.max(this.minMs, middle));
      }
    }
    return this.maxMs;
  }

  summary(): LatencySummary {
    return {
      count: this.count,
      meanMs: this.count === 0 ? Number.NaN : this.sumMs / this.count,
      minMs: this.count === 0 ? Number.NaN : this.minMs,
      p50Ms: this.quantile(0.5),
      p90Ms: this.quantile(0.9),
      p99Ms: this.quantile(0.99),
      p999Ms: this.quantile(0.999),
      maxMs: this.count === 0 ? Number.NaN : this.maxMs,
    };
  }
}

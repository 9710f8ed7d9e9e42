/*
 * A Prometheus histogram with one label, observed on the hot path with a
 * bucket scan and three additions. prom-client's own `observe` builds a label
 * object, validates and hashes it, and turns the bucket bound into a property
 * name on every call: ~0.5 µs, 4 % of a receiving node's samples at saturation
 * (docs/bench/two-node-profile.md, "Session 12"), for the relay latency that
 * is observed once per relayed message.
 *
 * It is a prom-client Histogram to the registry (name, help, type, default
 * labels), and exports what prom-client's would for the same observations:
 * `spec/http/counting-histogram.spec.ts` compares the two texts.
 */
import { Histogram, type Registry } from 'prom-client';

interface Series {
  /** Per bucket (the last one: above every bound), not cumulative. */
  counts: Float64Array;
  sum: number;
  count: number;
}

/** What prom-client's Histogram hands its registry (its `getForPromString`; `get` splays the shared labels in). */
interface Exported {
  name: string;
  help: string;
  type: 'histogram';
  aggregator: 'sum';
  values: ExportedValue[];
}

interface ExportedValue {
  value: number;
  labels: Record<string, string | number>;
  sharedLabels: Record<string, string>;
  metricName: string;
  /** As prom-client's: null on a bucket (no exemplars kept), undefined on the sum and count. */
  exemplar: null | undefined;
}

export class CountingHistogram<L extends string> extends Histogram<L> {
  private readonly bounds: readonly number[];
  private series = new Map<string, Series>();

  constructor(
    private readonly config: { name: string; help: string; labelName: L; buckets: readonly number[]; registers: Registry[] },
  ) {
    super({ name: config.name, help: config.help, labelNames: [config.labelName], buckets: [...config.buckets], registers: config.registers });
    this.bounds = [...config.buckets].sort((x, y) => x - y);
  }

  /** One observation of `value` for the label value `label`. */
  record(label: string, value: number): void {
    // prom-client throws on these; a metric never stops a delivery.
    if (!Number.isFinite(value)) return;
    let series = this.series.get(label);
    if (series === undefined) this.series.set(label, (series = { counts: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 }));
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    series.counts[i]!++;
    series.sum += value;
    series.count++;
  }

  override reset(): void {
    this.series = new Map();
  }

  /** What the registry's text exposition reads, and prom-client's `get` (JSON) builds on. */
  async getForPromString(): Promise<Exported> {
    const values: ExportedValue[] = [];
    const bucket = `${this.config.name}_bucket`;
    for (const [label, series] of this.series) {
      const sharedLabels = { [this.config.labelName]: label };
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += series.counts[i]!;
        values.push({ labels: { le: this.bounds[i]! }, sharedLabels, value: cumulative, metricName: bucket, exemplar: null });
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels, value: series.count, metricName: bucket, exemplar: null });
      values.push({ labels: {}, sharedLabels, value: series.sum, metricName: `${this.config.name}_sum`, exemplar: undefined });
      values.push({ labels: {}, sharedLabels, value: series.count, metricName: `${this.config.name}_count`, exemplar: undefined });
    }
    return { name: this.config.name, help: this.config.help, type: 'histogram', values, aggregator: 'sum' };
  }
}

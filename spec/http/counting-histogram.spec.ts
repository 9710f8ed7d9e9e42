import { expect } from 'chai';
import { Histogram, Registry } from 'prom-client';
import { CountingHistogram } from '../../lib/http/counting-histogram.js';

describe('CountingHistogram', () => {
  const buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

  /** The same observations in a CountingHistogram and in prom-client's Histogram, each in a registry of its own with default labels. */
  async function both(observations: Array<[string, number]>) {
    const ours = new Registry();
    const theirs = new Registry();
    for (const registry of [ours, theirs]) registry.setDefaultLabels({ node: 'n1' });
    const config = { name: 'x_latency_seconds', help: 'a latency' };
    const counting = new CountingHistogram({ ...config, labelName: 'kind', buckets, registers: [ours] });
    const reference = new Histogram({ ...config, labelNames: ['kind'], buckets, registers: [theirs] });
    for (const [kind, value] of observations) {
      counting.record(kind, value);
      reference.labels(kind).observe(value);
    }
    return { ours, theirs, counting, reference };
  }

  it("exports, as text and as JSON, what prom-client's Histogram exports for the same observations", async () => {
    // On bounds, between them, past the last, zero; two label values, one seen late.
    const observations: Array<[string, number]> = [
      ['user', 0],
      ['user', 0.001],
      ['user', 0.0011],
      ['topic', 0.3],
      ['user', 5],
      ['user', 7.5],
      ['user', 0.024],
      ['topic', 0.0001],
    ];
    const { ours, theirs } = await both(observations);
    expect(await ours.metrics()).to.equal(await theirs.metrics());
    expect(await ours.getMetricsAsJSON()).to.deep.equal(await theirs.getMetricsAsJSON());
  });

  it('exports nothing before the first observation and after a reset, as prom-client does', async () => {
    const { ours, theirs, counting, reference } = await both([]);
    expect(await ours.metrics()).to.equal(await theirs.metrics());
    counting.record('user', 0.2);
    reference.labels('user').observe(0.2);
    expect(await ours.metrics()).to.include('x_latency_seconds_bucket{le="0.25",node="n1",kind="user"} 1');
    expect(await ours.metrics()).to.equal(await theirs.metrics());
    ours.resetMetrics();
    theirs.resetMetrics();
    expect(await ours.metrics()).to.equal(await theirs.metrics());
  });

  it('ignores a value that is not a finite number instead of throwing', async () => {
    const { ours, counting } = await both([]);
    counting.record('user', Number.NaN);
    counting.record('user', Number.POSITIVE_INFINITY);
    counting.record('user', 0.5);
    expect(await ours.metrics()).to.include('x_latency_seconds_count{node="n1",kind="user"} 1');
  });
});

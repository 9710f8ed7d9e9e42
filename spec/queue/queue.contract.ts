/*
 * The QueueStore contract: every backend runs this suite (the memory and the
 * Redis spec files).
 */
import { expect } from 'chai';
import { BrokerError } from '../../lib/core/errors.js';
import type { BrokerMessage } from '../../lib/core/message.js';
import { encodedMessageSize } from '../../lib/cluster/envelope-codec.js';
import type { QueueLimits, QueueStore } from '../../lib/queue/queue-store.js';
import { deferred, expectBrokerError } from '../cluster/support.js';

/** The queue stores of nodes sharing one cluster. */
export interface QueueCluster {
  /** The store of node `id` (a memory store serves one process: every node gets the same one). */
  node(id: string): QueueStore;
  close(): Promise<void>;
}

export type QueueClusterFactory = (limits: Partial<QueueLimits>) => Promise<QueueCluster>;

let sequence = 0;
export function queueMessage(text: string, body: Buffer = Buffer.from(text)): BrokerMessage {
  return { id: `queue-test-${++sequence}`, destination: '/queue/jobs', headers: { 'x-text': text }, body, timestamp: Date.now() };
}

export const texts = (messages: readonly BrokerMessage[]): string[] => messages.map((m) => m.headers['x-text']!);

/** Resolves with the queues announced to `store` until `count` announcements were seen. */
export function announcements(store: QueueStore, count: number): Promise<string[]> {
  const seen: string[] = [];
  const done = deferred<string[]>(5000, `${count} onAvailable calls`);
  store.onAvailable((queue) => {
    seen.push(queue);
    if (seen.length === count) done.resolve([...seen]);
  });
  return done.promise;
}

async function expectQueueFull(call: () => Promise<unknown>, option: string): Promise<void> {
  expect((await expectBrokerError(call, 'ERR_QUEUE_FULL')).message).to.include(option);
}

export function queueContract(name: string, createCluster: QueueClusterFactory): void {
  describe(`${name}: QueueStore contract`, () => {
    let cluster: QueueCluster;
    let a: QueueStore;
    let b: QueueStore;

    async function reopen(limits: Partial<QueueLimits>): Promise<void> {
      await cluster.close();
      cluster = await createCluster(limits);
      a = cluster.node('node-a');
      b = cluster.node('node-b');
    }

    beforeEach(async () => {
      cluster = await createCluster({});
      a = cluster.node('node-a');
      b = cluster.node('node-b');
    });

    afterEach(async () => {
      await cluster.close();
    });

    it('hands messages out first in, first out', async () => {
      for (const text of ['m1', 'm2', 'm3']) await a.push('jobs', queueMessage(text));
      expect(await b.depth('jobs')).to.equal(3);
      expect(texts(await b.pop('jobs', 2))).to.deep.equal(['m1', 'm2']);
      expect(texts(await a.pop('jobs', 10))).to.deep.equal(['m3']);
      expect(await a.pop('jobs', 10)).to.deep.equal([]);
      expect(await a.pop('nothing', 10)).to.deep.equal([]);
      expect(await a.depth('jobs')).to.equal(0);
    });

    it('gives each message to one node only, however the pops interleave', async () => {
      const sent = Array.from({ length: 200 }, (_, i) => `j${i}`);
      await Promise.all(sent.map((text) => a.push('jobs', queueMessage(text))));
      const popped: Record<string, BrokerMessage[]> = { a: [], b: [] };
      const drain = async (store: QueueStore, into: BrokerMessage[]): Promise<void> => {
        for (;;) {
          const batch = await store.pop('jobs', 3);
          if (batch.length === 0) return;
          into.push(...batch);
        }
      };
      await Promise.all([drain(a, popped.a!), drain(b, popped.b!)]);
      const all = [...popped.a!, ...popped.b!];
      expect(all).to.have.length(sent.length);
      expect(new Set(all.map((m) => m.id)).size).to.equal(sent.length);
      // Each node sees its share in queue order.
      for (const share of [popped.a!, popped.b!]) {
        const order = texts(share).map((t) => Number(t.slice(1)));
        expect(order).to.deep.equal([...order].sort((x, y) => x - y));
      }
    });

    it('puts requeued messages back at the head, in their order', async () => {
      for (const text of ['m1', 'm2', 'm3', 'm4']) await a.push('jobs', queueMessage(text));
      const first = await a.pop('jobs', 2);
      await a.ack('jobs', []);
      await a.requeue('jobs', first);
      await a.requeue('jobs', []);
      expect(texts(await b.pop('jobs', 10))).to.deep.equal(['m1', 'm2', 'm3', 'm4']);
    });

    it('forgets acked messages', async () => {
      await a.push('jobs', queueMessage('m1'));
      const [m1] = await b.pop('jobs', 1);
      await b.ack('jobs', [m1!.id]);
      await b.ack('jobs', ['unknown']);
      expect(await a.depth('jobs')).to.equal(0);
      expect(await a.pop('jobs', 1)).to.deep.equal([]);
    });

    it('refuses a push beyond maxMessages with ERR_QUEUE_FULL', async () => {
      await reopen({ maxMessages: 3 });
      for (const text of ['m1', 'm2', 'm3']) await a.push('jobs', queueMessage(text));
      await expectQueueFull(() => b.push('jobs', queueMessage('m4')), 'QUEUE_MAX_MESSAGES');
      expect(await a.depth('jobs')).to.equal(3);
      await a.pop('jobs', 1);
      await b.push('jobs', queueMessage('m5'));
      expect(texts(await a.pop('jobs', 10))).to.deep.equal(['m2', 'm3', 'm5']);
    });

    it('refuses a push beyond maxBytes with ERR_QUEUE_FULL; what is in flight does not count, a requeue is never refused', async () => {
      const big = (text: string) => queueMessage(text, Buffer.alloc(1000, text));
      // Room for three 1 000-byte messages, not four (ids differ in length by a few bytes).
      await reopen({ maxBytes: Math.floor(3.5 * encodedMessageSize(big('k0'))) });
      for (const text of ['m1', 'm2', 'm3']) await a.push('jobs', big(text));
      await expectQueueFull(() => b.push('jobs', big('m4')), 'QUEUE_MAX_BYTES');
      // A small one still fits; another queue has a bound of its own.
      await b.push('jobs', queueMessage('small'));
      await b.push('other', big('o1'));
      expect(await a.depth('jobs')).to.equal(4);
      // Popped: in flight, not waiting, so there is room again.
      const popped = await a.pop('jobs', 2);
      await b.push('jobs', big('m5'));
      await b.push('jobs', big('m6'));
      await expectQueueFull(() => b.push('jobs', big('m7')), 'QUEUE_MAX_BYTES');
      // Back from flight past the bound: accepted already, so kept.
      await a.requeue('jobs', popped);
      expect(texts(await b.pop('jobs', 10))).to.deep.equal(['m1', 'm2', 'm3', 'small', 'm5', 'm6']);
      for (const text of ['n1', 'n2', 'n3']) await a.push('jobs', big(text));
    });

    it('tells a watching node when messages arrive, and stops after unwatch', async () => {
      await b.watch('jobs');
      const first = announcements(b, 1);
      await a.push('jobs', queueMessage('m1'));
      expect(await first).to.deep.equal(['jobs']);

      await b.unwatch('jobs');
      await b.watch('marker');
      const next = announcements(b, 1);
      await a.push('jobs', queueMessage('m2'));
      await a.push('marker', queueMessage('mark'));
      expect(await next).to.deep.equal(['marker']);
    });

    it('announces what was waiting when a node starts watching', async () => {
      await a.push('jobs', queueMessage('m1'));
      const announced = announcements(b, 1);
      await b.watch('jobs');
      expect(await announced).to.deep.equal(['jobs']);
    });

    it('keeps binary bodies intact', async () => {
      const body = Buffer.from(Array.from({ length: 1024 }, (_, i) => (i * 7) % 256));
      await a.push('bin', queueMessage('bin', body));
      const [got] = await b.pop('bin', 1);
      expect(got!.body.equals(body)).to.equal(true);
    });
  });
}

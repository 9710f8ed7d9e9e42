import { expect } from 'chai';
import { BrokerError } from '../../lib/core/errors.js';
import { RedisKeys } from '../../lib/cluster/redis-keys.js';
import type { QueueLimits } from '../../lib/queue/queue-store.js';
import { RedisQueueStore } from '../../lib/queue/redis-queue-store.js';
import { eventually, expectEachUnavailable, recordingLogger } from '../cluster/support.js';
import type { RedisTarget } from '../../lib/cluster/redis-target.js';
import { forEachRedisBackend } from '../helpers/redis-backends.js';
import { uniquePrefix, useRedisServer } from '../helpers/redis-server.js';
import { announcements, queueContract, queueMessage, texts } from './queue.contract.js';

describe('RedisQueueStore', () => {
  const redis = useRedisServer();

  function cluster(limits: Partial<QueueLimits> = {}, target: RedisTarget = redis.server.url) {
    const keyPrefix = uniquePrefix('queue');
    const stores = new Map<string, RedisQueueStore>();
    return {
      keys: new RedisKeys(keyPrefix),
      node(id: string): RedisQueueStore {
        let store = stores.get(id);
        if (!store) {
          store = new RedisQueueStore(id, target, { keyPrefix, logger: recordingLogger(), reconnectMaxDelayMs: 100, ...limits });
          stores.set(id, store);
        }
        return store;
      },
      async close() {
        await Promise.all([...stores.values()].map((store) => store.close()));
      },
    };
  }

  forEachRedisBackend((backend) => queueContract('RedisQueueStore', async (limits) => cluster(limits, backend.target)));

  describe('beyond the contract', () => {
    let c: ReturnType<typeof cluster>;
    afterEach(async () => c.close());

    it("moves a dead node's in-flight messages back to the head of their queues", async () => {
      c = cluster();
      const [a, dead] = [c.node('a'), c.node('dead')];
      for (const text of ['j1', 'j2', 'j3', 'j4']) await a.push('jobs', queueMessage(text));
      await a.push('mail', queueMessage('mail1'));
      await dead.pop('jobs', 2);
      await dead.pop('mail', 1);
      const acked = await dead.pop('jobs', 1);
      await dead.ack('jobs', acked.map((m) => m.id));
      await a.pop('jobs', 1);

      const b = c.node('b');
      await b.watch('jobs');
      const announced = announcements(b, 1);
      expect(await b.recoverNode('dead!0')).to.equal(3);
      // Back in their queues, they count in the queues' bytes again.
      const bytes = async (queue: string) => (await redis.admin.lrangeBuffer(c.keys.queue(queue), 0, -1)).reduce((sum, item) => sum + item.length, 0);
      expect(Number(await redis.admin.get(c.keys.queueBytes('jobs')))).to.equal(await bytes('jobs'));
      expect(Number(await redis.admin.get(c.keys.queueBytes('mail')))).to.equal(await bytes('mail'));
      expect(await announced).to.deep.equal(['jobs']);
      expect(texts(await b.pop('jobs', 10))).to.deep.equal(['j1', 'j2']);
      expect(texts(await b.pop('mail', 10))).to.deep.equal(['mail1']);
      expect(await b.recoverNode('dead!0')).to.equal(0);
      expect(await redis.admin.exists(c.keys.nodeQueues('dead!0'), c.keys.queueInflight('dead!0', 'jobs'))).to.equal(0);
      // Emptied queues leave no counter behind.
      expect(await redis.admin.exists(c.keys.queueBytes('jobs'), c.keys.queueBytes('mail'))).to.equal(0);
    });

    it('keeps in flight only what is neither acked nor requeued', async () => {
      c = cluster();
      const a = c.node('a');
      for (const text of ['j1', 'j2', 'j3']) await a.push('jobs', queueMessage(text));
      const [j1, j2, j3] = await a.pop('jobs', 3);
      await a.ack('jobs', [j2!.id]);
      expect(await redis.admin.llen(c.keys.queueInflight('a!0', 'jobs'))).to.equal(2);
      await a.requeue('jobs', [j1!]);
      await a.ack('jobs', [j3!.id]);
      expect(await redis.admin.exists(c.keys.queueInflight('a!0', 'jobs'))).to.equal(0);
      // The incarnation's index keeps the queue while it lives (so no in-flight list is ever unindexed).
      expect(await redis.admin.smembers(c.keys.nodeQueues('a!0'))).to.deep.equal(['jobs']);
      expect(texts(await a.pop('jobs', 10))).to.deep.equal(['j1']);
    });

    it('puts back what it still holds in flight when it closes', async () => {
      c = cluster();
      const [a, b] = [c.node('a'), c.node('b')];
      for (const text of ['j1', 'j2']) await a.push('jobs', queueMessage(text));
      await b.pop('jobs', 2);
      await b.close();
      expect(texts(await a.pop('jobs', 10))).to.deep.equal(['j1', 'j2']);
    });

    it('accepts exactly maxMessages when nodes push at once', async () => {
      c = cluster({ maxMessages: 10 });
      const [a, b] = [c.node('a'), c.node('b')];
      const results = await Promise.allSettled(
        Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).push('jobs', queueMessage(`j${i}`))),
      );
      const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(results.length - refused.length).to.equal(10);
      expect(refused.every((r) => r.reason instanceof BrokerError && r.reason.code === 'ERR_QUEUE_FULL')).to.equal(true);
      expect(await a.depth('jobs')).to.equal(10);
    });

    it('rejects with ERR_CLUSTER_UNAVAILABLE while Redis is down, and announces watched queues when it is back', async () => {
      c = cluster();
      const a = c.node('a');
      await a.watch('jobs');
      await redis.server.stop();
      try {
        await expectEachUnavailable([() => a.push('jobs', queueMessage('j1')), () => a.pop('jobs', 1)]);
      } finally {
        const announced = announcements(a, 1);
        await redis.server.restart();
        expect(await announced).to.deep.equal(['jobs']);
      }
      // The command connection comes back on its own schedule; until then pushes fail fast.
      await eventually(() => a.push('jobs', queueMessage('j2')), 3000);
      expect(texts(await a.pop('jobs', 1))).to.deep.equal(['j2']);
    });
  });
});

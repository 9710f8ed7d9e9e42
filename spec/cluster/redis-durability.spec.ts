/*
 * REDIS_WAIT_REPLICAS: a write a RECEIPT answers for (route-or-store, a
 * queue push, an inbox append) is held by that many replicas before it is
 * answered — on a Redis Cluster the WAIT goes to the write's own master —
 * and is refused (ERR_CLUSTER_UNAVAILABLE) when the replicas do not have it
 * in time: never answered on the master's word alone.
 */
import { expect } from 'chai';
import { BrokerError } from '../../lib/core/errors.js';
import type { BrokerMessage } from '../../lib/core/message.js';
import { RedisInboxStore } from '../../lib/inbox/redis-inbox-store.js';
import { RedisQueueStore } from '../../lib/queue/redis-queue-store.js';
import { RedisUserRouter } from '../../lib/cluster/redis-user-router.js';
import { useRedisCluster } from '../helpers/redis-cluster.js';
import { uniquePrefix, useRedisServer } from '../helpers/redis-server.js';
import { recordingLogger } from './support.js';

let seq = 0;
function message(text: string): BrokerMessage {
  return { id: `dur-${++seq}`, destination: '/queue/x', headers: {}, body: Buffer.from(text), timestamp: Date.now() };
}

describe('REDIS_WAIT_REPLICAS: receipted writes held by replicas', function () {
  this.timeout(40_000);

  describe('on a Redis Cluster (one replica per master)', () => {
    const redis = useRedisCluster();

    it('routes, stores, pushes and appends, each held by a replica of its own master', async () => {
      const common = { keyPrefix: uniquePrefix('dur'), logger: recordingLogger(), waitReplicas: 1, waitTimeoutMs: 2000 };
      const router = new RedisUserRouter('a', redis.cluster.target, { ...common, inboxMaxMessages: 100, inboxTtlSeconds: 60 });
      const queues = new RedisQueueStore('a', redis.cluster.target, common);
      const inbox = new RedisInboxStore(redis.cluster.target, { ...common, claimSweepMs: 0 });
      try {
        // Users and queues in many slots, so on every master.
        const users = Array.from({ length: 12 }, (_, i) => `user-${i}`);
        const routed = await Promise.all(users.map((user) => router.route({ user, destination: '/queue/x', message: message(user) })));
        expect(routed.every((r) => r.stored)).to.equal(true);
        for (const user of users) await queues.push(`jobs-${user}`, message(user));
        for (const user of users) await inbox.append(user, '/queue/y', message(user));
        for (const user of users) {
          expect(await inbox.depth(user, '/queue/x')).to.equal(1);
          expect(await inbox.depth(user, '/queue/y')).to.equal(1);
          expect(await queues.depth(`jobs-${user}`)).to.equal(1);
        }
      } finally {
        await Promise.all([router.close(), queues.close(), inbox.close()]);
      }
    });
  });

  describe('on one Redis without a replica', () => {
    const redis = useRedisServer();

    it('refuses what no replica holds, after the wait, with ERR_CLUSTER_UNAVAILABLE', async () => {
      const common = { keyPrefix: uniquePrefix('dur'), logger: recordingLogger(), waitReplicas: 1, waitTimeoutMs: 100 };
      const router = new RedisUserRouter('a', redis.server.url, { ...common, inboxMaxMessages: 100, inboxTtlSeconds: 60 });
      const queues = new RedisQueueStore('a', redis.server.url, common);
      const inbox = new RedisInboxStore(redis.server.url, { ...common, claimSweepMs: 0 });
      try {
        const attempts: Array<() => Promise<unknown>> = [
          () => router.route({ user: 'bob', destination: '/queue/x', message: message('r') }),
          () => queues.push('jobs', message('q')),
          () => inbox.append('bob', '/queue/y', message('i')),
        ];
        for (const attempt of attempts) {
          const error = await attempt().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(error).to.be.instanceOf(BrokerError);
          expect((error as BrokerError).code).to.equal('ERR_CLUSTER_UNAVAILABLE');
          expect((error as BrokerError).message).to.match(/held by 0 of 1 replicas/);
        }
      } finally {
        await Promise.all([router.close(), queues.close(), inbox.close()]);
      }
    });
  });
});

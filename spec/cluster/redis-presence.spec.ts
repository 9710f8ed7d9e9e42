import { expect } from 'chai';
import { BrokerError } from '../../lib/core/errors.js';
import { RedisKeys } from '../../lib/cluster/redis-keys.js';
import { RedisPresence, type RedisPresenceOptions } from '../../lib/cluster/redis-presence.js';
import { forEachRedisBackend } from '../helpers/redis-backends.js';
import { uniquePrefix, useRedisServer } from '../helpers/redis-server.js';
import { presenceContract } from './presence.contract.js';
import { deferred, eventually, recordingLogger } from './support.js';

const BEAT_MS = 100;

describe('RedisPresence', () => {
  const redis = useRedisServer();

  function options(keyPrefix: string, extra: Partial<RedisPresenceOptions> = {}): Partial<RedisPresenceOptions> {
    return { keyPrefix, beatIntervalMs: BEAT_MS, logger: recordingLogger(), reconnectMaxDelayMs: 100, ...extra };
  }

  forEachRedisBackend((backend) =>
    presenceContract('RedisPresence', async () => {
      const keyPrefix = uniquePrefix('presence');
      const nodes: RedisPresence[] = [];
      return {
        async node(id) {
          const node = new RedisPresence(id, backend.target, options(keyPrefix));
          await node.start();
          nodes.push(node);
          return node;
        },
        async close() {
          await Promise.all(nodes.map((node) => node.close()));
        },
      };
    }),
  );

  describe('with a killed node', () => {
    let keyPrefix: string;
    let nodes: RedisPresence[];

    beforeEach(() => {
      keyPrefix = uniquePrefix('reap');
      nodes = [];
    });

    afterEach(async () => {
      await Promise.all(nodes.map((node) => node.close()));
    });

    async function node(id: string): Promise<RedisPresence> {
      const presence = new RedisPresence(id, redis.server.url, options(keyPrefix));
      await presence.start();
      nodes.push(presence);
      return presence;
    }

    it('drops it from every answer within the timeout and has exactly one survivor recover it', async () => {
      const [a, b, c] = [await node('a'), await node('b'), await node('c')];
      const downs: Array<{ on: string; dead: string }> = [];
      const first = deferred<void>(3000, 'onRecover');
      const keys0 = new RedisKeys(keyPrefix);
      for (const survivor of [a, b]) {
        survivor.onRecover(async (tag, dead) => {
          downs.push({ on: survivor.nodeId, dead });
          // What a recovery does with it (RedisQueueStore.recoverNode), reduced to its effect.
          await redis.admin.del(keys0.nodeQueues(tag), keys0.queueInflight(tag, 'jobs'));
          first.resolve();
        });
      }
      // Something of c's to recover: an in-flight queue list (named by c's incarnation, the recovery tag).
      await redis.admin.sadd(keys0.nodeQueues(c.incarnationTag()), 'jobs');
      await redis.admin.rpush(keys0.queueInflight(c.incarnationTag(), 'jobs'), 'x');
      await c.userOnline('carol');
      await c.subscribed('carol', '/queue/reply');
      await a.userOnline('alice');
      expect(await a.nodesFor('carol', '/queue/reply')).to.deep.equal(['c']);

      const killedAt = Date.now();
      c.crash();
      await eventually(async () => expect(await a.nodesFor('carol', '/queue/reply')).to.deep.equal([]), 3000);
      expect(Date.now() - killedAt).to.be.below(3 * BEAT_MS + 700);
      expect(await b.nodesOf('carol')).to.deep.equal([]);
      expect((await b.liveNodes()).map((n) => n.id)).to.deep.equal(['a', 'b']);

      await first.promise;
      expect(downs.map((d) => d.dead)).to.deep.equal(['c']);
      // Its entries are gone, not merely hidden: the online count is exact again.
      const keys = new RedisKeys(keyPrefix);
      expect(await a.onlineCount()).to.equal(1);
      expect(await redis.admin.exists(keys.nodeIndex('c'), keys.userNodes('carol'), keys.subs('carol', '/queue/reply'))).to.equal(0);
      expect(await redis.admin.zscore(keys.nodes(), 'c')).to.equal(null);

      // Both survivors beat twice more: nobody reports it again.
      const after = Date.now();
      await eventually(async () => {
        const live = await a.liveNodes();
        expect(live.every((n) => n.lastBeat > after + 2 * BEAT_MS)).to.equal(true);
      }, 3000);
      expect(downs).to.have.length(1);
    });

    it('does not reap a node that merely closed', async () => {
      const [a, b] = [await node('a'), await node('b')];
      let downs = 0;
      a.onRecover(async () => void downs++);
      await b.close();
      const after = Date.now();
      await eventually(async () => {
        const [live] = await a.liveNodes();
        expect(live!.lastBeat).to.be.above(after + 4 * BEAT_MS);
      }, 3000);
      expect(downs).to.equal(0);
    });

    it('registers again what it holds when Redis lost it', async () => {
      const [a, b] = [await node('a'), await node('b')];
      await a.userOnline('alice');
      await a.subscribed('alice', '/queue/reply');
      await redis.admin.flushdb();
      await eventually(async () => {
        expect(await b.nodesFor('alice', '/queue/reply')).to.deep.equal(['a']);
        expect(await b.onlineUsers()).to.deep.equal(['alice']);
      }, 3000);
    });

    it('publishes stats with each beat', async () => {
      const a = await node('a');
      a.setStats({ connections: 7, sessions: 5 });
      await eventually(async () => expect((await a.liveNodes())[0]).to.include({ id: 'a', connections: 7, sessions: 5 }));
    });
  });

  it('refuses to start without Redis, with ERR_CLUSTER_UNAVAILABLE', async () => {
    const presence = new RedisPresence('x', 'redis://127.0.0.1:1', { logger: recordingLogger(), connectTimeoutMs: 300 });
    try {
      await presence.start();
      expect.fail('start resolved');
    } catch (error) {
      expect(error).to.be.instanceOf(BrokerError);
      expect((error as BrokerError).code).to.equal('ERR_CLUSTER_UNAVAILABLE');
    } finally {
      await presence.close();
    }
  });
});

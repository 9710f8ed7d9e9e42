import { expect } from 'chai';
import { RedisKeys } from '../../lib/cluster/redis-keys.js';
import { RedisPresence } from '../../lib/cluster/redis-presence.js';
import type { InboxLimits } from '../../lib/inbox/inbox-store.js';
import { RedisInboxStore } from '../../lib/inbox/redis-inbox-store.js';
import { eventually, expectEachUnavailable, recordingLogger } from '../cluster/support.js';
import type { RedisTarget } from '../../lib/cluster/redis-target.js';
import { forEachRedisBackend } from '../helpers/redis-backends.js';
import { uniquePrefix, useRedisServer } from '../helpers/redis-server.js';
import { inboxContract, inboxMessage } from './inbox.contract.js';

describe('RedisInboxStore', () => {
  const redis = useRedisServer();

  function cluster(limits: Partial<InboxLimits> = {}, keyPrefix = uniquePrefix('inbox'), target: RedisTarget = redis.server.url) {
    const stores: RedisInboxStore[] = [];
    const nodes: RedisPresence[] = [];
    const common = { keyPrefix, logger: recordingLogger(), reconnectMaxDelayMs: 100, claimSweepMs: 50 };
    return {
      keys: new RedisKeys(keyPrefix),
      store(extra: { nodeId?: string } = {}) {
        const store = new RedisInboxStore(target, { ...common, ...limits, ...extra });
        stores.push(store);
        return store;
      },
      async node(id: string) {
        const node = new RedisPresence(id, target, { ...common, beatIntervalMs: 100 });
        await node.start();
        nodes.push(node);
        return node;
      },
      async close() {
        await Promise.all(nodes.map((node) => node.close()));
        await Promise.all(stores.map((store) => store.close()));
      },
    };
  }

  forEachRedisBackend((backend) => inboxContract('RedisInboxStore', async (limits) => cluster(limits, undefined, backend.target)));

  describe('beyond the contract', () => {
    let c: ReturnType<typeof cluster>;
    afterEach(async () => c.close());

    it('sets the expiry on each append, on the inbox and its index', async () => {
      c = cluster({ ttlSeconds: 100 });
      const inbox = c.store();
      await inbox.append('alice', '/queue/reply', inboxMessage('m1'));
      await redis.admin.expire(c.keys.inbox('alice', '/queue/reply'), 10);
      await inbox.append('alice', '/queue/reply', inboxMessage('m2'));
      const ttl = await redis.admin.pttl(c.keys.inbox('alice', '/queue/reply'));
      expect(ttl).to.be.within(99_000, 100_000);
      expect(await redis.admin.pttl(c.keys.inboxes('alice'))).to.be.within(99_000, 100_000);
    });

    it('counts what the cap dropped', async () => {
      c = cluster({ maxMessages: 2, overflow: 'drop-oldest' });
      const inbox = c.store();
      for (const text of ['m1', 'm2', 'm3', 'm4']) await inbox.append('alice', '/queue/reply', inboxMessage(text));
      expect(inbox.dropped).to.equal(2);
    });

    it("releases a dead node's claims back to their inboxes, and no other node's", async () => {
      c = cluster();
      const inbox = c.store();
      for (const text of ['a1', 'a2', 'a3']) await inbox.append('alice', '/queue/a', inboxMessage(text));
      for (const text of ['b1', 'b2']) await inbox.append('bob', '/queue/b', inboxMessage(text));
      await inbox.claim('dead:alice:x', 'alice', '/queue/a', 2);
      await inbox.claim('dead:bob:y', 'bob', '/queue/b');
      await inbox.claim('alive:alice:z', 'alice', '/queue/a');
      expect(await inbox.depth('alice', '/queue/a')).to.equal(0);

      expect(await inbox.releaseNodeClaims('dead')).to.equal(4);
      expect((await inbox.peek('alice', '/queue/a')).map((m) => m.headers['x-text'])).to.deep.equal(['a1', 'a2']);
      expect((await inbox.peek('bob', '/queue/b')).map((m) => m.headers['x-text'])).to.deep.equal(['b1', 'b2']);
      expect(await inbox.releaseNodeClaims('dead')).to.equal(0);
      expect(await redis.admin.exists(c.keys.nodeClaims('dead'), c.keys.claim('dead:alice:x'), c.keys.claimOrder('dead:alice:x'), c.keys.claimMeta('dead:alice:x'))).to.equal(0);
      expect(await redis.admin.sismember(c.keys.nodeClaims('alive'), 'alive:alice:z')).to.equal(1);
    });

    it('releases its own node claims on close when given its node id', async () => {
      c = cluster();
      const inbox = c.store();
      const own = c.store({ nodeId: 'n1' });
      await inbox.append('alice', '/queue/a', inboxMessage('a1'));
      await own.claim('n1:alice:1', 'alice', '/queue/a');
      await own.close();
      expect(await inbox.depth('alice', '/queue/a')).to.equal(1);
    });

    it('rejects with ERR_CLUSTER_UNAVAILABLE while Redis is down', async () => {
      c = cluster();
      const inbox = c.store();
      await inbox.depth('alice', '/queue/a');
      await redis.server.stop();
      try {
        await expectEachUnavailable([
          () => inbox.append('alice', '/queue/a', inboxMessage('m')),
          () => inbox.take('alice', '/queue/a'),
          () => inbox.claim('n:alice:1', 'alice', '/queue/a'),
        ]);
      } finally {
        await redis.server.restart();
      }
    });

    it('works right after construction, before its connection is up', async () => {
      c = cluster();
      const inbox = c.store();
      await inbox.append('alice', '/queue/a', inboxMessage('a1'));
      expect(await inbox.depth('alice', '/queue/a')).to.equal(1);
    });
  });
});

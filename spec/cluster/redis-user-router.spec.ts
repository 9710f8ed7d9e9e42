import { expect } from 'chai';
import { Redis } from 'ioredis';
import { decodeEnvelope, decodeEnvelopeBatch } from '../../lib/cluster/envelope-codec.js';
import { RedisKeys } from '../../lib/cluster/redis-keys.js';
import { RedisPresence } from '../../lib/cluster/redis-presence.js';
import { BATCH_FIELD, ENTRY_FIELD, RedisRelay } from '../../lib/cluster/redis-relay.js';
import { RedisUserRouter } from '../../lib/cluster/redis-user-router.js';
import { RedisInboxStore } from '../../lib/inbox/redis-inbox-store.js';
import { startRedisServer, uniquePrefix, type RedisServer } from '../helpers/redis-server.js';
import { message, recordingNode } from './relay.contract.js';
import { recordingLogger } from './support.js';
import { userRouterContract } from './user-router.contract.js';

describe('RedisUserRouter', () => {
  let server: RedisServer;
  before(async () => (server = await startRedisServer()));
  after(async () => server.stop());

  async function setup() {
    const common = { keyPrefix: uniquePrefix('router'), logger: recordingLogger() };
    const presenceA = new RedisPresence('a', server.url, common);
    const presenceB = new RedisPresence('b', server.url, common);
    await presenceA.start();
    await presenceB.start();
    const relayB = new RedisRelay('b', server.url, common);
    const b = recordingNode(relayB);
    await relayB.start(b.handler);
    const inbox = new RedisInboxStore(server.url, { ...common, maxMessages: 100, ttlSeconds: 60 });
    const router = new RedisUserRouter('a', server.url, { ...common, inboxMaxMessages: 100, inboxTtlSeconds: 60 });
    return {
      router,
      presenceA,
      presenceB,
      inbox,
      b,
      keys: new RedisKeys(common.keyPrefix),
      async close() {
        await Promise.all([presenceA.close(), presenceB.close()]);
        await Promise.all([relayB.close(), inbox.close(), router.close()]);
      },
    };
  }

  userRouterContract('RedisUserRouter (one script call per tick)', setup);

  it('writes what one call sends to one node as one stream entry, a batch in call order', async () => {
    const c = await setup();
    const admin = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await admin.connect();
      await c.presenceB.subscribed('bob', '/queue/r');
      const stream = c.keys.stream('b');
      const before = await admin.xlen(stream);
      const sent = ['m1', 'm2', 'm3', 'm4', 'm5'].map((text) => message('/user/bob/queue/r', text));
      await Promise.all(sent.map((m) => c.router.route({ user: 'bob', destination: '/queue/r', message: m })));
      await c.router.route({ user: 'bob', destination: '/queue/r', message: message('/user/bob/queue/r', 'alone') });
      await c.b.waitFor(6);
      expect(c.b.received.map((e) => e.message.body.toString())).to.deep.equal(['m1', 'm2', 'm3', 'm4', 'm5', 'alone']);

      // Entries stay for the reader's replay window: two were written, the first one packed.
      const entries = await admin.xrangeBuffer(stream, '-', '+');
      expect(entries.length - before).to.equal(2);
      const [[, packed], [, lone]] = entries.slice(before);
      expect(packed[0]!.toString()).to.equal(BATCH_FIELD);
      expect(decodeEnvelopeBatch(packed[1]!).map((e) => e.message.id)).to.deep.equal(sent.map((m) => m.id));
      expect(lone[0]!.toString()).to.equal(ENTRY_FIELD);
      expect(decodeEnvelope(lone[1]!).message.body.toString()).to.equal('alone');
    } finally {
      admin.disconnect();
      await c.close();
    }
  });
});

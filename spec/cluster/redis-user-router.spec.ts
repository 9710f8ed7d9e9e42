import { RedisPresence } from '../../lib/cluster/redis-presence.js';
import { RedisRelay } from '../../lib/cluster/redis-relay.js';
import { RedisUserRouter } from '../../lib/cluster/redis-user-router.js';
import { RedisInboxStore } from '../../lib/inbox/redis-inbox-store.js';
import { startRedisServer, uniquePrefix, type RedisServer } from '../helpers/redis-server.js';
import { recordingNode } from './relay.contract.js';
import { recordingLogger } from './support.js';
import { userRouterContract } from './user-router.contract.js';

describe('RedisUserRouter', () => {
  let server: RedisServer;
  before(async () => (server = await startRedisServer()));
  after(async () => server.stop());

  userRouterContract('RedisUserRouter (one script call per tick)', async () => {
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
      async close() {
        await Promise.all([presenceA.close(), presenceB.close()]);
        await Promise.all([relayB.close(), inbox.close(), router.close()]);
      },
    };
  });
});

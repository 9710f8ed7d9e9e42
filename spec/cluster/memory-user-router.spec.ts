import { MemoryHub } from '../../lib/cluster/memory-hub.js';
import { MemoryPresence } from '../../lib/cluster/memory-presence.js';
import { MemoryRelay } from '../../lib/cluster/memory-relay.js';
import { MemoryUserRouter } from '../../lib/cluster/memory-user-router.js';
import { MemoryInboxStore } from '../../lib/inbox/memory-inbox-store.js';
import { recordingNode } from './relay.contract.js';
import { userRouterContract } from './user-router.contract.js';

userRouterContract('MemoryUserRouter', async (limits = {}) => {
  const hub = new MemoryHub();
  const presenceA = new MemoryPresence('a', hub);
  const presenceB = new MemoryPresence('b', hub);
  await presenceA.start();
  await presenceB.start();
  const relayA = new MemoryRelay('a', hub);
  const b = recordingNode(new MemoryRelay('b', hub));
  await relayA.start(() => {});
  await b.relay.start(b.handler);
  const inbox = new MemoryInboxStore(limits);
  return {
    router: new MemoryUserRouter('a', presenceA, inbox, relayA),
    presenceA,
    presenceB,
    inbox,
    b,
    async close() {
      await Promise.all([presenceA.close(), presenceB.close(), relayA.close(), b.relay.close()]);
    },
  };
});

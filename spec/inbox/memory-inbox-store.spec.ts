import { MemoryHub } from '../../lib/cluster/memory-hub.js';
import { MemoryPresence } from '../../lib/cluster/memory-presence.js';
import { MemoryInboxStore } from '../../lib/inbox/memory-inbox-store.js';
import { inboxContract } from './inbox.contract.js';

inboxContract('MemoryInboxStore', async (limits) => {
  const hub = new MemoryHub();
  // A memory store serves one process: every "store" of the cluster is the same one.
  const store = new MemoryInboxStore(limits);
  const nodes: MemoryPresence[] = [];
  return {
    store: () => store,
    async node(id) {
      const node = new MemoryPresence(id, hub);
      await node.start();
      nodes.push(node);
      return node;
    },
    async close() {
      for (const node of nodes) await node.close();
      await store.close();
    },
  };
});

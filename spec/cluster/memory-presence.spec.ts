import { MemoryHub } from '../../lib/cluster/memory-hub.js';
import { MemoryPresence } from '../../lib/cluster/memory-presence.js';
import { presenceContract } from './presence.contract.js';

presenceContract('MemoryPresence', async () => {
  const hub = new MemoryHub();
  const nodes: MemoryPresence[] = [];
  return {
    async node(id) {
      const node = new MemoryPresence(id, hub);
      await node.start();
      nodes.push(node);
      return node;
    },
    async close() {
      for (const node of nodes) await node.close();
    },
  };
});

import { MemoryHub } from '../../lib/cluster/memory-hub.js';
import { MemoryRelay } from '../../lib/cluster/memory-relay.js';
import { recordingNode, relayContract } from './relay.contract.js';

relayContract('MemoryRelay', async () => {
  const hub = new MemoryHub();
  const relays: MemoryRelay[] = [];
  return {
    async node(id) {
      const relay = new MemoryRelay(id, hub);
      const node = recordingNode(relay, (targets, envelope) => relay.sendToNodes(targets, envelope));
      await relay.start(node.handler);
      relays.push(relay);
      return node;
    },
    // Memory delivery is a direct call: a memory node never holds anything it could leave behind.
    async kill() {},
    async close() {
      for (const relay of relays) await relay.close();
    },
  };
});

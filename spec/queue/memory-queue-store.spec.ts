import { MemoryQueueStore } from '../../lib/queue/memory-queue-store.js';
import { queueContract } from './queue.contract.js';

queueContract('MemoryQueueStore', async (limits) => {
  // A memory store serves one process: its "nodes" share the one store.
  const store = new MemoryQueueStore(limits);
  return {
    node: () => store,
    close: () => store.close(),
  };
});

import type { BrokerParts } from '../broker/broker.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';

/** The Redis implementations of every seam, for a cluster node. (Wired once the Redis backends land.) */
export async function createRedisParts(config: Config, log: Logger, nodeId: string): Promise<Omit<BrokerParts, 'config' | 'log' | 'auth'>> {
  void config;
  void log;
  void nodeId;
  throw new Error('REDIS_URL: the Redis backends are not wired yet');
}

/**
 * Known users in Redis: one key per user (`known:<user>`) written with the
 * inbox TTL at each login, so a login costs one SET and a name nobody used
 * within the TTL disappears by itself; a check is one EXISTS.
 */
import { closeClient, createRedisClient, type RedisClient, type RedisConnectionOptions, type RedisTarget } from '../cluster/redis-connection.js';
import { RedisKeys } from '../cluster/redis-keys.js';
import type { KnownUsers } from './known-users.js';

export class RedisKnownUsers implements KnownUsers {
  private readonly redis: RedisClient;
  private readonly keys: RedisKeys;

  constructor(
    target: RedisTarget,
    private readonly ttlSeconds: number,
    options: Partial<RedisConnectionOptions> = {},
  ) {
    this.keys = new RedisKeys(options.keyPrefix);
    this.redis = createRedisClient(target, 'command', { ...options, name: 'known-users' });
  }

  async loggedIn(user: string): Promise<void> {
    await this.redis.set(this.keys.known(user), '1', 'EX', this.ttlSeconds);
  }

  async isKnown(user: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.known(user))) === 1;
  }

  async close(): Promise<void> {
    await closeClient(this.redis);
  }
}

/*
 * Sessions per user across nodes (RedisUserSessionCount): each node's count
 * in one hash per user, the bound checked against the sum, a dead node's
 * count removed by the reaper through its node index.
 */
import { expect } from 'chai';
import { RedisKeys } from '../../lib/cluster/redis-keys.js';
import { RedisPresence } from '../../lib/cluster/redis-presence.js';
import { RedisUserSessionCount } from '../../lib/cluster/redis-user-sessions.js';
import { uniquePrefix, useRedisServer } from '../helpers/redis-server.js';
import { eventually, recordingLogger } from './support.js';

describe('RedisUserSessionCount', () => {
  const redis = useRedisServer();
  let closing: Array<() => Promise<void>>;
  beforeEach(() => (closing = []));
  afterEach(async () => {
    for (const close of closing.reverse()) await close();
  });

  async function cluster(ids: string[], max: number) {
    const keyPrefix = uniquePrefix('user-sessions');
    const common = { keyPrefix, logger: recordingLogger(), reconnectMaxDelayMs: 100 };
    const nodes = await Promise.all(
      ids.map(async (id) => {
        const presence = new RedisPresence(id, redis.server.url, { ...common, beatIntervalMs: 100 });
        await presence.start();
        const counts = new RedisUserSessionCount(id, redis.server.url, max, presence, common);
        closing.push(async () => {
          await counts.close();
          await presence.close();
        });
        return { presence, counts };
      }),
    );
    return { nodes, keys: new RedisKeys(keyPrefix) };
  }

  it("holds a user to the bound across nodes, other users apart; a release makes room on any node", async () => {
    const { nodes, keys } = await cluster(['a', 'b'], 3);
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    expect(await a.counts.acquire('mallory')).to.equal(true);
    expect(await a.counts.acquire('mallory')).to.equal(true);
    expect(await b.counts.acquire('mallory')).to.equal(true);
    expect(await b.counts.acquire('mallory')).to.equal(false);
    expect(await a.counts.acquire('mallory')).to.equal(false);
    expect(await b.counts.acquire('alice')).to.equal(true);
    expect(await redis.admin.hgetall(keys.userSessions('mallory'))).to.deep.equal({ a: '2', b: '1' });
    a.counts.release('mallory');
    await eventually(async () => expect(await redis.admin.hget(keys.userSessions('mallory'), 'a')).to.equal('1'));
    expect(await b.counts.acquire('mallory')).to.equal(true);
    expect(await redis.admin.hgetall(keys.userSessions('mallory'))).to.deep.equal({ a: '1', b: '2' });
  });

  it("drops a dead node's count when the node is reaped, and a leaving node's at once", async () => {
    const { nodes, keys } = await cluster(['a', 'b', 'c'], 3);
    const [a, b, c] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]];
    expect(await c.counts.acquire('mallory')).to.equal(true);
    expect(await c.counts.acquire('mallory')).to.equal(true);
    expect(await b.counts.acquire('mallory')).to.equal(true);
    expect(await a.counts.acquire('mallory')).to.equal(false);
    c.presence.crash();
    await eventually(async () => expect(await redis.admin.hgetall(keys.userSessions('mallory'))).to.deep.equal({ b: '1' }), 5000, 20);
    expect(await a.counts.acquire('mallory')).to.equal(true);
    await b.presence.leave();
    expect(await redis.admin.hgetall(keys.userSessions('mallory'))).to.deep.equal({ a: '1' });
  });
});

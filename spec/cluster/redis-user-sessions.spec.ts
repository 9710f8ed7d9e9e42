/*
 * Sessions per user across nodes (RedisUserSessionCount): each node's count
 * in one hash per user under its incarnation, the bound checked against the
 * sum, a dead incarnation's count removed by the reaper through its node
 * index — and only that incarnation's.
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
    const keys = new RedisKeys(keyPrefix);
    /** The user's hash as node id → count; every field must name an incarnation (`<id>!<k>`). */
    const counts = async (user: string): Promise<Record<string, string>> => {
      const hash = await redis.admin.hgetall(keys.userSessions(user));
      const byNode: Record<string, string> = {};
      for (const [field, count] of Object.entries(hash)) {
        expect(field).to.match(/^[a-z]+![0-9]+$/);
        byNode[field.slice(0, field.indexOf('!'))] = count;
      }
      return byNode;
    };
    return { nodes, keys, counts };
  }

  it("holds a user to the bound across nodes, other users apart; a release makes room on any node", async () => {
    const { nodes, counts } = await cluster(['a', 'b'], 3);
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    expect(await a.counts.acquire('mallory')).to.equal(true);
    expect(await a.counts.acquire('mallory')).to.equal(true);
    expect(await b.counts.acquire('mallory')).to.equal(true);
    expect(await b.counts.acquire('mallory')).to.equal(false);
    expect(await a.counts.acquire('mallory')).to.equal(false);
    expect(await b.counts.acquire('alice')).to.equal(true);
    expect(await counts('mallory')).to.deep.equal({ a: '2', b: '1' });
    a.counts.release('mallory');
    await eventually(async () => expect((await counts('mallory')).a).to.equal('1'));
    expect(await b.counts.acquire('mallory')).to.equal(true);
    expect(await counts('mallory')).to.deep.equal({ a: '1', b: '2' });
  });

  it("drops a dead node's count when the node is reaped, and a leaving node's at once", async () => {
    const { nodes, counts } = await cluster(['a', 'b', 'c'], 3);
    const [a, b, c] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]];
    expect(await c.counts.acquire('mallory')).to.equal(true);
    expect(await c.counts.acquire('mallory')).to.equal(true);
    expect(await b.counts.acquire('mallory')).to.equal(true);
    expect(await a.counts.acquire('mallory')).to.equal(false);
    c.presence.crash();
    await eventually(async () => expect(await counts('mallory')).to.deep.equal({ b: '1' }), 5000, 20);
    expect(await a.counts.acquire('mallory')).to.equal(true);
    await b.presence.leave();
    expect(await counts('mallory')).to.deep.equal({ a: '1' });
  });

  it('a reaped incarnation takes only its own count: what its node wrote since, under a new incarnation, stays', async () => {
    const { nodes, keys } = await cluster(['a', 'c'], 3);
    const [a, c] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    expect(await c.counts.acquire('mallory')).to.equal(true);
    const old = c.presence.incarnationTag();
    const [, k] = old.split('!');
    // What c writes once it is back under a new incarnation (a pause past the node timeout), here
    // before the reaper's undo of the old one has run.
    const later = `c!${Number(k) + 1}`;
    c.presence.crash();
    await redis.admin.hset(keys.userSessions('mallory'), later, '1');
    await eventually(async () => expect(await redis.admin.hexists(keys.userSessions('mallory'), old)).to.equal(0), 5000, 20);
    expect(await redis.admin.hgetall(keys.userSessions('mallory'))).to.deep.equal({ [later]: '1' });
    // The bound still counts it: two more on a, not three.
    expect(await a.counts.acquire('mallory')).to.equal(true);
    expect(await a.counts.acquire('mallory')).to.equal(true);
    expect(await a.counts.acquire('mallory')).to.equal(false);
  });

  it("a node's write drops its own fields of earlier incarnations, and a field of a version before incarnations", async () => {
    const { nodes, keys } = await cluster(['a', 'b'], 3);
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    await redis.admin.hset(keys.userSessions('mallory'), 'a!0', '2', 'a', '1', 'b!0', '1');
    // a's leftovers do not count against a; b's (another node) do.
    expect(await a.counts.acquire('mallory')).to.equal(true);
    expect(await a.counts.acquire('mallory')).to.equal(true);
    expect(await a.counts.acquire('mallory')).to.equal(false);
    expect(await redis.admin.hgetall(keys.userSessions('mallory'))).to.deep.equal({ [a.presence.incarnationTag()]: '2', 'b!0': '1' });
    expect(b.presence.incarnationTag()).to.not.equal('b!0');
  });
});

/*
 * Attack: open sessions until the node gives out. Past
 * MAX_CONNECTIONS_PER_USER sessions of one user — on the node in memory,
 * in the whole cluster with Redis — CONNECT is answered
 * ERR_TOO_MANY_CONNECTIONS; past MAX_CONNECTIONS sessions on the node, a new
 * connection is. Sessions already open keep working.
 */
import { RedisKeys } from '../../lib/cluster/redis-keys.js';
import { expect } from 'chai';
import { eventually } from '../cluster/support.js';
import { killAllNodes, spawnNode } from '../helpers/node-process.js';
import { startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { uniquePrefix, useRedisServer } from '../helpers/redis-server.js';
import { RawStompClient } from '../helpers/stomp-client.js';
import { GoodPair } from './support.js';

/** CONNECT as `login` at `url`: the ERROR code, or 'CONNECTED'. */
async function connectAnswer(url: string, login: string): Promise<string | undefined> {
  const client = await RawStompClient.open(url);
  const answer = await client.stompConnect({ login });
  return answer.command === 'CONNECTED' ? 'CONNECTED' : answer.headers.code;
}

describe('security: connection flood', () => {
  let node: TestNode;
  afterEach(stopTestNodes);

  it('refuses a user past MAX_CONNECTIONS_PER_USER, and anyone past MAX_CONNECTIONS; a good pair loses nothing', async () => {
    node = await startTestNode({ maxConnectionsPerUser: 3, maxConnections: 8 });
    const pair = await GoodPair.open(node.wsUrl);
    const mallory: RawStompClient[] = [];
    for (let i = 0; i < 3; i++) mallory.push(await RawStompClient.connect(node.wsUrl, { login: 'mallory' }));
    const fourth = await RawStompClient.open(node.wsUrl);
    expect((await fourth.stompConnect({ login: 'mallory' })).headers.code).to.equal('ERR_TOO_MANY_CONNECTIONS');
    await pair.exchange(2);
    // 2 + 3 open; three more users fill the node, the ninth connection is refused before CONNECT.
    for (let i = 0; i < 3; i++) await RawStompClient.connect(node.wsUrl, { login: `m${i}` });
    const ninth = await RawStompClient.open(node.wsUrl);
    const refused = await ninth.nextFrame();
    expect(refused.headers.code).to.equal('ERR_TOO_MANY_CONNECTIONS');
    await pair.exchange(2);
    expect(await pair.check()).to.deep.equal({ delivered: 4, lost: 0 });
  });
});

describe('security: connection flood across a cluster (two real node processes)', function () {
  this.timeout(60_000);
  const redis = useRedisServer();
  after(async () => {
    await stopTestNodes();
    await killAllNodes();
  });

  it('holds MAX_CONNECTIONS_PER_USER across the nodes; a killed node gives its sessions back once reaped, a stopped one at once', async () => {
    const prefix = uniquePrefix('sessions');
    const env = { MAX_CONNECTIONS_PER_USER: '3', REDIS_PREFIX: prefix };
    const [a, b, c] = await Promise.all(['sess-a', 'sess-b', 'sess-c'].map((id) => spawnNode({ id, redisUrl: redis.server.url, env })));
    // Node id → count; the hash's fields name the node's incarnation (`<id>!<k>`).
    const counts = async (): Promise<Record<string, string>> => {
      const hash = await redis.admin.hgetall(new RedisKeys(prefix).userSessions('mallory'));
      return Object.fromEntries(Object.entries(hash).map(([field, count]) => [field.replace(/![0-9]+$/, ''), count]));
    };
    const pair = await GoodPair.open(c.wsUrl);
    const onA = [await RawStompClient.connect(a.wsUrl, { login: 'mallory' }), await RawStompClient.connect(a.wsUrl, { login: 'mallory' })];
    await RawStompClient.connect(b.wsUrl, { login: 'mallory' });
    expect(await counts()).to.deep.equal({ 'sess-a': '2', 'sess-b': '1' });
    for (const node of [a, b, c]) expect(await connectAnswer(node.wsUrl, 'mallory'), node.id).to.equal('ERR_TOO_MANY_CONNECTIONS');
    await pair.exchange(2);

    // A session ends on one node: room for one more, on another.
    onA[0]!.terminate();
    await eventually(async () => expect(await counts()).to.deep.equal({ 'sess-a': '1', 'sess-b': '1' }), 5000, 20);
    expect(await connectAnswer(b.wsUrl, 'mallory')).to.equal('CONNECTED');
    expect(await connectAnswer(c.wsUrl, 'mallory')).to.equal('ERR_TOO_MANY_CONNECTIONS');

    // Killed: its session counts until the node is reaped (NODE_TIMEOUT_MS), then no more.
    await a.kill();
    await eventually(async () => expect(await counts()).to.deep.equal({ 'sess-b': '2' }), 10_000, 50);
    expect(await connectAnswer(c.wsUrl, 'mallory')).to.equal('CONNECTED');
    expect(await connectAnswer(c.wsUrl, 'mallory')).to.equal('ERR_TOO_MANY_CONNECTIONS');

    // Stopped (SIGTERM): its sessions end and it leaves, taking its field along.
    expect(await b.stop()).to.equal(0);
    expect(await counts()).to.deep.equal({ 'sess-c': '1' });
    expect(await connectAnswer(c.wsUrl, 'mallory')).to.equal('CONNECTED');
    await pair.exchange(2);
    expect(await pair.check()).to.deep.equal({ delivered: 4, lost: 0 });
  });
});

/*
 * Many nodes, one broker: real node processes on one private redis-server,
 * clients on different nodes. Each case of the cluster issue's "no message
 * lost" promise is a test here.
 */
import { expect } from 'chai';
import type { RedisTarget } from '../../lib/cluster/redis-target.js';
import { selectedRedisBackends, startBackend } from '../helpers/redis-backends.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { killAllNodes, spawnNode, type NodeProcess } from '../helpers/node-process.js';
import { bodies, ClusterClient } from './cluster-client.js';

const clients: ClusterClient[] = [];
async function connect(node: NodeProcess, login: string): Promise<ClusterClient> {
  const client = await ClusterClient.connect(node.wsUrl, login);
  clients.push(client);
  return client;
}
async function closeClients(): Promise<void> {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
}
let token: string | undefined;
/** GET as an authenticated observer (the API needs an identity); one login serves every node. */
async function json<T>(url: string): Promise<T> {
  if (token === undefined) {
    const login = await fetch(new URL('/api/login', url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'observer' }),
    });
    token = ((await login.json()) as { token: string }).token;
  }
  const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}
let userCounter = 0;
const uniqueUser = (name: string) => `${name}${++userCounter}`;
const seqs = (client: ClusterClient) => new Set(bodies(client.messages).map((b) => Number(b)));

// On one Redis and on a 3-master Redis Cluster (SB_TEST_REDIS_BACKENDS; Sentinel is one Redis to the nodes).
const BACKENDS = selectedRedisBackends().filter((name) => name !== 'sentinel');

for (const backend of BACKENDS) {
  describe(`cluster of three nodes on ${backend === 'cluster' ? 'a Redis Cluster' : 'one Redis'}`, function () {
    this.timeout(60_000);
    let redis: { target: RedisTarget; stop(): Promise<void> };
    let nodes: NodeProcess[];

    before(async () => {
      redis = await startBackend(backend);
      nodes = await Promise.all(['n1', 'n2', 'n3'].map((id) => spawnNode({ id, redis: redis.target })));
    });
    afterEach(closeClients);
    after(async () => {
      await killAllNodes();
      await redis.stop();
    });

    it('delivers a /user message to every session of the user on every node, once each', async () => {
      const bob = uniqueUser('bob');
      const tabs = [await connect(nodes[1]!, bob), await connect(nodes[2]!, bob), await connect(nodes[2]!, bob)];
      for (const tab of tabs) await tab.subscribe('/user/queue/reply');
      const alice = await connect(nodes[0]!, uniqueUser('alice'));
      await alice.send(`/user/${bob}/queue/reply`, 'hello');
      for (const tab of tabs) {
        await tab.waitUntil((m) => m.length >= 1);
        expect(tab.messages[0]!.headers.destination).to.equal('/user/queue/reply');
        expect(tab.messages[0]!.body).to.equal('hello');
      }
      // A barrier: a second message arrives after the first, so no duplicate of the first is pending.
      await alice.send(`/user/${bob}/queue/reply`, 'second');
      for (const tab of tabs) {
        await tab.waitUntil((m) => m.length >= 2);
        expect(bodies(tab.messages)).to.deep.equal(['hello', 'second']);
      }
    });

    it('reaches only the nodes that hold the user (targeted, not broadcast)', async () => {
      const bob = uniqueUser('bob');
      const receiver = await connect(nodes[1]!, bob);
      await receiver.subscribe('/user/queue/reply');
      const presence = await json<{ nodes: string[] }>(`${nodes[0]!.url}/api/presence/${bob}`);
      expect(presence.nodes).to.deep.equal(['n2']);
      const relayed = async () =>
        Promise.all(nodes.map(async (n) => (await json<{ stats: { relayReceived: number } }>(`${n.url}/api/cluster`)).stats.relayReceived));
      const before = await relayed();
      const alice = await connect(nodes[0]!, uniqueUser('alice'));
      for (let i = 0; i < 10; i++) await alice.send(`/user/${bob}/queue/reply`, String(i));
      await receiver.waitUntil((m) => m.length >= 10);
      const after = await relayed();
      // Only n2 received envelopes; n1 (the sender's node) and n3 were not bothered.
      expect(after.map((n, i) => n - before[i]!)).to.deep.equal([0, 10, 0]);
    });

    it('fans a /topic message out to subscribers on every node', async () => {
      const topic = `/topic/news-${++userCounter}`;
      const subs = await Promise.all(nodes.map((n, i) => connect(n, `reader${i}-${userCounter}`)));
      for (const sub of subs) await sub.subscribe(topic);
      const publisher = await connect(nodes[0]!, uniqueUser('pub'));
      await publisher.send(topic, 'extra');
      for (const sub of subs) {
        await sub.waitUntil((m) => m.length >= 1);
        expect(bodies(sub.messages)).to.deep.equal(['extra']);
      }
    });

    it('gives each /queue message to exactly one consumer in the cluster', async () => {
      const queue = `/queue/work-${++userCounter}`;
      const consumers = await Promise.all(nodes.map((n, i) => connect(n, `worker${i}-${userCounter}`)));
      for (const c of consumers) await c.subscribe(queue);
      const producer = await connect(nodes[0]!, uniqueUser('producer'));
      const count = 60;
      for (let i = 0; i < count; i++) await producer.send(queue, String(i));
      const total = () => consumers.reduce((n, c) => n + c.messages.length, 0);
      await consumers[0]!.waitUntil(() => total() >= count, 15_000, 'all queue messages');
      const all = consumers.flatMap((c) => bodies(c.messages).map(Number)).sort((a, b) => a - b);
      expect(all).to.deep.equal([...Array(count).keys()]);
    });

    it('keeps the order of one sender to one receiver across nodes', async () => {
      const bob = uniqueUser('bob');
      const receiver = await connect(nodes[2]!, bob);
      await receiver.subscribe('/user/queue/ordered');
      const sender = await connect(nodes[0]!, uniqueUser('alice'));
      const count = 300;
      const sends: Array<Promise<void>> = [];
      for (let i = 0; i < count; i++) sends.push(sender.send(`/user/${bob}/queue/ordered`, String(i)));
      await Promise.all(sends);
      await receiver.waitUntil((m) => m.length >= count);
      expect(bodies(receiver.messages).map(Number)).to.deep.equal([...Array(count).keys()]);
    });

    it('stores messages for an offline user and delivers them, in order, on subscribe at any node', async () => {
      const bob = uniqueUser('bob');
      const alice = await connect(nodes[0]!, uniqueUser('alice'));
      for (let i = 0; i < 5; i++) await alice.send(`/user/${bob}/queue/inbox`, `stored-${i}`);
      const back = await connect(nodes[2]!, bob);
      await back.subscribe('/user/queue/inbox');
      await alice.send(`/user/${bob}/queue/inbox`, 'live');
      await back.waitUntil((m) => m.length >= 6);
      expect(bodies(back.messages)).to.deep.equal(['stored-0', 'stored-1', 'stored-2', 'stored-3', 'stored-4', 'live']);
    });

    it('loses nothing when the receiver disconnects while messages are in flight', async () => {
      const bob = uniqueUser('bob');
      const receiver = await connect(nodes[1]!, bob);
      await receiver.subscribe('/user/queue/stream');
      const sender = await connect(nodes[0]!, uniqueUser('alice'));
      const acked: number[] = [];
      const sends: Array<Promise<void>> = [];
      for (let i = 0; i < 400; i++) {
        sends.push(sender.send(`/user/${bob}/queue/stream`, String(i)).then(() => void acked.push(i)));
        if (i === 150) await receiver.close();
      }
      await Promise.all(sends);
      const got = seqs(receiver);
      const again = await connect(nodes[2]!, bob);
      await again.subscribe('/user/queue/stream');
      await again.waitUntil(() => acked.every((i) => got.has(i) || seqs(again).has(i)), 15_000, 'every acknowledged message');
      expect(acked).to.have.length(400);
    });

    it('with ack client-individual, an inbox message leaves the store only when ACKed; the rest come back in order', async () => {
      const bob = uniqueUser('bob');
      const alice = await connect(nodes[0]!, uniqueUser('alice'));
      for (let i = 0; i < 3; i++) await alice.send(`/user/${bob}/queue/acked`, `m${i}`);
      const first = await connect(nodes[1]!, bob);
      await first.subscribe('/user/queue/acked', { ack: 'client-individual' });
      await first.waitUntil((m) => m.length >= 3);
      expect(bodies(first.messages)).to.deep.equal(['m0', 'm1', 'm2']);
      first.messages[1]!.ack();
      // The ACK is in place once a later frame's RECEIPT arrives (frames are handled in order).
      await first.send(`/user/${uniqueUser('nobody')}/queue/x`, 'barrier');
      await first.close();
      const again = await connect(nodes[2]!, bob);
      await again.subscribe('/user/queue/acked', { ack: 'client-individual' });
      await again.waitUntil((m) => m.length >= 2);
      expect(bodies(again.messages)).to.deep.equal(['m0', 'm2']);
      for (const m of again.messages) m.ack();
      await again.send(`/user/${uniqueUser('nobody')}/queue/x`, 'barrier');
      await again.close();
      const third = await connect(nodes[0]!, bob);
      await third.subscribe('/user/queue/acked');
      await third.send(`/user/${bob}/queue/acked`, 'fresh');
      await third.waitUntil((m) => m.length >= 1);
      expect(bodies(third.messages)).to.deep.equal(['fresh']);
    });

    it('reports the online status and count of users across the cluster', async () => {
      const carol = uniqueUser('carol');
      const dave = uniqueUser('dave');
      const carolClient = await connect(nodes[1]!, carol);
      await connect(nodes[2]!, dave);
      for (const node of nodes) {
        expect((await json<{ online: boolean; nodes: string[] }>(`${node.url}/api/presence/${carol}`)).nodes).to.deep.equal(['n2']);
        expect((await json<{ online: boolean }>(`${node.url}/api/presence/${dave}`)).online).to.equal(true);
        const all = await json<{ online: number; users: string[] }>(`${node.url}/api/presence?limit=1000`);
        expect(all.users).to.include.members([carol, dave]);
        expect(all.online).to.equal(all.users.length);
      }
      await carolClient.close();
      // Going offline is asynchronous to the client's close: wait for the condition, bounded.
      const deadline = Date.now() + 10_000;
      while ((await json<{ online: boolean }>(`${nodes[0]!.url}/api/presence/${carol}`)).online) {
        if (Date.now() > deadline) throw new Error(`${carol} still online`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const all = await json<{ users: string[] }>(`${nodes[0]!.url}/api/presence?limit=1000`);
      expect(all.users).to.include(dave).and.not.include(carol);
    });
  });

  describe(`cluster${backend === 'cluster' ? ' on a Redis Cluster' : ''}: a node killed with SIGKILL while messages are in flight`, function () {
    this.timeout(90_000);
    let redis: { target: RedisTarget; stop(): Promise<void> };
    let nodes: NodeProcess[];

    before(async () => {
      redis = await startBackend(backend);
      nodes = await Promise.all(['k1', 'k2', 'k3'].map((id) => spawnNode({ id, redis: redis.target })));
    });
    afterEach(closeClients);
    after(async () => {
      await killAllNodes();
      await redis.stop();
    });

    it('delivers every acknowledged message after the receiver reconnects to another node', async () => {
      const bob = 'bob-kill';
      const receiver = await connect(nodes[1]!, bob);
      await receiver.subscribe('/user/queue/stream');
      const sender = await connect(nodes[0]!, 'alice-kill');
      const acked: number[] = [];
      const sends: Array<Promise<void>> = [];
      for (let i = 0; i < 600; i++) {
        sends.push(sender.send(`/user/${bob}/queue/stream`, String(i)).then(() => void acked.push(i), () => undefined));
        if (i === 200) await nodes[1]!.kill();
        if (i % 50 === 0) await Promise.all(sends);
      }
      await Promise.all(sends);
      expect(acked.length).to.equal(600);
      const got = seqs(receiver);
      const again = await connect(nodes[2]!, bob);
      await again.subscribe('/user/queue/stream');
      await again.waitUntil(() => acked.every((i) => got.has(i) || seqs(again).has(i)), 30_000, 'every acknowledged message');
      // Duplicates are allowed only as the same message-id, which the client can drop.
      const ids = new Map<string, string>();
      for (const m of [...receiver.messages, ...again.messages]) {
        const seen = ids.get(m.headers['message-id']!);
        if (seen !== undefined) expect(seen).to.equal(m.body);
        ids.set(m.headers['message-id']!, m.body);
      }
      const live = await json<{ nodes: Array<{ id: string }> }>(`${nodes[0]!.url}/api/cluster`);
      expect(live.nodes.map((n) => n.id).sort()).to.deep.equal(['k1', 'k3']);
    });
  });
}

describe('cluster: Redis restarted under load', function () {
  this.timeout(90_000);
  let redis: RedisServer;
  let nodes: NodeProcess[];

  before(async () => {
    redis = await startRedisServer({ appendonly: true });
    nodes = await Promise.all(['r1', 'r2'].map((id) => spawnNode({ id, redisUrl: redis.url })));
  });
  afterEach(closeClients);
  after(async () => {
    await killAllNodes();
    await redis.stop();
  });

  async function ready(node: NodeProcess): Promise<void> {
    // Readiness is a condition to poll: the node reports it through /readyz.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const response = await fetch(`${node.url}/readyz`).catch(() => undefined);
      if (response?.status === 200) return;
      if (Date.now() > deadline) throw new Error(`${node.id} not ready again`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('refuses remote sends while Redis is down, keeps local delivery, and recovers by itself', async () => {
    const bob = await connect(nodes[1]!, 'bob-r');
    await bob.subscribe('/user/queue/x');
    const carol = await connect(nodes[0]!, 'carol-r');
    await carol.subscribe('/user/queue/x');
    const alice = await connect(nodes[0]!, 'alice-r');
    await alice.send('/user/bob-r/queue/x', 'before');
    await bob.waitUntil((m) => m.length >= 1);

    await redis.stop();
    const readyz = await fetch(`${nodes[0]!.url}/readyz`);
    expect(readyz.status).to.equal(503);
    // Local delivery keeps working without Redis.
    await alice.send('/user/carol-r/queue/x', 'local');
    await carol.waitUntil((m) => m.length >= 1);
    // A remote send is refused, never silently dropped.
    let refused: Error | undefined;
    await alice.send('/user/bob-r/queue/x', 'during').catch((error: Error) => (refused = error));
    expect(refused?.message).to.match(/ERR_CLUSTER_UNAVAILABLE/);

    await redis.restart();
    await Promise.all(nodes.map(ready));
    const alice2 = await connect(nodes[0]!, 'alice-r');
    await alice2.send('/user/bob-r/queue/x', 'after');
    await bob.waitUntil((m) => m.length >= 2);
    expect(bodies(bob.messages)).to.deep.equal(['before', 'after']);
  });

  it('loses no acknowledged message across a Redis restart under load', async () => {
    const receiver = await connect(nodes[1]!, 'bob-load');
    await receiver.subscribe('/user/queue/load');
    let sender = await connect(nodes[0]!, 'alice-load');
    const acked: number[] = [];
    let restarted: Promise<void> | undefined;
    for (let i = 0; i < 300; i++) {
      if (i === 100) restarted = redis.restart();
      try {
        await sender.send('/user/bob-load/queue/load', String(i));
        acked.push(i);
      } catch {
        // Refused (ERROR) while Redis is away: not acknowledged, so not promised. Reconnect and go on.
        await restarted;
        await Promise.all(nodes.map(ready));
        sender = await connect(nodes[0]!, 'alice-load');
      }
    }
    await restarted;
    expect(acked.length).to.be.greaterThan(150);
    await receiver.waitUntil(() => acked.every((i) => seqs(receiver).has(i)), 30_000, 'every acknowledged message');
  });
});

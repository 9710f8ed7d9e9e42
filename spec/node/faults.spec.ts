/*
 * The delivery promise under faults, with real node processes on a private
 * redis-server and faults injected by signals: a node paused past the node
 * timeout, a node stopped gracefully under load, a node killed while a
 * client still owes an ACK. Node timing as spawnNode sets it (beat 200 ms,
 * timeout 1 s), so each fault goes past it.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import type { IMessage } from '@stomp/stompjs';
import { RedisKeys } from '../../lib/cluster/redis-keys.js';
import { killAllNodes, spawnNode, type NodeProcess } from '../helpers/node-process.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { bodies, ClusterClient } from './cluster-client.js';

const clients: ClusterClient[] = [];
async function connect(node: NodeProcess, login: string): Promise<ClusterClient> {
  const client = await ClusterClient.connect(node.wsUrl, login);
  clients.push(client);
  return client;
}

/** Every receipted sequence number was received; a copy only ever with the same message-id. */
function expectAllOnce(received: IMessage[], receipted: number[], allowSameIdCopies: boolean): void {
  const got = new Set(bodies(received).map(Number));
  expect(receipted.filter((i) => !got.has(i)), 'lost').to.deep.equal([]);
  const idOf = new Map<string, string>();
  let copies = 0;
  for (const m of received) {
    const id = m.headers['message-id']!;
    const seen = idOf.get(m.body);
    if (seen !== undefined) {
      copies++;
      expect(seen, `message ${m.body} delivered again under another id`).to.equal(id);
    }
    idOf.set(m.body, id);
  }
  if (!allowSameIdCopies) expect(copies, 'duplicates').to.equal(0);
}

describe('cluster faults', function () {
  this.timeout(90_000);
  let redis: RedisServer;
  let admin: Redis;

  before(async () => {
    redis = await startRedisServer({ appendonly: true });
    admin = new Redis(redis.url, { maxRetriesPerRequest: 0 });
    // The specs restart Redis: its reconnect errors are expected (commands on it still reject).
    admin.on('error', () => {});
  });
  afterEach(async () => {
    await Promise.allSettled(clients.splice(0).map((c) => c.close()));
    await killAllNodes();
  });
  after(async () => {
    admin.disconnect();
    await redis.stop();
  });

  it('a node that cannot bind its port never joins the cluster', async () => {
    const [b1] = await Promise.all(['b1'].map((id) => spawnNode({ id, redisUrl: redis.url })));
    const port = new URL(b1!.url).port;
    let failure: Error | undefined;
    await spawnNode({ id: 'b2', redisUrl: redis.url, env: { PORT: port } }).catch((error: Error) => (failure = error));
    expect(failure?.message).to.match(/exited with 1 before it was ready.*EADDRINUSE/s);
    // Never registered: nothing for the others to reap, no stream, no trace.
    const keys = new RedisKeys('sb:');
    expect(await admin.zscore(keys.nodes(), 'b2')).to.equal(null);
    expect(await admin.exists(keys.node('b2'), keys.stream('b2'), keys.nodeIndex('b2'))).to.equal(0);
  });

  it('a node paused past the node timeout is taken for dead, rejoins, and its subscriber still gets everything', async () => {
    const [p1, p2] = await Promise.all(['p1', 'p2'].map((id) => spawnNode({ id, redisUrl: redis.url })));
    const receiver = await connect(p2!, 'bob-pause');
    await receiver.subscribe('/user/queue/p', { ack: 'client-individual' }, true);
    const sender = await connect(p1!, 'alice-pause');
    const receipted: number[] = [];
    const send = async (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        await sender.send('/user/bob-pause/queue/p', String(i));
        receipted.push(i);
      }
    };
    await send(0, 20);
    await receiver.waitUntil((m) => m.length >= 20);

    p2!.child.kill('SIGSTOP');
    try {
      await p1!.waitForLog((r) => r.msg === 'node down; reaped its presence' && r.dead === 'p2');
      await p1!.waitForLog((r) => r.msg === 'recovered what a dead node left');
      // Routed while p2 counts as dead: kept in bob's inbox.
      await send(20, 50);
    } finally {
      p2!.child.kill('SIGCONT');
    }
    await p2!.waitForLog((r) => r.msg === 'rejoined the cluster; took back the inboxes of local subscriptions');
    await send(50, 70);
    // The same session, never reconnected: the node took its inbox back and goes on live.
    await receiver.waitUntil(() => receipted.every((i) => bodies(receiver.messages).includes(String(i))), 20_000, 'every receipted message');
    expectAllOnce(receiver.messages, receipted, true);
    expect(receiver.errors).to.deep.equal([]);
    const cluster = (await (await fetch(`${p1!.url}/api/cluster`, { headers: await bearer(p1!) })).json()) as { nodes: Array<{ id: string }> };
    expect(cluster.nodes.map((n) => n.id).sort()).to.deep.equal(['p1', 'p2']);
  });

  it('a queue consumer\'s node paused past the timeout: its in-flight messages go to another consumer, and the node, back, neither requeues nor redelivers them', async () => {
    const [q1, q2] = await Promise.all(['q1', 'q2'].map((id) => spawnNode({ id, redisUrl: redis.url })));
    const keys = new RedisKeys('sb:');
    const slow = await connect(q2!, 'worker-slow');
    await slow.subscribe('/queue/jobs', { ack: 'client-individual' });
    const producer = await connect(q1!, 'producer');
    for (let i = 0; i < 5; i++) await producer.send('/queue/jobs', `j${i}`);
    await slow.waitUntil((m) => m.length >= 5);

    q2!.child.kill('SIGSTOP');
    let other: ClusterClient;
    try {
      await q1!.waitForLog((r) => r.msg === 'recovered what a dead node left' && r.queued === 5);
      // Unacked at the pause: handed to the next consumer, as on any consumer failure.
      other = await connect(q1!, 'worker-other');
      await other.subscribe('/queue/jobs', { ack: 'client-individual' }, true);
      await other.waitUntil((m) => m.length >= 5);
    } finally {
      q2!.child.kill('SIGCONT');
    }
    await q2!.waitForLog((r) => r.msg === 'rejoined the cluster; took back the inboxes of local subscriptions');
    // The slow consumer gives back what it had (NACK): fenced, the node requeues none of it again.
    for (const m of slow.messages) m.nack();
    for (let i = 5; i < 9; i++) await producer.send('/queue/jobs', `j${i}`);
    const firsts = () => [...bodies(slow.messages), ...bodies(other!.messages)];
    await other!.waitUntil(() => new Set(firsts()).size >= 9, 15_000, 'every job');
    // The 5 jobs reached exactly the two consumers that held them; each later job one consumer, once.
    expect(bodies(slow.messages).slice(0, 5)).to.deep.equal(['j0', 'j1', 'j2', 'j3', 'j4']);
    expect(bodies(other!.messages).slice(0, 5)).to.deep.equal(['j0', 'j1', 'j2', 'j3', 'j4']);
    for (const m of slow.messages.slice(5)) m.ack();
    // Nothing a third time: every delivery of every job, across both consumers.
    const every = [...bodies(slow.messages), ...bodies(other!.messages)].sort();
    expect(every).to.deep.equal(['j0', 'j0', 'j1', 'j1', 'j2', 'j2', 'j3', 'j3', 'j4', 'j4', 'j5', 'j6', 'j7', 'j8']);
    expect(await admin.llen(keys.queue('/queue/jobs'))).to.equal(0);
  });

  it('a node stopped with SIGTERM under load loses and duplicates nothing: its receiver resumes on another node', async () => {
    const [t1, t2, t3] = await Promise.all(['t1', 't2', 't3'].map((id) => spawnNode({ id, redisUrl: redis.url })));
    const first = await connect(t2!, 'bob-term');
    await first.subscribe('/user/queue/t', { ack: 'client-individual' }, true);
    // The application's reconnect: another node, the same subscription.
    const second = first.closed.then(async () => {
      const again = await connect(t3!, 'bob-term');
      await again.subscribe('/user/queue/t', { ack: 'client-individual' }, true);
      return again;
    });
    const sender = await connect(t1!, 'alice-term');
    const receipted: number[] = [];
    let stopping: Promise<number | null> | undefined;
    for (let i = 0; i < 300; i++) {
      if (i === 100) stopping = t2!.stop();
      await sender.send('/user/bob-term/queue/t', String(i));
      receipted.push(i);
    }
    expect(await stopping).to.equal(0);
    const again = await second;
    const all = () => [...first.messages, ...again.messages];
    await again.waitUntil(() => {
      const got = new Set(bodies(all()));
      return receipted.every((i) => got.has(String(i)));
    }, 30_000, 'every receipted message');
    expectAllOnce(all(), receipted, false);
    expect(first.errors.map((e) => e.headers.code)).to.deep.equal(['ERR_SHUTTING_DOWN']);
  });

  it('keeps a client-ack message that is not acknowledged past the replay window, and hands it over when its node is killed', async () => {
    const [c1, c2] = await Promise.all(['c1', 'c2'].map((id) => spawnNode({ id, redisUrl: redis.url })));
    const receiver = await connect(c2!, 'bob-held');
    await receiver.subscribe('/user/queue/h', { ack: 'client-individual' });
    const sender = await connect(c1!, 'alice-held');
    await sender.send('/user/bob-held/queue/h', 'held');
    await receiver.waitUntil((m) => m.length >= 1);
    // Later messages are acknowledged; their entries go as soon as acked, the held one stays.
    for (let i = 0; i < 5; i++) await sender.send('/user/bob-held/queue/h', `acked-${i}`);
    await receiver.waitUntil((m) => m.length >= 6);
    for (const m of receiver.messages.slice(1)) m.ack();
    const stream = new RedisKeys('sb:').stream('c2');
    const deadline = Date.now() + 15_000;
    while ((await admin.xlen(stream)) !== 1) {
      if (Date.now() > deadline) throw new Error(`stream of c2 still holds ${await admin.xlen(stream)} entries`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }

    await c2!.kill();
    const again = await connect(c1!, 'bob-held');
    await again.subscribe('/user/queue/h', { ack: 'client-individual' });
    await again.waitUntil((m) => m.length >= 1, 20_000, 'the unacknowledged message, handed over');
    expect(bodies(again.messages)).to.deep.equal(['held']);
    expect(again.messages[0]!.headers['message-id']).to.equal(receiver.messages[0]!.headers['message-id']);
  });

  it('keeps a client-ack message delivered on the sender\'s own node until acknowledged, through that node\'s SIGKILL', async () => {
    const [l1, l2] = await Promise.all(['l1', 'l2'].map((id) => spawnNode({ id, redisUrl: redis.url })));
    const receiver = await connect(l1!, 'bob-local');
    await receiver.subscribe('/user/queue/l', { ack: 'client-individual' });
    const sender = await connect(l1!, 'alice-local');
    await sender.send('/user/bob-local/queue/l', 'held-local');
    await receiver.waitUntil((m) => m.length >= 1);
    await l1!.kill();
    const again = await connect(l2!, 'bob-local');
    await again.subscribe('/user/queue/l', { ack: 'client-individual' });
    await again.waitUntil((m) => m.length >= 1, 20_000, 'the unacknowledged message, handed over');
    expect(bodies(again.messages)).to.deep.equal(['held-local']);
    expect(again.messages[0]!.headers['message-id']).to.equal(receiver.messages[0]!.headers['message-id']);
  });
});


let token: string | undefined;
async function bearer(node: NodeProcess): Promise<Record<string, string>> {
  if (token === undefined) {
    const login = await fetch(`${node.url}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'observer' }),
    });
    token = ((await login.json()) as { token: string }).token;
  }
  return { authorization: `Bearer ${token}` };
}
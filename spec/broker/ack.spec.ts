/*
 * ACK / NACK (STOMP 1.2 "SUBSCRIBE ack Header", "ACK", "NACK"): the three ack
 * modes, 1.2 `id` versus 1.1 `message-id` + `subscription`, and what happens
 * to unacknowledged messages on NACK and when a session ends.
 */
import { expect } from 'chai';
import { startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { RawStompClient, StompJsClient, type ReceivedFrame } from '../helpers/stomp-client.js';

let node: TestNode;

async function client(login: string, version: '1.1' | '1.2' = '1.2'): Promise<RawStompClient> {
  return RawStompClient.connect(node.wsUrl, { login, 'accept-version': version });
}

function subscribe(c: RawStompClient, id: string, destination: string, ack = 'auto'): Promise<void> {
  return c.request({ command: 'SUBSCRIBE', headers: { id, destination, ack } });
}

function send(c: RawStompClient, destination: string, body: string): Promise<void> {
  return c.request({ command: 'SEND', headers: { destination }, body });
}

async function messages(c: RawStompClient, count: number): Promise<ReceivedFrame[]> {
  const out: ReceivedFrame[] = [];
  for (let i = 0; i < count; i++) out.push(await c.nextFrame((f) => f.command === 'MESSAGE'));
  return out;
}

const bodies = (frames: ReceivedFrame[]): string[] => frames.map((f) => f.body.toString());

/** DISCONNECT with its RECEIPT, then the close. */
async function disconnect(c: RawStompClient): Promise<void> {
  await c.request({ command: 'DISCONNECT' });
  await c.closed;
}

describe('ACK and NACK (real node, real WebSockets)', () => {
  beforeEach(async () => {
    node = await startTestNode();
  });
  afterEach(stopTestNodes);

  describe('the ack header of MESSAGE', () => {
    it('is absent in auto mode and present in client modes (1.2)', async () => {
      const c = await client('alice');
      await subscribe(c, 'auto', '/topic/a', 'auto');
      await subscribe(c, 'client', '/topic/a', 'client');
      await subscribe(c, 'individual', '/topic/a', 'client-individual');
      await send(c, '/topic/a', 'x');
      const got = await messages(c, 3);
      const bySub = new Map(got.map((f) => [f.headers.subscription, f]));
      expect(bySub.get('auto')!.headers).to.not.have.property('ack');
      expect(bySub.get('client')!.headers.ack).to.be.a('string').and.not.empty;
      expect(bySub.get('individual')!.headers.ack).to.be.a('string').and.not.empty;
      expect(bySub.get('client')!.headers.ack).to.not.equal(bySub.get('individual')!.headers.ack);
    });

    it('is absent in 1.1, which acknowledges by message-id and subscription', async () => {
      const c = await client('alice', '1.1');
      await subscribe(c, 's', '/topic/a', 'client');
      await send(c, '/topic/a', 'x');
      const [message] = await messages(c, 1);
      expect(message!.headers).to.not.have.property('ack');
      expect(message!.headers['message-id']).to.be.a('string');
    });

    it('comes through @stomp/stompjs, whose message.ack() settles the message', async () => {
      const consumer = await StompJsClient.connect(node.wsUrl, { login: 'c' });
      const queue = await consumer.subscribe('/queue/js', { ack: 'client-individual' });
      const producer = await StompJsClient.connect(node.wsUrl, { login: 'p' });
      await producer.publish('/queue/js', 'one');
      const message = await queue.next();
      expect(message.headers.ack).to.be.a('string');
      await consumer.withReceipt((receipt) => message.ack({ receipt }));
      await consumer.disconnect();
      // Acknowledged, so not redelivered: the queue is empty.
      expect(await node.broker.queues.depth('/queue/js')).to.equal(0);
    });
  });

  describe('client-individual', () => {
    it('acknowledges exactly the message named (1.2 id)', async () => {
      const a = await client('a');
      await subscribe(a, 's', '/queue/ci', 'client-individual');
      for (const body of ['m1', 'm2', 'm3']) await send(a, '/queue/ci', body);
      const [, m2] = await messages(a, 3);
      await a.request({ command: 'ACK', headers: { id: m2!.headers.ack! } });
      await disconnect(a);
      const b = await client('b');
      await subscribe(b, 's', '/queue/ci');
      expect(bodies(await messages(b, 2))).to.deep.equal(['m1', 'm3']);
      expect(await b.roundTrip()).to.deep.equal([]);
    });

    it('acknowledges by message-id and subscription in 1.1', async () => {
      const a = await client('a', '1.1');
      await subscribe(a, 'sub-1', '/queue/ci11', 'client-individual');
      for (const body of ['m1', 'm2', 'm3']) await send(a, '/queue/ci11', body);
      const [, m2] = await messages(a, 3);
      await a.request({ command: 'ACK', headers: { 'message-id': m2!.headers['message-id']!, subscription: 'sub-1' } });
      await disconnect(a);
      const b = await client('b');
      await subscribe(b, 's', '/queue/ci11');
      expect(bodies(await messages(b, 2))).to.deep.equal(['m1', 'm3']);
    });

    it('1.1: a subscription header that matches none falls back to the message id (as stomp.py\'s 1.1 helper needs)', async () => {
      const a = await client('a', '1.1');
      await subscribe(a, 'sub-1', '/queue/ci11x', 'client-individual');
      for (const body of ['m1', 'm2']) await send(a, '/queue/ci11x', body);
      const [m1] = await messages(a, 2);
      await a.request({ command: 'ACK', headers: { 'message-id': m1!.headers['message-id']!, subscription: 'not-the-id' } });
      await disconnect(a);
      const b = await client('b');
      await subscribe(b, 's', '/queue/ci11x');
      expect(bodies(await messages(b, 1))).to.deep.equal(['m2']);
    });

    it('1.1: no fallback when the message id is pending on two subscriptions → ERROR ERR_UNKNOWN_ACK', async () => {
      const a = await client('a', '1.1');
      await subscribe(a, 'one', '/topic/twice11', 'client-individual');
      await subscribe(a, 'two', '/topic/twice11', 'client-individual');
      await send(a, '/topic/twice11', 'both');
      const [m] = await messages(a, 2);
      a.sendFrame({ command: 'ACK', headers: { 'message-id': m!.headers['message-id']!, subscription: 'three' } });
      expect((await a.nextFrame((f) => f.command === 'ERROR')).headers.code).to.equal('ERR_UNKNOWN_ACK');
    });
  });

  describe('client (cumulative)', () => {
    it('acknowledges the message named and every earlier one of the subscription (1.2 id)', async () => {
      const a = await client('a');
      await subscribe(a, 's', '/queue/cum', 'client');
      for (const body of ['m1', 'm2', 'm3']) await send(a, '/queue/cum', body);
      const [, m2] = await messages(a, 3);
      await a.request({ command: 'ACK', headers: { id: m2!.headers.ack! } });
      await disconnect(a);
      const b = await client('b');
      await subscribe(b, 's', '/queue/cum');
      expect(bodies(await messages(b, 1))).to.deep.equal(['m3']);
      expect(await b.roundTrip()).to.deep.equal([]);
    });

    it('is cumulative per subscription only', async () => {
      const a = await client('a');
      await subscribe(a, 'x', '/queue/cx', 'client');
      await subscribe(a, 'y', '/queue/cy', 'client');
      await send(a, '/queue/cx', 'x1');
      await messages(a, 1);
      await send(a, '/queue/cy', 'y1');
      const [y1] = await messages(a, 1);
      await a.request({ command: 'ACK', headers: { id: y1!.headers.ack! } });
      await disconnect(a);
      const b = await client('b');
      await subscribe(b, 's', '/queue/cx');
      expect(bodies(await messages(b, 1))).to.deep.equal(['x1']);
    });

    it('acknowledges cumulatively by message-id and subscription in 1.1', async () => {
      const a = await client('a', '1.1');
      await subscribe(a, 'sub-1', '/queue/cum11', 'client');
      for (const body of ['m1', 'm2', 'm3']) await send(a, '/queue/cum11', body);
      const [, m2] = await messages(a, 3);
      await a.request({ command: 'ACK', headers: { 'message-id': m2!.headers['message-id']!, subscription: 'sub-1' } });
      await disconnect(a);
      const b = await client('b');
      await subscribe(b, 's', '/queue/cum11');
      expect(bodies(await messages(b, 1))).to.deep.equal(['m3']);
    });
  });

  describe('redelivery', () => {
    it('NACK on a queue hands the message to the other subscriber', async () => {
      const a = await client('a');
      const b = await client('b');
      await subscribe(a, 's', '/queue/nack', 'client-individual');
      await subscribe(b, 's', '/queue/nack', 'client-individual');
      await send(a, '/queue/nack', 'n1');
      const [first] = await messages(a, 1);
      await a.request({ command: 'NACK', headers: { id: first!.headers.ack!, receipt: 'n' } });
      const [again] = await messages(b, 1);
      expect(again!.body.toString()).to.equal('n1');
      expect(again!.headers['message-id']).to.equal(first!.headers['message-id']);
      expect(await a.roundTrip()).to.deep.equal([]);
    });

    it('prefetch-count bounds unacknowledged messages; a consumer that joins gets what the full one held back', async () => {
      const a = await client('a');
      await a.request({ command: 'SUBSCRIBE', headers: { id: 'p', destination: '/queue/prefetch', ack: 'client-individual', 'prefetch-count': '1' } });
      for (const body of ['p1', 'p2', 'p3']) await send(a, '/queue/prefetch', body);
      expect(bodies(await messages(a, 1))).to.deep.equal(['p1']);
      expect(await a.roundTrip()).to.deep.equal([]);
      // No new SEND: joining alone must bring the waiting messages to the new consumer.
      const b = await client('b');
      await subscribe(b, 's', '/queue/prefetch');
      expect(bodies(await messages(b, 2))).to.deep.equal(['p2', 'p3']);
    });

    it('NACK by message-id and subscription in 1.1', async () => {
      const a = await client('a', '1.1');
      const b = await client('b');
      await subscribe(a, 'sa', '/queue/nack11', 'client-individual');
      await subscribe(b, 'sb', '/queue/nack11', 'client-individual');
      await send(a, '/queue/nack11', 'n1');
      const [first] = await messages(a, 1);
      await a.request({ command: 'NACK', headers: { 'message-id': first!.headers['message-id']!, subscription: 'sa' } });
      expect(bodies(await messages(b, 1))).to.deep.equal(['n1']);
    });

    it('a session that ends with unacknowledged queue messages: they go to another subscriber', async () => {
      const a = await client('a');
      const b = await client('b');
      await subscribe(a, 's', '/queue/crash', 'client');
      await subscribe(b, 's', '/queue/crash', 'client');
      await send(b, '/queue/crash', 'c1');
      await send(b, '/queue/crash', 'c2');
      expect(bodies(await messages(a, 1))).to.deep.equal(['c1']);
      expect(bodies(await messages(b, 1))).to.deep.equal(['c2']);
      a.terminate(); // no DISCONNECT: the socket just drops
      const [again] = await messages(b, 1);
      expect(again!.body.toString()).to.equal('c1');
      await b.request({ command: 'ACK', headers: { id: again!.headers.ack! } });
    });

    it('UNSUBSCRIBE with unacknowledged queue messages: they go to another subscriber, not back to it', async () => {
      const a = await client('a');
      const b = await client('b');
      await subscribe(a, 'sa', '/queue/unsub', 'client-individual');
      await send(a, '/queue/unsub', 'u1');
      await messages(a, 1);
      await subscribe(b, 'sb', '/queue/unsub', 'client-individual');
      await a.request({ command: 'UNSUBSCRIBE', headers: { id: 'sa' } });
      expect(bodies(await messages(b, 1))).to.deep.equal(['u1']);
      expect(await a.roundTrip()).to.deep.equal([]);
    });

    it('unacknowledged user messages go back to the inbox; a later subscription receives them', async () => {
      const bob = await client('bob');
      const alice = await client('alice');
      await subscribe(alice, 's', '/user/queue/r', 'client-individual');
      for (const body of ['r1', 'r2', 'r3']) await send(bob, '/user/alice/queue/r', body);
      const [r1] = await messages(alice, 3);
      await alice.request({ command: 'ACK', headers: { id: r1!.headers.ack! } });
      await disconnect(alice);
      const stored = await node.broker.inbox.peek('alice', '/queue/r');
      expect(stored.map((m) => m.body.toString())).to.deep.equal(['r2', 'r3']);
      const again = await client('alice');
      await subscribe(again, 's', '/user/queue/r', 'client');
      const redelivered = await messages(again, 2);
      expect(bodies(redelivered)).to.deep.equal(['r2', 'r3']);
      expect(redelivered[0]!.headers.destination).to.equal('/user/queue/r');
      // Cumulative ACK of the last one settles both: nothing is stored any more once the session ends.
      await again.request({ command: 'ACK', headers: { id: redelivered[1]!.headers.ack! } });
      await disconnect(again);
      const third = await client('alice');
      await subscribe(third, 's', '/user/queue/r');
      expect(await third.roundTrip()).to.deep.equal([]);
      expect(await node.broker.inbox.depth('alice', '/queue/r')).to.equal(0);
    });

    it('a NACKed user message goes back to the inbox', async () => {
      const bob = await client('bob');
      const alice = await client('alice');
      await subscribe(alice, 's', '/user/queue/n', 'client-individual');
      await send(bob, '/user/alice/queue/n', 'n1');
      const [n1] = await messages(alice, 1);
      await alice.request({ command: 'NACK', headers: { id: n1!.headers.ack! } });
      expect((await node.broker.inbox.peek('alice', '/queue/n')).map((m) => m.body.toString())).to.deep.equal(['n1']);
    });

    it('UNSUBSCRIBE with unacknowledged user messages: re-subscribing receives them', async () => {
      const bob = await client('bob');
      const alice = await client('alice');
      await subscribe(alice, 's1', '/user/queue/u', 'client');
      await send(bob, '/user/alice/queue/u', 'u1');
      await messages(alice, 1);
      await alice.request({ command: 'UNSUBSCRIBE', headers: { id: 's1' } });
      await subscribe(alice, 's2', '/user/queue/u', 'auto');
      const [again] = await messages(alice, 1);
      expect(again!.body.toString()).to.equal('u1');
      expect(again!.headers.subscription).to.equal('s2');
    });
  });

  describe('errors', () => {
    it('ACK of an unknown id → ERROR ERR_UNKNOWN_ACK', async () => {
      const c = await client('alice');
      c.sendFrame({ command: 'ACK', headers: { id: 'no-such-ack', receipt: 'a' } });
      const error = await c.expectFrame('ERROR');
      expect(error.headers.code).to.equal('ERR_UNKNOWN_ACK');
      expect(error.headers['receipt-id']).to.equal('a');
      await c.closed;
    });

    it('ACK of an already acknowledged message → ERROR ERR_UNKNOWN_ACK', async () => {
      const c = await client('alice');
      await subscribe(c, 's', '/queue/twice', 'client-individual');
      await send(c, '/queue/twice', 't');
      const [m] = await messages(c, 1);
      await c.request({ command: 'ACK', headers: { id: m!.headers.ack! } });
      c.sendFrame({ command: 'ACK', headers: { id: m!.headers.ack! } });
      expect((await c.expectFrame('ERROR')).headers.code).to.equal('ERR_UNKNOWN_ACK');
    });

    it('NACK of an unknown id, and an ACK without id → ERROR', async () => {
      const c = await client('alice');
      c.sendFrame({ command: 'NACK', headers: { id: 'nope' } });
      expect((await c.expectFrame('ERROR')).headers.code).to.equal('ERR_UNKNOWN_ACK');
      const d = await client('alice');
      d.sendFrame({ command: 'ACK', headers: {} });
      expect((await d.expectFrame('ERROR')).headers.code).to.equal('ERR_MISSING_HEADER');
    });

    it('an invalid ack mode → ERROR ERR_INVALID_HEADER', async () => {
      const c = await client('alice');
      c.sendFrame({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/queue/x', ack: 'sometimes' } });
      expect((await c.expectFrame('ERROR')).headers.code).to.equal('ERR_INVALID_HEADER');
    });
  });
});

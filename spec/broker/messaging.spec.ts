/*
 * SEND, SUBSCRIBE, UNSUBSCRIBE and RECEIPT on one real node: topics, queues
 * and user destinations, driven mostly through @stomp/stompjs; raw frames
 * where the library would not send them or where ERROR details matter.
 */
import { expect } from 'chai';
import { createHeaders } from '../../lib/stomp/index.js';
import type { IMessage } from '@stomp/stompjs';
import { startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { RawStompClient, rejection, StompErrorFrame, StompJsClient, type Inbox } from '../helpers/stomp-client.js';

async function take(inbox: Inbox, count: number): Promise<IMessage[]> {
  const out: IMessage[] = [];
  for (let i = 0; i < count; i++) out.push(await inbox.next());
  return out;
}

const bodies = (messages: IMessage[]): string[] => messages.map((m) => m.body);

describe('messaging (real node, real WebSockets)', () => {
  let node: TestNode;
  afterEach(stopTestNodes);

  describe('topics', () => {
    beforeEach(async () => {
      node = await startTestNode();
    });

    it('give every subscriber a copy, once', async () => {
      const [a1, a2, b] = await Promise.all([
        StompJsClient.connect(node.wsUrl, { login: 'alice' }),
        StompJsClient.connect(node.wsUrl, { login: 'alice' }),
        StompJsClient.connect(node.wsUrl, { login: 'bob' }),
      ]);
      const inboxes = [await a1.subscribe('/topic/news'), await a2.subscribe('/topic/news'), await b.subscribe('/topic/news')];
      await b.publish('/topic/news', 'extra!');
      for (const inbox of inboxes) {
        const message = await inbox.next();
        expect(message.body).to.equal('extra!');
        expect(message.headers.destination).to.equal('/topic/news');
        expect(message.headers.subscription).to.equal(inbox.subscription.id);
      }
      await Promise.all([a1.barrier(), a2.barrier(), b.barrier()]);
      expect(inboxes.map((i) => i.messages.size)).to.deep.equal([0, 0, 0]);
    });

    it('reach only subscribers of that topic', async () => {
      const client = await StompJsClient.connect(node.wsUrl);
      const other = await client.subscribe('/topic/other');
      await client.publish('/topic/news', 'x');
      await client.barrier();
      expect(other.messages.size).to.equal(0);
    });
  });

  describe('queues', () => {
    it('deliver each message to one consumer, round robin', async () => {
      node = await startTestNode();
      const [a, b, sender] = await Promise.all([
        StompJsClient.connect(node.wsUrl, { login: 'a' }),
        StompJsClient.connect(node.wsUrl, { login: 'b' }),
        StompJsClient.connect(node.wsUrl, { login: 's' }),
      ]);
      const qa = await a.subscribe('/queue/jobs');
      const qb = await b.subscribe('/queue/jobs');
      for (const body of ['j1', 'j2', 'j3', 'j4']) await sender.publish('/queue/jobs', body);
      expect(bodies(await take(qa, 2))).to.deep.equal(['j1', 'j3']);
      expect(bodies(await take(qb, 2))).to.deep.equal(['j2', 'j4']);
      await Promise.all([a.barrier(), b.barrier()]);
      expect([qa.messages.size, qb.messages.size]).to.deep.equal([0, 0]);
    });

    it('keep messages sent while nobody subscribes and give them to the first subscriber, in order', async () => {
      node = await startTestNode();
      const sender = await StompJsClient.connect(node.wsUrl, { login: 's' });
      for (const body of ['k1', 'k2', 'k3']) await sender.publish('/queue/kept', body);
      expect(await node.broker.queues.depth('/queue/kept')).to.equal(3);
      const consumer = await StompJsClient.connect(node.wsUrl, { login: 'c' });
      const inbox = await consumer.subscribe('/queue/kept');
      expect(bodies(await take(inbox, 3))).to.deep.equal(['k1', 'k2', 'k3']);
      await sender.publish('/queue/kept', 'k4');
      expect((await inbox.next()).body).to.equal('k4');
    });

    it('are bounded: a SEND past queueMaxMessages gets ERROR ERR_QUEUE_FULL with its receipt-id', async () => {
      node = await startTestNode({ queueMaxMessages: 3 });
      const sender = await RawStompClient.connect(node.wsUrl);
      for (let i = 1; i <= 3; i++) await sender.request({ command: 'SEND', headers: { destination: '/queue/small' }, body: `q${i}` });
      sender.sendFrame({ command: 'SEND', headers: { destination: '/queue/small', receipt: 'fourth' }, body: 'q4' });
      const error = await sender.expectFrame('ERROR');
      expect(error.headers.code).to.equal('ERR_QUEUE_FULL');
      expect(error.headers['receipt-id']).to.equal('fourth');
      await sender.closed;
      // What was accepted is still there.
      const consumer = await StompJsClient.connect(node.wsUrl, { login: 'c' });
      const inbox = await consumer.subscribe('/queue/small');
      expect(bodies(await take(inbox, 3))).to.deep.equal(['q1', 'q2', 'q3']);
    });
  });

  describe('user destinations', () => {
    beforeEach(async () => {
      node = await startTestNode();
    });

    it('reach every session of the user once, with the destination the session subscribed to', async () => {
      const [a1, a2, bob] = await Promise.all([
        StompJsClient.connect(node.wsUrl, { login: 'alice' }),
        StompJsClient.connect(node.wsUrl, { login: 'alice' }),
        StompJsClient.connect(node.wsUrl, { login: 'bob' }),
      ]);
      const i1 = await a1.subscribe('/user/queue/reply');
      const i2 = await a2.subscribe('/user/queue/reply');
      const bobs = await bob.subscribe('/user/queue/reply');
      await bob.publish('/user/alice/queue/reply', 'hi alice');
      for (const inbox of [i1, i2]) {
        const message = await inbox.next();
        expect(message.body).to.equal('hi alice');
        expect(message.headers.destination).to.equal('/user/queue/reply');
        expect(message.headers.sender).to.equal('bob');
      }
      await Promise.all([a1.barrier(), a2.barrier(), bob.barrier()]);
      expect([i1.messages.size, i2.messages.size, bobs.messages.size]).to.deep.equal([0, 0, 0]);
    });

    it('work for /user/topic/... too', async () => {
      const [alice, bob] = await Promise.all([
        StompJsClient.connect(node.wsUrl, { login: 'alice' }),
        StompJsClient.connect(node.wsUrl, { login: 'bob' }),
      ]);
      const inbox = await alice.subscribe('/user/topic/x');
      await bob.publish('/user/alice/topic/x', 'to your topic');
      const message = await inbox.next();
      expect(message.body).to.equal('to your topic');
      expect(message.headers.destination).to.equal('/user/topic/x');
    });

    it('deliver to the explicit form /user/{self}/queue/x with that destination', async () => {
      const alice = await StompJsClient.connect(node.wsUrl, { login: 'alice' });
      const inbox = await alice.subscribe('/user/alice/queue/x');
      await alice.publish('/user/alice/queue/x', 'self');
      expect((await inbox.next()).headers.destination).to.equal('/user/alice/queue/x');
    });

    it("refuse a subscription to another user's destination with ERROR ERR_FORBIDDEN", async () => {
      const alice = await StompJsClient.connect(node.wsUrl, { login: 'alice' });
      const error = await rejection(alice.subscribe('/user/bob/queue/x'));
      expect(error).to.be.instanceOf(StompErrorFrame);
      expect((error as StompErrorFrame).code).to.equal('ERR_FORBIDDEN');
      await alice.closed;
      expect(await node.broker.presence.nodesFor('alice', '/queue/x')).to.deep.equal([]);
      expect(await node.broker.presence.nodesFor('bob', '/queue/x')).to.deep.equal([]);
    });

    it('accept a SEND to another user', async () => {
      const [alice, bob] = await Promise.all([
        StompJsClient.connect(node.wsUrl, { login: 'alice' }),
        StompJsClient.connect(node.wsUrl, { login: 'bob' }),
      ]);
      const inbox = await bob.subscribe('/user/queue/x');
      await alice.publish('/user/bob/queue/x', 'for bob');
      expect((await inbox.next()).body).to.equal('for bob');
    });

    it('keep messages for an offline user and hand them over on subscribe, in order, before newer ones', async () => {
      const bob = await StompJsClient.connect(node.wsUrl, { login: 'bob' });
      for (const body of ['o1', 'o2', 'o3']) await bob.publish('/user/carol/queue/inbox', body);
      expect(await node.broker.inbox.depth('carol', '/queue/inbox')).to.equal(3);
      const carol = await StompJsClient.connect(node.wsUrl, { login: 'carol' });
      const inbox = await carol.subscribe('/user/queue/inbox');
      await bob.publish('/user/carol/queue/inbox', 'o4');
      const received = await take(inbox, 4);
      expect(bodies(received)).to.deep.equal(['o1', 'o2', 'o3', 'o4']);
      expect(received.every((m) => m.headers.destination === '/user/queue/inbox')).to.equal(true);
      await carol.barrier();
      expect(inbox.messages.size).to.equal(0);
      expect(await node.broker.inbox.depth('carol', '/queue/inbox')).to.equal(0);
    });

    it('keep messages for a user who is online but not subscribed to that destination', async () => {
      const [carol, bob] = await Promise.all([
        StompJsClient.connect(node.wsUrl, { login: 'carol' }),
        StompJsClient.connect(node.wsUrl, { login: 'bob' }),
      ]);
      await carol.subscribe('/user/queue/elsewhere');
      await bob.publish('/user/carol/queue/later', 'wait for me');
      const inbox = await carol.subscribe('/user/queue/later');
      expect((await inbox.next()).body).to.equal('wait for me');
    });
  });

  describe('MESSAGE headers', () => {
    beforeEach(async () => {
      node = await startTestNode();
    });

    it('pass custom headers and content-type through, escaped per version (a newline in a value is refused: header-policy.ts)', async () => {
      const [alice, bob] = await Promise.all([
        StompJsClient.connect(node.wsUrl, { login: 'alice' }),
        StompJsClient.connect(node.wsUrl, { login: 'bob' }),
      ]);
      const inbox = await alice.subscribe('/topic/h');
      await bob.publish('/topic/h', '{"a":1}', { 'content-type': 'application/json', 'x-trace': 'a:b c\\d', priority: '9' });
      const message = await inbox.next();
      expect(message.headers['content-type']).to.equal('application/json');
      expect(message.headers['x-trace']).to.equal('a:b c\\d');
      expect(message.headers.priority).to.equal('9');
      expect(message.headers['content-length']).to.equal(String(Buffer.byteLength('{"a":1}')));
      expect(message.body).to.equal('{"a":1}');
    });

    it('pass headers named like Object.prototype keys (__proto__, constructor, toString) through as plain headers', async () => {
      const client = await RawStompClient.connect(node.wsUrl);
      await client.request({ command: 'SUBSCRIBE', headers: { id: 'p', destination: '/topic/p' } });
      // Twice: the second SEND meets each name's remembered verdict (header-policy.ts).
      for (const round of ['1', '2']) {
        await client.request({
          command: 'SEND',
          headers: createHeaders({ destination: '/topic/p', ['__proto__']: `x${round}`, constructor: `c${round}`, toString: `t${round}` }),
          body: round,
        });
        const message = await client.expectFrame('MESSAGE');
        expect(Object.getOwnPropertyDescriptor(message.headers, '__proto__')?.value).to.equal(`x${round}`);
        expect(message.headers['constructor']).to.equal(`c${round}`);
        expect(message.headers['toString']).to.equal(`t${round}`);
        expect(message.body.toString()).to.equal(round);
      }
    });

    it("replace a client's sender header with the authenticated user", async () => {
      const [alice, bob] = await Promise.all([
        StompJsClient.connect(node.wsUrl, { login: 'alice' }),
        StompJsClient.connect(node.wsUrl, { login: 'bob' }),
      ]);
      const topic = await alice.subscribe('/topic/s');
      const mine = await alice.subscribe('/user/queue/s');
      await bob.publish('/topic/s', 'forged?', { sender: 'admin' });
      await bob.publish('/user/alice/queue/s', 'forged?', { sender: 'admin' });
      expect((await topic.next()).headers.sender).to.equal('bob');
      expect((await mine.next()).headers.sender).to.equal('bob');
    });

    it('drop client values of broker-owned headers (message-id, subscription, ack)', async () => {
      const client = await RawStompClient.connect(node.wsUrl);
      await client.request({ command: 'SUBSCRIBE', headers: { id: 'mine', destination: '/topic/o' } });
      await client.request({
        command: 'SEND',
        headers: { destination: '/topic/o', 'message-id': 'forged', subscription: 'other', ack: 'x' },
        body: 'b',
      });
      const message = await client.expectFrame('MESSAGE');
      expect(message.headers['message-id']).to.not.equal('forged');
      expect(message.headers.subscription).to.equal('mine');
      expect(message.headers).to.not.have.property('ack');
    });

    it('carry a unique message-id on every message', async () => {
      const client = await StompJsClient.connect(node.wsUrl);
      const topic = await client.subscribe('/topic/ids');
      const queue = await client.subscribe('/queue/ids');
      for (let i = 0; i < 10; i++) {
        await client.publish('/topic/ids', `t${i}`);
        await client.publish('/queue/ids', `q${i}`);
      }
      const ids = [...(await take(topic, 10)), ...(await take(queue, 10))].map((m) => m.headers['message-id']);
      expect(ids.every((id) => typeof id === 'string' && id.length > 0)).to.equal(true);
      expect(new Set(ids).size).to.equal(20);
    });
  });

  describe('errors', () => {
    beforeEach(async () => {
      node = await startTestNode();
    });

    it('SEND without destination → ERROR ERR_MISSING_HEADER with receipt-id, then close', async () => {
      const client = await RawStompClient.connect(node.wsUrl);
      client.sendFrame({ command: 'SEND', headers: { receipt: 's1' }, body: 'lost?' });
      const error = await client.expectFrame('ERROR');
      expect(error.headers.code).to.equal('ERR_MISSING_HEADER');
      expect(error.headers.message).to.contain('destination');
      expect(error.headers['receipt-id']).to.equal('s1');
      expect((await client.closed).code).to.equal(1000);
    });

    for (const command of ['SEND', 'SUBSCRIBE']) {
      it(`${command} to an unknown destination prefix → ERROR ERR_UNKNOWN_DESTINATION`, async () => {
        const client = await RawStompClient.connect(node.wsUrl);
        client.sendFrame({ command, headers: { destination: '/exchange/amq.direct/x', id: 's' } });
        expect((await client.expectFrame('ERROR')).headers.code).to.equal('ERR_UNKNOWN_DESTINATION');
        await client.closed;
      });
    }

    it('SUBSCRIBE without id → ERROR ERR_MISSING_HEADER; a reused id → ERR_DUPLICATE_SUBSCRIPTION', async () => {
      const noId = await RawStompClient.connect(node.wsUrl);
      noId.sendFrame({ command: 'SUBSCRIBE', headers: { destination: '/topic/a' } });
      expect((await noId.expectFrame('ERROR')).headers.code).to.equal('ERR_MISSING_HEADER');
      const dup = await RawStompClient.connect(node.wsUrl);
      await dup.request({ command: 'SUBSCRIBE', headers: { id: '1', destination: '/topic/a' } });
      dup.sendFrame({ command: 'SUBSCRIBE', headers: { id: '1', destination: '/topic/b' } });
      expect((await dup.expectFrame('ERROR')).headers.code).to.equal('ERR_DUPLICATE_SUBSCRIPTION');
    });

    it('UNSUBSCRIBE of an unknown id → ERROR ERR_UNKNOWN_SUBSCRIPTION', async () => {
      const client = await RawStompClient.connect(node.wsUrl);
      client.sendFrame({ command: 'UNSUBSCRIBE', headers: { id: 'nope' } });
      expect((await client.expectFrame('ERROR')).headers.code).to.equal('ERR_UNKNOWN_SUBSCRIPTION');
    });

    it('an ERROR on one session leaves the others working', async () => {
      const [good, bad] = await Promise.all([StompJsClient.connect(node.wsUrl, { login: 'good' }), RawStompClient.connect(node.wsUrl)]);
      const inbox = await good.subscribe('/topic/still');
      bad.sendFrame({ command: 'SEND', headers: {} });
      await bad.closed;
      await good.publish('/topic/still', 'alive');
      expect((await inbox.next()).body).to.equal('alive');
    });
  });

  describe('RECEIPT', () => {
    beforeEach(async () => {
      node = await startTestNode();
    });

    it('answers every client frame that asks, with the matching receipt-id, in order', async () => {
      const client = await RawStompClient.connect(node.wsUrl, { login: 'alice' });
      const frames: Array<[string, Record<string, string>]> = [
        ['SUBSCRIBE', { id: 's1', destination: '/queue/r', ack: 'client-individual' }],
        ['SEND', { destination: '/topic/r' }],
        ['BEGIN', { transaction: 't1' }],
        ['SEND', { destination: '/topic/r', transaction: 't1' }],
        ['COMMIT', { transaction: 't1' }],
        ['BEGIN', { transaction: 't2' }],
        ['ABORT', { transaction: 't2' }],
      ];
      frames.forEach(([command, headers], i) => client.sendFrame({ command, headers: { ...headers, receipt: `r${i}` } }));
      for (let i = 0; i < frames.length; i++) {
        const receipt = await client.expectFrame('RECEIPT');
        expect(receipt.headers['receipt-id']).to.equal(`r${i}`);
      }
      // ACK and NACK of real deliveries.
      await client.request({ command: 'SEND', headers: { destination: '/queue/r' }, body: 'one' });
      await client.request({ command: 'SEND', headers: { destination: '/queue/r' }, body: 'two' });
      const one = await client.nextFrame((f) => f.command === 'MESSAGE');
      const two = await client.nextFrame((f) => f.command === 'MESSAGE');
      client.sendFrame({ command: 'ACK', headers: { id: one.headers.ack!, receipt: 'ack-1' } });
      expect((await client.expectFrame('RECEIPT')).headers['receipt-id']).to.equal('ack-1');
      client.sendFrame({ command: 'UNSUBSCRIBE', headers: { id: 's1', receipt: 'unsub' } });
      expect((await client.expectFrame('RECEIPT')).headers['receipt-id']).to.equal('unsub');
      // `two` went back to the queue when the subscription ended; resubscribe and NACK it.
      expect(two.headers['message-id']).to.be.a('string');
      client.sendFrame({ command: 'SUBSCRIBE', headers: { id: 's2', destination: '/queue/r', ack: 'client', receipt: 'sub2' } });
      const again = await client.nextFrame((f) => f.command === 'MESSAGE');
      expect(again.headers['message-id']).to.equal(two.headers['message-id']);
      expect((await client.nextFrame((f) => f.command === 'RECEIPT')).headers['receipt-id']).to.equal('sub2');
      client.sendFrame({ command: 'NACK', headers: { id: again.headers.ack!, receipt: 'nack-1' } });
      await client.nextFrame((f) => f.command === 'RECEIPT' && f.headers['receipt-id'] === 'nack-1');
      client.sendFrame({ command: 'DISCONNECT', headers: { receipt: 'bye' } });
      expect((await client.nextFrame((f) => f.command === 'RECEIPT')).headers['receipt-id']).to.equal('bye');
      expect((await client.closed).code).to.equal(1000);
    });

    it('on SUBSCRIBE means the subscription is in place: a message sent right after reaches it', async () => {
      const [sub, pub] = await Promise.all([StompJsClient.connect(node.wsUrl), StompJsClient.connect(node.wsUrl, { login: 'bob' })]);
      for (let i = 0; i < 5; i++) {
        const inbox = await sub.subscribe(`/topic/fresh-${i}`);
        await pub.publish(`/topic/fresh-${i}`, `n${i}`);
        expect((await inbox.next()).body).to.equal(`n${i}`);
      }
    });
  });

  describe('UNSUBSCRIBE', () => {
    it('stops delivery', async () => {
      node = await startTestNode();
      const [alice, bob] = await Promise.all([
        StompJsClient.connect(node.wsUrl, { login: 'alice' }),
        StompJsClient.connect(node.wsUrl, { login: 'bob' }),
      ]);
      const topic = await alice.subscribe('/topic/u');
      const user = await alice.subscribe('/user/queue/u');
      await bob.publish('/topic/u', 'before');
      await bob.publish('/user/alice/queue/u', 'before');
      expect((await topic.next()).body).to.equal('before');
      expect((await user.next()).body).to.equal('before');
      await topic.unsubscribe();
      await user.unsubscribe();
      await bob.publish('/topic/u', 'after');
      await bob.publish('/user/alice/queue/u', 'after');
      await alice.barrier();
      expect([topic.messages.size, user.messages.size]).to.deep.equal([0, 0]);
      // The user message was kept for later rather than lost.
      expect((await node.broker.inbox.peek('alice', '/queue/u')).map((m) => m.body.toString())).to.deep.equal(['after']);
    });
  });
});

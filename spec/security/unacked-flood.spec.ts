/*
 * Attack: subscribe with ack: client and never ACK, so that the node keeps
 * every delivered message for the session (issue 10: no bound outside
 * queues). At MAX_UNACKED the session is cut with ERR_TOO_MANY_UNACKED for
 * topics and user destinations (what it held of a user destination goes
 * back to the inbox: nothing accepted is lost); a queue consumer's
 * prefetch-count is capped at MAX_UNACKED, so the queue waits for ACKs.
 */
import { expect } from 'chai';
import { startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { RawStompClient, StompJsClient } from '../helpers/stomp-client.js';
import { GoodPair, releasedAll } from './support.js';

const MAX_UNACKED = 5;

describe('security: unacknowledged flood', () => {
  let node: TestNode;
  let pair: GoodPair;
  let producer: StompJsClient;

  beforeEach(async () => {
    node = await startTestNode({ maxUnacked: MAX_UNACKED });
    pair = await GoodPair.open(node.wsUrl);
    producer = await StompJsClient.connect(node.wsUrl, { login: 'producer' });
  });
  afterEach(stopTestNodes);

  async function hoarder(destination: string): Promise<RawStompClient> {
    const client = await RawStompClient.connect(node.wsUrl, { login: 'mallory' });
    await client.request({ command: 'SUBSCRIBE', headers: { destination, id: 'h', ack: 'client-individual' } });
    return client;
  }

  it('topic: cuts the session that holds MAX_UNACKED messages', async () => {
    const mallory = await hoarder('/topic/news');
    for (let i = 0; i < MAX_UNACKED + 1; i++) await producer.publish('/topic/news', `n${i}`);
    const frames = await Promise.all(Array.from({ length: MAX_UNACKED + 1 }, () => mallory.nextFrame()));
    expect(frames.slice(0, MAX_UNACKED).map((f) => f.command)).to.deep.equal(Array(MAX_UNACKED).fill('MESSAGE'));
    expect(frames[MAX_UNACKED]!.headers.code).to.equal('ERR_TOO_MANY_UNACKED');
    await pair.exchange(3);
    expect(await pair.check()).to.deep.equal({ delivered: 3, lost: 0 });
  });

  it('user destination: cuts the session, and every accepted message waits in the inbox for the next one', async () => {
    const mallory = await hoarder('/user/queue/in');
    const sent = 3 * MAX_UNACKED;
    for (let i = 0; i < sent; i++) await producer.publish('/user/mallory/queue/in', `m${i}`);
    const error = await mallory.nextFrame((f) => f.command === 'ERROR');
    expect(error.headers.code).to.equal('ERR_TOO_MANY_UNACKED');
    await mallory.closed;
    // The broker returns what the session held once it has released it (no event tells a client).
    await releasedAll(node, 'mallory');
    expect((await node.broker.inbox.peek('mallory', '/queue/in')).length).to.equal(sent);
    await pair.exchange(3);
    // The same user, acking as it goes: all of them, in order.
    const again = await StompJsClient.connect(node.wsUrl, { login: 'mallory' });
    const inbox = await again.subscribe('/user/queue/in', { ack: 'client-individual' });
    for (let i = 0; i < sent; i++) {
      const message = await inbox.next();
      expect(message.body, `message ${i}`).to.equal(`m${i}`);
      message.ack();
    }
    expect(await pair.check()).to.deep.equal({ delivered: 3, lost: 0 });
  });

  it('queue: prefetch-count is capped at MAX_UNACKED; the rest waits for ACKs', async () => {
    const consumer = await RawStompClient.connect(node.wsUrl, { login: 'mallory' });
    await consumer.request({ command: 'SUBSCRIBE', headers: { destination: '/queue/jobs', id: 'q', ack: 'client-individual', 'prefetch-count': '100000' } });
    for (let i = 0; i < 2 * MAX_UNACKED; i++) await producer.publish('/queue/jobs', `j${i}`);
    const held = await consumer.roundTrip();
    expect(held.map((f) => f.body.toString())).to.deep.equal(Array.from({ length: MAX_UNACKED }, (_, i) => `j${i}`));
    consumer.sendFrame({ command: 'ACK', headers: { id: held[0]!.headers.ack! } });
    expect((await consumer.nextFrame()).body.toString()).to.equal(`j${MAX_UNACKED}`);
    await pair.exchange(3);
    expect(await pair.check()).to.deep.equal({ delivered: 3, lost: 0 });
  });
});

/*
 * BEGIN / COMMIT / ABORT (STOMP 1.2 "BEGIN", "COMMIT", "ABORT"): sends and
 * acks in a transaction take effect at COMMIT only. "Nothing yet" is shown
 * with a RECEIPT round trip on the receiving session.
 */
import { expect } from 'chai';
import { startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { RawStompClient, StompJsClient } from '../helpers/stomp-client.js';

let node: TestNode;

function connect(login: string): Promise<RawStompClient> {
  return RawStompClient.connect(node.wsUrl, { login });
}

describe('transactions (real node, real WebSockets)', () => {
  beforeEach(async () => {
    node = await startTestNode();
  });
  afterEach(stopTestNodes);

  for (const destination of ['/topic/tx', '/queue/tx', '/user/rita/queue/tx']) {
    it(`SENDs to ${destination.split('/')[1]} destinations are delivered at COMMIT only, in order`, async () => {
      const receiver = await connect('rita');
      const subscribed = destination.startsWith('/user/') ? '/user/queue/tx' : destination;
      await receiver.request({ command: 'SUBSCRIBE', headers: { id: 's', destination: subscribed } });
      const sender = await connect('sam');
      await sender.request({ command: 'BEGIN', headers: { transaction: 't1' } });
      await sender.request({ command: 'SEND', headers: { destination, transaction: 't1' }, body: 'a' });
      await sender.request({ command: 'SEND', headers: { destination, transaction: 't1' }, body: 'b' });
      // Accepted into the transaction (RECEIPT), not delivered.
      expect(await receiver.roundTrip()).to.deep.equal([]);
      await sender.request({ command: 'COMMIT', headers: { transaction: 't1' } });
      const first = await receiver.expectFrame('MESSAGE');
      const second = await receiver.expectFrame('MESSAGE');
      expect([first.body.toString(), second.body.toString()]).to.deep.equal(['a', 'b']);
      expect(first.headers).to.not.have.property('transaction');
      expect(first.headers.sender).to.equal('sam');
    });
  }

  it('ABORT drops the transaction\'s SENDs', async () => {
    const receiver = await connect('rita');
    await receiver.request({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/topic/abort' } });
    const sender = await connect('sam');
    await sender.request({ command: 'BEGIN', headers: { transaction: 't' } });
    await sender.request({ command: 'SEND', headers: { destination: '/topic/abort', transaction: 't' }, body: 'never' });
    await sender.request({ command: 'ABORT', headers: { transaction: 't' } });
    await sender.request({ command: 'SEND', headers: { destination: '/topic/abort' }, body: 'plain' });
    const only = await receiver.expectFrame('MESSAGE');
    expect(only.body.toString()).to.equal('plain');
    expect(await receiver.roundTrip()).to.deep.equal([]);
    // The transaction is gone: committing it now is an error.
    sender.sendFrame({ command: 'COMMIT', headers: { transaction: 't' } });
    expect((await sender.expectFrame('ERROR')).headers.code).to.equal('ERR_UNKNOWN_TRANSACTION');
  });

  it('SENDs outside the transaction are not held by it', async () => {
    const receiver = await connect('rita');
    await receiver.request({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/topic/mixed' } });
    const sender = await connect('sam');
    await sender.request({ command: 'BEGIN', headers: { transaction: 't' } });
    await sender.request({ command: 'SEND', headers: { destination: '/topic/mixed', transaction: 't' }, body: 'held' });
    await sender.request({ command: 'SEND', headers: { destination: '/topic/mixed' }, body: 'now' });
    expect((await receiver.expectFrame('MESSAGE')).body.toString()).to.equal('now');
    await sender.request({ command: 'COMMIT', headers: { transaction: 't' } });
    expect((await receiver.expectFrame('MESSAGE')).body.toString()).to.equal('held');
  });

  it('an ACK inside a transaction applies at COMMIT', async () => {
    const consumer = await connect('c');
    // prefetch 1: the next message is dispatched only once the first is acknowledged.
    await consumer.request({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/queue/txack', ack: 'client-individual', 'prefetch-count': '1' } });
    const producer = await connect('p');
    await producer.request({ command: 'SEND', headers: { destination: '/queue/txack' }, body: 'm1' });
    await producer.request({ command: 'SEND', headers: { destination: '/queue/txack' }, body: 'm2' });
    const m1 = await consumer.expectFrame('MESSAGE');
    expect(m1.body.toString()).to.equal('m1');
    expect(await consumer.roundTrip()).to.deep.equal([]);
    await consumer.request({ command: 'BEGIN', headers: { transaction: 'tx' } });
    await consumer.request({ command: 'ACK', headers: { id: m1.headers.ack!, transaction: 'tx' } });
    // Not applied yet: m1 still counts against the prefetch, so m2 does not come.
    expect(await consumer.roundTrip()).to.deep.equal([]);
    await consumer.request({ command: 'COMMIT', headers: { transaction: 'tx' } });
    const m2 = await consumer.nextFrame((f) => f.command === 'MESSAGE');
    expect(m2.body.toString()).to.equal('m2');
  });

  it('an ACK in an aborted transaction is dropped: the message is still unacknowledged', async () => {
    const a = await connect('a');
    await a.request({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/queue/txabort', ack: 'client-individual' } });
    await a.request({ command: 'SEND', headers: { destination: '/queue/txabort' }, body: 'm1' });
    const m1 = await a.expectFrame('MESSAGE');
    await a.request({ command: 'BEGIN', headers: { transaction: 'tx' } });
    await a.request({ command: 'ACK', headers: { id: m1.headers.ack!, transaction: 'tx' } });
    await a.request({ command: 'ABORT', headers: { transaction: 'tx' } });
    await a.request({ command: 'DISCONNECT' });
    await a.closed;
    const b = await connect('b');
    await b.request({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/queue/txabort' } });
    expect((await b.nextFrame((f) => f.command === 'MESSAGE')).body.toString()).to.equal('m1');
  });

  it('a NACK inside a transaction applies at COMMIT', async () => {
    const a = await connect('a');
    await a.request({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/queue/txnack', ack: 'client-individual' } });
    const b = await connect('b');
    await b.request({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/queue/txnack', ack: 'client-individual' } });
    await b.request({ command: 'SEND', headers: { destination: '/queue/txnack' }, body: 'n1' });
    const n1 = await a.expectFrame('MESSAGE');
    await a.request({ command: 'BEGIN', headers: { transaction: 'tx' } });
    await a.request({ command: 'NACK', headers: { id: n1.headers.ack!, transaction: 'tx' } });
    expect(await b.roundTrip()).to.deep.equal([]);
    await a.request({ command: 'COMMIT', headers: { transaction: 'tx' } });
    expect((await b.expectFrame('MESSAGE')).body.toString()).to.equal('n1');
  });

  it('a SEND naming an unknown transaction → ERROR ERR_UNKNOWN_TRANSACTION', async () => {
    const c = await connect('c');
    c.sendFrame({ command: 'SEND', headers: { destination: '/topic/x', transaction: 'nope', receipt: 'r' } });
    const error = await c.expectFrame('ERROR');
    expect(error.headers.code).to.equal('ERR_UNKNOWN_TRANSACTION');
    expect(error.headers['receipt-id']).to.equal('r');
    await c.closed;
  });

  it('COMMIT and ABORT of an unknown transaction → ERROR', async () => {
    for (const command of ['COMMIT', 'ABORT']) {
      const c = await connect('c');
      c.sendFrame({ command, headers: { transaction: 'nope' } });
      expect((await c.expectFrame('ERROR')).headers.code).to.equal('ERR_UNKNOWN_TRANSACTION');
    }
  });

  it('a duplicate BEGIN → ERROR ERR_DUPLICATE_TRANSACTION', async () => {
    const c = await connect('c');
    await c.request({ command: 'BEGIN', headers: { transaction: 't' } });
    c.sendFrame({ command: 'BEGIN', headers: { transaction: 't' } });
    expect((await c.expectFrame('ERROR')).headers.code).to.equal('ERR_DUPLICATE_TRANSACTION');
  });

  it('BEGIN without a transaction header → ERROR ERR_MISSING_HEADER', async () => {
    const c = await connect('c');
    c.sendFrame({ command: 'BEGIN', headers: {} });
    expect((await c.expectFrame('ERROR')).headers.code).to.equal('ERR_MISSING_HEADER');
  });

  it('open transactions end with their session, uncommitted', async () => {
    const receiver = await connect('rita');
    await receiver.request({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/topic/gone' } });
    const sender = await connect('sam');
    await sender.request({ command: 'BEGIN', headers: { transaction: 't' } });
    await sender.request({ command: 'SEND', headers: { destination: '/topic/gone', transaction: 't' }, body: 'never' });
    await sender.request({ command: 'DISCONNECT' });
    await sender.closed;
    expect(await receiver.roundTrip()).to.deep.equal([]);
  });

  it('works through @stomp/stompjs begin/commit', async () => {
    const [rita, sam] = await Promise.all([StompJsClient.connect(node.wsUrl, { login: 'rita' }), StompJsClient.connect(node.wsUrl, { login: 'sam' })]);
    const inbox = await rita.subscribe('/topic/js-tx');
    const tx = sam.client.begin();
    await sam.publish('/topic/js-tx', 'in tx', { transaction: tx.id });
    await rita.barrier();
    expect(inbox.messages.size).to.equal(0);
    tx.commit();
    expect((await inbox.next()).body).to.equal('in tx');
  });
});

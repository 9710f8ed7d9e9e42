/*
 * A SEND to a user destination whose routing call fails (the cluster store
 * unreachable, whatever the error the store's client gave): the sender gets
 * ERROR ERR_CLUSTER_UNAVAILABLE with its receipt-id and no RECEIPT — unless a
 * session of the user on this node took the message, which is then delivered
 * and receipted. Never a RECEIPT for a message nobody has.
 */
import { expect } from 'chai';
import type { MemoryRelay } from '../../lib/cluster/memory-relay.js';
import { BrokerError } from '../../lib/core/errors.js';
import { createMessageId } from '../../lib/core/message.js';
import { createMemoryBroker, startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { RawStompClient, StompJsClient } from '../helpers/stomp-client.js';

/** The node's routing call fails as a store client's would: a plain Error, not a BrokerError. */
function failRouting(node: Pick<TestNode, 'broker'>): void {
  node.broker.router.route = () => Promise.reject(new Error('Connection is closed.'));
}

describe('broker: a user SEND whose routing call fails', () => {
  afterEach(stopTestNodes);

  it('gets ERROR ERR_CLUSTER_UNAVAILABLE with its receipt-id, no RECEIPT, when no session here takes it', async () => {
    const node = await startTestNode({});
    const alice = await RawStompClient.connect(node.wsUrl, { login: 'alice' });
    await alice.request({ command: 'SEND', headers: { destination: '/user/bob/queue/r' }, body: Buffer.from('before') });
    failRouting(node);
    alice.sendFrame({ command: 'SEND', headers: { destination: '/user/bob/queue/r', receipt: 'r-1' }, body: Buffer.from('lost?') });
    const answer = await alice.nextFrame();
    expect(answer.command).to.equal('ERROR');
    expect(answer.headers.code).to.equal('ERR_CLUSTER_UNAVAILABLE');
    expect(answer.headers['receipt-id']).to.equal('r-1');
    expect(answer.headers.message).to.include('Connection is closed.');
    await alice.closed;
  });

  it("is delivered, and receipted, when the user's session on this node takes it", async () => {
    const node = await startTestNode({});
    const bob = await StompJsClient.connect(node.wsUrl, { login: 'bob' });
    const inbox = await bob.subscribe('/user/queue/r');
    const alice = await RawStompClient.connect(node.wsUrl, { login: 'alice' });
    failRouting(node);
    await alice.request({ command: 'SEND', headers: { destination: '/user/bob/queue/r' }, body: Buffer.from('here') });
    expect((await inbox.next()).body).to.equal('here');
  });
});

describe('broker: a relayed message whose re-route fails', () => {
  afterEach(stopTestNodes);

  it("hands the relay the error as it is (not made ERR_CLUSTER_UNAVAILABLE, which the relay would wait out forever)", async () => {
    const broker = await createMemoryBroker();
    const deliver = (broker.relay as MemoryRelay).hub.relayHandlers.get(broker.nodeId)!;
    failRouting({ broker });
    // bob is subscribed nowhere here: the node routes the message again, and that call fails.
    const message = { id: createMessageId('elsewhere'), destination: '/user/bob/queue/r', headers: {}, body: Buffer.from('x'), timestamp: Date.now() };
    let failure: unknown;
    await Promise.resolve(deliver({ kind: 'user', user: 'bob', destination: '/queue/r', message })).catch((error: unknown) => (failure = error));
    expect(failure).to.be.instanceOf(Error).and.not.be.instanceOf(BrokerError);
    expect((failure as Error).message).to.equal('Connection is closed.');
  });
});

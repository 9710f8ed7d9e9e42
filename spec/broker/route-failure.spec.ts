/*
 * A SEND to a user destination whose routing call fails (the cluster store
 * unreachable, whatever the error the store's client gave): the sender gets
 * ERROR ERR_CLUSTER_UNAVAILABLE with its receipt-id and no RECEIPT — unless a
 * session of the user on this node took the message, which is then delivered
 * and receipted. Never a RECEIPT for a message nobody has.
 */
import { expect } from 'chai';
import { startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { RawStompClient, StompJsClient } from '../helpers/stomp-client.js';

/** The node's routing call fails as a store client's would: a plain Error, not a BrokerError. */
function failRouting(node: TestNode): void {
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

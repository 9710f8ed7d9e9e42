/*
 * De-duplication: a message relayed twice to a node (a retry, a recovery of
 * a dead node's stream) reaches each session once, by its message-id.
 */
import { expect } from 'chai';
import type { MemoryRelay } from '../../lib/cluster/memory-relay.js';
import { createMessageId } from '../../lib/core/message.js';
import { BrokerError } from '../../lib/core/errors.js';
import { createMemoryBroker, startTestNode, stopTestNodes } from '../helpers/node.js';
import { StompJsClient } from '../helpers/stomp-client.js';

describe('broker: de-duplication of relayed messages', () => {
  afterEach(stopTestNodes);

  it('delivers an envelope relayed twice to the node once', async () => {
    const node = await startTestNode({});
    const bob = await StompJsClient.connect(node.wsUrl, { login: 'bob' });
    const inbox = await bob.subscribe('/user/queue/dup');
    const relay = node.broker.relay as MemoryRelay;
    const deliver = relay.hub.relayHandlers.get(node.broker.nodeId)!;
    const message = { id: createMessageId('elsewhere'), destination: '/user/bob/queue/dup', headers: {}, body: Buffer.from('once'), sender: 'alice', timestamp: Date.now() };
    await deliver({ kind: 'user', user: 'bob', destination: '/queue/dup', message });
    await deliver({ kind: 'user', user: 'bob', destination: '/queue/dup', message });
    const second = { ...message, id: createMessageId('elsewhere') };
    await deliver({ kind: 'user', user: 'bob', destination: '/queue/dup', message: second });
    expect((await inbox.next()).headers['message-id']).to.equal(message.id);
    expect((await inbox.next()).headers['message-id']).to.equal(second.id);
    // A RECEIPT round trip: nothing else was on its way.
    await bob.publish('/queue/barrier', 'x');
    expect(inbox.messages.size).to.equal(0);
  });
});

describe('broker: an envelope whose handling failed', () => {
  afterEach(stopTestNodes);

  it('is handled again when the relay hands it over again, not dropped as a duplicate', async () => {
    const broker = await createMemoryBroker();
    const relay = broker.relay as MemoryRelay;
    const deliver = relay.hub.relayHandlers.get(broker.nodeId)!;
    // bob is subscribed nowhere here: the node re-routes, and the store is failing for a moment.
    const route = broker.router.route.bind(broker.router);
    const append = broker.inbox.append.bind(broker.inbox);
    let outage = true;
    broker.router.route = async (r) => {
      if (outage) throw new BrokerError('ERR_CLUSTER_UNAVAILABLE', 'store down');
      return route(r);
    };
    broker.inbox.append = async (...args) => {
      if (outage) throw new BrokerError('ERR_CLUSTER_UNAVAILABLE', 'store down');
      return append(...args);
    };
    const message = { id: createMessageId('elsewhere'), destination: '/user/bob/queue/r', headers: {}, body: Buffer.from('kept'), timestamp: Date.now() };
    const envelope = { kind: 'user' as const, user: 'bob', destination: '/queue/r', message };
    let failure: unknown;
    await Promise.resolve(deliver(envelope)).catch((error: unknown) => (failure = error));
    expect(failure).to.be.instanceOf(BrokerError);
    outage = false;
    await deliver(envelope);
    expect((await broker.inbox.peek('bob', '/queue/r')).map((m) => m.body.toString())).to.deep.equal(['kept']);
  });
});

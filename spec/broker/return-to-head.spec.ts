/*
 * NACKed and unacknowledged inbox messages go back to the head of the inbox
 * in one step (InboxStore.returnToHead: out of the subscription's claim and
 * onto the head together), in memory and in a cluster: each exactly once —
 * a NACKed message is not released a second time with the claim when the
 * session ends, and an ACKed one is not released at all, however soon after
 * its ACK the connection ends.
 */
import { expect } from 'chai';
import { nodeModes } from '../helpers/node-modes.js';
import { startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { useRedisServer } from '../helpers/redis-server.js';
import { RawStompClient } from '../helpers/stomp-client.js';
import { eventually } from '../cluster/support.js';

describe('returning inbox messages to the head (real node)', () => {
  const redis = useRedisServer();
  afterEach(stopTestNodes);

  for (const [mode, cluster] of nodeModes(redis, 'return')) {
    it(`${mode}: a NACKed message and the unacked rest come back once each`, async () => {
      const node: TestNode = await startTestNode(cluster());
      const peek = async () => (await node.broker.inbox.peek('alice', '/queue/r')).map((m) => m.body.toString());
      const bob = await RawStompClient.connect(node.wsUrl, { login: 'bob' });
      for (const body of ['m1', 'm2', 'm3']) await bob.request({ command: 'SEND', headers: { destination: '/user/alice/queue/r' }, body });

      const alice = await RawStompClient.connect(node.wsUrl, { login: 'alice' });
      await alice.request({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/user/queue/r', ack: 'client-individual' } });
      const got = [];
      for (let i = 0; i < 3; i++) got.push(await alice.nextFrame((f) => f.command === 'MESSAGE'));
      expect(got.map((f) => f.body.toString())).to.deep.equal(['m1', 'm2', 'm3']);

      await alice.request({ command: 'NACK', headers: { id: got[1]!.headers.ack! } });
      expect(await peek()).to.deep.equal(['m2']);

      await alice.request({ command: 'DISCONNECT' });
      await alice.closed;
      // The session's release (unacked messages back, then the claim) runs after the close and ends
      // with the user leaving this node's user table; no event a client sees: poll, bounded.
      await eventually(async () => expect(node.broker.userSessions.has('alice')).to.equal(false), 5000, 20);
      // m1 and m3 (older claims) ahead of m2, none twice.
      expect(await peek()).to.deep.equal(['m1', 'm3', 'm2']);
    });

    it(`${mode}: a cumulative ACK the connection drops right after: none of what it acknowledged comes back`, async () => {
      const node: TestNode = await startTestNode(cluster());
      const bob = await RawStompClient.connect(node.wsUrl, { login: 'bob' });
      const alice = await RawStompClient.connect(node.wsUrl, { login: 'alice' });
      // Delivered live under the subscription's claim (ack: client keeps them until ACKed).
      await alice.request({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/user/queue/c', ack: 'client' } });
      const count = 20;
      for (let i = 0; i < count; i++) await bob.request({ command: 'SEND', headers: { destination: '/user/alice/queue/c' }, body: `c${i}` });
      const got = [];
      for (let i = 0; i < count; i++) got.push(await alice.nextFrame((f) => f.command === 'MESSAGE'));
      expect(got.map((f) => f.body.toString())).to.deep.equal(Array.from({ length: count }, (_, i) => `c${i}`));

      // One ACK settles all twenty; the connection ends while the store is still being told.
      alice.sendFrame({ command: 'ACK', headers: { id: got[count - 1]!.headers.ack! } });
      alice.close();
      await alice.closed;
      await eventually(async () => expect(node.broker.userSessions.has('alice')).to.equal(false), 5000, 20);
      expect(await node.broker.inbox.depth('alice', '/queue/c')).to.equal(0);

      const again = await RawStompClient.connect(node.wsUrl, { login: 'alice' });
      await again.request({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/user/queue/c', ack: 'client' } });
      expect(await again.roundTrip()).to.deep.equal([]);
    });
  }
});

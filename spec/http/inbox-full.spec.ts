/*
 * A full inbox on a real node, in memory and in a cluster (a real
 * redis-server): with INBOX_OVERFLOW=refuse (the default) a SEND gets ERROR
 * ERR_INBOX_FULL with its receipt-id and an HTTP send 507, and nothing is
 * kept — so a RECEIPT always means "kept"; with drop-oldest the oldest go,
 * and /metrics counts every drop in both modes.
 */
import { expect } from 'chai';
import { useRedisServer } from '../helpers/redis-server.js';
import { RawStompClient } from '../helpers/stomp-client.js';
import { nodeModes } from '../helpers/node-modes.js';
import { startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { call, errorCode, login } from './helpers.js';

describe('a full inbox (real node)', () => {
  const redis = useRedisServer();
  afterEach(stopTestNodes);

  for (const [mode, cluster] of nodeModes(redis, 'full')) {
    describe(mode, () => {
      async function peek(node: TestNode, user: string): Promise<string[]> {
        const bob = await login(node, user);
        const answer = await call(node, 'GET', '/api/inbox?destination=/queue/reply', { token: bob.token });
        return answer.json.messages.map((m: { body: string }) => m.body);
      }

      it('refuse: a SEND past the cap gets ERROR ERR_INBOX_FULL with its receipt-id; an HTTP send 507', async () => {
        const node = await startTestNode({ ...cluster(), inboxMaxMessages: 2 });
        const alice = await RawStompClient.connect(node.wsUrl);
        for (const body of ['m1', 'm2']) await alice.request({ command: 'SEND', headers: { destination: '/user/bob/queue/reply' }, body });
        const token = (await login(node, 'alice')).token;
        const refused = await call(node, 'POST', '/api/messages', { token, json: { to: 'bob', destination: '/queue/reply', body: 'm3' } });
        expect(refused.status, refused.text).to.equal(507);
        expect(errorCode(refused)).to.equal('ERR_INBOX_FULL');
        alice.sendFrame({ command: 'SEND', headers: { destination: '/user/bob/queue/reply', receipt: 'third' }, body: 'm4' });
        const error = await alice.expectFrame('ERROR');
        expect(error.headers.code).to.equal('ERR_INBOX_FULL');
        expect(error.headers['receipt-id']).to.equal('third');
        expect(await peek(node, 'bob')).to.deep.equal(['m1', 'm2']);
      });

      it('drop-oldest: keeps the newest and counts every drop on /metrics', async () => {
        const node = await startTestNode({ ...cluster(), inboxMaxMessages: 2, inboxOverflow: 'drop-oldest' });
        const token = (await login(node, 'alice')).token;
        for (const body of ['m1', 'm2', 'm3', 'm4', 'm5']) {
          const sent = await call(node, 'POST', '/api/messages', { token, json: { to: 'bob', destination: '/queue/reply', body } });
          expect(sent.status, sent.text).to.equal(202);
        }
        expect(await peek(node, 'bob')).to.deep.equal(['m4', 'm5']);
        const metrics = await call(node, 'GET', '/metrics');
        expect(metrics.text).to.match(/^stompbox_inbox_dropped_total\{[^}]*\} 3$/m);
      });
    });
  }
});

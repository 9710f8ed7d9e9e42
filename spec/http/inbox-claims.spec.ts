/*
 * POST /api/inbox/claim and /api/inbox/ack on real nodes, in memory and in a
 * cluster (a real redis-server): claimed messages leave the inbox but are
 * deleted only when acked; an unacked claim comes back to the head of the
 * inbox after its visibility timeout — in a cluster also when the node that
 * made it is gone — and a late ack acks nothing.
 */
import { expect } from 'chai';
import { nodeModes } from '../helpers/node-modes.js';
import { startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { uniquePrefix, useRedisServer } from '../helpers/redis-server.js';
import { eventually } from '../cluster/support.js';
import { call, errorCode, login, type Answer } from './helpers.js';

function expectError(answer: Answer, status: number, code: string): void {
  expect(answer.status, answer.text).to.equal(status);
  expect(errorCode(answer), answer.text).to.equal(code);
}

const bodies = (answer: Answer): string[] => answer.json.messages.map((m: { body: string }) => m.body);

describe('inbox claim + ack over HTTP (real node)', () => {
  const redis = useRedisServer();
  afterEach(stopTestNodes);

  for (const [mode, cluster] of nodeModes(redis, 'claims')) {
    describe(mode, () => {
      let node: TestNode;
      let bob: string;

      async function send(target: TestNode, ...texts: string[]): Promise<void> {
        const alice = (await login(target, 'alice')).token;
        for (const body of texts) {
          const sent = await call(target, 'POST', '/api/messages', { token: alice, json: { to: 'bob', destination: '/queue/reply', body } });
          expect(sent.status, sent.text).to.equal(202);
        }
      }
      const depth = async (target: TestNode): Promise<number> =>
        (await call(target, 'GET', '/api/inbox?destination=/queue/reply', { token: bob })).json.depth as number;

      beforeEach(async () => {
        node = await startTestNode(cluster());
        bob = (await login(node, 'bob')).token;
      });

      it('claims in order with message ids; deletes only what is acked', async () => {
        await send(node, 'one', 'two', 'three');
        const claim = await call(node, 'POST', '/api/inbox/claim', { token: bob, json: { destination: '/queue/reply', max: 2 } });
        expect(claim.status, claim.text).to.equal(200);
        expect(claim.json.claimId).to.be.a('string');
        expect(claim.json.expiresAt).to.be.a('number');
        expect(bodies(claim)).to.deep.equal(['one', 'two']);
        expect(claim.json.messages[0]).to.include({ destination: '/user/bob/queue/reply', sender: 'alice' });
        expect(await depth(node)).to.equal(1);

        const first = await call(node, 'POST', '/api/inbox/ack', { token: bob, json: { claimId: claim.json.claimId, ids: [claim.json.messages[0].id] } });
        expect(first.json).to.deep.equal({ claimId: claim.json.claimId, acked: 1, left: 1, expired: false });
        const rest = await call(node, 'POST', '/api/inbox/ack', { token: bob, json: { claimId: claim.json.claimId } });
        expect(rest.json).to.deep.include({ acked: 1, left: 0, expired: false });
        // The subscribe form names the same inbox; an empty one gives no claim.
        const last = await call(node, 'POST', '/api/inbox/claim', { token: bob, json: { destination: '/user/queue/reply' } });
        expect(bodies(last)).to.deep.equal(['three']);
        await call(node, 'POST', '/api/inbox/ack', { token: bob, json: { claimId: last.json.claimId } });
        const none = await call(node, 'POST', '/api/inbox/claim', { token: bob, json: { destination: '/queue/reply' } });
        expect(none.json).to.deep.include({ claimId: null, messages: [], expiresAt: null });
        expect(await depth(node)).to.equal(0);
      });

      it('returns an unacked claim to the head, in order, after its visibility timeout; a late ack acks nothing', async () => {
        await send(node, 'one', 'two');
        const claim = await call(node, 'POST', '/api/inbox/claim', { token: bob, json: { destination: '/queue/reply', visibilityTimeoutMs: 200 } });
        expect(bodies(claim)).to.deep.equal(['one', 'two']);
        await send(node, 'three');
        // The timeout has no event a client can await: poll, bounded.
        await eventually(async () => expect(await depth(node)).to.equal(3), 5000, 25);
        const peeked = await call(node, 'GET', '/api/inbox?destination=/queue/reply', { token: bob });
        expect(bodies(peeked)).to.deep.equal(['one', 'two', 'three']);
        const late = await call(node, 'POST', '/api/inbox/ack', { token: bob, json: { claimId: claim.json.claimId } });
        expect(late.status).to.equal(200);
        expect(late.json).to.deep.include({ acked: 0, left: 0, expired: true });
        expect(await depth(node)).to.equal(3);
      });

      it("404s an unknown claim and another user's; 400s bad requests", async () => {
        await send(node, 'one');
        const claim = await call(node, 'POST', '/api/inbox/claim', { token: bob, json: { destination: '/queue/reply' } });
        const mallory = (await login(node, 'mallory')).token;
        expectError(await call(node, 'POST', '/api/inbox/ack', { token: mallory, json: { claimId: claim.json.claimId } }), 404, 'ERR_NOT_FOUND');
        expectError(await call(node, 'POST', '/api/inbox/ack', { token: bob, json: { claimId: 'timed:nope' } }), 404, 'ERR_NOT_FOUND');
        expectError(await call(node, 'POST', '/api/inbox/ack', { token: bob, json: {} }), 400, 'ERR_BAD_REQUEST');
        expectError(await call(node, 'POST', '/api/inbox/ack', { token: bob, json: { claimId: claim.json.claimId, ids: 'all' } }), 400, 'ERR_BAD_REQUEST');
        expectError(await call(node, 'POST', '/api/inbox/ack', { token: bob, json: { claimId: claim.json.claimId, ids: [7] } }), 400, 'ERR_BAD_REQUEST');
        expectError(await call(node, 'POST', '/api/inbox/claim', { token: bob, json: {} }), 400, 'ERR_BAD_REQUEST');
        expectError(await call(node, 'POST', '/api/inbox/claim', { token: bob, json: { destination: '/queue/reply', visibilityTimeoutMs: 0 } }), 400, 'ERR_BAD_REQUEST');
        expectError(await call(node, 'POST', '/api/inbox/claim', { token: bob, json: { destination: '/nowhere' } }), 400, 'ERR_UNKNOWN_DESTINATION');
        expectError(await call(node, 'POST', '/api/inbox/claim', { json: { destination: '/queue/reply' } }), 401, 'ERR_AUTH_REQUIRED');
        // Mallory's attempt left bob's claim alone.
        const ack = await call(node, 'POST', '/api/inbox/ack', { token: bob, json: { claimId: claim.json.claimId } });
        expect(ack.json).to.deep.include({ acked: 1, left: 0 });
      });
    });
  }

  it('in a cluster, a claim outlives the node that made it: another node returns it after the timeout', async () => {
    const shared = { redisUrl: redis.server.url, redisPrefix: uniquePrefix('claims-2'), sessionSecret: 'spec-session-secret-0123456789abcdef' };
    const first = await startTestNode(shared);
    const second = await startTestNode(shared);
    const alice = (await login(first, 'alice')).token;
    await call(first, 'POST', '/api/messages', { token: alice, json: { to: 'bob', destination: '/queue/reply', body: 'kept' } });
    const bob = (await login(first, 'bob')).token;
    const claim = await call(first, 'POST', '/api/inbox/claim', { token: bob, json: { destination: '/queue/reply', visibilityTimeoutMs: 300 } });
    expect(bodies(claim)).to.deep.equal(['kept']);
    await first.stop('spec: the claiming node leaves');
    await eventually(async () => expect((await call(second, 'GET', '/api/inbox?destination=/queue/reply', { token: bob })).json.depth).to.equal(1), 5000, 50);
    const late = await call(second, 'POST', '/api/inbox/ack', { token: bob, json: { claimId: claim.json.claimId } });
    expect(late.json).to.deep.include({ acked: 0, expired: true });
  });
});

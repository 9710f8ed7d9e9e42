/*
 * The byte bounds of the stores on a real node, in memory and in a cluster
 * (a real redis-server): a SEND that would take a queue past QUEUE_MAX_BYTES,
 * or a user's inboxes past INBOX_MAX_BYTES, gets ERROR (ERR_QUEUE_FULL,
 * ERR_INBOX_FULL) with its receipt-id and never a RECEIPT; nothing of it is
 * kept, and what was accepted before is still there.
 */
import { expect } from 'chai';
import { nodeModes } from '../helpers/node-modes.js';
import { startTestNode, stopTestNodes } from '../helpers/node.js';
import { useRedisServer } from '../helpers/redis-server.js';
import { RawStompClient, StompJsClient } from '../helpers/stomp-client.js';
import { call, errorCode, login } from '../http/helpers.js';

const KiB = 1024;
const body = (text: string) => text + 'x'.repeat(10 * KiB - text.length);

/** A receipted SEND to `destination` is answered by ERROR `code` naming `option`, with its receipt-id: never a RECEIPT. */
async function expectRefused(client: RawStompClient, destination: string, code: string, option: string): Promise<void> {
  client.sendFrame({ command: 'SEND', headers: { destination, receipt: 'past-the-bound' }, body: body('over') });
  const answer = await client.nextFrame();
  expect(answer.command).to.equal('ERROR');
  expect(answer.headers.code).to.equal(code);
  expect(answer.headers['receipt-id']).to.equal('past-the-bound');
  expect(answer.headers.message).to.include(option);
}

describe('store byte bounds (real node)', () => {
  const redis = useRedisServer();
  afterEach(stopTestNodes);

  for (const [mode, cluster] of nodeModes(redis, 'bounds')) {
    describe(mode, () => {
      it('a SEND past QUEUE_MAX_BYTES gets ERROR ERR_QUEUE_FULL, no RECEIPT; what was accepted is delivered', async () => {
        // Three 10 KiB messages fit, the fourth does not.
        const node = await startTestNode({ ...cluster(), queueMaxBytes: 35 * KiB });
        const sender = await RawStompClient.connect(node.wsUrl);
        for (const text of ['q1', 'q2', 'q3']) await sender.request({ command: 'SEND', headers: { destination: '/queue/jobs' }, body: body(text) });
        await expectRefused(sender, '/queue/jobs', 'ERR_QUEUE_FULL', 'QUEUE_MAX_BYTES');
        await sender.closed;
        expect(await node.broker.queues.depth('/queue/jobs')).to.equal(3);
        const consumer = await StompJsClient.connect(node.wsUrl, { login: 'c' });
        const inbox = await consumer.subscribe('/queue/jobs');
        for (const text of ['q1', 'q2', 'q3']) expect((await inbox.next()).body.slice(0, 2)).to.equal(text);
      });

      it("a SEND past the user's INBOX_MAX_BYTES, whatever the destination, gets ERROR ERR_INBOX_FULL, no RECEIPT; HTTP 507", async () => {
        const node = await startTestNode({ ...cluster(), inboxMaxBytes: 35 * KiB });
        const alice = await RawStompClient.connect(node.wsUrl, { login: 'alice' });
        await alice.request({ command: 'SEND', headers: { destination: '/user/bob/queue/a' }, body: body('a1') });
        await alice.request({ command: 'SEND', headers: { destination: '/user/bob/queue/b' }, body: body('b1') });
        await alice.request({ command: 'SEND', headers: { destination: '/user/bob/queue/c' }, body: body('c1') });
        const { token } = await login(node, 'alice');
        const refused = await call(node, 'POST', '/api/messages', { token, json: { to: 'bob', destination: '/queue/d', body: body('d1') } });
        expect(refused.status, refused.text).to.equal(507);
        expect(errorCode(refused)).to.equal('ERR_INBOX_FULL');
        await expectRefused(alice, '/user/bob/queue/e', 'ERR_INBOX_FULL', 'INBOX_MAX_BYTES');
        const bob = await login(node, 'bob');
        const listed = await call(node, 'GET', '/api/inbox', { token: bob.token });
        expect(listed.json.destinations).to.deep.equal([
          { destination: '/queue/a', depth: 1 },
          { destination: '/queue/b', depth: 1 },
          { destination: '/queue/c', depth: 1 },
        ]);
      });
    });
  }
});

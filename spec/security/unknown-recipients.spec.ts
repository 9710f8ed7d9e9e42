/*
 * Attack: fill inboxes of users who do not exist (issue 10: 800 × 1 MiB to
 * made-up names added 818 MB), and put a ':' into a Redis key through a
 * user name spelled `%3A`. With RECIPIENT_POLICY=known a message for a user
 * who has not logged in within the inbox TTL (static mode: who is not in
 * AUTH_USERS) is ERR_UNKNOWN_USER on STOMP and HTTP 404 on the API; a user
 * name is validated the same way on both paths, in any policy.
 */
import { RedisKeys } from '../../lib/cluster/redis-keys.js';
import { expect } from 'chai';
import { startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { uniquePrefix, useRedisServer } from '../helpers/redis-server.js';
import { RawStompClient } from '../helpers/stomp-client.js';
import { call, errorCode, login } from '../http/helpers.js';
import { GoodPair } from './support.js';

const SECRET = 'spec-session-secret-0123456789abcdef';

async function sendAnswer(node: TestNode, to: string): Promise<string | undefined> {
  const mallory = await RawStompClient.connect(node.wsUrl, { login: 'mallory', passcode: 'pw' });
  mallory.sendFrame({ command: 'SEND', headers: { destination: `/user/${to}/queue/in`, receipt: 'r' }, body: 'x'.repeat(1024) });
  const answer = await mallory.nextFrame();
  mallory.terminate();
  return answer.command === 'RECEIPT' ? 'RECEIPT' : answer.headers.code;
}

describe('security: messages for unknown users', () => {
  afterEach(stopTestNodes);

  it('any policy: a user name with ":" or a control character is refused on STOMP and HTTP alike', async () => {
    const node = await startTestNode({ sessionSecret: SECRET });
    const pair = await GoodPair.open(node.wsUrl);
    for (const name of ['a%3Ab', 'a%0Ab', 'a%20b', '%00']) expect(await sendAnswer(node, name), name).to.equal('ERR_UNKNOWN_DESTINATION');
    const { token } = await login(node, 'mallory');
    for (const to of ['a:b', 'a\nb', 'a b']) {
      const answer = await call(node, 'POST', '/api/messages', { token, json: { to, destination: '/queue/in', body: 'x' } });
      expect(answer.status, to).to.equal(400);
    }
    expect(await node.broker.inbox.peek('a:b', '/queue/in')).to.deep.equal([]);
    await pair.exchange(2);
    expect(await pair.check()).to.deep.equal({ delivered: 2, lost: 0 });
  });

  it('known policy, memory: only users who logged in; STOMP ERR_UNKNOWN_USER, HTTP 404; nothing stored', async () => {
    const node = await startTestNode({ sessionSecret: SECRET, recipientPolicy: 'known' });
    const pair = await GoodPair.open(node.wsUrl);
    for (let i = 0; i < 20; i++) expect(await sendAnswer(node, `nobody${i}`)).to.equal('ERR_UNKNOWN_USER');
    const { token } = await login(node, 'mallory');
    const refused = await call(node, 'POST', '/api/messages', { token, json: { to: 'nobody', destination: '/queue/in', body: 'x' } });
    expect(refused.status).to.equal(404);
    expect(errorCode(refused)).to.equal('ERR_UNKNOWN_USER');
    expect(await node.broker.inbox.peek('nobody0', '/queue/in')).to.deep.equal([]);
    // carol logs in once and leaves: she is known, and her messages wait for her.
    (await RawStompClient.connect(node.wsUrl, { login: 'carol' })).terminate();
    expect(await sendAnswer(node, 'carol')).to.equal('RECEIPT');
    await pair.exchange(2);
    expect(await pair.check()).to.deep.equal({ delivered: 2, lost: 0 });
  });

  it('known policy, static mode: the users of AUTH_USERS', async () => {
    const node = await startTestNode({ authMode: 'static', authUsers: 'alice:pw,bob:pw,mallory:pw,carol:pw', recipientPolicy: 'known' });
    const pair = await GoodPair.open(node.wsUrl, { passcode: 'pw' });
    expect(await sendAnswer(node, 'carol')).to.equal('RECEIPT');
    expect(await sendAnswer(node, 'dave')).to.equal('ERR_UNKNOWN_USER');
    await pair.exchange(2);
    expect(await pair.check()).to.deep.equal({ delivered: 2, lost: 0 });
  });

  describe('known policy, Redis', () => {
    const redis = useRedisServer();

    it('one key per login, expiring with the inbox TTL; other nodes know the user', async () => {
      const redisPrefix = uniquePrefix('known');
      const config = { recipientPolicy: 'known' as const, redisUrl: redis.server.url, redisPrefix, inboxTtlSeconds: 3600 };
      const first = await startTestNode(config);
      const second = await startTestNode(config);
      const pair = await GoodPair.open(first.wsUrl);
      expect(await sendAnswer(second, 'carol')).to.equal('ERR_UNKNOWN_USER');
      (await RawStompClient.connect(first.wsUrl, { login: 'carol' })).terminate();
      const ttl = await redis.admin.ttl(new RedisKeys(redisPrefix).known('carol'));
      expect(ttl).to.be.within(3500, 3600);
      expect(await sendAnswer(second, 'carol')).to.equal('RECEIPT');
      await pair.exchange(2);
      expect(await pair.check()).to.deep.equal({ delivered: 2, lost: 0 });
    });
  });
});

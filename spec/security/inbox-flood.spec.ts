/*
 * Attack: fill inboxes until the node (or Redis) gives out (issue 10: 800 ×
 * 1 MiB to made-up names added 818 MB in memory mode; 300 added 300 MB to
 * Redis). The node runs as a child process with its default bounds and
 * RECIPIENT_POLICY=known, in memory and on a real redis-server. Four
 * attackers send 1 MiB messages: 240 to made-up users, each refused
 * ERR_UNKNOWN_USER, and 40 to carol, a real user who is away, refused
 * ERR_INBOX_FULL once her inboxes hold INBOX_MAX_BYTES (16 MiB), whatever
 * destinations they name. The node's peak RSS (VmHWM of its own process)
 * stays within RSS_BOUND of what it was before, carol's inboxes within
 * INBOX_MAX_BYTES, and a good pair exchanging messages meanwhile loses
 * nothing.
 *
 * With RECIPIENT_POLICY=any (the default) made-up users are users, each
 * bounded by INBOX_MAX_BYTES but not all of them together: a public node
 * wants `known` (README, "Limits and permissions").
 */
import { expect } from 'chai';
import { RedisKeys } from '../../lib/cluster/redis-keys.js';
import { DEFAULT_CONFIG } from '../../lib/config.js';
import { killAllNodes, spawnNode, type NodeProcess } from '../helpers/node-process.js';
import { stopTestNodes } from '../helpers/node.js';
import { uniquePrefix, useRedisServer } from '../helpers/redis-server.js';
import { RawStompClient } from '../helpers/stomp-client.js';
import { call, login } from '../http/helpers.js';
import { GoodPair, memoryOf, MiB } from './support.js';

/** What the attack may add to the node's peak resident set. */
const RSS_BOUND = 150 * MiB;
const ATTACKERS = 4;
const MADE_UP_PER_ATTACKER = 60;
const TO_CAROL_PER_ATTACKER = 10;

/** One receipted 1 MiB SEND to `destination` on a fresh session: 'RECEIPT' or the ERROR's code (which ends the session). */
async function sendOnce(node: NodeProcess, destination: string, body: Buffer): Promise<string | undefined> {
  const client = await RawStompClient.connect(node.wsUrl, { login: 'mallory' });
  client.sendFrame({ command: 'SEND', headers: { destination, receipt: 'r' }, body });
  const answer = await client.nextFrame();
  client.terminate();
  return answer.command === 'RECEIPT' ? 'RECEIPT' : answer.headers.code;
}

describe('security: inbox flood (node in a child process)', function () {
  this.timeout(120_000);
  const redis = useRedisServer();
  afterEach(async () => {
    await stopTestNodes();
    await killAllNodes();
  });

  const modes: Array<[string, () => { redisUrl?: string; env: Record<string, string> }]> = [
    ['in memory', () => ({ env: { RECIPIENT_POLICY: 'known' } })],
    ['on Redis', () => ({ redisUrl: redis.server.url, env: { RECIPIENT_POLICY: 'known', REDIS_PREFIX: uniquePrefix('inbox-flood') } })],
  ];
  for (const [mode, options] of modes) {
    it(`${mode}: refuses made-up users and a full user's inboxes; the node stays within its RSS bound and a good pair loses nothing`, async () => {
      const setup = options();
      const node = await spawnNode({ id: `inbox-flood-${mode.replace(/\W/g, '')}`, ...setup });
      const pair = await GoodPair.open(node.wsUrl);
      // carol logged in once: known, away, her messages wait in her inboxes.
      (await RawStompClient.connect(node.wsUrl, { login: 'carol' })).terminate();
      await pair.exchange(5);
      const before = memoryOf(node.child.pid!);

      const body = Buffer.alloc(MiB - 1024, 'x');
      const answers: Array<string | undefined> = [];
      const attacks = Array.from({ length: ATTACKERS }, async (_, a) => {
        for (let i = 0; i < MADE_UP_PER_ATTACKER; i++) answers.push(await sendOnce(node, `/user/nobody-${a}-${i}/queue/in`, body));
        // A destination of carol's per message: the bound is hers, not per inbox.
        for (let i = 0; i < TO_CAROL_PER_ATTACKER; i++) answers.push(await sendOnce(node, `/user/carol/queue/in-${a}-${i}`, body));
      });
      await pair.exchange(5);
      await Promise.all(attacks);
      await pair.exchange(5);

      const count = (answer: string) => answers.filter((a) => a === answer).length;
      expect(count('ERR_UNKNOWN_USER')).to.equal(ATTACKERS * MADE_UP_PER_ATTACKER);
      // 16 MiB hold 16 of these messages (each a little under 1 MiB as stored).
      const fitting = Math.floor(DEFAULT_CONFIG.inboxMaxBytes / MiB);
      expect(count('RECEIPT')).to.equal(fitting);
      expect(count('ERR_INBOX_FULL')).to.equal(ATTACKERS * TO_CAROL_PER_ATTACKER - fitting);

      const after = memoryOf(node.child.pid!);
      expect(after.peak - before.rss, `RSS ${before.rss / MiB} MiB before, peak ${after.peak / MiB} MiB`).to.be.below(RSS_BOUND);
      const carol = await login(node.url, 'carol');
      const listed = await call(node.url, 'GET', '/api/inbox', { token: carol.token });
      const held = (listed.json.destinations as Array<{ depth: number }>).reduce((sum, d) => sum + d.depth, 0);
      expect(held).to.equal(fitting);
      if (setup.redisUrl) {
        const keys = new RedisKeys(setup.env.REDIS_PREFIX);
        const total = Number(await redis.admin.hget(keys.inboxBytes('carol'), 'total'));
        expect(total).to.be.within((fitting - 1) * MiB, DEFAULT_CONFIG.inboxMaxBytes);
        expect(await redis.admin.exists(keys.inbox('nobody-0-0', '/queue/in'))).to.equal(0);
      }
      expect(await pair.check()).to.deep.equal({ delivered: 15, lost: 0 });
    });
  }
});

/*
 * A full inbox in the batched router's script: a new message is refused
 * (its own promise rejects with ERR_INBOX_FULL, the rest of the batch goes
 * on), a re-route of an accepted message (`kept`) is kept, and with drop-oldest every
 * drop is counted — the script is where a cluster stores, so its drops are
 * the ones stompbox_inbox_dropped_total must see.
 */
import { expect } from 'chai';
import { BrokerError } from '../../lib/core/errors.js';
import { RedisUserRouter } from '../../lib/cluster/redis-user-router.js';
import type { InboxOverflow } from '../../lib/inbox/inbox-store.js';
import { RedisInboxStore } from '../../lib/inbox/redis-inbox-store.js';
import { uniquePrefix, useRedisServer } from '../helpers/redis-server.js';
import { message } from './relay.contract.js';
import { recordingLogger } from './support.js';

describe('RedisUserRouter: a full inbox', () => {
  const redis = useRedisServer();
  const closing: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    await Promise.all(closing.splice(0).map((part) => part.close()));
  });

  function parts(overflow: InboxOverflow) {
    const common = { keyPrefix: uniquePrefix('router-full'), logger: recordingLogger() };
    const router = new RedisUserRouter('a', redis.server.url, { ...common, inboxMaxMessages: 2, inboxTtlSeconds: 60, inboxOverflow: overflow });
    const inbox = new RedisInboxStore(redis.server.url, { ...common, maxMessages: 2, ttlSeconds: 60, overflow });
    closing.push(router, inbox);
    return { router, inbox };
  }

  const route = (router: RedisUserRouter, text: string, kept = false) =>
    router.route({ user: 'bob', destination: '/queue/r', message: message('/user/bob/queue/r', text), kept });
  const bodies = async (inbox: RedisInboxStore) => (await inbox.peek('bob', '/queue/r')).map((m) => m.body.toString());

  it('refuse: rejects only the messages past the cap, within one script call', async () => {
    const { router, inbox } = parts('refuse');
    const results = await Promise.allSettled(['m1', 'm2', 'm3', 'm4'].map((text) => route(router, text)));
    expect(results.map((r) => r.status)).to.deep.equal(['fulfilled', 'fulfilled', 'rejected', 'rejected']);
    for (const r of results.slice(2)) {
      const reason = (r as PromiseRejectedResult).reason as unknown;
      expect(reason).to.be.instanceOf(BrokerError);
      expect((reason as BrokerError).code).to.equal('ERR_INBOX_FULL');
    }
    expect(await bodies(inbox)).to.deep.equal(['m1', 'm2']);
    expect(router.dropped).to.equal(0);
  });

  it('refuse: keeps a re-routed message (accepted already) past the cap', async () => {
    const { router, inbox } = parts('refuse');
    await route(router, 'm1');
    await route(router, 'm2');
    expect(await route(router, 'recovered', true)).to.deep.equal({ local: false, remote: [], stored: true });
    expect(await bodies(inbox)).to.deep.equal(['m1', 'm2', 'recovered']);
  });

  it('drop-oldest: stores every message and counts each drop', async () => {
    const { router, inbox } = parts('drop-oldest');
    const results = await Promise.all(['m1', 'm2', 'm3', 'm4', 'm5'].map((text) => route(router, text)));
    expect(results.every((r) => r.stored)).to.equal(true);
    expect(await bodies(inbox)).to.deep.equal(['m4', 'm5']);
    expect(router.dropped).to.equal(3);
  });
});

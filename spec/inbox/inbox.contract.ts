/*
 * The InboxStore contract: every backend runs this suite (the memory and the
 * Redis spec files).
 */
import { expect } from 'chai';
import type { BrokerMessage } from '../../lib/core/message.js';
import type { PresenceRegistry } from '../../lib/cluster/presence.js';
import { encodedMessageSize } from '../../lib/cluster/envelope-codec.js';
import type { InboxLimits, InboxStore } from '../../lib/inbox/inbox-store.js';
import { eventually, expectBrokerError } from '../cluster/support.js';

/** Inbox stores and presence nodes sharing one cluster. */
export interface InboxCluster {
  /** A store on the cluster: for Redis a new store (own connection) per call. */
  store(): InboxStore;
  /** A started presence node of the same cluster. */
  node(id: string): Promise<PresenceRegistry>;
  close(): Promise<void>;
}

export type InboxClusterFactory = (limits: Partial<InboxLimits>) => Promise<InboxCluster>;

let sequence = 0;
export function inboxMessage(text: string, body: Buffer = Buffer.from(text)): BrokerMessage {
  return {
    id: `inbox-test-${++sequence}-${text}`,
    destination: '/user/alice/queue/reply',
    headers: { 'content-type': 'text/plain', 'x-text': text },
    body,
    sender: 'bob',
    timestamp: 1_700_000_000_000 + sequence,
  };
}

const texts = (messages: readonly BrokerMessage[]): string[] => messages.map((m) => m.headers['x-text']!);

async function expectInboxFull(call: () => Promise<unknown>): Promise<void> {
  await expectBrokerError(call, 'ERR_INBOX_FULL');
}

export function inboxContract(name: string, createCluster: InboxClusterFactory): void {
  describe(`${name}: InboxStore contract`, () => {
    let cluster: InboxCluster;
    let inbox: InboxStore;

    async function reopen(limits: Partial<InboxLimits>): Promise<void> {
      await cluster.close();
      cluster = await createCluster(limits);
      inbox = cluster.store();
    }

    beforeEach(async () => {
      cluster = await createCluster({});
      inbox = cluster.store();
    });
    afterEach(async () => {
      await cluster.close();
    });

    async function appendAll(store: InboxStore, names: readonly string[], destination = '/queue/reply'): Promise<void> {
      for (const text of names) await store.append('alice', destination, inboxMessage(text));
    }

    it('hands messages out oldest first, up to max, each once', async () => {
      await appendAll(inbox, ['m1', 'm2', 'm3', 'm4']);
      expect(await inbox.take('alice', '/queue/reply', 0)).to.deep.equal([]);
      expect(texts(await inbox.take('alice', '/queue/reply', 3))).to.deep.equal(['m1', 'm2', 'm3']);
      expect(texts(await inbox.take('alice', '/queue/reply'))).to.deep.equal(['m4']);
      expect(await inbox.take('alice', '/queue/reply')).to.deep.equal([]);
      expect(await inbox.depth('alice', '/queue/reply')).to.equal(0);
    });

    it('peeks without taking', async () => {
      await appendAll(inbox, ['m1', 'm2', 'm3']);
      expect(texts(await inbox.peek('alice', '/queue/reply', 2))).to.deep.equal(['m1', 'm2']);
      expect(texts(await inbox.peek('alice', '/queue/reply'))).to.deep.equal(['m1', 'm2', 'm3']);
      expect(await inbox.depth('alice', '/queue/reply')).to.equal(3);
    });

    it('keeps users and destinations apart', async () => {
      await inbox.append('alice', '/queue/a', inboxMessage('a'));
      await inbox.append('alice', '/queue/b', inboxMessage('b'));
      await inbox.append('bob', '/queue/a', inboxMessage('bob-a'));
      expect(texts(await inbox.take('alice', '/queue/a'))).to.deep.equal(['a']);
      expect(texts(await inbox.take('bob', '/queue/a'))).to.deep.equal(['bob-a']);
      expect(texts(await inbox.take('alice', '/queue/b'))).to.deep.equal(['b']);
    });

    it('lists the destinations holding messages, with their depth', async () => {
      await appendAll(inbox, ['r1', 'r2'], '/queue/reply');
      await appendAll(inbox, ['n1'], '/queue/news');
      await appendAll(inbox, ['x1'], '/queue/gone');
      await inbox.take('alice', '/queue/gone');
      expect(await inbox.list('alice')).to.deep.equal([
        { destination: '/queue/news', depth: 1 },
        { destination: '/queue/reply', depth: 2 },
      ]);
      expect(await inbox.list('nobody')).to.deep.equal([]);
    });

    it('puts re-inserted messages at the head, in their order', async () => {
      await appendAll(inbox, ['m3']);
      await inbox.prepend('alice', '/queue/reply', [inboxMessage('m1'), inboxMessage('m2')]);
      await inbox.prepend('alice', '/queue/reply', []);
      expect(texts(await inbox.take('alice', '/queue/reply'))).to.deep.equal(['m1', 'm2', 'm3']);
    });

    it('drop-oldest: keeps only the newest maxMessages, counting every drop', async () => {
      await reopen({ maxMessages: 3, overflow: 'drop-oldest' });
      await appendAll(inbox, ['m1', 'm2', 'm3', 'm4', 'm5']);
      await inbox.append('alice', '/queue/reply', inboxMessage('m6'));
      expect(await inbox.depth('alice', '/queue/reply')).to.equal(3);
      expect(inbox.dropped).to.equal(3);
      expect(texts(await inbox.take('alice', '/queue/reply'))).to.deep.equal(['m4', 'm5', 'm6']);
    });

    it('refuse (the default): a new message for a full inbox is refused with ERR_INBOX_FULL, and nothing is stored', async () => {
      await reopen({ maxMessages: 3 });
      await appendAll(inbox, ['m1', 'm2', 'm3']);
      await expectInboxFull(() => inbox.append('alice', '/queue/reply', inboxMessage('m4')));
      expect(texts(await inbox.peek('alice', '/queue/reply'))).to.deep.equal(['m1', 'm2', 'm3']);
      expect(inbox.dropped).to.equal(0);
      // Room again once one is taken; another inbox was never full.
      await inbox.take('alice', '/queue/reply', 1);
      await inbox.append('alice', '/queue/reply', inboxMessage('m6'));
      await inbox.append('alice', '/queue/other', inboxMessage('o1'));
      expect(texts(await inbox.peek('alice', '/queue/reply'))).to.deep.equal(['m2', 'm3', 'm6']);
    });

    it('refuse: messages accepted already are kept past the cap, never dropped', async () => {
      await reopen({ maxMessages: 2 });
      await appendAll(inbox, ['m3', 'm4']);
      await inbox.append('alice', '/queue/reply', inboxMessage('m5'), { accepted: true });
      await inbox.append('alice', '/queue/reply', inboxMessage('m6'), { accepted: true });
      await inbox.prepend('alice', '/queue/reply', [inboxMessage('m2')]);
      await inbox.returnToHead('alice', '/queue/reply', [inboxMessage('m1')]);
      expect(texts(await inbox.peek('alice', '/queue/reply'))).to.deep.equal(['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
      expect(inbox.dropped).to.equal(0);
      await expectInboxFull(() => inbox.append('alice', '/queue/reply', inboxMessage('m7')));
    });

    describe('bytes per user (maxBytes)', () => {
      /** Room for three 1 000-byte messages, not four (ids differ in length by a few bytes). */
      const unit = encodedMessageSize(inboxMessage('k0', Buffer.alloc(1000)));
      const maxBytes = Math.floor(3.5 * unit);
      const big = (text: string) => inboxMessage(text, Buffer.alloc(1000, text));

      it('refuse: a message that would take the user past maxBytes, in any of the user\'s inboxes, is refused; nothing is stored', async () => {
        await reopen({ maxBytes });
        await inbox.append('alice', '/queue/a', big('a1'));
        await inbox.append('alice', '/queue/a', big('a2'));
        await inbox.append('alice', '/queue/b', big('b1'));
        await expectInboxFull(() => inbox.append('alice', '/queue/c', big('c1')));
        await expectInboxFull(() => inbox.append('alice', '/queue/a', big('a3')));
        expect(await inbox.list('alice')).to.deep.equal([
          { destination: '/queue/a', depth: 2 },
          { destination: '/queue/b', depth: 1 },
        ]);
        // Another user has a bound of their own; small messages still fit alice's.
        await inbox.append('bob', '/queue/a', big('bob1'));
        await inbox.append('alice', '/queue/c', inboxMessage('small'));
        expect(inbox.dropped).to.equal(0);
      });

      it('counts what leaves an inbox (take, claim, ack) and what comes back (release, returnToHead)', async () => {
        await reopen({ maxBytes });
        for (const text of ['m1', 'm2', 'm3']) await inbox.append('alice', '/queue/a', big(text));
        await expectInboxFull(() => inbox.append('alice', '/queue/b', big('b1')));
        await inbox.take('alice', '/queue/a', 1);
        await inbox.append('alice', '/queue/b', big('b1'));
        const claimed = await inbox.claim('node-a:alice:s1', 'alice', '/queue/a');
        expect(texts(claimed)).to.deep.equal(['m2', 'm3']);
        await inbox.append('alice', '/queue/b', big('b2'));
        await inbox.ack('node-a:alice:s1', [claimed[0]!.id]);
        // m3 goes back, uncapped: the user is past the bound until something leaves.
        await inbox.release('node-a:alice:s1');
        await inbox.returnToHead('alice', '/queue/a', [big('m0')]);
        expect(texts(await inbox.peek('alice', '/queue/a'))).to.deep.equal(['m0', 'm3']);
        await expectInboxFull(() => inbox.append('alice', '/queue/c', inboxMessage('small')));
        await inbox.take('alice', '/queue/a');
        await inbox.take('alice', '/queue/b');
        for (const text of ['c1', 'c2', 'c3']) await inbox.append('alice', '/queue/c', big(text));
      });

      it('refuse: messages accepted already are kept past maxBytes', async () => {
        await reopen({ maxBytes });
        for (const text of ['m1', 'm2', 'm3']) await inbox.append('alice', '/queue/a', big(text));
        await inbox.append('alice', '/queue/b', big('kept'), { accepted: true });
        expect(texts(await inbox.peek('alice', '/queue/b'))).to.deep.equal(['kept']);
        await expectInboxFull(() => inbox.append('alice', '/queue/b', inboxMessage('small')));
      });

      it('drop-oldest: drops the oldest of the inbox the message goes to until the user is under maxBytes, counted', async () => {
        await reopen({ maxBytes, overflow: 'drop-oldest' });
        await inbox.append('alice', '/queue/b', big('b1'));
        for (const text of ['a1', 'a2', 'a3', 'a4']) await inbox.append('alice', '/queue/a', big(text));
        expect(texts(await inbox.peek('alice', '/queue/a'))).to.deep.equal(['a3', 'a4']);
        expect(texts(await inbox.peek('alice', '/queue/b'))).to.deep.equal(['b1']);
        expect(inbox.dropped).to.equal(2);
      });

      it('drop-oldest: refuses when that inbox alone cannot make room (the other inboxes hold the bytes)', async () => {
        await reopen({ maxBytes, overflow: 'drop-oldest' });
        for (const text of ['a1', 'a2', 'a3']) await inbox.append('alice', '/queue/a', big(text));
        await expectInboxFull(() => inbox.append('alice', '/queue/b', big('b1')));
        expect(await inbox.depth('alice', '/queue/a')).to.equal(3);
        expect(await inbox.depth('alice', '/queue/b')).to.equal(0);
        expect(inbox.dropped).to.equal(0);
      });

      it('an inbox that expired no longer counts', async () => {
        await reopen({ maxBytes, ttlSeconds: 1 });
        for (const text of ['a1', 'a2', 'a3']) await inbox.append('alice', '/queue/a', big(text));
        // Expiry has no event to await: poll, bounded.
        await eventually(async () => expect(await inbox.depth('alice', '/queue/a')).to.equal(0), 3000, 50);
        for (const text of ['b1', 'b2', 'b3']) await inbox.append('alice', '/queue/b', big(text));
        expect(await inbox.depth('alice', '/queue/b')).to.equal(3);
      });
    });

    it('returns messages to the head in one step, out of their claim, in order and uncapped', async () => {
      await reopen({ maxMessages: 3 });
      await appendAll(inbox, ['m1', 'm2', 'm3']);
      const claimed = await inbox.claim('node-a:alice:s1', 'alice', '/queue/reply');
      await appendAll(inbox, ['m4', 'm5', 'm6']);
      // m2 was acked; m1 and m3 come back (a NACK, a session that ended), after a live message.
      await inbox.ack('node-a:alice:s1', [claimed[1]!.id]);
      await inbox.returnToHead('alice', '/queue/reply', [inboxMessage('live')]);
      await inbox.returnToHead('alice', '/queue/reply', [claimed[0]!, claimed[1]!, claimed[2]!], 'node-a:alice:s1');
      // m2, acked, is not in the claim any more: it does not come back.
      expect(texts(await inbox.peek('alice', '/queue/reply'))).to.deep.equal(['m1', 'm3', 'live', 'm4', 'm5', 'm6']);
      // They left the claim: neither a retry nor a release gives them back twice.
      await inbox.returnToHead('alice', '/queue/reply', [claimed[0]!, claimed[2]!], 'node-a:alice:s1');
      await inbox.release('node-a:alice:s1');
      expect(await inbox.depth('alice', '/queue/reply')).to.equal(6);
      await inbox.returnToHead('alice', '/queue/reply', []);
      expect(await inbox.depth('alice', '/queue/reply')).to.equal(6);
    });

    it('returns part of a claim, leaving the rest claimed', async () => {
      await appendAll(inbox, ['m1', 'm2', 'm3']);
      const claimed = await inbox.claim('node-a:alice:s1', 'alice', '/queue/reply');
      await inbox.returnToHead('alice', '/queue/reply', [claimed[1]!], 'node-a:alice:s1');
      expect(texts(await inbox.peek('alice', '/queue/reply'))).to.deep.equal(['m2']);
      await inbox.release('node-a:alice:s1');
      expect(texts(await inbox.take('alice', '/queue/reply'))).to.deep.equal(['m1', 'm3', 'm2']);
    });

    describe('timed claims (POST /api/inbox/claim)', () => {
      it('claims oldest first, up to max, and deletes only what is acked', async () => {
        await appendAll(inbox, ['m1', 'm2', 'm3', 'm4']);
        const claim = await inbox.claimTimed('alice', '/queue/reply', 3, 60_000);
        expect(claim.claimId).to.be.a('string');
        expect(claim.expiresAt).to.be.a('number');
        expect(texts(claim.messages)).to.deep.equal(['m1', 'm2', 'm3']);
        // Claimed: neither in the inbox nor claimed again.
        expect(texts(await inbox.peek('alice', '/queue/reply'))).to.deep.equal(['m4']);
        const second = await inbox.claimTimed('alice', '/queue/reply', 10, 60_000);
        expect(texts(second.messages)).to.deep.equal(['m4']);

        expect(await inbox.ackTimed('alice', claim.claimId!, [claim.messages[1]!.id, 'not-in-the-claim'])).to.deep.equal({ acked: 1, left: 2, expired: false });
        expect(await inbox.ackTimed('alice', claim.claimId!)).to.deep.equal({ acked: 2, left: 0, expired: false });
        // Acked in full: a repeated ack acks nothing, and says it did not expire.
        expect(await inbox.ackTimed('alice', claim.claimId!)).to.deep.equal({ acked: 0, left: 0, expired: false });
        expect(await inbox.ackTimed('alice', second.claimId!, [second.messages[0]!.id])).to.deep.equal({ acked: 1, left: 0, expired: false });
        expect(await inbox.depth('alice', '/queue/reply')).to.equal(0);
      });

      it('claims nothing from an empty inbox', async () => {
        expect(await inbox.claimTimed('alice', '/queue/reply', 10, 60_000)).to.deep.equal({ claimId: null, messages: [], expiresAt: null });
      });

      it("knows neither unknown claims nor another user's", async () => {
        await appendAll(inbox, ['m1']);
        const claim = await inbox.claimTimed('alice', '/queue/reply', 10, 60_000);
        expect(await inbox.ackTimed('mallory', claim.claimId!)).to.equal(undefined);
        expect(await inbox.ackTimed('alice', 'timed:no-such-claim')).to.equal(undefined);
        // A subscription's claim is not a timed one.
        await appendAll(inbox, ['m2']);
        await inbox.claim('node-a:alice:s1', 'alice', '/queue/reply');
        expect(await inbox.ackTimed('alice', 'node-a:alice:s1')).to.equal(undefined);
        expect(await inbox.ackTimed('alice', claim.claimId!)).to.deep.equal({ acked: 1, left: 0, expired: false });
      });

      it('returns an unacked claim to the head of its inbox, in order, after its visibility timeout; a late ack acks nothing', async () => {
        await appendAll(inbox, ['m1', 'm2', 'm3']);
        const claim = await inbox.claimTimed('alice', '/queue/reply', 3, 200);
        await inbox.ackTimed('alice', claim.claimId!, [claim.messages[1]!.id]);
        await appendAll(inbox, ['m4']);
        // The timeout has no event to await: poll, bounded.
        await eventually(async () => expect(await inbox.depth('alice', '/queue/reply')).to.equal(3), 5000, 20);
        expect(texts(await inbox.peek('alice', '/queue/reply'))).to.deep.equal(['m1', 'm3', 'm4']);
        expect(await inbox.ackTimed('alice', claim.claimId!)).to.deep.equal({ acked: 0, left: 0, expired: true });
        expect(await inbox.depth('alice', '/queue/reply')).to.equal(3);
      });

      it('an ack past the deadline acks nothing and returns the claim, whether or not it was returned yet', async () => {
        await appendAll(inbox, ['m1', 'm2']);
        const claim = await inbox.claimTimed('alice', '/queue/reply', 2, 1);
        // Past its 1 ms deadline by the time the ack runs (one round trip at least).
        await eventually(async () => expect(Date.now()).to.be.above(claim.expiresAt!), 1000, 5);
        expect(await inbox.ackTimed('alice', claim.claimId!)).to.deep.equal({ acked: 0, left: 0, expired: true });
        expect(texts(await inbox.peek('alice', '/queue/reply'))).to.deep.equal(['m1', 'm2']);
      });

      it('a returned claim is never capped away nor refused', async () => {
        await reopen({ maxMessages: 2 });
        await appendAll(inbox, ['m1', 'm2']);
        const claim = await inbox.claimTimed('alice', '/queue/reply', 2, 150);
        await appendAll(inbox, ['m3', 'm4']);
        await eventually(async () => expect(await inbox.depth('alice', '/queue/reply')).to.equal(4), 5000, 20);
        expect(texts(await inbox.peek('alice', '/queue/reply'))).to.deep.equal(['m1', 'm2', 'm3', 'm4']);
        expect(await inbox.ackTimed('alice', claim.claimId!)).to.deep.include({ acked: 0, expired: true });
      });
    });

    it('expires an inbox ttlSeconds after its last append', async () => {
      await reopen({ ttlSeconds: 1 });
      await appendAll(inbox, ['m1']);
      expect(await inbox.depth('alice', '/queue/reply')).to.equal(1);
      // Expiry has no event to await: poll, bounded.
      await eventually(async () => expect(await inbox.depth('alice', '/queue/reply')).to.equal(0), 3000, 50);
      expect(await inbox.list('alice')).to.deep.equal([]);
      expect(await inbox.take('alice', '/queue/reply')).to.deep.equal([]);
    });

    it('never loses, duplicates or reorders a message taken while others are appended', async () => {
      const writer = cluster.store();
      const sent = Array.from({ length: 300 }, (_, i) => `c${i}`);
      let appending = true;
      // Bursts of ten, so that takes land between, and inside, bursts.
      const appends = (async () => {
        for (let i = 0; i < sent.length; i += 10) {
          await Promise.all(sent.slice(i, i + 10).map((text) => writer.append('alice', '/queue/reply', inboxMessage(text))));
        }
      })().finally(() => {
        appending = false;
      });
      const taken: BrokerMessage[] = [];
      while (appending) taken.push(...(await inbox.take('alice', '/queue/reply', 7)));
      await appends;
      taken.push(...(await inbox.take('alice', '/queue/reply')));
      expect(texts(taken)).to.deep.equal(sent);
    });

    it('claims messages until they are acked, and releases the rest back to the head in order', async () => {
      await appendAll(inbox, ['m1', 'm2', 'm3', 'm4']);
      const claimed = await inbox.claim('node-a:alice:session-1:sub-0', 'alice', '/queue/reply', 3);
      expect(texts(claimed)).to.deep.equal(['m1', 'm2', 'm3']);
      expect(await inbox.depth('alice', '/queue/reply')).to.equal(1);
      // A claimed message is not handed out again.
      expect(texts(await inbox.peek('alice', '/queue/reply'))).to.deep.equal(['m4']);

      await inbox.ack('node-a:alice:session-1:sub-0', [claimed[1]!.id]);
      await inbox.append('alice', '/queue/reply', inboxMessage('m5'));
      await inbox.release('node-a:alice:session-1:sub-0');
      expect(texts(await inbox.take('alice', '/queue/reply'))).to.deep.equal(['m1', 'm3', 'm4', 'm5']);

      // Released means forgotten by the claim: a second release gives nothing back.
      await inbox.release('node-a:alice:session-1:sub-0');
      expect(await inbox.depth('alice', '/queue/reply')).to.equal(0);
    });

    it('adds to an existing claim and forgets a fully acked one', async () => {
      await appendAll(inbox, ['m1', 'm2']);
      const first = await inbox.claim('node-a:alice:s1', 'alice', '/queue/reply', 1);
      const second = await inbox.claim('node-a:alice:s1', 'alice', '/queue/reply', 1);
      expect(await inbox.claim('node-a:alice:s1', 'alice', '/queue/reply')).to.deep.equal([]);
      await inbox.ack('node-a:alice:s1', [...first, ...second].map((m) => m.id));
      await inbox.release('node-a:alice:s1');
      expect(await inbox.depth('alice', '/queue/reply')).to.equal(0);
      await inbox.ack('node-a:unknown', ['x']);
      await inbox.release('node-a:unknown');
    });

    it('keeps live deliveries under a claim: acked ones are forgotten, the rest released to the head after the claimed ones', async () => {
      await appendAll(inbox, ['m1']);
      await inbox.claim('node-a:alice:s2', 'alice', '/queue/reply');
      const live = ['l1', 'l2', 'l3'].map((text) => inboxMessage(text));
      await inbox.keepClaimed('node-a:alice:s2', 'alice', '/queue/reply', live);
      expect(await inbox.depth('alice', '/queue/reply')).to.equal(0);
      await inbox.ack('node-a:alice:s2', [live[1]!.id]);
      await inbox.append('alice', '/queue/reply', inboxMessage('m2'));
      await inbox.release('node-a:alice:s2');
      expect(texts(await inbox.take('alice', '/queue/reply'))).to.deep.equal(['m1', 'l1', 'l3', 'm2']);
    });

    it('refuses to grow a claim with messages of another inbox', async () => {
      await appendAll(inbox, ['m1'], '/queue/a');
      await appendAll(inbox, ['m2'], '/queue/b');
      await inbox.claim('node-a:alice:s1', 'alice', '/queue/a');
      let failed = false;
      try {
        await inbox.claim('node-a:alice:s1', 'alice', '/queue/b');
      } catch {
        failed = true;
      }
      expect(failed).to.equal(true);
    });

    it('keeps binary bodies and headers intact', async () => {
      const bodies = [Buffer.alloc(0), Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.alloc(1024 * 1024, 0xa5)];
      for (const [i, body] of bodies.entries()) await inbox.append('alice', '/queue/bin', inboxMessage(`b${i}`, body));
      const headers = Object.create(null) as Record<string, string>;
      Object.assign(headers, { ['__proto__']: 'p', 'x-text': 'odd', 'é:\n': 'ü\r\n' });
      const odd = { ...inboxMessage('odd'), headers };
      await inbox.append('alice', '/queue/bin', odd);
      const got = await inbox.take('alice', '/queue/bin');
      expect(got).to.have.length(4);
      bodies.forEach((body, i) => expect(got[i]!.body.equals(body), `body ${i}`).to.equal(true));
      expect(Object.keys(got[3]!.headers)).to.include('__proto__');
      expect({ ...got[3]!.headers }).to.deep.equal({ ...odd.headers });
      expect(got[3]).to.include({ id: odd.id, destination: odd.destination, sender: 'bob', timestamp: odd.timestamp });
    });
  });
}

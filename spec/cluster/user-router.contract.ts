/*
 * The UserRouter contract — route-or-store, one place per backend — shared
 * by the memory router and the batched Redis router: per message, either the live subscribed nodes
 * get it (this node's share as `local`, remote ones through their relay) or
 * the inbox stores it.
 */
import { expect } from 'chai';
import type { PresenceRegistry } from '../../lib/cluster/presence.js';
import type { RouteOutcome, UserRouter } from '../../lib/cluster/user-router.js';
import { encodedMessageSize } from '../../lib/cluster/envelope-codec.js';
import type { InboxLimits, InboxStore } from '../../lib/inbox/inbox-store.js';
import { message, type RelayNode } from './relay.contract.js';
import { expectBrokerError } from './support.js';

/** Two nodes, `a` (routing) and `b`, sharing one cluster. */
export interface RouterCluster {
  router: UserRouter;
  presenceA: PresenceRegistry;
  presenceB: PresenceRegistry;
  inbox: InboxStore;
  /** b's relay, recording what reaches it. */
  b: RelayNode;
  close(): Promise<void>;
}

const bodies = (messages: ReadonlyArray<{ body: Buffer }>) => messages.map((m) => m.body.toString());

/** A router and its inbox store, both with `limits`. */
export type RouterClusterFactory = (limits?: Partial<InboxLimits>) => Promise<RouterCluster>;

export function userRouterContract(name: string, createCluster: RouterClusterFactory): void {
  describe(`${name}: UserRouter contract`, () => {
    let c: RouterCluster;
    beforeEach(async () => (c = await createCluster()));
    afterEach(async () => c.close());

    it("stores within the user's inbox bytes, counted with what the inbox store holds; refuses past them, keeps a re-route", async () => {
      await c.close();
      const big = (text: string) => message('/user/bob/queue/r', text, { body: Buffer.alloc(1000, text) });
      // Room for three 1 000-byte messages, not four.
      c = await createCluster({ maxBytes: Math.floor(3.5 * encodedMessageSize(big('k0'))) });
      await c.inbox.append('bob', '/queue/a', big('a1'));
      await c.router.route({ user: 'bob', destination: '/queue/r', message: big('r1') });
      await c.router.route({ user: 'bob', destination: '/queue/r', message: big('r2') });
      await expectBrokerError(() => c.router.route({ user: 'bob', destination: '/queue/s', message: big('s1') }), 'ERR_INBOX_FULL');
      expect(await c.inbox.depth('bob', '/queue/s')).to.equal(0);
      // Accepted already (a re-route): kept past the bound.
      expect((await c.router.route({ user: 'bob', destination: '/queue/s', message: big('s2'), kept: true })).stored).to.equal(true);
      // What the router stored counts for the store: taking it makes room.
      await c.inbox.take('bob', '/queue/r');
      await c.inbox.take('bob', '/queue/s');
      await c.inbox.append('bob', '/queue/a', big('a2'));
      expect((await c.router.route({ user: 'bob', destination: '/queue/s', message: big('s3') })).stored).to.equal(true);
    });

    it('stores a message for a user subscribed nowhere', async () => {
      const result = await c.router.route({ user: 'bob', destination: '/queue/r', message: message('/user/bob/queue/r', 'kept') });
      expect(result).to.deep.equal({ local: false, remote: [], stored: true });
      expect(bodies(await c.inbox.peek('bob', '/queue/r'))).to.deep.equal(['kept']);
    });

    it('stores again once the subscriber left, whether it unsubscribed or its node closed', async () => {
      await c.presenceB.subscribed('bob', '/queue/r');
      await c.presenceA.subscribed('bob', '/queue/s');
      await c.presenceB.unsubscribed('bob', '/queue/r');
      expect(await c.router.route({ user: 'bob', destination: '/queue/r', message: message('/user/bob/queue/r', 'r1') })).to.deep.equal({
        local: false,
        remote: [],
        stored: true,
      });
      await c.presenceA.close();
      expect((await c.router.route({ user: 'bob', destination: '/queue/s', message: message('/user/bob/queue/s', 's1') })).stored).to.equal(true);
      expect(bodies(await c.inbox.peek('bob', '/queue/r'))).to.deep.equal(['r1']);
      expect(bodies(await c.inbox.peek('bob', '/queue/s'))).to.deep.equal(['s1']);
    });

    it('reports a subscription on this node as local, storing nothing', async () => {
      await c.presenceA.subscribed('bob', '/queue/r');
      const result = await c.router.route({ user: 'bob', destination: '/queue/r', message: message('/user/bob/queue/r') });
      expect(result).to.deep.equal({ local: true, remote: [], stored: false });
      expect(await c.inbox.depth('bob', '/queue/r')).to.equal(0);
    });

    it('relays to the remote node holding the subscription, in order, messages of one tick included', async () => {
      await c.presenceB.subscribed('bob', '/queue/r');
      const sent = ['m1', 'm2', 'm3', 'm4', 'm5'];
      const results = await Promise.all(sent.map((text) => c.router.route({ user: 'bob', destination: '/queue/r', message: message('/user/bob/queue/r', text) })));
      for (const result of results) expect(result).to.deep.equal({ local: false, remote: [c.b.relay.nodeId], stored: false });
      await c.b.waitFor(5);
      expect(c.b.received.map((e) => e.message.body.toString())).to.deep.equal(sent);
      expect(c.b.received.every((e) => e.kind === 'user' && e.user === 'bob' && e.destination === '/queue/r')).to.equal(true);
    });

    it('tells routeTo its outcome once per message: relayed, stored, refused', async () => {
      await c.close();
      const big = (text: string) => message('/user/bob/queue/s', text, { body: Buffer.alloc(1000, text) });
      c = await createCluster({ maxBytes: Math.floor(1.5 * encodedMessageSize(big('k0'))) });
      await c.presenceB.subscribed('bob', '/queue/r');
      const told: string[] = [];
      const all = new Promise<void>((done) => {
        const outcome = (name: string): RouteOutcome => ({
          routed: (result) => {
            told.push(`${name} routed ${result.stored ? 'stored' : result.remote.join(',')}`);
            if (told.length === 4) done();
          },
          failed: (error) => {
            told.push(`${name} failed ${(error as { code?: string }).code}`);
            if (told.length === 4) done();
          },
        });
        c.router.routeTo({ user: 'bob', destination: '/queue/r', message: message('/user/bob/queue/r', 'r1') }, outcome('r1'));
        c.router.routeTo({ user: 'bob', destination: '/queue/s', message: big('s1') }, outcome('s1'));
        c.router.routeTo({ user: 'bob', destination: '/queue/s', message: big('s2') }, outcome('s2'));
        c.router.routeTo({ user: 'bob', destination: '/queue/r', message: message('/user/bob/queue/r', 'r2') }, outcome('r2'));
      });
      await all;
      const b = c.b.relay.nodeId;
      // Told as each is settled (a stored one may be told before a relayed one sent earlier): the caller orders its answers.
      expect(told.sort()).to.deep.equal([`r1 routed ${b}`, `r2 routed ${b}`, 's1 routed stored', 's2 failed ERR_INBOX_FULL']);
      await c.b.waitFor(2);
      expect(c.b.received.map((e) => e.message.body.toString())).to.deep.equal(['r1', 'r2']);
      expect(bodies(await c.inbox.peek('bob', '/queue/s'))).to.deep.equal([big('s1').body.toString()]);
    });

    it('leaves out the excluded node, storing when it was the only one', async () => {
      await c.presenceB.subscribed('bob', '/queue/r');
      const result = await c.router.route({ user: 'bob', destination: '/queue/r', message: message('/user/bob/queue/r', 'x'), exclude: c.b.relay.nodeId });
      expect(result.stored).to.equal(true);
      expect(bodies(await c.inbox.peek('bob', '/queue/r'))).to.deep.equal(['x']);
    });

    it('stores a binary body intact, with its headers and sender', async () => {
      const body = Buffer.from([0, 1, 2, 255, 0]);
      await c.router.route({ user: 'bob', destination: '/queue/bin', message: message('/user/bob/queue/bin', '', { body, sender: 'alice', headers: { 'x-a': 'b:c' } }) });
      const [stored] = await c.inbox.peek('bob', '/queue/bin');
      expect(stored!.body.equals(body)).to.equal(true);
      expect(stored!.sender).to.equal('alice');
      expect(stored!.headers).to.deep.equal({ 'x-a': 'b:c' });
    });
  });
}

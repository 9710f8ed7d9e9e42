import { expect } from 'chai';
import type { Session } from '../../lib/broker/session.js';
import { SubscriptionRegistry, type Subscription, type SubscriptionTarget } from '../../lib/broker/subscription.js';

/** A subscription as the registry sees it: its target and identity (the session is never touched). */
function subscription(id: string, target: SubscriptionTarget): Subscription {
  return {
    id,
    session: {} as Session,
    destination: target.kind === 'user' ? `/user${target.target}` : target.name,
    ackMode: 'auto',
    target,
    prefetch: 1,
    unacked: 0,
    unackedDrained: 0,
    backlog: null,
  };
}

describe('SubscriptionRegistry, user destinations', () => {
  const inbox = (id: string, user = 'alice'): Subscription => subscription(id, { kind: 'user', user, target: '/queue/inbox' });

  it('reports the first subscriber of a user destination on add and the last on remove', () => {
    const registry = new SubscriptionRegistry();
    const [a, b] = [inbox('a'), inbox('b')];
    expect(registry.add(a)).to.equal(true);
    expect(registry.add(b)).to.equal(false);
    expect(registry.userSubscribers('alice', '/queue/inbox')).to.deep.equal([a, b]);
    expect(registry.remove(a)).to.equal(false);
    expect(registry.userSubscribers('alice', '/queue/inbox')).to.deep.equal([b]);
    expect(registry.remove(b)).to.equal(true);
    expect(registry.userSubscribers('alice', '/queue/inbox')).to.equal(undefined);
  });

  it('lists a subscription once however often it is added, and removing an unknown one changes nothing', () => {
    const registry = new SubscriptionRegistry();
    const a = inbox('a');
    registry.add(a);
    registry.add(inbox('b'));
    expect(registry.add(a)).to.equal(false);
    expect(registry.userSubscribers('alice', '/queue/inbox')!.map((sub) => sub.id)).to.deep.equal(['a', 'b']);
    expect(registry.remove(inbox('a'))).to.equal(false);
    expect(registry.remove(inbox('c', 'bob'))).to.equal(false);
    expect(registry.userSubscribers('alice', '/queue/inbox')!.map((sub) => sub.id)).to.deep.equal(['a', 'b']);
  });

  it('leaves a list handed out unchanged by later adds and removes (a delivery may be iterating it)', () => {
    const registry = new SubscriptionRegistry();
    const [a, b, c] = [inbox('a'), inbox('b'), inbox('c')];
    registry.add(a);
    registry.add(b);
    const seen: string[] = [];
    for (const sub of registry.userSubscribers('alice', '/queue/inbox')!) {
      seen.push(sub.id);
      if (sub === a) {
        registry.remove(b);
        registry.add(c);
      }
    }
    expect(seen).to.deep.equal(['a', 'b']);
    expect(registry.userSubscribers('alice', '/queue/inbox')!.map((sub) => sub.id)).to.deep.equal(['a', 'c']);
  });

  it('finds each of many destinations of one user (past the short list), through adds and removes', () => {
    const registry = new SubscriptionRegistry();
    const at = (i: number) => `/queue/d${i}`;
    const subs = Array.from({ length: 40 }, (_, i) => subscription(`s${i}`, { kind: 'user', user: 'alice', target: at(i) }));
    for (const sub of subs) expect(registry.add(sub)).to.equal(true);
    const second = subscription('again', { kind: 'user', user: 'alice', target: at(3) });
    expect(registry.add(second)).to.equal(false);
    for (let i = 0; i < 40; i++) expect(registry.userSubscribers('alice', at(i))!.map((sub) => sub.id)).to.deep.equal(i === 3 ? ['s3', 'again'] : [`s${i}`]);
    for (let i = 0; i < 40; i += 2) expect(registry.remove(subs[i]!)).to.equal(true);
    for (let i = 0; i < 40; i++) expect(registry.userSubscribers('alice', at(i))?.map((sub) => sub.id)).to.deep.equal(i % 2 === 0 ? undefined : i === 3 ? ['s3', 'again'] : [`s${i}`]);
    expect([...registry.allUserSubscriptions()]).to.have.length(21);
    expect(registry.remove(second)).to.equal(false);
    for (let i = 1; i < 40; i += 2) expect(registry.remove(subs[i]!)).to.equal(true);
    expect([...registry.allUserSubscriptions()]).to.deep.equal([]);
    // Gone whole: the first subscription again is the first for its destination.
    expect(registry.add(subs[0]!)).to.equal(true);
    expect(registry.userSubscribers('alice', at(0))).to.deep.equal([subs[0]]);
  });

  it('keeps users and destinations apart, and lists every user subscription', () => {
    const registry = new SubscriptionRegistry();
    const subs = [inbox('a'), inbox('b', 'bob'), subscription('c', { kind: 'user', user: 'alice', target: '/queue/other' }), subscription('t', { kind: 'topic', name: '/topic/x' })];
    for (const sub of subs) expect(registry.add(sub)).to.equal(true);
    expect(registry.userSubscribers('bob', '/queue/inbox')!.map((sub) => sub.id)).to.deep.equal(['b']);
    expect([...registry.allUserSubscriptions()].map((sub) => sub.id).sort()).to.deep.equal(['a', 'b', 'c']);
    expect([...registry.topicSubscribers('/topic/x')!].map((sub) => sub.id)).to.deep.equal(['t']);
  });

  it("removes one of a user's destinations without touching the others, and forgets the user with the last", () => {
    const registry = new SubscriptionRegistry();
    const other = (id: string): Subscription => subscription(id, { kind: 'user', user: 'alice', target: '/queue/other' });
    const [a, c, d] = [inbox('a'), other('c'), other('d')];
    for (const sub of [a, c, d]) registry.add(sub);
    expect(registry.userSubscribers('alice', '/queue/none')).to.equal(undefined);
    expect(registry.remove(a)).to.equal(true);
    expect(registry.userSubscribers('alice', '/queue/inbox')).to.equal(undefined);
    expect(registry.userSubscribers('alice', '/queue/other')).to.deep.equal([c, d]);
    expect(registry.remove(c)).to.equal(false);
    expect(registry.remove(d)).to.equal(true);
    expect([...registry.allUserSubscriptions()]).to.deep.equal([]);
    // Added again after the user was forgotten: first again.
    expect(registry.add(a)).to.equal(true);
    expect(registry.userSubscribers('alice', '/queue/inbox')).to.deep.equal([a]);
  });
});

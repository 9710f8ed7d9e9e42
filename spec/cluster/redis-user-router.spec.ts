import { connect } from 'node:net';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import type { BrokerMessage } from '../../lib/core/message.js';
import { decodeEnvelope, decodeEnvelopeBatch } from '../../lib/cluster/envelope-codec.js';
import { closeClient, connected, createRedisClient } from '../../lib/cluster/redis-connection.js';
import calculateSlot from 'cluster-key-slot';
import { RedisKeys, slotBucket } from '../../lib/cluster/redis-keys.js';
import { RedisPresence } from '../../lib/cluster/redis-presence.js';
import { BATCH_FIELD, ENTRY_FIELD, RedisRelay } from '../../lib/cluster/redis-relay.js';
import { MAX_ENTRY_BYTES, RedisUserRouter } from '../../lib/cluster/redis-user-router.js';
import { script, scriptSha } from '../../lib/cluster/redis-scripts.js';
import type { InboxLimits } from '../../lib/inbox/inbox-store.js';
import { RedisInboxStore } from '../../lib/inbox/redis-inbox-store.js';
import type { RedisTarget } from '../../lib/cluster/redis-target.js';
import { forEachRedisBackend } from '../helpers/redis-backends.js';
import { startRedisServer, uniquePrefix, type RedisServer } from '../helpers/redis-server.js';
import { startReplyGate } from '../helpers/reply-gate.js';
import { message, recordingNode } from './relay.contract.js';
import { eventually, recordingLogger } from './support.js';
import { userRouterContract } from './user-router.contract.js';

describe('RedisUserRouter', () => {
  let server: RedisServer;
  before(async () => (server = await startRedisServer()));
  after(async () => server.stop());

  /** `routerTarget`: where the router alone connects (a proxy in front of `target`). */
  async function setup(limits: Partial<InboxLimits> = {}, target: RedisTarget = server.url, routerTarget: RedisTarget = target) {
    const common = { keyPrefix: uniquePrefix('router'), logger: recordingLogger() };
    // Quick beats: a crashed node drops out within a few hundred ms.
    const presenceA = new RedisPresence('a', target, { ...common, beatIntervalMs: 100 });
    const presenceB = new RedisPresence('b', target, { ...common, beatIntervalMs: 100 });
    await presenceA.start();
    await presenceB.start();
    const relayB = new RedisRelay('b', target, common);
    relayB.setLease(presenceB);
    const b = recordingNode(relayB);
    // While held, b handles nothing (its reader awaits the handler), so it trims nothing either.
    let held: Promise<void> | undefined;
    await relayB.start((envelope) => (held ? held.then(() => b.handler(envelope)) : b.handler(envelope)));
    const inbox = new RedisInboxStore(target, { ...common, maxMessages: 100, ttlSeconds: 60, ...limits });
    const router = new RedisUserRouter('a', routerTarget, { ...common, inboxMaxMessages: 100, inboxTtlSeconds: 60, ...(limits.maxBytes ? { inboxMaxBytes: limits.maxBytes } : {}) });
    return {
      router,
      presenceA,
      presenceB,
      inbox,
      b,
      relayB,
      keys: new RedisKeys(common.keyPrefix),
      /** b handles nothing until `until` settles. */
      holdB(until: Promise<void>) {
        held = until;
      },
      async close() {
        await Promise.all([presenceA.leave(), presenceB.leave()]);
        await Promise.all([relayB.close(), inbox.close(), router.close()]);
        await Promise.all([presenceA.close(), presenceB.close()]);
      },
    };
  }

  forEachRedisBackend((backend) => {
    userRouterContract('RedisUserRouter (one script call per tick)', (limits) => setup(limits, backend.target));

    it(`hands one tick's messages to a node as one entry per stream of it, whatever slots their users are in (${backend.label})`, async () => {
      const c = await setup({}, backend.target);
      const admin = createRedisClient(backend.target, 'command', { logger: recordingLogger(), name: 'admin' });
      try {
        // No offline queue: wait for the connection (on a cluster, to every master) before the first command.
        await connected(admin, 10_000);
        const users = Array.from({ length: 8 }, (_, i) => `tick-user-${i}`);
        for (const user of users) await c.presenceB.subscribed(user, '/queue/r');
        // b's streams: one off a cluster, a partition per master on one (redis-keys.ts).
        const owners = c.relayB.streamOwners();
        expect(owners).to.have.length(backend.name === 'cluster' ? 3 : 1);
        const partitionOf = (user: string) => owners[slotBucket(calculateSlot(c.keys.inbox(user, '')), owners.length)]!;
        // Entries ever added (b's reader trims what it handled; this count stays).
        const added = async () => {
          let total = 0;
          for (const owner of owners) {
            const info = (await admin.xinfo('STREAM', c.keys.stream(owner))) as unknown[];
            total += Number(info[info.indexOf('entries-added') + 1]);
          }
          return total;
        };
        const before = await added();
        const sent = users.map((user) => message(`/user/${user}/queue/r`, user));
        await Promise.all(sent.map((m, i) => c.router.route({ user: users[i]!, destination: '/queue/r', message: m })));
        await c.b.waitFor(users.length);
        expect(await added()).to.equal(before + new Set(users.map(partitionOf)).size);
        if (owners.length === 1) expect(c.b.received.map((e) => e.message.id)).to.deep.equal(sent.map((m) => m.id));
        else expect(c.b.received.map((e) => e.message.id)).to.have.members(sent.map((m) => m.id));
      } finally {
        await closeClient(admin);
        await c.close();
      }
    });
  });

  /**
   * Routes `messages` to bob at `destination` (subscribed on node b) in one
   * call, waits for b to receive them, and returns what b received and the
   * stream entries written meanwhile (they stay for the reader's replay window).
   */
  async function routeToB(destination: string, messages: BrokerMessage[]) {
    const c = await setup();
    const admin = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await admin.connect();
      await c.presenceB.subscribed('bob', destination);
      const stream = c.keys.stream('b');
      // A reader of its own sees every entry: b, which trims what it handled, is held until then (a
      // tick's entries may be written by more than one call, and b could trim one between two reads).
      let release!: () => void;
      c.holdB(new Promise<void>((resolve) => (release = resolve)));
      const entries: Array<[Buffer, Buffer[]]> = [];
      const info = (await admin.xinfo('STREAM', stream)) as unknown[];
      let last = String(info[info.indexOf('last-generated-id') + 1]);
      let envelopes = 0;
      const watching = (async () => {
        while (envelopes < messages.length) {
          const reply = await admin.xreadBuffer('BLOCK', 5000, 'STREAMS', stream, last);
          if (!reply) throw new Error('no stream entry within 5 s');
          for (const [id, fields] of reply[0]![1]) {
            entries.push([id, fields]);
            last = id.toString();
            envelopes += fields[0]!.toString() === BATCH_FIELD ? decodeEnvelopeBatch(fields[1]!).length : 1;
          }
        }
      })();
      await Promise.all(messages.map((m) => c.router.route({ user: 'bob', destination, message: m })));
      await watching;
      release();
      await c.b.waitFor(messages.length);
      return { received: c.b.received, entries };
    } finally {
      admin.disconnect();
      await c.close();
    }
  }

  it('writes what one call sends to one node as one stream entry, a batch in call order', async () => {
    const sent = ['m1', 'm2', 'm3', 'm4', 'm5'].map((text) => message('/user/bob/queue/r', text));
    const { received, entries } = await routeToB('/queue/r', sent);
    expect(received.map((e) => e.message.body.toString())).to.deep.equal(['m1', 'm2', 'm3', 'm4', 'm5']);
    expect(entries).to.have.length(1);
    const [[, packed]] = entries;
    expect(packed[0]!.toString()).to.equal(BATCH_FIELD);
    expect(decodeEnvelopeBatch(packed[1]!).map((e) => e.message.id)).to.deep.equal(sent.map((m) => m.id));
  });

  it('on one Redis, hands a message to a node its recent messages went to in the decision itself (one call), in order', async () => {
    const c = await setup();
    try {
      await c.presenceB.subscribed('bob', '/queue/one');
      const sent = Array.from({ length: 5 }, (_, i) => message('/user/bob/queue/one', `m${i}`));
      // The first finds b by the decision and hands off apart; b is a candidate from then on.
      await c.router.route({ user: 'bob', destination: '/queue/one', message: sent[0]! });
      expect([c.router.handedApart, c.router.handedInDecision]).to.deep.equal([1, 0]);
      for (const m of sent.slice(1)) expect((await c.router.route({ user: 'bob', destination: '/queue/one', message: m })).remote).to.deep.equal(['b']);
      expect([c.router.handedApart, c.router.handedInDecision]).to.deep.equal([1, 4]);
      await c.b.waitFor(5);
      expect(c.b.received.map((e) => e.message.id)).to.deep.equal(sent.map((m) => m.id));
      // Nobody subscribed any more: stored, whatever the candidates.
      await c.presenceB.unsubscribed('bob', '/queue/one');
      expect((await c.router.route({ user: 'bob', destination: '/queue/one', message: message('/user/bob/queue/one', 'late') })).stored).to.equal(true);
    } finally {
      await c.close();
    }
  });

  it('on one Redis, hands no message off in the decision while a call made before is still to hand one off to that node (order)', async () => {
    // The interleaving (session 14's reorder at the start of a stream): b is first seen by a reply
    // while a later call is out; a call made after that reply, before b joins the candidates,
    // needs a hand-off of its own, issued only after its reply; were b to join before that
    // call's hand-off is issued, the next message would be written in its decision first.
    const gate = await startReplyGate(server.port);
    const c = await setup({}, server.url, gate.url);
    try {
      await c.presenceB.subscribed('bob', '/queue/o');
      await c.presenceB.subscribed('carol', '/queue/o');
      // The router's connections are up and its scripts loaded (a message for nobody is stored).
      expect((await c.router.route({ user: 'nobody', destination: '/queue/o', message: message('/user/nobody/queue/o') })).stored).to.equal(true);
      const [m1, m2, m3] = ['m1', 'm2', 'm3'].map((text) => message('/user/bob/queue/o', text)) as [BrokerMessage, BrokerMessage, BrokerMessage];
      const toCarol = message('/user/carol/queue/o', 'c1');
      const routed: Array<Promise<unknown>> = [];
      const route = (user: string, m: BrokerMessage) => routed.push(c.router.route({ user, destination: '/queue/o', message: m }));
      gate.hold();
      route('bob', m1); // call 1
      await gate.waitHeld(1);
      route('carol', toCarol); // call 2
      await gate.waitHeld(2);
      // Call 1's reply: b seen while call 2 is out; m1's hand-off goes out (its reply held).
      gate.release(1);
      await gate.waitHeld(2);
      route('bob', m2); // call 3: b is not a candidate yet, so m2 comes back to be handed off
      await gate.waitHeld(3);
      // Call 2's reply: its hand-off to b goes out; every call made before b was seen is issued now.
      gate.release(1);
      await gate.waitHeld(3);
      route('bob', m3); // call 4: call 3's hand-off (m2) is not issued yet
      await gate.waitHeld(4);
      gate.open();
      await Promise.all(routed);
      await c.b.waitFor(4);
      const toBob = c.b.received.filter((e) => e.kind === 'user' && e.user === 'bob').map((e) => e.message.body.toString());
      expect(toBob).to.deep.equal(['m1', 'm2', 'm3']);
    } finally {
      gate.open();
      await c.close();
      await gate.close();
    }
  });

  it("on one Redis, stores in the decision itself a message whose only target is a candidate without a stream (reaped, or rejoining before it reopens)", async () => {
    const c = await setup();
    const admin = new Redis(server.url, { maxRetriesPerRequest: 0 });
    try {
      await c.presenceB.subscribed('bob', '/queue/two');
      await c.router.route({ user: 'bob', destination: '/queue/two', message: message('/user/bob/queue/two', 'first') });
      await c.b.waitFor(1);
      // b's stream moves away (as a reap moves it) while its subscription is still recorded.
      await admin.rename(c.keys.stream('b'), `${c.keys.stream('b')}!moved`);
      const before = [c.router.handedApart, c.router.handedInDecision];
      const result = await c.router.route({ user: 'bob', destination: '/queue/two', message: message('/user/bob/queue/two', 'second') });
      expect(result).to.deep.equal({ local: false, stored: true, remote: [] });
      // Decided in one call: no hand-off tried, no second decision.
      expect([c.router.handedApart, c.router.handedInDecision]).to.deep.equal(before);
      expect(await c.inbox.depth('bob', '/queue/two')).to.equal(1);
    } finally {
      admin.disconnect();
      await c.close();
    }
  });

  it('on one Redis, decides a tick that interleaves two nodes and the inbox in one call: each node one entry in order, each message its own outcome', async () => {
    // dave's inbox holds two small messages, not a large third one.
    const c = await setup({ maxBytes: 1000 });
    const common = { keyPrefix: c.keys.prefix, logger: recordingLogger() };
    const presenceC = new RedisPresence('c', server.url, { ...common, beatIntervalMs: 100 });
    await presenceC.start();
    const relayC = new RedisRelay('c', server.url, common);
    relayC.setLease(presenceC);
    const nodeC = recordingNode(relayC);
    await relayC.start(nodeC.handler);
    const admin = new Redis(server.url, { maxRetriesPerRequest: 0 });
    try {
      await c.presenceB.subscribed('bob', '/queue/mix');
      await presenceC.subscribed('carol', '/queue/mix');
      await c.presenceB.subscribed('erin', '/queue/mix');
      await c.presenceB.subscribed('bob', '/queue/mix2');
      // One message each first: b and c become candidates, handed off to in the decision from then on.
      const primers = [
        { user: 'bob', text: 'bob-0' },
        { user: 'carol', text: 'carol-0' },
      ];
      for (const { user, text } of primers) await c.router.route({ user, destination: '/queue/mix', message: message(`/user/${user}/queue/mix`, text) });
      await c.b.waitFor(1);
      await nodeC.waitFor(1);
      const added = async (node: string) => {
        const info = (await admin.xinfo('STREAM', c.keys.stream(node))) as unknown[];
        return Number(info[info.indexOf('entries-added') + 1]);
      };
      const before = { b: await added('b'), c: await added('c'), apart: c.router.handedApart, inDecision: c.router.handedInDecision };
      // dave is subscribed nowhere: stored, between messages handed off, with the same run of outcomes broken each time.
      const plan = [
        { user: 'bob', destination: '/queue/mix', text: 'bob-1' },
        { user: 'carol', destination: '/queue/mix', text: 'carol-1' },
        { user: 'dave', destination: '/queue/mix', text: 'dave-1' },
        { user: 'bob', destination: '/queue/mix', text: 'bob-2' },
        { user: 'erin', destination: '/queue/mix', text: 'erin-1' },
        { user: 'bob', destination: '/queue/mix2', text: 'bob-3' },
        { user: 'carol', destination: '/queue/mix', text: 'carol-2' },
        { user: 'dave', destination: '/queue/mix', text: 'dave-2' },
        { user: 'dave', destination: '/queue/mix', text: 'dave-3', body: Buffer.alloc(2000, 0x64) },
        { user: 'bob', destination: '/queue/mix', text: 'bob-4' },
      ];
      // One tick: one decision.
      const results = await Promise.allSettled(
        plan.map(({ user, destination, text, body }) =>
          c.router.route({ user, destination, message: message(`/user/${user}${destination}`, text, body === undefined ? {} : { body }) }),
        ),
      );
      expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as { code?: string }).code))).to.deep.equal(
        plan.map(({ user, text }) =>
          text === 'dave-3'
            ? 'ERR_INBOX_FULL'
            : user === 'dave'
              ? { local: false, stored: true, remote: [] }
              : { local: false, stored: false, remote: [user === 'carol' ? 'c' : 'b'] },
        ),
      );
      expect([c.router.handedApart - before.apart, c.router.handedInDecision - before.inDecision]).to.deep.equal([0, 7]);
      await c.b.waitFor(6);
      await nodeC.waitFor(3);
      const texts = (node: { received: Array<{ message: BrokerMessage }> }) => node.received.map((e) => e.message.body.toString());
      expect(texts(c.b)).to.deep.equal(['bob-0', 'bob-1', 'bob-2', 'erin-1', 'bob-3', 'bob-4']);
      expect(texts(nodeC)).to.deep.equal(['carol-0', 'carol-1', 'carol-2']);
      expect(c.b.received.map((e) => (e.kind === 'user' ? `${e.user}${e.destination}` : ''))).to.deep.equal([
        'bob/queue/mix',
        'bob/queue/mix',
        'bob/queue/mix',
        'erin/queue/mix',
        'bob/queue/mix2',
        'bob/queue/mix',
      ]);
      expect({ b: (await added('b')) - before.b, c: (await added('c')) - before.c }).to.deep.equal({ b: 1, c: 1 });
      const stored = await c.inbox.peek('dave', '/queue/mix');
      expect(stored.map((m) => m.body.toString())).to.deep.equal(['dave-1', 'dave-2']);
      expect(stored.map((m) => m.destination)).to.deep.equal(['/user/dave/queue/mix', '/user/dave/queue/mix']);
    } finally {
      admin.disconnect();
      await presenceC.leave();
      await relayC.close();
      await presenceC.close();
      await c.close();
    }
  });

  it('on one Redis, sends a PING ahead of each appending call, so that Redis writes its pushes before its reply', async () => {
    // Redis writes the clients that got output in one turn newest first: the reply, made after the
    // script's PUBLISH, went out to the sender before the push to the receiving node. A PING ahead
    // gives the sender's connection output first (measured with strace and ab.ts:
    // docs/bench/two-node-profile.md, "Session 18"). What Redis ran, per client, in order:
    const c = await setup();
    // A raw MONITOR connection (ioredis' monitor() can trip over replies of its own set-up under load).
    const monitor = connect({ host: '127.0.0.1', port: server.port });
    const bySource = new Map<string, string[]>();
    let text = '';
    let monitoring = false;
    monitor.setEncoding('latin1');
    monitor.on('data', (chunk: string) => {
      text += chunk;
      let end: number;
      while ((end = text.indexOf('\r\n')) >= 0) {
        // +<time> [<db> <source>] "<command>" "<first argument>" ... (arguments escaped: no CRLF inside)
        const reply = text.slice(0, end);
        text = text.slice(end + 2);
        if (reply === '+OK') monitoring = true;
        const line = /^\+[\d.]+ \[\d+ ([^\]]+)\] "([^"]*)"(?: "([^"]*)")?/.exec(reply);
        const command = line?.[2]?.toLowerCase();
        // The connection's set-up (CLIENT SETNAME, SCRIPT LOAD) left out.
        if (line === null || (command !== 'ping' && command !== 'evalsha')) continue;
        const list = bySource.get(line[1]!) ?? [];
        list.push(command === 'evalsha' ? `evalsha ${line[3]}` : command);
        bySource.set(line[1]!, list);
      }
    });
    monitor.write('MONITOR\r\n');
    await eventually(() => expect(monitoring).to.equal(true));
    try {
      await c.presenceB.subscribed('bob', '/queue/order');
      // The first is handed off by a call of its own, the others in the decision (b a candidate by then).
      for (let i = 0; i < 3; i++) await c.router.route({ user: 'bob', destination: '/queue/order', message: message('/user/bob/queue/order', `o${i}`) });
      expect([c.router.handedApart, c.router.handedInDecision]).to.deep.equal([1, 2]);
      const [route, handoff] = [scriptSha(script('route')), scriptSha(script('relay-handoff'))];
      const expected = ['ping', `evalsha ${route}`, 'ping', `evalsha ${handoff}`, 'ping', `evalsha ${route}`, 'ping', `evalsha ${route}`];
      await eventually(() => expect([...bySource.values()].filter((commands) => commands.includes(`evalsha ${route}`))).to.deep.equal([expected]));
    } finally {
      monitor.destroy();
      await c.close();
    }
  });

  it('writes a message routed alone as a plain entry', async () => {
    const { entries } = await routeToB('/queue/r', [message('/user/bob/queue/r', 'alone')]);
    expect(entries).to.have.length(1);
    const [[, lone]] = entries;
    expect(lone[0]!.toString()).to.equal(ENTRY_FIELD);
    expect(decodeEnvelope(lone[1]!).message.body.toString()).to.equal('alone');
  });

  it('starts a new entry before one would pass MAX_ENTRY_BYTES, keeping the order', async () => {
    // Two fit in one entry, the third does not; the small one after it joins it.
    const big = Buffer.alloc(Math.floor(MAX_ENTRY_BYTES * 0.4), 0x61);
    const sent = ['a', 'b', 'c'].map((name) => message('/user/bob/queue/big', name, { body: Buffer.concat([Buffer.from(name), big]) }));
    sent.push(message('/user/bob/queue/big', 'd'));
    const { received, entries } = await routeToB('/queue/big', sent);
    expect(received.map((e) => e.message.body.subarray(0, 1).toString())).to.deep.equal(['a', 'b', 'c', 'd']);
    expect(entries.map(([, fields]) => fields[0]!.toString())).to.deep.equal([BATCH_FIELD, BATCH_FIELD]);
    expect(entries.map(([, fields]) => decodeEnvelopeBatch(fields[1]!).length)).to.deep.equal([2, 2]);
  });

  it('refuses a message its envelope cannot hold, alone: the others of its tick are relayed in order', async () => {
    const c = await setup();
    try {
      await c.presenceB.subscribed('bob', '/queue/r');
      const bad = message('/user/bob/queue/r', 'm2', { sender: 'x'.repeat(70_000) });
      const [first, second, third] = await Promise.allSettled([
        c.router.route({ user: 'bob', destination: '/queue/r', message: message('/user/bob/queue/r', 'm1') }),
        c.router.route({ user: 'bob', destination: '/queue/r', message: bad }),
        c.router.route({ user: 'bob', destination: '/queue/r', message: message('/user/bob/queue/r', 'm3') }),
      ]);
      expect([first.status, second.status, third.status]).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
      expect(String((second as PromiseRejectedResult).reason)).to.contain('sender of 70000 bytes');
      await c.b.waitFor(2);
      expect(c.b.received.map((e) => e.message.body.toString())).to.deep.equal(['m1', 'm3']);
      expect(c.b.received.map((e) => e.message.id)).to.not.include(bad.id);
    } finally {
      await c.close();
    }
  });

  it('relays a tick whose records run into a second arena chunk whole and in order, small and large', async () => {
    // 256 KiB chunks: the third 100 KB message starts a new one, so the call's bodies are copied, not sliced.
    const sent = ['a', 'b', 'c', 'd', 'e'].map((name, i) =>
      message('/user/bob/queue/big', name, { body: Buffer.concat([Buffer.from(name), Buffer.alloc(i % 2 === 0 ? 100_000 : 10, name)]) }),
    );
    const { received } = await routeToB('/queue/big', sent);
    expect(received.map((e) => e.message.id)).to.deep.equal(sent.map((m) => m.id));
    for (let i = 0; i < sent.length; i++) expect(received[i]!.message.body.equals(sent[i]!.body)).to.equal(true);
  });

  it('stores for a subscribed node that stopped beating, once its key expired', async () => {
    const c = await setup();
    try {
      await c.presenceB.subscribed('bob', '/queue/r');
      expect((await c.router.route({ user: 'bob', destination: '/queue/r', message: message('/user/bob/queue/r', 'm1') })).remote).to.deep.equal(['b']);
      c.presenceB.crash();
      await eventually(async () => {
        const result = await c.router.route({ user: 'bob', destination: '/queue/r', message: message('/user/bob/queue/r', 'later') });
        expect(result.stored).to.equal(true);
      }, 5000, 50);
      expect(await c.inbox.depth('bob', '/queue/r')).to.be.at.least(1);
    } finally {
      await c.close();
    }
  });

  it('refuses a message whole with ERR_RELAY_FULL once the target stream holds maxStreamBytes, but never a re-route', async () => {
    const common = { keyPrefix: uniquePrefix('full'), logger: recordingLogger() };
    const keys = new RedisKeys(common.keyPrefix);
    const admin = new Redis(server.url, { maxRetriesPerRequest: 0 });
    const presenceB = new RedisPresence('b', server.url, common);
    // b is registered with a stream, but reads nothing: a node that does not keep up.
    await presenceB.start();
    await presenceB.subscribed('bob', '/queue/r');
    await admin.xadd(keys.stream('b'), '*', ENTRY_FIELD, '');
    await admin.xtrim(keys.stream('b'), 'MAXLEN', 0);
    const router = new RedisUserRouter('a', server.url, { ...common, maxStreamBytes: 5000, inboxMaxMessages: 100, inboxTtlSeconds: 60 });
    try {
      const body = Buffer.alloc(1000, 0x62);
      let accepted = 0;
      let refusal: unknown;
      for (let i = 0; i < 10 && refusal === undefined; i++) {
        await router.route({ user: 'bob', destination: '/queue/r', message: message('/user/bob/queue/r', `m${i}`, { body }) }).then(
          () => void accepted++,
          (error: unknown) => void (refusal = error),
        );
      }
      expect(accepted).to.equal(4);
      expect((refusal as { code?: string }).code).to.equal('ERR_RELAY_FULL');
      // Nothing of the refused message was written, nor stored in the inbox.
      expect(await admin.xlen(keys.stream('b'))).to.equal(4);
      expect(await admin.llen(keys.inbox('bob', '/queue/r'))).to.equal(0);
      expect(Number(await admin.get(keys.streamBytes('b')))).to.be.within(4000, 5000);
      // A message accepted before (re-routed after a node died) is kept whatever the bound.
      await router.route({ user: 'bob', destination: '/queue/r', message: message('/user/bob/queue/r', 'kept', { body }), kept: true });
      expect(await admin.xlen(keys.stream('b'))).to.equal(5);
    } finally {
      admin.disconnect();
      await router.close();
      await presenceB.close();
    }
  });
});

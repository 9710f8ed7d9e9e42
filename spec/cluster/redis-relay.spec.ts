import { expect } from 'chai';
import { Redis } from 'ioredis';
import { BrokerError } from '../../lib/core/errors.js';
import type { RelayEnvelope, RelayHandler } from '../../lib/cluster/relay.js';
import { RedisKeys } from '../../lib/cluster/redis-keys.js';
import { RedisPresence } from '../../lib/cluster/redis-presence.js';
import { encodeEnvelope, encodeEnvelopeBatch } from '../../lib/cluster/envelope-codec.js';
import { BATCH_FIELD, nextStreamId, RedisRelay, type RedisRelayOptions } from '../../lib/cluster/redis-relay.js';
import { RedisUserRouter } from '../../lib/cluster/redis-user-router.js';
import { compareStreamIds, parsePush } from '../../lib/cluster/redis-push-feed.js';
import { script } from '../../lib/cluster/redis-scripts.js';
import type { RedisTarget } from '../../lib/cluster/redis-target.js';
import { forEachRedisBackend } from '../helpers/redis-backends.js';
import { startRedisServer, uniquePrefix, type RedisServer } from '../helpers/redis-server.js';
import { message, recordingNode, relayContract, userEnvelope, type RelayNode } from './relay.contract.js';
import { deferred, eventually, recordingLogger } from './support.js';

const texts = (envelopes: readonly RelayEnvelope[]): string[] => envelopes.map((e) => e.message.body.toString());

/**
 * The production write path, as the broker uses it: the targets hold a
 * subscription of the envelope's user, and the sender's router routes to
 * them. Rejects unless exactly the targets got it.
 */
async function sendVia(
  router: RedisUserRouter,
  members: ReadonlyMap<string, { presence: RedisPresence }>,
  targets: readonly string[],
  envelope: RelayEnvelope,
): Promise<void> {
  if (envelope.kind !== 'user') throw new Error('only user envelopes are routed');
  const { user, destination, message } = envelope;
  for (const id of targets) await members.get(id)!.presence.subscribed(user, destination);
  const result = await router.route({ user, destination, message });
  if ([...result.remote].sort().join() !== [...targets].sort().join()) {
    throw new Error(`routed to [${result.remote.join()}]${result.stored ? ' (stored)' : ''}, not to [${targets.join()}]`);
  }
}

async function rejection(promise: Promise<unknown>): Promise<BrokerError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(BrokerError);
    return error as BrokerError;
  }
  return expect.fail('resolved, expected a rejection');
}

describe('RedisRelay', () => {
  let server: RedisServer;
  let admin: Redis;

  before(async () => {
    server = await startRedisServer();
    admin = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, lazyConnect: true });
    admin.on('error', () => {});
    await admin.connect();
  });

  after(async () => {
    admin.disconnect();
    await server.stop();
  });

  interface Member extends RelayNode {
    relay: RedisRelay;
    presence: RedisPresence;
    router: RedisUserRouter;
    handler: RelayHandler;
  }

  /** Nodes with presence and relay on one key prefix; `handlers` may wrap a node's recording handler. */
  function cluster(relayOptions: Partial<RedisRelayOptions> = {}, target: RedisTarget = server.url) {
    const keyPrefix = uniquePrefix('relay');
    const members = new Map<string, Member>();
    const common = { keyPrefix, logger: recordingLogger(), reconnectMinDelayMs: 20, reconnectMaxDelayMs: 100 };
    return {
      keys: new RedisKeys(keyPrefix),
      members,
      async node(id: string, wrap?: (record: (e: RelayEnvelope) => void) => RelayHandler): Promise<Member> {
        const presence = new RedisPresence(id, target, { ...common, beatIntervalMs: 100 });
        const relay = new RedisRelay(id, target, { ...common, ...relayOptions });
        relay.setLease(presence);
        const router = new RedisUserRouter(id, target, { ...common, inboxMaxMessages: 1000, inboxTtlSeconds: 60 });
        const recording = recordingNode(relay, (targets, envelope) => sendVia(router, members, targets, envelope));
        const handler = wrap ? wrap(recording.handler) : recording.handler;
        await presence.start();
        await relay.start(handler);
        const member: Member = { ...recording, relay, presence, router, handler };
        members.set(id, member);
        return member;
      },
      async kill(id: string) {
        members.get(id)!.relay.crash();
      },
      async close() {
        // Leave presence first: then nothing more is sent to a closing node's stream.
        await Promise.all([...members.values()].map((m) => m.presence.leave()));
        await Promise.all([...members.values()].map((m) => m.relay.close()));
        await Promise.all([...members.values()].map((m) => m.router.close()));
        await Promise.all([...members.values()].map((m) => m.presence.close()));
      },
    };
  }

  // The contract's exactly-once recovery holds with no replay window; the window is tested below.
  forEachRedisBackend((backend) => relayContract('RedisRelay', async () => cluster({ replayWindowMs: 0 }, backend.target)));

  describe('streams', () => {
    let c: ReturnType<typeof cluster>;
    afterEach(async () => c.close());

    it('without a replay window, keeps in a node stream only what the node has not delivered', async () => {
      c = cluster({ replayWindowMs: 0 });
      const a = await c.node('a');
      const b = await c.node('b');
      for (let i = 0; i < 10; i++) await a.send(['b'], userEnvelope('bob', '/queue/q', `m${i}`));
      await b.waitFor(10);
      await eventually(async () => expect(await admin.xlen(c.keys.stream('b'))).to.equal(0));
    });

    it('keeps an entry a client-ack delivery holds until released, then forgets it without waiting for the window', async () => {
      c = cluster({ replayWindowMs: 60_000 });
      const a = await c.node('a');
      const releases: Array<() => void> = [];
      const b = await c.node('b', (record) => (envelope, hold) => {
        if (hold) releases.push(hold());
        record(envelope);
      });
      for (let i = 0; i < 3; i++) await a.send(['b'], userEnvelope('bob', '/queue/q', `m${i}`));
      await b.waitFor(3);
      expect(await admin.xlen(c.keys.stream('b'))).to.equal(3);
      // Acked out of order: the middle one goes on its own (XDEL), then the rest.
      releases[1]!();
      await eventually(async () => expect(await admin.xlen(c.keys.stream('b'))).to.equal(2));
      releases[0]!();
      releases[2]!();
      await eventually(async () => expect(await admin.xlen(c.keys.stream('b'))).to.equal(0));
      expect(Number(await admin.get(c.keys.streamBytes('b')))).to.equal(0);
    });

    it('keeps entries written under ack:auto for the replay window, and recovery re-hands them with their message-id', async () => {
      c = cluster({ replayWindowMs: 60_000 });
      const a = await c.node('a');
      // b writes each to a socket under ack:auto (nothing will confirm it).
      const b = await c.node('b', (record) => (envelope, hold) => {
        hold?.unconfirmed();
        record(envelope);
      });
      const s = await c.node('s');
      for (let i = 0; i < 3; i++) await a.send(['b'], userEnvelope('bob', '/queue/q', `m${i}`));
      await b.waitFor(3);
      expect(await admin.xlen(c.keys.stream('b'))).to.equal(3);
      const recovered: RelayEnvelope[] = [];
      const done = deferred<number>(5000, 'recovery');
      for (const survivor of [a, s]) {
        survivor.presence.onRecover(async (tag) => {
          done.resolve(await survivor.relay.recoverNode(tag, (envelope) => void recovered.push(envelope)));
        });
      }
      b.presence.crash();
      b.relay.crash();
      expect(await done.promise).to.equal(3);
      // Handed to b's sockets but maybe not on the wire when it died: re-routed, same ids.
      expect(texts(recovered)).to.deep.equal(['m0', 'm1', 'm2']);
      expect(recovered.map((e) => e.message.id)).to.deep.equal(b.received.map((e) => e.message.id));
    });

    it('retries a failing handler and keeps order', async () => {
      c = cluster();
      let failures = 1;
      const a = await c.node('a');
      const b = await c.node('b', (record) => (envelope) => {
        if (texts([envelope])[0] === 'm1' && failures-- > 0) throw new Error('delivery failed once');
        record(envelope);
      });
      for (const text of ['m0', 'm1', 'm2']) await a.send(['b'], userEnvelope('bob', '/queue/q', text));
      await b.waitFor(3);
      expect(texts(b.received)).to.deep.equal(['m0', 'm1', 'm2']);
    });

    it('keeps an envelope whose handler cannot reach Redis, however often, instead of skipping it', async () => {
      c = cluster({ maxHandlerAttempts: 2 });
      let unavailable = 5;
      const a = await c.node('a');
      const b = await c.node('b', (record) => (envelope) => {
        if (unavailable-- > 0) throw new BrokerError('ERR_CLUSTER_UNAVAILABLE', 'inbox unreachable');
        record(envelope);
      });
      await a.send(['b'], userEnvelope('bob', '/queue/q', 'kept'));
      await b.waitFor(1);
      expect(texts(b.received)).to.deep.equal(['kept']);
    });

    it('hands what arrived while the handler was busy to the handler on close', async () => {
      c = cluster();
      const gate = deferred<void>(5000, 'gate');
      const entered = deferred<void>(5000, 'handler entered');
      const a = await c.node('a');
      const b = await c.node('b', (record) => async (envelope) => {
        if (texts([envelope])[0] === 'm0') {
          entered.resolve();
          await gate.promise;
        }
        record(envelope);
      });
      await a.send(['b'], userEnvelope('bob', '/queue/q', 'm0'));
      await entered.promise;
      for (const text of ['m1', 'm2', 'm3']) await a.send(['b'], userEnvelope('bob', '/queue/q', text));
      await b.presence.leave();
      const closing = b.relay.close();
      gate.resolve();
      await closing;
      expect(texts(b.received)).to.deep.equal(['m0', 'm1', 'm2', 'm3']);
      expect(await admin.exists(c.keys.stream('b'))).to.equal(0);
    });

    it('gives a live node what a killed node left, through onRecover and recoverNode', async () => {
      c = cluster();
      const entered = deferred<void>(5000, 'handler entered');
      const a = await c.node('a');
      const s = await c.node('s');
      // b takes the first envelope and never finishes it: killed mid-delivery.
      const b = await c.node('b', () => async () => {
        entered.resolve();
        await new Promise(() => {});
      });
      const recovered: RelayEnvelope[] = [];
      const done = deferred<number>(5000, 'recovery');
      for (const survivor of [a, s]) {
        survivor.presence.onRecover(async (tag) => {
          done.resolve(await survivor.relay.recoverNode(tag, (envelope) => void recovered.push(envelope)));
        });
      }
      await a.send(['b'], userEnvelope('bob', '/queue/q', 'm0'));
      await entered.promise;
      for (const text of ['m1', 'm2']) await a.send(['b'], userEnvelope('bob', '/queue/q', text));
      b.presence.crash();
      b.relay.crash();

      expect(await done.promise).to.equal(3);
      // At least once: the envelope b was delivering when it died is handed over too.
      expect(texts(recovered)).to.deep.equal(['m0', 'm1', 'm2']);
      expect(await admin.exists(c.keys.stream('b'))).to.equal(0);
    });

    it('keeps a batch entry in order when the handler is synchronous for some envelopes, asynchronous or throwing for others', async () => {
      // The read loop stays synchronous while the handler is (redis-relay.ts handleEntry) and
      // takes the rest of an entry onto the async path at the first promise or throw.
      c = cluster();
      let thrown = 0;
      const b = await c.node('b', (record) => (envelope) => {
        const text = texts([envelope])[0]!;
        if (text === 'm1' || text === 'm4') return new Promise<void>((resolve) => setTimeout(() => resolve(record(envelope)), 20));
        if (text === 'm2' && thrown++ === 0) throw new Error('delivery failed once');
        record(envelope);
        return undefined;
      });
      const batch = (...names: string[]) => encodeEnvelopeBatch(names.map((name) => encodeEnvelope(userEnvelope('bob', '/queue/q', name))));
      await admin.xadd(c.keys.stream('b'), '*', BATCH_FIELD, batch('m0', 'm1', 'm2', 'm3'));
      await admin.xadd(c.keys.stream('b'), '*', 'e', encodeEnvelope(userEnvelope('bob', '/queue/q', 'm4')));
      await admin.xadd(c.keys.stream('b'), '*', BATCH_FIELD, batch('m5', 'm6'));
      await b.waitFor(7);
      expect(texts(b.received)).to.deep.equal(['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6']);
      expect(thrown).to.equal(2);
    });

    it('hands over the envelopes of a batch entry in order, when reading and when recovering a dead node', async () => {
      c = cluster();
      const b = await c.node('b');
      const batch = (...names: string[]) => encodeEnvelopeBatch(names.map((name) => encodeEnvelope(userEnvelope('bob', '/queue/q', name))));
      await admin.xadd(c.keys.stream('b'), '*', BATCH_FIELD, batch('m0', 'm1', 'm2'));
      await b.waitFor(3);
      expect(texts(b.received)).to.deep.equal(['m0', 'm1', 'm2']);

      // A node that never read its stream: recovery splits its entries the same way.
      await admin.xadd(c.keys.stream('gone'), '*', BATCH_FIELD, batch('r0', 'r1'));
      await admin.xadd(c.keys.stream('gone'), '*', 'e', encodeEnvelope(userEnvelope('bob', '/queue/q', 'r2')));
      const recovered: RelayEnvelope[] = [];
      expect(await b.relay.recoverNode('gone', (envelope) => void recovered.push(envelope))).to.equal(3);
      expect(texts(recovered)).to.deep.equal(['r0', 'r1', 'r2']);
    });

    it('moves a malformed batch entry to the dead-letter stream with an error log and goes on reading', async () => {
      const logger = recordingLogger();
      c = cluster();
      const relay = new RedisRelay('b', server.url, { keyPrefix: c.keys.prefix, logger });
      const received: RelayEnvelope[] = [];
      await relay.start((envelope) => void received.push(envelope));
      try {
        const good = encodeEnvelope(userEnvelope('bob', '/queue/q', 'after'));
        await admin.xadd(c.keys.stream('b'), '*', BATCH_FIELD, encodeEnvelopeBatch([good]).subarray(0, 6));
        await admin.xadd(c.keys.stream('b'), '*', 'e', good);
        await eventually(() => expect(texts(received)).to.deep.equal(['after']));
        expect(logger.records.filter((r) => r.msg === 'undecodable relay entry moved to the dead-letter stream')).to.have.length(1);
        expect(await admin.xlen(c.keys.deadLetter())).to.equal(1);
        expect(relay.deadLettered).to.equal(1);
      } finally {
        await relay.close();
      }
    });
  });

  describe('Redis outages', () => {
    let c: ReturnType<typeof cluster>;
    afterEach(async () => c.close());

    it('rejects sends, publishes and subscribes with ERR_CLUSTER_UNAVAILABLE while Redis is down', async () => {
      c = cluster();
      const a = await c.node('a');
      await c.node('b');
      await server.stop();
      try {
        expect((await rejection(a.send(['b'], userEnvelope('bob', '/queue/q')))).code).to.equal('ERR_CLUSTER_UNAVAILABLE');
        expect((await rejection(a.relay.publishTopic(message('/topic/t')))).code).to.equal('ERR_CLUSTER_UNAVAILABLE');
        expect((await rejection(a.relay.subscribeTopic('/topic/t')))).to.have.property('code', 'ERR_CLUSTER_UNAVAILABLE');
      } finally {
        await server.restart();
      }
    });

    it('resumes topic subscriptions and the stream loop after Redis restarts', async () => {
      c = cluster();
      const a = await c.node('a');
      const b = await c.node('b');
      await b.relay.subscribeTopic('/topic/t');
      await a.relay.publishTopic(message('/topic/t', 'before'));
      await b.waitFor(1);

      await server.restart();

      // Resubscribing is the subscriber connection's own doing: publish until one arrives.
      await eventually(async () => {
        await a.relay.publishTopic(message('/topic/t', 'after'));
        await b.waitFor(2, 200);
      }, 5000, 0);
      // Redis restarted empty: b is sendable again once its beat registered it again.
      await eventually(() => a.send(['b'], userEnvelope('bob', '/queue/q', 'direct')), 5000, 50);
      await eventually(() => b.waitFor(3, 200).then(() => expect(texts(b.received)).to.include('direct')), 5000, 0);
      expect(texts(b.received.filter((e) => e.kind === 'user'))).to.deep.equal(['direct']);
    });
  });

  describe('reads fed by pushes (one Redis)', () => {
    let c: ReturnType<typeof cluster>;
    // The outage specs above restart the server: the admin connection may still be reconnecting.
    beforeEach(async () => {
      if (admin.status !== 'ready') await new Promise((resolve) => admin.once('ready', resolve));
    });
    afterEach(async () => c.close());

    /** Calls of `command` Redis has served so far (INFO commandstats). */
    async function calls(command: string): Promise<number> {
      const line = (await admin.info('commandstats')).split('\n').find((l) => l.startsWith(`cmdstat_${command}:`));
      return line === undefined ? 0 : Number(/calls=(\d+)/.exec(line)![1]);
    }

    /** Appends an entry to `node`'s stream as a writer that does not push would (an earlier version's). */
    async function appendUnpushed(keys: RedisKeys, node: string, envelope: RelayEnvelope): Promise<void> {
      const value = encodeEnvelope(envelope);
      await admin.xadd(keys.stream(node), '*', 'e', value);
      await admin.incrby(keys.streamBytes(node), value.length);
    }

    it('takes the entries from the pushes once caught up, not one XREAD per wake-up', async () => {
      for (const pushReads of [true, false]) {
        c = cluster({ pushReads });
        const a = await c.node('a');
        const b = await c.node('b');
        await a.send(['b'], userEnvelope('bob', '/queue/q', 'warm'));
        await b.waitFor(1);
        const before = await calls('xread');
        for (let i = 0; i < 50; i++) {
          await a.send(['b'], userEnvelope('bob', '/queue/q', `m${i}`));
          await b.waitFor(2 + i);
        }
        const reads = (await calls('xread')) - before;
        expect(texts(b.received).slice(1), `pushReads ${pushReads}`).to.deep.equal(Array.from({ length: 50 }, (_, i) => `m${i}`));
        // Pushed: no read at all while nothing is missed; read: one XREAD per delivery (the next one blocks).
        if (pushReads) expect(reads).to.equal(0);
        else expect(reads).to.be.at.least(50);
        await c.close();
      }
      c = cluster();
    });

    it('reads an entry appended without a push, in its place among the pushed ones', async () => {
      c = cluster();
      const a = await c.node('a');
      const b = await c.node('b');
      await a.send(['b'], userEnvelope('bob', '/queue/q', 'm0'));
      await b.waitFor(1);
      await appendUnpushed(c.keys, 'b', userEnvelope('bob', '/queue/q', 'm1'));
      // m2's push names m1 as the entry before it: a gap, so b reads the stream from m0 on.
      await a.send(['b'], userEnvelope('bob', '/queue/q', 'm2'));
      await b.waitFor(3);
      await a.send(['b'], userEnvelope('bob', '/queue/q', 'm3'));
      await b.waitFor(4);
      expect(texts(b.received)).to.deep.equal(['m0', 'm1', 'm2', 'm3']);
    });

    it("names each push's prev from the id kept beside the stream, reading the newest entry back only when an append did not keep it", async () => {
      c = cluster();
      const a = await c.node('a');
      const b = await c.node('b');
      await a.send(['b'], userEnvelope('bob', '/queue/q', 'm0'));
      await b.waitFor(1);
      const before = await calls('xrevrange');
      for (let i = 1; i <= 20; i++) {
        await a.send(['b'], userEnvelope('bob', '/queue/q', `m${i}`));
        await b.waitFor(1 + i);
      }
      // b's reader trims what it handled meanwhile: the kept id follows the byte count.
      expect((await calls('xrevrange')) - before).to.equal(0);
      expect((await admin.get(c.keys.streamLast('b')))?.split(' ')[1]).to.equal((await admin.get(c.keys.streamBytes('b'))) ?? '0');
      await appendUnpushed(c.keys, 'b', userEnvelope('bob', '/queue/q', 'm21'));
      await a.send(['b'], userEnvelope('bob', '/queue/q', 'm22'));
      await a.send(['b'], userEnvelope('bob', '/queue/q', 'm23'));
      await b.waitFor(24);
      // Once for m22 (the count moved without the kept id), not again for m23.
      expect((await calls('xrevrange')) - before).to.equal(1);
      expect(texts(b.received)).to.deep.equal(Array.from({ length: 24 }, (_, i) => `m${i}`));
    });

    it('forgets the kept id at a trim out of step with it: an unpushed append, then a trim of as many bytes, is still read', async () => {
      c = cluster();
      const a = await c.node('a');
      const b = await c.node('b');
      await a.send(['b'], userEnvelope('bob', '/queue/q', 'm0'));
      await b.waitFor(1);
      const unpushed = userEnvelope('bob', '/queue/q', 'm1');
      await appendUnpushed(c.keys, 'b', unpushed);
      // The byte count is back where the kept id says it was (were the trim to leave the id, m2's
      // prev would be m0, and m1 never read).
      const trim = script('relay-trim');
      await admin.eval(trim.lua, 2, c.keys.stream('b'), c.keys.streamBytes('b'), '', encodeEnvelope(unpushed).length);
      expect(await admin.get(c.keys.streamLast('b'))).to.equal(null);
      await a.send(['b'], userEnvelope('bob', '/queue/q', 'm2'));
      await b.waitFor(3, 3000);
      expect(texts(b.received)).to.deep.equal(['m0', 'm1', 'm2']);
    });

    it('loses nothing, and repeats nothing, when its subscription is cut while messages flow', async () => {
      c = cluster();
      const a = await c.node('a');
      const b = await c.node('b');
      const channel = c.keys.streamPush('b');
      const subscribers = async () => ((await admin.call('PUBSUB', 'NUMSUB', channel)) as [string, number])[1];
      let n = 0;
      const send = () => a.send(['b'], userEnvelope('bob', '/queue/q', `m${n++}`));
      for (let i = 0; i < 100; i++) await send();
      let unheard = 0;
      for (let round = 0; round < 20 && unheard < 3; round++) {
        // Every pub/sub connection (the push feed's and the topics') is cut. A message sent before
        // the feed has subscribed again is pushed to nobody; nothing is sent after it.
        await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
        await send();
        if ((await subscribers()) === 0) unheard++;
        // Well within the idle turn (blockMs, 5 s): the loss of the connection sends b to the stream.
        await b.waitFor(n, 2000);
      }
      expect(unheard, 'messages sent while the feed was not subscribed').to.be.at.least(3);
      expect(texts(b.received)).to.deep.equal(Array.from({ length: n }, (_, i) => `m${i}`));
    });

    it('drops a backlog of pushes when its handler falls behind and reads the stream instead, in order', async () => {
      // A backlog of more than readBatch entries is dropped; reads of a full batch stop the pushes.
      c = cluster({ readBatch: 5 });
      const a = await c.node('a');
      const gate = deferred<void>(10_000, 'gate');
      const b = await c.node('b', (record) => async (envelope) => {
        if (texts([envelope])[0] === 'm0') await gate.promise;
        record(envelope);
      });
      const before = await calls('xread');
      for (let i = 0; i < 60; i++) await a.send(['b'], userEnvelope('bob', '/queue/q', `m${i}`));
      gate.resolve();
      await b.waitFor(60);
      expect(texts(b.received)).to.deep.equal(Array.from({ length: 60 }, (_, i) => `m${i}`));
      // Caught up by reading: at least the 59 waiting entries in reads of 5.
      expect((await calls('xread')) - before).to.be.at.least(12);
    });
  });

  it('reads a pushed entry back as XREAD gives it, and orders stream ids of any length', () => {
    const pushed = parsePush(Buffer.from('1700000000000-3 1700000000000-2 bVALUE'));
    expect(pushed?.id).to.equal('1700000000000-3');
    expect(pushed?.prev).to.equal('1700000000000-2');
    expect(pushed?.fields.map((f) => f.toString())).to.deep.equal(['b', 'VALUE']);
    expect(parsePush(Buffer.from('5-0  e'))?.prev).to.equal('');
    expect(parsePush(Buffer.from('garbage'))).to.equal(undefined);
    expect(compareStreamIds('9-0', '10-0')).to.be.below(0);
    expect(compareStreamIds('10-2', '10-10')).to.be.below(0);
    expect(compareStreamIds('10-2', '10-2')).to.equal(0);
    expect(compareStreamIds('0', '1-0')).to.be.below(0);
    expect(compareStreamIds('5-18446744073709551615', '5-18446744073709551614')).to.be.above(0);
  });

  it('computes the next stream id', () => {
    expect(nextStreamId('1700000000000-0')).to.equal('1700000000000-1');
    expect(nextStreamId('1700000000000-41')).to.equal('1700000000000-42');
    expect(nextStreamId('5-18446744073709551615')).to.equal('6-0');
  });
});

/*
 * Recovery of a dead node as a durable job (redis-presence.ts): what the
 * node left moves under a recovery tag in `dead-nodes`, any live node
 * recovers it under a lock, and a recovery cut half-way (the recovering node
 * dies too) is finished by another node. Real redis-server; nodes "die" by
 * dropping their connections (crash()), as a killed process does.
 */
import { expect } from 'chai';
import type { RelayEnvelope } from '../../lib/cluster/relay.js';
import { RedisKeys } from '../../lib/cluster/redis-keys.js';
import { RedisPresence } from '../../lib/cluster/redis-presence.js';
import { RedisRelay } from '../../lib/cluster/redis-relay.js';
import { RedisUserRouter } from '../../lib/cluster/redis-user-router.js';
import { startRedisServer, uniquePrefix, useRedisServer } from '../helpers/redis-server.js';
import { userEnvelope } from './relay.contract.js';
import { deferred, eventually, recordingLogger } from './support.js';

const BEAT_MS = 100;

describe('recovery of a dead node', function () {
  this.timeout(20_000);
  const redis = useRedisServer();
  let keyPrefix: string;
  let keys: RedisKeys;
  const parts: Array<{ presence: RedisPresence; relay: RedisRelay }> = [];

  beforeEach(() => {
    keyPrefix = uniquePrefix('recover');
    keys = new RedisKeys(keyPrefix);
  });
  afterEach(async () => {
    for (const { presence, relay } of parts.splice(0)) {
      await presence.leave();
      await relay.close();
      await presence.close();
    }
  });

  async function node(id: string, onEnvelope: (envelope: RelayEnvelope) => Promise<void> | void = () => {}) {
    const common = { keyPrefix, logger: recordingLogger(), reconnectMinDelayMs: 20, reconnectMaxDelayMs: 100 };
    const presence = new RedisPresence(id, redis.server.url, { ...common, beatIntervalMs: BEAT_MS, recoverLockMs: 600 });
    const relay = new RedisRelay(id, redis.server.url, { ...common, replayWindowMs: 0 });
    presence.onRecover(async (tag) => void (await relay.recoverNode(tag, onEnvelope)));
    await presence.start();
    await relay.start(() => {});
    parts.push({ presence, relay });
    return { presence, relay };
  }

  /** A node that dies with `count` envelopes in its stream, never read. */
  async function deadNodeWithStream(id: string, count: number): Promise<string[]> {
    const dead = await node(id);
    dead.relay.crash();
    const texts = Array.from({ length: count }, (_, i) => `m${i}`);
    await dead.presence.subscribed('bob', '/queue/q');
    const sender = new RedisUserRouter('sender', redis.server.url, { keyPrefix, logger: recordingLogger(), inboxMaxMessages: 1000, inboxTtlSeconds: 60 });
    try {
      for (const text of texts) {
        const { message } = userEnvelope('bob', '/queue/q', text) as Extract<RelayEnvelope, { kind: 'user' }>;
        expect((await sender.route({ user: 'bob', destination: '/queue/q', message })).remote).to.deep.equal([id]);
      }
    } finally {
      await sender.close();
    }
    dead.presence.crash();
    return texts;
  }

  it('is finished by another node when the recovering node dies half-way', async () => {
    const texts = await deadNodeWithStream('dead', 30);
    const firstSeen: string[] = [];
    const cut = deferred<void>(10_000, 'the first recoverer at its 10th envelope');
    // The first recoverer hands over 10 envelopes, then dies mid-recovery (its handler never returns).
    const first = await node('first', async (envelope) => {
      firstSeen.push(envelope.message.body.toString());
      if (firstSeen.length === 10) {
        first.presence.crash();
        first.relay.crash();
        cut.resolve();
        await new Promise(() => {});
      }
    });
    await cut.promise;
    expect(await redis.admin.smembers(keys.deadNodes())).to.have.length(1);

    const secondSeen: string[] = [];
    await node('second', (envelope) => void secondSeen.push(envelope.message.body.toString()));
    // Once the first recoverer's lock expires, the second resumes; at least once, in order.
    await eventually(async () => expect(await redis.admin.smembers(keys.deadNodes())).to.deep.equal([]), 10_000);
    expect(secondSeen.slice(-20)).to.deep.equal(texts.slice(10));
    expect(new Set([...firstSeen, ...secondSeen])).to.deep.equal(new Set(texts));
    expect(await redis.admin.keys(`${keyPrefix}stream:dead*`)).to.deep.equal([]);
  });

  it('reaps no live node after Redis was down for longer than the node timeout', async () => {
    const server = await startRedisServer({ appendonly: true });
    const logger = recordingLogger();
    const timing = { keyPrefix, logger, beatIntervalMs: BEAT_MS, nodeTimeoutMs: 15 * BEAT_MS };
    // a is back at once; b only some hundreds of ms later, well within a node timeout.
    const a = new RedisPresence('a', server.url, { ...timing, reconnectMinDelayMs: 20, reconnectMaxDelayMs: 50 });
    const b = new RedisPresence('b', server.url, { ...timing, reconnectMinDelayMs: 400, reconnectMaxDelayMs: 800 });
    try {
      await a.start();
      await b.start();
      await b.subscribed('bob', '/queue/q');
      // Past every timeout: both node keys expire while Redis is away (their expiry is kept on disk).
      await server.stop();
      await new Promise((resolve) => setTimeout(resolve, 20 * BEAT_MS));
      await server.restart();
      // Both beat again; give the would-be reaper several timeouts of evidence.
      const back = Date.now();
      await eventually(async () => {
        const live = await a.liveNodes();
        expect(live.map((n) => n.id)).to.deep.equal(['a', 'b']);
        expect(live.every((n) => n.lastBeat > back + 2 * 15 * BEAT_MS)).to.equal(true);
      }, 10_000);
      expect(logger.records.filter((r) => r.msg === 'node down; reaped its presence')).to.deep.equal([]);
      expect(await a.nodesFor('bob', '/queue/q')).to.deep.equal(['b']);
      expect(logger.records.some((r) => r.msg === 'this node had dropped out of routing; taking back what was stored meanwhile')).to.equal(true);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await server.stop();
    }
  });
});

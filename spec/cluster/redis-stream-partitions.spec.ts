/*
 * A node's relay stream cut into partitions on a Redis Cluster
 * (redis-keys.ts, "Stream partitions"): one per master by default, each on
 * its own master, a user's messages always in the partition of the user's
 * slot bucket; what a dead node left in every partition is recovered, and
 * senders follow a node that came back with other partitions.
 */
import { expect } from 'chai';
import calculateSlot from 'cluster-key-slot';
import type { RelayEnvelope } from '../../lib/cluster/relay.js';
import { closeClient, connected, createRedisClient, type RedisClient } from '../../lib/cluster/redis-connection.js';
import { RedisKeys, slotBucket } from '../../lib/cluster/redis-keys.js';
import { RedisPresence } from '../../lib/cluster/redis-presence.js';
import { RedisRelay, type RedisRelayOptions } from '../../lib/cluster/redis-relay.js';
import { RedisUserRouter } from '../../lib/cluster/redis-user-router.js';
import { useRedisCluster } from '../helpers/redis-cluster.js';
import { uniquePrefix } from '../helpers/redis-server.js';
import { recordingNode, userEnvelope, type RelayNode } from './relay.contract.js';
import { deferred, eventually, recordingLogger } from './support.js';

const texts = (envelopes: readonly RelayEnvelope[]): string[] => envelopes.map((e) => e.message.body.toString());

describe('relay stream partitions', () => {
  it("lays out one partition per slot bucket, the node's own stream among them, for any node name", () => {
    const keys = new RedisKeys('sb:');
    for (const node of ['a', 'node-7', 'x}y%z', 'ünï']) {
      for (let count = 1; count <= 8; count++) {
        const owners = keys.partitionOwners(node, count, calculateSlot);
        expect(owners).to.have.length(count);
        expect(new Set(owners).size).to.equal(count);
        expect(owners).to.include(node);
        owners.forEach((owner, bucket) => expect(slotBucket(calculateSlot(keys.stream(owner)), count), `${node} ${owner}`).to.equal(bucket));
        expect(keys.partitionOwners(node, count, calculateSlot)).to.deep.equal(owners);
      }
    }
    expect(keys.partitionOwners('a', 1, calculateSlot)).to.deep.equal(['a']);
  });

  describe('on a Redis Cluster', function () {
    this.timeout(60_000);
    const redis = useRedisCluster();
    let admin: RedisClient;
    let keys: RedisKeys;
    let closers: Array<() => Promise<void>>;

    beforeEach(async () => {
      admin = createRedisClient(redis.cluster.target, 'command', { name: 'spec' });
      await connected(admin, 10_000);
      keys = new RedisKeys(uniquePrefix('parts'));
      closers = [];
    });

    afterEach(async () => {
      for (const close of closers.reverse()) await close();
      await closeClient(admin);
    });

    interface Member extends RelayNode {
      relay: RedisRelay;
      presence: RedisPresence;
      router: RedisUserRouter;
    }

    async function node(id: string, relayOptions: Partial<RedisRelayOptions> = {}): Promise<Member> {
      const common = { keyPrefix: keys.prefix, logger: recordingLogger(), reconnectMinDelayMs: 20, reconnectMaxDelayMs: 100 };
      const presence = new RedisPresence(id, redis.cluster.target, { ...common, beatIntervalMs: 100, nodeTimeoutMs: 600 });
      const relay = new RedisRelay(id, redis.cluster.target, { ...common, replayWindowMs: 0, ...relayOptions });
      relay.setLease(presence);
      const router = new RedisUserRouter(id, redis.cluster.target, { ...common, inboxMaxMessages: 1000, inboxTtlSeconds: 60 });
      const recording = recordingNode(relay);
      await presence.start();
      await relay.start(recording.handler);
      let closed = false;
      closers.push(async () => {
        if (closed) return;
        closed = true;
        await presence.leave();
        await relay.close();
        await router.close();
        await presence.close();
      });
      return { ...recording, relay, presence, router };
    }

    /** Routes `text` to `user` (subscribed on `to`) from `from`; resolves with where it went. */
    async function send(from: Member, user: string, text: string): Promise<string[]> {
      const envelope = userEnvelope(user, '/queue/p', text);
      if (envelope.kind !== 'user') throw new Error('user envelope expected');
      const result = await from.router.route({ user, destination: envelope.destination, message: envelope.message });
      return result.remote;
    }

    const users = Array.from({ length: 30 }, (_, i) => `user-${i}`);
    const perUser = (received: readonly RelayEnvelope[], user: string): string[] =>
      texts(received.filter((e) => e.kind === 'user' && e.user === user));

    it("puts one partition on each master and each user's messages, in order, in the partition of the user's slot bucket", async () => {
      const a = await node('a');
      const b = await node('b');
      const owners = b.relay.streamOwners();
      expect(owners).to.have.length(3);
      const masters = await Promise.all(owners.map((owner) => redis.cluster.masterOf(keys.stream(owner))));
      expect(new Set(masters).size, `masters of ${owners.join(', ')}`).to.equal(3);
      expect(await admin.get(keys.streamParts('b'))).to.equal(owners.join(' '));

      for (const user of users) await b.presence.subscribed(user, '/queue/p');
      for (let i = 0; i < 5; i++) await Promise.all(users.map((user) => send(a, user, `${user}#${i}`)));
      await b.waitFor(users.length * 5);
      for (const user of users) expect(perUser(b.received, user)).to.deep.equal([0, 1, 2, 3, 4].map((i) => `${user}#${i}`));

      // Where each user's messages went: stop b reading, send once more, look in its partitions.
      await b.relay.drain();
      await Promise.all(users.map((user) => send(a, user, `${user}#late`)));
      const inPartition = await Promise.all(owners.map((owner) => admin.xrangeBuffer(keys.stream(owner), '-', '+')));
      const bucketsSeen = new Set<number>();
      for (const user of users) {
        const bucket = slotBucket(calculateSlot(keys.inbox(user, '')), owners.length);
        bucketsSeen.add(bucket);
        const holding = inPartition.map((entries) => entries.some(([, fields]) => fields.some((field) => field.includes(`${user}#late`))));
        expect(holding.map((held, i) => (held ? i : -1)).filter((i) => i >= 0), user).to.deep.equal([bucket]);
      }
      expect(bucketsSeen.size).to.equal(3);
    });

    it('recovers what a killed node left in every partition: exactly once, in order per user, nothing left behind', async () => {
      const a = await node('a');
      const b = await node('b');
      const owners = b.relay.streamOwners();
      for (const user of users) await b.presence.subscribed(user, '/queue/p');
      const recovered: RelayEnvelope[] = [];
      const done = deferred<number>(20_000, 'recovery of b');
      a.presence.onRecover(async (tag) => {
        done.resolve(await a.relay.recoverNode(tag, (envelope) => void recovered.push(envelope)));
      });
      // Killed while it still looks alive: what is sent now lands in its partitions.
      b.relay.crash();
      b.presence.crash();
      for (let i = 0; i < 3; i++) await Promise.all(users.map((user) => send(a, user, `${user}#${i}`)));
      const lengths = await Promise.all(owners.map((owner) => admin.xlen(keys.stream(owner))));
      expect(lengths.every((n) => n > 0), `entries per partition ${lengths.join('/')}`).to.equal(true);

      expect(await done.promise).to.equal(users.length * 3);
      for (const user of users) expect(perUser(recovered, user)).to.deep.equal([0, 1, 2].map((i) => `${user}#${i}`));
      // The recovery finishes (the tag leaves dead-nodes) once nothing of b is left.
      await eventually(async () => expect(await admin.smembers(keys.deadNodes())).to.deep.equal([]), 10_000);
      const left = await Promise.all(
        owners.flatMap((owner) => [admin.exists(keys.stream(owner)), admin.exists(keys.partIncarnation(owner))]),
      );
      expect(left.every((n) => n === 0), 'partition streams and marks of b').to.equal(true);
      // Once reaped, b's subscriptions are gone: a message for one of its users is stored.
      expect(await send(a, users[0]!, 'after')).to.deep.equal([]);
    });

    it('follows a node that came back with other partitions: the sender reads its list again', async () => {
      const a = await node('a');
      let b = await node('b', { partitions: 3 });
      for (const user of users) await b.presence.subscribed(user, '/queue/p');
      await Promise.all(users.map((user) => send(a, user, `${user}#0`)));
      await b.waitFor(users.length);
      await closers.pop()!();

      b = await node('b', { partitions: 2 });
      expect(b.relay.streamOwners()).to.have.length(2);
      for (const user of users) await b.presence.subscribed(user, '/queue/p');
      const remote = await Promise.all(users.map((user) => send(a, user, `${user}#1`)));
      expect(remote.every((nodes) => nodes.join() === 'b'), 'every message handed to b').to.equal(true);
      await b.waitFor(users.length);
      for (const user of users) expect(perUser(b.received, user)).to.deep.equal([`${user}#1`]);
    });
  });
});

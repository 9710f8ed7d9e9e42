/*
 * The Relay contract: every backend runs this suite (the memory and the
 * Redis spec files). "Did not arrive" is shown without sleeping: a marker
 * sent after the message must arrive, and relays keep order.
 */
import { expect } from 'chai';
import type { BrokerMessage } from '../../lib/core/message.js';
import type { Relay, RelayEnvelope } from '../../lib/cluster/relay.js';
import { deferred } from './support.js';

export interface RelayNode {
  readonly relay: Relay;
  /**
   * Sends a user envelope from this node to the named nodes through the
   * backend's own write path (its user router, as the broker does), which
   * must relay it to exactly those nodes.
   */
  send(nodeIds: readonly string[], envelope: RelayEnvelope): Promise<void>;
  /** What this node's handler was given, in order. */
  readonly received: RelayEnvelope[];
  /** Resolves once `received` holds at least `count` envelopes; rejects after `timeoutMs`. */
  waitFor(count: number, timeoutMs?: number): Promise<void>;
}

/** Nodes sharing one cluster, each with a started relay and a recording handler. */
export interface RelayCluster {
  node(id: string): Promise<RelayNode>;
  /**
   * Makes the node stop taking deliveries while it still looks alive, as a
   * killed process does until it is reaped. Memory nodes never die, so for
   * them this may do nothing.
   */
  kill(id: string): Promise<void>;
  close(): Promise<void>;
}

/** A node whose handler records what it is given; `send` as RelayNode.send (none by default). */
export function recordingNode(
  relay: Relay,
  send: RelayNode['send'] = () => Promise.reject(new Error('this node has no send path')),
): RelayNode & { handler: (envelope: RelayEnvelope) => void } {
  const received: RelayEnvelope[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  return {
    relay,
    send,
    received,
    handler(envelope) {
      received.push(envelope);
      for (const waiter of [...waiters]) {
        if (received.length >= waiter.count) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve();
        }
      }
    },
    waitFor(count, timeoutMs = 5000) {
      if (received.length >= count) return Promise.resolve();
      const done = deferred<void>(timeoutMs, `${count} envelopes at ${relay.nodeId} (have ${received.length})`);
      waiters.push({ count, resolve: () => done.resolve() });
      return done.promise;
    },
  };
}

let sequence = 0;
export function message(destination: string, text = `m${++sequence}`, extra: Partial<BrokerMessage> = {}): BrokerMessage {
  return {
    id: `test-${Date.now().toString(36)}-${++sequence}`,
    destination,
    headers: { 'content-type': 'text/plain' },
    body: Buffer.from(text),
    timestamp: Date.now(),
    ...extra,
  };
}

export function userEnvelope(user: string, destination: string, text?: string): RelayEnvelope {
  return { kind: 'user', user, destination, message: message(`/user/${user}${destination}`, text) };
}

const texts = (envelopes: readonly RelayEnvelope[]): string[] => envelopes.map((e) => e.message.body.toString());

export function relayContract(name: string, createCluster: () => Promise<RelayCluster>): void {
  describe(`${name}: Relay contract`, () => {
    let cluster: RelayCluster;
    let a: RelayNode;
    let b: RelayNode;
    let c: RelayNode;

    beforeEach(async () => {
      cluster = await createCluster();
      a = await cluster.node('node-a');
      b = await cluster.node('node-b');
      c = await cluster.node('node-c');
    });

    afterEach(async () => {
      await cluster.close();
    });

    it('delivers a user envelope to the named node only', async () => {
      const envelope = userEnvelope('bob', '/queue/reply', 'hello');
      await a.send(['node-b'], envelope);
      await b.waitFor(1);
      expect(b.received).to.have.length(1);
      expect(b.received[0]).to.deep.include({ kind: 'user', user: 'bob', destination: '/queue/reply' });
      expect(b.received[0]!.message.id).to.equal(envelope.message.id);

      await a.send(['node-c'], userEnvelope('carol', '/queue/reply', 'marker'));
      await c.waitFor(1);
      expect(texts(c.received)).to.deep.equal(['marker']);
      expect(a.received).to.deep.equal([]);
    });

    it('delivers one envelope to each of several nodes once', async () => {
      await a.send(['node-b', 'node-c'], userEnvelope('bob', '/queue/reply', 'both'));
      await Promise.all([b.waitFor(1), c.waitFor(1)]);
      await a.send(['node-b', 'node-c'], userEnvelope('bob', '/queue/reply', 'marker'));
      await Promise.all([b.waitFor(2), c.waitFor(2)]);
      expect(texts(b.received)).to.deep.equal(['both', 'marker']);
      expect(texts(c.received)).to.deep.equal(['both', 'marker']);
    });

    it('keeps order from one sender to one target', async () => {
      const sent = Array.from({ length: 200 }, (_, i) => `n${i}`);
      await Promise.all(sent.map((text) => a.send(['node-b'], userEnvelope('bob', '/queue/reply', text))));
      await b.waitFor(sent.length);
      expect(texts(b.received)).to.deep.equal(sent);
    });

    it('carries headers, sender, timestamp and a binary body intact', async () => {
      const body = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256));
      const original = message('/user/bob/queue/bin', '', { body, sender: 'alice', headers: { 'content-type': 'application/octet-stream', 'x-a': 'é:\n' } });
      await a.send(['node-b'], { kind: 'user', user: 'bob', destination: '/queue/bin', message: original });
      await b.waitFor(1);
      const got = b.received[0]!.message;
      expect(got.body.equals(body)).to.equal(true);
      expect({ ...got.headers }).to.deep.equal(original.headers);
      expect(got).to.include({ id: original.id, destination: original.destination, sender: 'alice', timestamp: original.timestamp });
    });

    it('reaches the nodes subscribed to a topic, not the others, nor the publisher', async () => {
      await a.relay.subscribeTopic('/topic/news');
      await b.relay.subscribeTopic('/topic/news');
      await a.relay.publishTopic(message('/topic/news', 'news'));
      await b.waitFor(1);
      expect(b.received[0]).to.deep.include({ kind: 'topic' });
      expect(texts(b.received)).to.deep.equal(['news']);

      await a.relay.subscribeTopic('/topic/marker');
      await c.relay.subscribeTopic('/topic/marker');
      await b.relay.publishTopic(message('/topic/marker', 'marker'));
      await Promise.all([a.waitFor(1), c.waitFor(1)]);
      expect(texts(a.received)).to.deep.equal(['marker']);
      expect(texts(c.received)).to.deep.equal(['marker']);
    });

    it('stops delivering a topic after the node unsubscribes', async () => {
      await b.relay.subscribeTopic('/topic/news');
      await b.relay.subscribeTopic('/topic/marker');
      await a.relay.publishTopic(message('/topic/news', 'before'));
      await b.waitFor(1);
      await b.relay.unsubscribeTopic('/topic/news');
      await a.relay.publishTopic(message('/topic/news', 'after'));
      await a.relay.publishTopic(message('/topic/marker', 'marker'));
      await b.waitFor(2);
      expect(texts(b.received)).to.deep.equal(['before', 'marker']);
    });

    it('hands what a dead node left to recoverNode: what it had not handled exactly once, in order', async () => {
      await a.send(['node-b'], userEnvelope('bob', '/queue/reply', 'early'));
      await b.waitFor(1);
      await cluster.kill('node-b');
      const sent = ['x1', 'x2', 'x3', 'x4', 'x5'];
      for (const text of sent) await a.send(['node-b'], userEnvelope('bob', '/queue/reply', text));

      const recovered: RelayEnvelope[] = [];
      const count = await c.relay.recoverNode('node-b', (envelope) => void recovered.push(envelope));
      expect(count).to.equal(recovered.length);
      // At least once: an envelope the node handled but had not yet trimmed when it died comes
      // again (same message-id); everything it had not handled comes exactly once, in order.
      const handled = texts(b.received);
      const fresh = texts(recovered).filter((t) => !handled.includes(t));
      expect([...handled, ...fresh]).to.deep.equal(['early', ...sent]);
      expect(await c.relay.recoverNode('node-b', () => expect.fail('recovered twice'))).to.equal(0);
    });
  });
}

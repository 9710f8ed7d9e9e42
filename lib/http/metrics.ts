/*
 * Prometheus metrics, one prom-client Registry per node (several nodes in
 * one process, as in specs, do not share counters). Counters are read from
 * the broker's plain BrokerStats on scrape, so the hot path only increments
 * integers.
 *
 * Relay latency is measured without touching the broker: the relay's
 * handler is wrapped (instrumentRelay) before the broker gets the relay. Latency is from the message's acceptance on the sending
 * node (its timestamp) to its arrival at this node, so across machines it
 * includes clock skew.
 *
 * Inbox depth in total is not exported: neither store keeps a cheap total
 * (the Redis one would need a SCAN); per-user depths are on /api/inbox.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { Broker } from '../broker/broker.js';
import type { Relay, RelayEnvelope, RelayHandler, RelayHold } from '../cluster/relay.js';
import { CountingHistogram } from './counting-histogram.js';

export interface MetricSources {
  broker: Broker;
  /** Open transport connections by transport. */
  connections(): Record<string, number>;
}

const PREFIX = 'stompbox_';

export class NodeMetrics {
  readonly registry = new Registry();
  readonly relayLatency: CountingHistogram<'kind'>;
  private sources: MetricSources | undefined;

  constructor(nodeId: string) {
    this.registry.setDefaultLabels({ node: nodeId });
    const registers = [this.registry];
    const self = this;
    const broker = (): Broker | undefined => self.sources?.broker;

    new Gauge({
      name: `${PREFIX}connections`,
      help: 'Open transport connections',
      labelNames: ['transport'],
      registers,
      collect() {
        this.reset();
        for (const [transport, n] of Object.entries(self.sources?.connections() ?? {})) this.set({ transport }, n);
      },
    });
    new Gauge({
      name: `${PREFIX}sessions`,
      help: 'STOMP sessions on this node',
      registers,
      collect() {
        this.set(broker()?.sessions.size ?? 0);
      },
    });
    new Gauge({
      name: `${PREFIX}local_users`,
      help: 'Users with at least one session on this node',
      registers,
      collect() {
        this.set(broker()?.userSessions.size ?? 0);
      },
    });
    /** A gauge read from the cluster store at scrape time (0 while it is unreachable). */
    const clusterGauge = (name: string, help: string, read: (b: Broker) => Promise<number>): void => {
      new Gauge({
        name: `${PREFIX}${name}`,
        help,
        registers,
        async collect() {
          const b = broker();
          this.set(b ? await read(b).catch(() => 0) : 0);
        },
      });
    };
    clusterGauge('online_users', 'Users online in the cluster (presence registry)', (b) => b.presence.onlineCount());
    clusterGauge('cluster_nodes', 'Live nodes in the cluster (presence registry)', async (b) => (await b.presence.liveNodes()).length);
    clusterGauge('dead_letter_stream_length', 'Entries in the cluster dead-letter stream, waiting for an operator', (b) => b.relay.deadLetterCount());
    clusterGauge(
      'recoveries_pending',
      'Dead nodes whose stream, claims or in-flight messages are not yet fully recovered',
      async (b) => (await b.presence.pendingRecoveries()).length,
    );

    const counter = (name: string, help: string, read: (b: Broker) => number): void => {
      new Counter({
        name: `${PREFIX}${name}`,
        help,
        registers,
        collect() {
          const b = broker();
          this.reset();
          if (b) this.inc(read(b));
        },
      });
    };
    counter('frames_in_total', 'STOMP frames received', (b) => b.stats.framesIn);
    counter('frames_out_total', 'STOMP frames sent (heart-beats included)', (b) => b.stats.framesOut);
    counter('bytes_in_total', 'Bytes received from clients', (b) => b.stats.bytesIn);
    counter('bytes_out_total', 'Bytes sent to clients', (b) => b.stats.bytesOut);
    counter('messages_delivered_total', 'MESSAGE frames written to sessions', (b) => b.stats.messagesDelivered);
    counter('relay_received_total', 'Envelopes this node received from the relay', (b) => b.stats.relayReceived);
    counter('messages_dropped_total', 'Messages that could not be delivered nor kept', (b) => b.stats.droppedUndeliverable);
    counter('dead_letters_total', 'Relay entries this node moved to the dead-letter stream (undecodable, or failing past every retry)', (b) => b.relay.deadLettered);

    new Counter({
      name: `${PREFIX}messages_routed_total`,
      help: 'User messages routed: to a local session, to other nodes (per node), or stored in the inbox',
      labelNames: ['route'],
      registers,
      collect() {
        const b = broker();
        this.reset();
        if (!b) return;
        this.inc({ route: 'local' }, b.stats.routedLocal);
        this.inc({ route: 'remote' }, b.stats.routedRemote);
        this.inc({ route: 'inbox' }, b.stats.storedInbox);
      },
    });
    new Counter({
      name: `${PREFIX}inbox_dropped_total`,
      help: 'Messages dropped from full inboxes (oldest first, INBOX_OVERFLOW=drop-oldest)',
      registers,
      collect() {
        const b = broker();
        // In a cluster most stores happen in the user router's script, so its drops count too.
        const dropped = droppedBy(b?.inbox) + droppedBy(b?.router);
        this.reset();
        if (Number.isFinite(dropped)) this.inc(dropped);
      },
    });
    new Counter({
      name: `${PREFIX}forbidden_total`,
      help: 'SUBSCRIBEs and SENDs (STOMP and HTTP) the permission rules refused',
      labelNames: ['action'],
      registers,
      collect() {
        this.reset();
        const refused = broker()?.permissions?.refused;
        if (!refused) return;
        this.inc({ action: 'subscribe' }, refused.subscribe);
        this.inc({ action: 'send' }, refused.send);
      },
    });
    new Counter({
      name: `${PREFIX}errors_total`,
      help: 'Errors reported to clients, by stable code',
      labelNames: ['code'],
      registers,
      collect() {
        this.reset();
        for (const [code, n] of broker()?.stats.errors ?? []) this.inc({ code }, n);
      },
    });
    this.relayLatency = new CountingHistogram({
      name: `${PREFIX}relay_latency_seconds`,
      help: 'From acceptance on the sending node to arrival at this node, for relayed messages',
      labelName: 'kind',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
  }

  attach(sources: MetricSources): void {
    this.sources = sources;
  }

  /**
   * Wraps `relay.start`'s handler in place, so the relay keeps its identity
   * and every other member.
   */
  instrumentRelay<R extends Relay>(relay: R): R {
    const start = relay.start.bind(relay);
    // This runs for every relayed envelope (CountingHistogram: why not prom-client's observe).
    const latency = this.relayLatency;
    relay.start = (handler: RelayHandler) =>
      start((envelope: RelayEnvelope, hold?: RelayHold) => {
        latency.record(envelope.kind, Math.max(0, Date.now() - envelope.message.timestamp) / 1000);
        return handler(envelope, hold);
      });
    return relay;
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** The `dropped` counter an inbox store or a user router keeps, if it keeps one. */
function droppedBy(part: unknown): number {
  return typeof part === 'object' && part !== null && 'dropped' in part ? Number(part.dropped) : 0;
}

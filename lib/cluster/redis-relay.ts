/*
 * The relay between nodes, over Redis.
 *
 * User envelopes: targeted and durable (seed 004's "targeted addressing").
 * Each node owns a stream `{p}stream:<nodeId>`; `sendToNodes` appends the
 * encoded envelope to the stream of each named node — one XADD per target
 * node, not per session, all in one script call, resolved once Redis has
 * them — and only those nodes ever see the message. A node reads its own
 * stream on a dedicated connection (XREAD BLOCK), hands each entry to its
 * handler in order, awaiting each, and after a batch trims what it handled
 * (XTRIM MINID past the last handled id): the stream holds exactly what the
 * node has not yet delivered. Order is kept per (sender, target): a sender's
 * XADDs leave on one connection in call order, and the target reads its
 * stream in id order.
 *
 * When a node dies, what its stream still holds is handed over by
 * `recoverNode` on the node that reaped it (see redis-presence.ts): each
 * envelope goes to a handler that re-routes it, then the stream is deleted.
 * When a node closes, it hands what is left to its own handler and deletes
 * its stream. For neither to miss anything, the send script appends to a
 * target's stream only while the target is registered in `{p}nodes` (the
 * reaper removes it before recovering) and its stream exists (a relay creates
 * it in `start()`, and deletes it on close only when empty, atomically):
 * afterwards nothing more can land there. An envelope for a node that left
 * is an orphan: it goes to the `onOrphaned` handler when one is set (the broker
 * re-routes it there), or `sendToNodes` rejects with ERR_CLUSTER_UNAVAILABLE —
 * never a silent loss. A node reads its stream from the beginning, so what a
 * previous process with the same id left there is delivered too.
 *
 * Topics: pub/sub, at most once like every topic broker. Channel
 * `{p}topic:<destination>`; a node SUBSCRIBEs on its first local subscriber
 * (`subscribeTopic`) and UNSUBSCRIBEs on its last, on a connection of its
 * own. The payload leads with the origin node id: a node drops its own
 * publications, because the broker has delivered them locally already.
 *
 * Outages: sends and publishes reject with ERR_CLUSTER_UNAVAILABLE while Redis
 * is unreachable. After it comes back the subscriber connection resubscribes
 * by itself (ioredis `autoResubscribe`) and the stream loop resumes from the
 * last id it handled.
 */
import type { Redis, Result } from 'ioredis';
import { BrokerError } from '../broker/errors.js';
import type { BrokerMessage } from '../broker/message.js';
import { decodeEnvelope, decodeEnvelopeBatch, decodeMessage, encodeEnvelope, encodeMessageAfter } from './envelope-codec.js';
import type { Relay, RelayEnvelope, RelayHandler } from './relay.js';
import {
  closeClient,
  connected,
  createRedisClient,
  redisCall,
  resolveConnectionOptions,
  waitReady,
  type RedisConnectionOptions,
} from './redis-connection.js';
import { RedisKeys } from './redis-keys.js';

export interface RedisRelayOptions extends RedisConnectionOptions {
  /** Stream entries read (and then trimmed) per batch: one XREAD round trip each. @default 1000 */
  readBatch: number;
  /** XREAD BLOCK time, ms. @default 5000 */
  blockMs: number;
  /**
   * Approximate cap on a node's stream (XADD MAXLEN ~), in entries, against
   * a node that is alive but stuck: beyond it the oldest undelivered entries
   * are dropped. An entry holds one envelope, or a batch of up to the user
   * router's maxBatch (256) from one script call. 0 for none. @default 100000
   */
  maxStreamLength: number;
  /**
   * Tries at handling one envelope before it is logged and skipped. Failures
   * with ERR_CLUSTER_UNAVAILABLE do not count: the envelope waits in the
   * stream until Redis is back. @default 5
   */
  maxHandlerAttempts: number;
  /**
   * Handled entries younger than this stay in the stream. Handling means the
   * MESSAGE frames were handed to the sockets, not that they left the
   * process: if the node is killed in between, recovery re-routes these too
   * (duplicates carry the same message-id, so clients can drop them).
   * @default 2000
   */
  replayWindowMs: number;
}

export const DEFAULT_RELAY_OPTIONS = Object.freeze({
  readBatch: 1000,
  blockMs: 5000,
  maxStreamLength: 100_000,
  maxHandlerAttempts: 5,
  replayWindowMs: 2000,
});

export const ENTRY_FIELD = 'e';
/** The field of a stream entry holding several envelopes (envelope-codec.ts, "batch"). */
export const BATCH_FIELD = 'b';
const ENTRY_BYTE = ENTRY_FIELD.charCodeAt(0);
const BATCH_BYTE = BATCH_FIELD.charCodeAt(0);
const TRIM_EVERY_MS = 100;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    sbRelaySend(numberOfKeys: number, ...keysAndArgs: Array<string | Buffer | number>): Result<string[], Context>;
    sbRelayDropIfEmpty(streamKey: string): Result<number, Context>;
    sbRelayOpen(streamKey: string): Result<number, Context>;
  }
}

const SCRIPTS = {
  // KEYS nodes, stream of each target; ARGV payload, maxlen, id of each target → ids of targets already gone
  sbRelaySend: {
    lua: `
local gone = {}
local maxlen = tonumber(ARGV[2])
for i = 2, #KEYS do
  local id = ARGV[i + 1]
  if redis.call('ZSCORE', KEYS[1], id) and redis.call('EXISTS', KEYS[i]) == 1 then
    if maxlen > 0 then
      redis.call('XADD', KEYS[i], 'MAXLEN', '~', maxlen, '*', '${ENTRY_FIELD}', ARGV[1])
    else
      redis.call('XADD', KEYS[i], '*', '${ENTRY_FIELD}', ARGV[1])
    end
  else
    gone[#gone + 1] = id
  end
end
return gone`,
  },
  // KEYS stream → 1 when the stream is gone, 0 when entries arrived meanwhile
  sbRelayDropIfEmpty: {
    numberOfKeys: 1,
    lua: `
if redis.call('XLEN', KEYS[1]) > 0 then return 0 end
redis.call('DEL', KEYS[1])
return 1`,
  },
  // KEYS stream: creates it empty (a stream key outlives its last entry) unless it exists
  sbRelayOpen: {
    numberOfKeys: 1,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('XADD', KEYS[1], '*', '${ENTRY_FIELD}', '')
redis.call('XTRIM', KEYS[1], 'MAXLEN', 0)
return 1`,
  },
} as const;

type StreamEntry = [id: Buffer, fields: Buffer[]];

export class RedisRelay implements Relay {
  private readonly command: Redis;
  private readonly reader: Redis;
  private readonly subscriber: Redis;
  private readonly keys: RedisKeys;
  private readonly opts: RedisRelayOptions;
  private readonly origin: Buffer;
  private readonly topicChannelPrefix: string;
  private readonly topics = new Set<string>();
  /** Channels an UNSUBSCRIBE failed for (Redis down): dropped once the subscriber is back. */
  private readonly staleChannels = new Set<string>();
  private readonly abort = new AbortController();
  private handler: RelayHandler | undefined;
  private loop: Promise<void> | undefined;
  private orphanHandler: RelayHandler | undefined;
  private lastId = '0';
  private topicChain: Promise<void> = Promise.resolve();
  private closed = false;
  /** Stream ids below `<trimmedBelow>-0` are trimmed already. */
  private trimmedBelow = 0;

  constructor(
    readonly nodeId: string,
    url: string,
    options: Partial<RedisRelayOptions> = {},
  ) {
    this.opts = { ...DEFAULT_RELAY_OPTIONS, ...options, ...resolveConnectionOptions(options) };
    this.keys = new RedisKeys(this.opts.keyPrefix);
    this.topicChannelPrefix = this.keys.topic('');
    const idBytes = Buffer.from(nodeId);
    this.origin = Buffer.concat([Buffer.from([idBytes.length >> 8, idBytes.length & 0xff]), idBytes]);
    this.command = createRedisClient(url, 'command', { ...this.opts, name: 'relay' });
    this.reader = createRedisClient(url, 'blocking', { ...this.opts, name: 'relay' });
    this.subscriber = createRedisClient(url, 'subscriber', { ...this.opts, name: 'relay' });
    for (const [name, definition] of Object.entries(SCRIPTS)) this.command.defineCommand(name, definition);
  }

  async start(handler: RelayHandler): Promise<void> {
    if (this.handler) throw new BrokerError('ERR_INTERNAL', `relay of ${this.nodeId} already started`);
    this.handler = handler;
    await redisCall(this.command, 'relay start', () =>
      Promise.all([this.command, this.reader, this.subscriber].map((client) => connected(client, this.opts.connectTimeoutMs))),
    );
    await this.openStream();
    this.subscriber.on('messageBuffer', (channel: Buffer, payload: Buffer) => this.onTopicMessage(channel, payload));
    this.subscriber.on('ready', () => this.dropStaleChannels());
    this.loop = this.readLoop(handler);
  }

  async sendToNodes(nodeIds: readonly string[], envelope: RelayEnvelope): Promise<void> {
    if (nodeIds.length === 0) return;
    const targets = [...new Set(nodeIds)];
    const payload = encodeEnvelope(envelope);
    const keys = [this.keys.nodes(), ...targets.map((id) => this.keys.stream(id))];
    const gone = await redisCall(this.command, 'relay send', () =>
      this.command.sbRelaySend(keys.length, ...keys, payload, this.opts.maxStreamLength, ...targets),
    );
    if (gone.length === 0) return;
    if (this.orphanHandler) {
      await this.orphanHandler(envelope);
      return;
    }
    throw new BrokerError('ERR_CLUSTER_UNAVAILABLE', `node ${gone.join(', ')} left the cluster before the message reached it; send again`);
  }

  /**
   * Where `sendToNodes` hands an envelope when one of its target nodes had
   * already left the cluster (once per envelope, however many had left): the
   * broker re-routes it there, as it does for `recoverNode`. Without one,
   * such a send rejects with ERR_CLUSTER_UNAVAILABLE.
   */
  onOrphaned(handler: RelayHandler): void {
    this.orphanHandler = handler;
  }

  async publishTopic(message: BrokerMessage): Promise<void> {
    const payload = encodeMessageAfter(this.origin, message);
    await redisCall(this.command, 'relay publish', () => this.command.publish(this.keys.topic(message.destination), payload));
  }

  async subscribeTopic(destination: string): Promise<void> {
    const channel = this.keys.topic(destination);
    this.topics.add(destination);
    this.staleChannels.delete(channel);
    try {
      await redisCall(this.subscriber, 'relay subscribe', () => this.subscriber.subscribe(channel));
    } catch (error) {
      // Roll back: the subscription is not in place cluster-wide.
      this.topics.delete(destination);
      throw error;
    }
  }

  /** Never rejects: delivery stops at once; a failed UNSUBSCRIBE is repeated when Redis is back. */
  async unsubscribeTopic(destination: string): Promise<void> {
    const channel = this.keys.topic(destination);
    this.topics.delete(destination);
    try {
      await redisCall(this.subscriber, 'relay unsubscribe', () => this.subscriber.unsubscribe(channel));
    } catch {
      if (!this.topics.has(destination)) this.staleChannels.add(channel);
    }
  }

  async recoverNode(nodeId: string, handler: RelayHandler): Promise<number> {
    const stream = this.keys.stream(nodeId);
    let count = 0;
    let after: string | undefined;
    for (;;) {
      const entries: StreamEntry[] = await redisCall(this.command, 'relay recover', () =>
        this.command.xrangeBuffer(stream, after === undefined ? '-' : `(${after}`, '+', 'COUNT', this.opts.readBatch),
      );
      if (entries.length === 0) break;
      try {
        for (const [id, fields] of entries) {
          for (const envelope of this.decodeEntry(fields, nodeId)) {
            await handler(envelope);
            count++;
          }
          after = id.toString();
        }
      } finally {
        // What was handed over is not handed over twice, even if the next one fails.
        if (after !== undefined) await this.trim(stream, after);
      }
    }
    await redisCall(this.command, 'relay recover', () => this.command.del(stream));
    if (count > 0) this.opts.logger.info({ module: 'relay', node: this.nodeId, dead: nodeId, count }, 'recovered envelopes of a dead node');
    return count;
  }

  /**
   * Stops reading, hands what is left in this node's stream to the handler
   * (close presence first, so that nothing more is sent here), and
   * disconnects.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    this.reader.disconnect();
    await this.loop;
    if (this.handler && this.command.status === 'ready') {
      try {
        await this.drain(this.handler);
      } catch (error) {
        this.opts.logger.warn({ module: 'relay', node: this.nodeId, error: String(error) }, 'could not drain the relay stream on close');
      }
    }
    await this.topicChain;
    await Promise.all([closeClient(this.subscriber), closeClient(this.command)]);
  }

  /** Drops every connection without draining anything: what a killed node leaves. For fault-injection tests. */
  crash(): void {
    this.closed = true;
    this.abort.abort();
    for (const client of [this.reader, this.subscriber, this.command]) client.disconnect();
  }

  private async readLoop(handler: RelayHandler): Promise<void> {
    const stream = this.keys.stream(this.nodeId);
    const signal = this.abort.signal;
    while (!signal.aborted) {
      let reply: Array<[key: Buffer, entries: StreamEntry[]]> | null;
      try {
        reply = await this.reader.xreadBuffer('COUNT', this.opts.readBatch, 'BLOCK', this.opts.blockMs, 'STREAMS', stream, this.lastId);
      } catch (error) {
        if (signal.aborted) break;
        if (this.reader.status === 'ready') {
          // Not an outage: a refusal. Log it and do not spin.
          this.opts.logger.error({ module: 'relay', node: this.nodeId, error: String(error) }, 'reading the relay stream failed');
          await pause(this.opts.reconnectMaxDelayMs, signal);
        }
        await waitReady(this.reader, signal);
        // Redis may have come back without its data: be sendable again.
        await waitReady(this.command, signal);
        await this.openStream().catch(() => {});
        continue;
      }
      if (!reply) {
        // Idle: a stream deleted meanwhile (this node was taken for dead while paused) is recreated.
        await this.openStream().catch(() => {});
        continue;
      }
      let handled: string | undefined;
      for (const [, entries] of reply) {
        for (const [id, fields] of entries) {
          if (signal.aborted || !(await this.handleEntry(handler, fields))) break;
          handled = this.lastId = id.toString();
        }
      }
      if (handled !== undefined) {
        // Not awaited: trims only ever move forward, and the next read need not wait for one.
        // If Redis went away, the next batch's trim covers these entries too.
        this.trimHandled(stream, handled).catch(() => {});
      }
    }
  }

  /**
   * Delivers one entry's envelopes in order; false when stopped before all
   * were delivered (the entry is read again, and the broker's de-duplication
   * drops the ones already delivered).
   */
  private async handleEntry(handler: RelayHandler, fields: Buffer[]): Promise<boolean> {
    for (const envelope of this.decodeEntry(fields, this.nodeId)) {
      if (!(await this.handleEnvelope(handler, envelope))) return false;
    }
    return true;
  }

  /** Delivers one envelope, retrying a failing handler; false when stopped before it was delivered. */
  private async handleEnvelope(handler: RelayHandler, envelope: RelayEnvelope): Promise<boolean> {
    const signal = this.abort.signal;
    for (let attempt = 1; ; attempt++) {
      try {
        await handler(envelope);
        return true;
      } catch (error) {
        if (error instanceof BrokerError && error.code === 'ERR_CLUSTER_UNAVAILABLE') {
          // The handler needs Redis (to store, to re-route): the entry waits in the stream until Redis is back.
          attempt--;
          await pause(this.opts.reconnectMaxDelayMs, signal);
          await waitReady(this.command, signal);
          if (signal.aborted) return false;
          continue;
        }
        const context = { module: 'relay', node: this.nodeId, messageId: envelope.message.id, attempt, error: String(error) };
        if (attempt >= this.opts.maxHandlerAttempts) {
          this.opts.logger.error(context, 'relay handler keeps failing; envelope skipped');
          return true;
        }
        this.opts.logger.warn(context, 'relay handler failed; retrying');
        await pause(Math.min(50 * 2 ** attempt, 2000), signal);
        if (signal.aborted) return false;
      }
    }
  }

  /** The envelopes of a stream entry: one (field `e`) or a batch (field `b`); none when undecodable. */
  private decodeEntry(fields: Buffer[], streamOwner: string): RelayEnvelope[] {
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const field = fields[i]!;
      // Field names are one byte: compare it, not a string made of it.
      const name = field.length === 1 ? field[0] : -1;
      if (name !== ENTRY_BYTE && name !== BATCH_BYTE) continue;
      try {
        return name === ENTRY_BYTE ? [decodeEnvelope(fields[i + 1]!)] : decodeEnvelopeBatch(fields[i + 1]!);
      } catch (error) {
        this.opts.logger.error({ module: 'relay', node: this.nodeId, stream: streamOwner, error: String(error) }, 'undecodable relay entry skipped');
        return [];
      }
    }
    return [];
  }

  /** Removes entries up to and including `id`. */
  /** Trims handled entries older than the replay window. */
  private async trimHandled(stream: string, handled: string): Promise<void> {
    if (this.opts.replayWindowMs <= 0) return this.trim(stream, handled);
    const floor = Number(handled.slice(0, handled.indexOf('-'))) - this.opts.replayWindowMs;
    // At most one trim per TRIM_EVERY_MS of stream time: at low rates a trim per batch would
    // double the round trips, and the window makes a few more entries harmless.
    if (floor <= 0 || floor < this.trimmedBelow + TRIM_EVERY_MS) return;
    this.trimmedBelow = floor;
    await redisCall(this.command, 'relay trim', () => this.command.xtrim(stream, 'MINID', `${floor}-0`));
  }

  private async trim(stream: string, id: string): Promise<void> {
    await redisCall(this.command, 'relay trim', () => this.command.xtrim(stream, 'MINID', nextStreamId(id)));
  }

  /** Creates this node's stream if missing: senders only append to streams that exist. */
  private async openStream(): Promise<void> {
    await redisCall(this.command, 'relay open', () => this.command.sbRelayOpen(this.keys.stream(this.nodeId)));
  }

  /**
   * On close: deliver what arrived after the last read, then delete the
   * stream once it is empty, so that nothing more can be sent here.
   */
  private async drain(handler: RelayHandler): Promise<void> {
    const stream = this.keys.stream(this.nodeId);
    for (let round = 0; ; round++) {
      for (;;) {
        const entries: StreamEntry[] = await redisCall(this.command, 'relay drain', () =>
          this.command.xrangeBuffer(stream, `(${this.lastId === '0' ? '0-0' : this.lastId}`, '+', 'COUNT', this.opts.readBatch),
        );
        if (entries.length === 0) break;
        for (const [id, fields] of entries) {
          for (const envelope of this.decodeEntry(fields, this.nodeId)) await handler(envelope);
          this.lastId = id.toString();
        }
        await this.trim(stream, this.lastId);
      }
      if ((await redisCall(this.command, 'relay drain', () => this.command.sbRelayDropIfEmpty(stream))) === 1) return;
      // Senders kept sending (presence still lists this node): drain again, a bounded number of times.
      if (round >= 10) throw new BrokerError('ERR_INTERNAL', 'the relay stream kept filling while closing; close presence first');
    }
  }

  private onTopicMessage(channel: Buffer, payload: Buffer): void {
    const handler = this.handler;
    if (!handler || this.closed || payload.length < 2) return;
    const originLength = payload.readUInt16BE(0);
    // Own publications: the broker delivered them locally already.
    if (payload.subarray(0, 2 + originLength).equals(this.origin)) return;
    const name = channel.toString('utf8');
    if (!name.startsWith(this.topicChannelPrefix)) return;
    // Only while subscribed here: a message racing an UNSUBSCRIBE is not delivered.
    if (!this.topics.has(name.slice(this.topicChannelPrefix.length))) return;
    let message: BrokerMessage;
    try {
      message = decodeMessage(payload.subarray(2 + originLength));
    } catch (error) {
      this.opts.logger.error({ module: 'relay', node: this.nodeId, channel: channel.toString(), error: String(error) }, 'undecodable topic message skipped');
      return;
    }
    // In order, one at a time, as the stream loop does; at most once, so failures are only logged.
    this.topicChain = this.topicChain
      .then(() => handler({ kind: 'topic', message }))
      .catch((error: unknown) => {
        this.opts.logger.error({ module: 'relay', node: this.nodeId, messageId: message.id, error: String(error) }, 'topic handler failed');
      });
  }

  private dropStaleChannels(): void {
    if (this.staleChannels.size === 0) return;
    const channels = [...this.staleChannels];
    this.staleChannels.clear();
    this.subscriber.unsubscribe(...channels).catch(() => {
      for (const channel of channels) this.staleChannels.add(channel);
    });
  }
}

/** The smallest stream id after `id` (`<ms>-<seq>`), for XTRIM MINID. */
export function nextStreamId(id: string): string {
  const dash = id.indexOf('-');
  const ms = BigInt(dash < 0 ? id : id.slice(0, dash));
  const seq = dash < 0 ? 0n : BigInt(id.slice(dash + 1));
  return seq === 0xffffffffffffffffn ? `${ms + 1n}-0` : `${ms}-${seq + 1n}`;
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

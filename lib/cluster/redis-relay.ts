/*
 * The relay between nodes, over Redis.
 *
 * User envelopes: targeted and durable (seed 004's "targeted addressing").
 * Each node owns a stream `{n:<node>}:stream` (redis-keys.ts) — on a Redis
 * Cluster, one per partition, `RELAY_PARTITIONS` of them spread over the
 * masters (redis-keys.ts, "Stream partitions"). The user router's hand-off
 * (redis-user-router.ts) appends each message to the stream of each node
 * holding a subscription — one entry per target stream per tick — and only
 * those nodes ever see the message. A node reads each of its streams on a
 * dedicated connection (XREAD BLOCK), hands each entry to its handler in
 * order, awaiting each, and trims what it no longer owes anyone (see
 * `trimHandled`). Order is kept per (sender, user, target): a sender hands
 * off in call order, a user's messages for a node are in one stream, and
 * the target reads each stream in id order.
 *
 * When a node dies, its streams move under a recovery tag (redis-presence.ts)
 * and `recoverNode` on a live node hands each envelope to a handler that
 * re-routes it. When a node closes, it hands what is left to its own handler
 * and deletes its streams once nothing in them is held. For neither to miss
 * anything, the router appends to a stream only while it exists (checked in
 * the same script): once moved or deleted, nothing more can land there.
 *
 * Topics: pub/sub, at most once like every topic broker. Channel
 * `{t:<destination>}` (sharded on a cluster); a node SUBSCRIBEs on its first local subscriber
 * (`subscribeTopic`) and UNSUBSCRIBEs on its last, on a connection of its
 * own. The payload leads with the origin node id: a node drops its own
 * publications, because the broker has delivered them locally already.
 *
 * Outages: publishes (and the router's sends) reject with ERR_CLUSTER_UNAVAILABLE while Redis
 * is unreachable. After it comes back the topics' subscriber connection
 * resubscribes by itself (ioredis `autoResubscribe`), the push feed's is
 * subscribed again by the read loop (redis-push-feed.ts), and the stream loop
 * resumes from the last id it handled.
 */
import type { Cluster, Redis, Result } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import { BrokerError } from '../core/errors.js';
import type { BrokerMessage } from '../core/message.js';
import { decodeEnvelope, decodeEnvelopeBatch, decodeMessage, encodeEnvelope, encodeMessageAfter } from './envelope-codec.js';
import type { Relay, RelayEnvelope, RelayHandler, RelayHold } from './relay.js';
import {
  closeClient,
  connected,
  createRedisClient,
  redisCall,
  resolveConnectionOptions,
  waitReady,
  type RedisClient,
  type RedisConnectionOptions,
  type RedisTarget,
} from './redis-connection.js';
import { RedisKeys, splitNodeTag } from './redis-keys.js';
import { defineScripts } from './redis-scripts.js';
import { PushFeed, type PushedEntry } from './redis-push-feed.js';

export interface RedisRelayOptions extends RedisConnectionOptions {
  /** Stream entries read per batch: one XREAD round trip each. @default 1000 */
  readBatch: number;
  /** XREAD BLOCK time, ms. @default 5000 */
  blockMs: number;
  /**
   * Bound on the envelope bytes waiting in one node's stream (unread, held
   * for unacked deliveries, or inside the replay window). A send that would
   * pass it is refused with ERR_RELAY_FULL (the node cannot keep up): the
   * stream is never trimmed past what its node has not handled. @default 64 MiB
   */
  maxStreamBytes: number;
  /**
   * Tries at handling one envelope before it goes to the dead-letter stream.
   * Failures with ERR_CLUSTER_UNAVAILABLE do not count: the envelope waits in
   * the stream until Redis is back. @default 5
   */
  maxHandlerAttempts: number;
  /**
   * Handled entries written under ack:auto stay in the stream this long:
   * handling means the MESSAGE frames were handed to the sockets, not that
   * they left the process, and if the node is killed in between, recovery
   * re-routes these too (duplicates carry the same message-id, so clients
   * can drop them). Client-ack deliveries hold their entry until acked
   * instead (RelayHold); entries neither held nor written under ack:auto
   * (re-routed, stored) are trimmed at once. A frame written to a healthy
   * socket leaves the process within a turn; the window covers the buffers of
   * a briefly slow one. @default 500
   */
  replayWindowMs: number;
  /**
   * Partitions of this node's stream on a Redis Cluster (redis-keys.ts,
   * "Stream partitions"), each read on a connection of its own; 0: one per
   * master at start. One Redis (or Sentinel) has one core: always one stream
   * there. Senders read the node's choice from Redis. @default 0
   */
  partitions: number;
  /**
   * Off a cluster: read this node's stream by the pushes its writers publish
   * (redis-push-feed.ts), reading the stream itself only to catch up; false:
   * XREAD BLOCK after every wake-up. Always false on a cluster. @default true
   */
  pushReads: boolean;
}

export const DEFAULT_RELAY_OPTIONS = Object.freeze({
  readBatch: 1000,
  blockMs: 5000,
  maxStreamBytes: 64 * 1024 * 1024,
  maxHandlerAttempts: 5,
  replayWindowMs: 500,
  partitions: 0,
  pushReads: true,
});

export const ENTRY_FIELD = 'e';
/** The field of a stream entry holding several envelopes (envelope-codec.ts, "batch"). */
export const BATCH_FIELD = 'b';
const ENTRY_BYTE = ENTRY_FIELD.charCodeAt(0);
const BATCH_BYTE = BATCH_FIELD.charCodeAt(0);
const TRIM_EVERY_MS = 100;
/** Bytes of pushed entries waiting at most before the reader reads the stream instead (redis-push-feed.ts). */
const PUSH_BACKLOG_BYTES = 8 * 1024 * 1024;

/** What the relay needs of presence: whether this node is surely still registered, and as which incarnation. */
export interface RelayLease {
  leaseValid(): boolean;
  awaitLease(): Promise<void>;
  /** `<node>!<k>`: a partition records the incarnation reading it (lua/relay-part-open.lua). */
  incarnationTag(): string;
}

declare module 'ioredis' {
  interface RedisCommander<Context> {
    sbRelayDropIfEmpty(streamKey: string, bytesKey: string): Result<number, Context>;
    sbRelayOpen(streamKey: string): Result<number, Context>;
    sbRelayPartOpen(streamKey: string, incarnationKey: string, k: string): Result<number, Context>;
    sbRelayTrim(streamKey: string, bytesKey: string, minId: string, bytes: number, ...ids: string[]): Result<number, Context>;
  }
}

const SCRIPTS = {
  sbRelayDropIfEmpty: 'relay-drop-if-empty',
  sbRelayOpen: 'relay-open',
  sbRelayPartOpen: 'relay-part-open',
  sbRelayTrim: 'relay-trim',
} as const;

type StreamEntry = [id: Buffer, fields: Buffer[]];

/** An entry value that did not decode, and why: it goes to the dead letters. */
interface Undecodable {
  value: Buffer;
  error: unknown;
}

/**
 * One stream this node reads: its own (`owner` = the node id), or one of its
 * partitions on a cluster (redis-keys.ts), each with its reader connection,
 * its read position and what it read but has not trimmed yet.
 */
interface Partition {
  readonly owner: string;
  readonly stream: string;
  readonly bytesKey: string;
  readonly reader: RedisClient;
  /** Off a cluster (pushReads): the pushes of the stream's writers, read instead of XREAD BLOCK. */
  readonly feed: PushFeed | undefined;
  lastId: string;
  /** Read entries not yet trimmed, oldest first (`readHead` is the first live one). */
  readEntries: ReadEntry[];
  readHead: number;
  lastTrimAt: number;
  trimming: Promise<void> | undefined;
}

/** An entry of this node's stream that was read: trimmed once past the window and held by nobody. */
interface ReadEntry {
  readonly id: string;
  readonly ms: number;
  readonly bytes: number;
  holds: number;
  /** Written to a socket under ack:auto: kept for the replay window. */
  linger?: boolean;
  /** Deleted on its own (XDEL) while an older entry was still held. */
  deleted?: boolean;
}

export class RedisRelay implements Relay {
  /** Relay entries or envelopes written to the dead-letter stream by this node. */
  deadLettered = 0;
  private readonly command: RedisClient;
  private readonly target: RedisTarget;
  /** The reader of the first partition: made with the others, so that start() waits for it. */
  private readonly firstReader: RedisClient;
  private readonly subscriber: RedisClient;
  private readonly keys: RedisKeys;
  private readonly opts: RedisRelayOptions;
  private readonly origin: Buffer;
  /** Subscribed topics: channel → destination. */
  private readonly topics = new Map<string, string>();
  /** Sharded pub/sub (SSUBSCRIBE/SPUBLISH) on a Redis Cluster; classic on one Redis. */
  private readonly sharded: boolean;
  /** Channels an UNSUBSCRIBE failed for (Redis down): dropped once the subscriber is back. */
  private readonly staleChannels = new Set<string>();
  private readonly abort = new AbortController();
  private handler: RelayHandler | undefined;
  private loops: Promise<void>[] = [];
  private lease: RelayLease | undefined;
  /** This node's streams: one, or its partitions (set at start). */
  private parts: Partition[] = [];
  private topicChain: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    readonly nodeId: string,
    target: RedisTarget,
    options: Partial<RedisRelayOptions> = {},
  ) {
    this.opts = { ...DEFAULT_RELAY_OPTIONS, ...options, ...resolveConnectionOptions(options) };
    this.keys = new RedisKeys(this.opts.keyPrefix);
    const idBytes = Buffer.from(nodeId);
    this.origin = Buffer.concat([Buffer.from([idBytes.length >> 8, idBytes.length & 0xff]), idBytes]);
    this.target = target;
    this.command = createRedisClient(target, 'command', { ...this.opts, name: 'relay' });
    this.firstReader = createRedisClient(target, 'blocking', { ...this.opts, name: 'relay' });
    this.subscriber = createRedisClient(target, 'subscriber', { ...this.opts, name: 'relay' });
    defineScripts(this.command, SCRIPTS);
    this.sharded = isClusterClient(this.subscriber);
  }

  /**
   * Presence's lease: while it has lapsed (this process was paused, or could
   * not beat), read entries wait, since another node may be recovering them.
   */
  setLease(lease: RelayLease): void {
    this.lease = lease;
  }

  async start(handler: RelayHandler): Promise<void> {
    if (this.handler) throw new BrokerError('ERR_INTERNAL', `relay of ${this.nodeId} already started`);
    this.handler = handler;
    await redisCall(this.command, 'relay start', () =>
      Promise.all([this.command, this.firstReader, this.subscriber].map((client) => connected(client, this.opts.connectTimeoutMs))),
    );
    const owners = this.partitionOwners();
    const push = this.opts.pushReads && !this.sharded;
    this.parts = owners.map((owner, i) => ({
      owner,
      stream: this.keys.stream(owner),
      bytesKey: this.keys.streamBytes(owner),
      reader: i === 0 ? this.firstReader : createRedisClient(this.target, 'blocking', { ...this.opts, name: 'relay' }),
      feed: push
        ? new PushFeed(this.command as Redis, { ...this.opts, name: 'relay-push' }, this.keys.streamPush(owner), {
            maxEntries: this.opts.readBatch,
            maxBytes: PUSH_BACKLOG_BYTES,
            idleMs: this.opts.blockMs,
          })
        : undefined,
      lastId: '0',
      readEntries: [],
      readHead: 0,
      lastTrimAt: 0,
      trimming: undefined,
    }));
    await redisCall(this.command, 'relay start', () =>
      Promise.all([
        ...this.parts.map((part) => connected(part.reader, this.opts.connectTimeoutMs)),
        ...this.parts.flatMap((part) => (part.feed ? [part.feed.connection.whenReady(this.opts.connectTimeoutMs)] : [])),
      ]),
    );
    await this.openStreams();
    this.subscriber.on(this.sharded ? 'smessageBuffer' : 'messageBuffer', (channel: Buffer, payload: Buffer) => this.onTopicMessage(channel, payload));
    this.subscriber.on('ready', () => this.dropStaleChannels());
    this.loops = this.parts.map((part) => this.readLoop(handler, part));
  }

  /** The owners of this node's streams, as redis-keys.ts lays partitions out: the node alone off a cluster. */
  private partitionOwners(): string[] {
    if (!isClusterClient(this.command)) return [this.nodeId];
    const count = this.opts.partitions > 0 ? this.opts.partitions : Math.max(1, (this.command as Cluster).nodes('master').length);
    return this.keys.partitionOwners(this.nodeId, count, calculateSlot);
  }

  /** The owners of this node's streams (its partitions), the b-th for slot bucket b. */
  streamOwners(): string[] {
    return this.parts.map((part) => part.owner);
  }

  async publishTopic(message: BrokerMessage): Promise<void> {
    const payload = encodeMessageAfter(this.origin, message);
    const channel = this.keys.topic(message.destination);
    await redisCall(this.command, 'relay publish', () => (this.sharded ? this.command.spublish(channel, payload) : this.command.publish(channel, payload)));
  }

  async subscribeTopic(destination: string): Promise<void> {
    const channel = this.keys.topic(destination);
    this.topics.set(channel, destination);
    this.staleChannels.delete(channel);
    try {
      await redisCall(this.subscriber, 'relay subscribe', () => (this.sharded ? this.subscriber.ssubscribe(channel) : this.subscriber.subscribe(channel)));
    } catch (error) {
      // Roll back: the subscription is not in place cluster-wide.
      this.topics.delete(channel);
      throw error;
    }
  }

  /** Never rejects: delivery stops at once; a failed UNSUBSCRIBE is repeated when Redis is back. */
  async unsubscribeTopic(destination: string): Promise<void> {
    const channel = this.keys.topic(destination);
    this.topics.delete(channel);
    try {
      await redisCall(this.subscriber, 'relay unsubscribe', () => this.unsubscribeChannels([channel]));
    } catch {
      if (!this.topics.has(channel)) this.staleChannels.add(channel);
    }
  }

  /**
   * Hands what node `tag` (`<node>!<k>` once reaped, or a node id) left in
   * its stream and in each of its partitions to `handler`, in order per
   * stream, and drops the list of partitions once none holds anything.
   */
  async recoverNode(tag: string, handler: RelayHandler): Promise<number> {
    const { node, suffix } = splitNodeTag(tag);
    const listed = await redisCall(this.command, 'relay recover', () => this.command.get(this.keys.streamParts(tag)));
    const others = listed === null ? [] : listed.split(' ').filter((owner) => owner !== node && owner !== '');
    let count = await this.recoverStream(tag, handler);
    for (const owner of others) count += await this.recoverStream(`${owner}${suffix}`, handler);
    if (suffix !== '' && listed !== null) {
      const left = await Promise.all(others.map((owner) => redisCall(this.command, 'relay recover', () => this.command.exists(this.keys.stream(`${owner}${suffix}`)))));
      if (left.every((n) => n === 0)) await redisCall(this.command, 'relay recover', () => this.command.del(this.keys.streamParts(tag)));
    }
    if (count > 0) this.opts.logger.info({ module: 'relay', node: this.nodeId, tag, count }, 'recovered envelopes of a dead node');
    return count;
  }

  /** Recovers one stream of a dead node (`tag`: its owner with the incarnation's suffix). */
  private async recoverStream(tag: string, handler: RelayHandler): Promise<number> {
    const stream = this.keys.stream(tag);
    let count = 0;
    let after: string | undefined;
    for (;;) {
      const entries: StreamEntry[] = await redisCall(this.command, 'relay recover', () =>
        this.command.xrangeBuffer(stream, after === undefined ? '-' : `(${after}`, '+', 'COUNT', this.opts.readBatch),
      );
      if (entries.length === 0) break;
      let bytes = 0;
      try {
        for (const [id, fields] of entries) {
          const envelopes = await this.decodeOrDeadLetter(fields, tag);
          for (const envelope of envelopes) {
            await handler(envelope);
            count++;
          }
          after = id.toString();
          bytes += entryBytes(fields);
        }
      } finally {
        // What was handed over is not handed over twice, even if the next one fails.
        if (after !== undefined) await this.trim(stream, this.keys.streamBytes(tag), nextStreamId(after), bytes);
      }
    }
    await redisCall(this.command, 'relay recover', () => this.command.sbRelayDropIfEmpty(stream, this.keys.streamBytes(tag)));
    return count;
  }

  async deadLetterCount(): Promise<number> {
    return redisCall(this.command, 'relay dead letters', () => this.command.xlen(this.keys.deadLetter()));
  }

  async reopen(): Promise<void> {
    await this.openStreams();
  }

  async drain(): Promise<void> {
    if (!this.abort.signal.aborted) {
      this.abort.abort();
      for (const part of this.parts) {
        part.reader.disconnect();
        part.feed?.close();
      }
      await Promise.all(this.loops);
    }
    const handler = this.handler;
    if (handler && this.command.status === 'ready') await Promise.all(this.parts.map((part) => this.drainStream(handler, part)));
  }

  /**
   * Stops reading, hands what is left in this node's stream to the handler
   * (leave presence first, so that nothing more is sent here), deletes the
   * stream once nothing in it is held, and disconnects. What is still held
   * (a return to the inbox that failed) stays, and presence hands it over.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.drain();
      if (this.command.status === 'ready') {
        for (const part of this.parts) await redisCall(this.command, 'relay close', () => this.command.sbRelayDropIfEmpty(part.stream, part.bytesKey));
      }
    } catch (error) {
      this.opts.logger.warn({ module: 'relay', node: this.nodeId, error: String(error) }, 'could not drain the relay stream on close');
    }
    await this.topicChain;
    await Promise.all([closeClient(this.subscriber), closeClient(this.command), ...this.parts.map((part) => part.feed?.disconnect())]);
  }

  /** Drops every connection without draining anything: what a killed node leaves. For fault-injection tests. */
  crash(): void {
    this.closed = true;
    this.abort.abort();
    for (const part of this.parts) {
      part.feed?.close();
      void part.feed?.disconnect(true);
    }
    for (const client of [this.firstReader, ...this.parts.map((part) => part.reader), this.subscriber, this.command]) {
      client.disconnect();
    }
  }

  /** Reads one of this node's streams; the partitions' loops run side by side (a user's messages are in one). */
  private async readLoop(handler: RelayHandler, part: Partition): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      let entries: StreamEntry[] | PushedEntry[] | null;
      try {
        entries = part.feed ? await this.nextPushed(part, part.feed) : await this.nextRead(part);
      } catch (error) {
        if (signal.aborted) break;
        if (part.reader.status === 'ready' && (part.feed === undefined || part.feed.connection.ready)) {
          // Not an outage: a refusal. Log it and do not spin.
          this.opts.logger.error({ module: 'relay', node: this.nodeId, error: String(error) }, 'reading the relay stream failed');
          await pause(this.opts.reconnectMaxDelayMs, signal);
        }
        await waitReady(part.reader, signal);
        if (part.feed) await part.feed.connection.waitReady(signal);
        // Redis may have come back without its data: be sendable again.
        await waitReady(this.command, signal);
        await this.openStream(part).catch(() => {});
        continue;
      }
      if (entries === null) {
        // Idle: a stream deleted meanwhile (this node was taken for dead while paused) is recreated.
        await this.openStream(part).catch(() => {});
        this.scheduleTrim(part);
        continue;
      }
      if (entries.length === 0) continue;
      if (!(await this.stillOurs(part, entryId(entries[0]!), signal))) continue;
      for (const read of entries) {
        const fields = entryFields(read);
        const id = entryId(read);
        const entry: ReadEntry = { id, ms: streamIdMs(id), bytes: entryBytes(fields), holds: 0 };
        if (signal.aborted) break;
        const handled = this.handleEntry(handler, fields, entry, part);
        if (handled !== true && !(handled !== false && (await handled))) break;
        part.readEntries.push(entry);
        part.lastId = entry.id;
      }
      this.scheduleTrim(part);
    }
  }

  /** The next entries by XREAD BLOCK; null when none came within blockMs. */
  private async nextRead(part: Partition): Promise<StreamEntry[] | null> {
    const reply: Array<[key: Buffer, entries: StreamEntry[]]> | null = await part.reader.xreadBuffer(
      'COUNT',
      this.opts.readBatch,
      'BLOCK',
      this.opts.blockMs,
      'STREAMS',
      part.stream,
      part.lastId,
    );
    return reply === null ? null : reply.flatMap(([, list]) => list);
  }

  /**
   * The next entries of a push-fed stream (redis-push-feed.ts): pushed ones
   * while the feed is live; otherwise read from the last id, subscribed
   * first, until a read after the subscription comes back empty. Null after
   * an idle turn without pushes.
   */
  private async nextPushed(part: Partition, feed: PushFeed): Promise<StreamEntry[] | PushedEntry[] | null> {
    if (!feed.live) {
      // Far behind (the last read was full): read, and take no pushes until a read is not.
      const generation = feed.behind ? undefined : await feed.subscribe();
      const reply: Array<[key: Buffer, entries: StreamEntry[]]> | null = await part.reader.xreadBuffer('COUNT', this.opts.readBatch, 'STREAMS', part.stream, part.lastId);
      const entries = reply === null ? [] : reply.flatMap(([, list]) => list);
      feed.behind = entries.length >= this.opts.readBatch;
      if (feed.behind) await feed.unsubscribe();
      if (entries.length > 0) return entries;
      if (generation !== undefined) feed.goLive(generation);
      return [];
    }
    const pushed = feed.take(part.lastId, this.opts.readBatch);
    if (pushed.length > 0) return pushed;
    if (await feed.waitPush()) return [];
    feed.recheck();
    return null;
  }

  /**
   * Whether entries just read are still this node's to deliver. While the
   * presence lease has lapsed (a pause, an outage) another node may have
   * reaped this one and be recovering them: wait for the next beat, then
   * look whether the stream still holds the first of them.
   */
  private async stillOurs(part: Partition, firstId: string, signal: AbortSignal): Promise<boolean> {
    const { stream } = part;
    if (!this.lease || this.lease.leaseValid()) return true;
    await this.lease.awaitLease();
    if (signal.aborted) return false;
    for (;;) {
      try {
        const found = await redisCall(this.command, 'relay check', () => this.command.xrange(stream, firstId, firstId));
        if (found.length > 0) return true;
        break;
      } catch {
        await pause(this.opts.reconnectMaxDelayMs, signal);
        await waitReady(this.command, signal);
        if (signal.aborted) return false;
      }
    }
    // Reaped: what was read is another node's to recover now, and this stream starts afresh.
    this.opts.logger.warn({ module: 'relay', node: this.nodeId, from: firstId }, 'relay entries were taken over while this node was away; skipping them here');
    part.readEntries = [];
    part.readHead = 0;
    await this.openStream(part).catch(() => {});
    return false;
  }

  /**
   * Delivers one entry's envelopes in order; false when stopped before all
   * were delivered (the entry is read again, and the broker's de-duplication
   * drops the ones already delivered). Synchronous (true) while the handler
   * is: a relayed message that every local session took costs no promise and
   * no turn of the microtask queue here; the first handler that returns a
   * promise (or throws) takes the rest of the entry onto the async path.
   */
  private handleEntry(handler: RelayHandler, fields: Buffer[], entry: ReadEntry, part: Partition): boolean | Promise<boolean> {
    const envelopes = this.decode(fields);
    if (!Array.isArray(envelopes)) return this.deadLetterUndecodable(envelopes, this.nodeId).then(() => true);
    if (envelopes.length === 0) return true;
    const hold = this.holdFor(entry, part);
    for (let i = 0; i < envelopes.length; i++) {
      let result: Promise<void> | void;
      try {
        result = handler(envelopes[i]!, hold);
      } catch (error) {
        result = Promise.reject(error);
      }
      if (result !== undefined) return this.handleRest(handler, envelopes, i, hold, result);
    }
    return true;
  }

  /** Keeps an entry in the stream while deliveries of it are owed (RelayHold). */
  private holdFor(entry: ReadEntry, part: Partition): RelayHold {
    const take = (): (() => void) => {
      entry.holds++;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        entry.holds--;
        if (entry.holds === 0) this.scheduleTrim(part);
      };
    };
    return Object.assign(take, { unconfirmed: () => void (entry.linger = true) });
  }

  /** The async path of handleEntry: envelope `from` is in flight (`first`), then the rest, each retried. */
  private async handleRest(handler: RelayHandler, envelopes: RelayEnvelope[], from: number, hold: RelayHold, first: Promise<void>): Promise<boolean> {
    if (!(await this.handleEnvelope(handler, envelopes[from]!, hold, first))) return false;
    for (let i = from + 1; i < envelopes.length; i++) {
      if (!(await this.handleEnvelope(handler, envelopes[i]!, hold))) return false;
    }
    return true;
  }

  /** Delivers one envelope, retrying a failing handler; false when stopped before it was delivered. `first`: the first attempt, already made. */
  private async handleEnvelope(handler: RelayHandler, envelope: RelayEnvelope, hold: RelayHold, first?: Promise<void>): Promise<boolean> {
    const signal = this.abort.signal;
    for (let attempt = 1; ; attempt++) {
      try {
        if (first) {
          const made = first;
          first = undefined;
          await made;
        } else {
          await handler(envelope, hold);
        }
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
          this.opts.logger.error(context, 'relay handler keeps failing; envelope moved to the dead-letter stream');
          return this.deadLetter('handler failed: ' + String(error), encodeEnvelope(envelope), this.nodeId, signal);
        }
        this.opts.logger.warn(context, 'relay handler failed; retrying');
        await pause(Math.min(50 * 2 ** attempt, 2000), signal);
        if (signal.aborted) return false;
      }
    }
  }

  /** The envelopes of a stream entry: one (field `e`) or a batch (field `b`); an undecodable value and why, to be dead-lettered. */
  private decode(fields: Buffer[]): RelayEnvelope[] | Undecodable {
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const field = fields[i]!;
      // Field names are one byte: compare it, not a string made of it.
      const name = field.length === 1 ? field[0] : -1;
      if (name !== ENTRY_BYTE && name !== BATCH_BYTE) continue;
      const value = fields[i + 1]!;
      // The empty entry that creates a stream (sbRelayOpen) is trimmed at once, but may be read.
      if (value.length === 0) return [];
      try {
        return name === ENTRY_BYTE ? [decodeEnvelope(value)] : decodeEnvelopeBatch(value);
      } catch (error) {
        return { value, error };
      }
    }
    return [];
  }

  private async deadLetterUndecodable({ value, error }: Undecodable, streamOwner: string): Promise<void> {
    this.opts.logger.error({ module: 'relay', node: this.nodeId, stream: streamOwner, error: String(error) }, 'undecodable relay entry moved to the dead-letter stream');
    await this.deadLetter('undecodable: ' + String(error), value, streamOwner, this.abort.signal);
  }

  /** decode(), with an undecodable entry dead-lettered (and no envelopes). */
  private async decodeOrDeadLetter(fields: Buffer[], streamOwner: string): Promise<RelayEnvelope[]> {
    const envelopes = this.decode(fields);
    if (Array.isArray(envelopes)) return envelopes;
    await this.deadLetterUndecodable(envelopes, streamOwner);
    return [];
  }

  /**
   * Keeps what could not be decoded or delivered in `{p}dead-letter`, with
   * why and from where, rather than dropping it; counted (metrics, admin
   * page). Waits for Redis if it is down; false only when stopped first.
   */
  private async deadLetter(reason: string, payload: Buffer, stream: string, signal: AbortSignal): Promise<boolean> {
    for (;;) {
      try {
        await redisCall(this.command, 'relay dead-letter', () =>
          this.command.xadd(this.keys.deadLetter(), '*', 'node', this.nodeId, 'stream', stream, 'reason', reason.slice(0, 500), 'payload', payload),
        );
        this.deadLettered++;
        return true;
      } catch {
        if (signal.aborted) return false;
        await pause(this.opts.reconnectMaxDelayMs, signal);
        await waitReady(this.command, signal);
      }
    }
  }

  /** At most one trim per TRIM_EVERY_MS; never awaited by the read loop. */
  private scheduleTrim(part: Partition): void {
    if (part.trimming || this.closed) return;
    const wait = Math.max(0, part.lastTrimAt + TRIM_EVERY_MS - Date.now());
    part.trimming = pause(wait, this.abort.signal)
      .then(() => this.trimHandled(part, this.opts.replayWindowMs))
      .catch(() => {})
      .finally(() => {
        part.trimming = undefined;
        part.lastTrimAt = Date.now();
      });
  }

  /**
   * Removes the handled entries that are older than the window and held by
   * no unacked delivery: the run of them at the head with XTRIM MINID, later
   * ones (behind a held entry) one by one with XDEL, so one unacked message
   * never keeps the rest. The stream keeps everything this node may still
   * owe anyone.
   */
  private async trimHandled(part: Partition, windowMs: number): Promise<void> {
    const entries = part.readEntries;
    if (entries.length === part.readHead) return;
    const newest = entries[entries.length - 1]!.ms;
    const floor = windowMs > 0 ? Math.max(newest, Date.now()) - windowMs : Infinity;
    // Done with: held by nobody, and past the window if it was written under ack:auto.
    const done = (entry: ReadEntry): boolean => entry.deleted === true || (entry.holds === 0 && (entry.linger !== true || entry.ms < floor));
    let bytes = 0;
    let head: ReadEntry | undefined;
    let i = part.readHead;
    for (; i < entries.length && done(entries[i]!); i++) {
      if (!entries[i]!.deleted) bytes += entries[i]!.bytes;
      head = entries[i]!;
    }
    const single: ReadEntry[] = [];
    for (let j = i; j < entries.length; j++) {
      const entry = entries[j]!;
      if (!entry.deleted && done(entry)) {
        single.push(entry);
        bytes += entry.bytes;
      }
    }
    if (head === undefined && single.length === 0) return;
    await this.trim(
      part.stream,
      part.bytesKey,
      head ? nextStreamId(head.id) : '',
      bytes,
      single.map((entry) => entry.id),
    );
    if (part.readEntries !== entries) return;
    for (const entry of single) entry.deleted = true;
    part.readHead = i;
    // Compact now and then, not per trim.
    if (part.readHead > 1024 && part.readHead * 2 > entries.length) {
      part.readEntries = entries.slice(part.readHead);
      part.readHead = 0;
    }
  }

  private async trim(stream: string, bytesKey: string, minId: string, bytes: number, ids: readonly string[] = []): Promise<void> {
    await redisCall(this.command, 'relay trim', () => this.command.sbRelayTrim(stream, bytesKey, minId, bytes, ...ids));
  }

  /** Opens every stream of this node: senders only append to streams that exist. */
  private async openStreams(): Promise<void> {
    for (const part of this.parts) await this.openStream(part);
  }

  /**
   * Creates one of this node's streams if missing. A partition other than the
   * node's own also records the incarnation reading it (lua/relay-part-open.lua),
   * after the list of partitions in the node's slot, which a reap moves with
   * the stream (and which a rejoin after a reap writes again).
   */
  private async openStream(part: Partition): Promise<void> {
    if (this.parts.length === 1 && part.owner === this.nodeId) {
      await redisCall(this.command, 'relay open', () => this.command.sbRelayOpen(part.stream));
      return;
    }
    const owners = this.parts.map((p) => p.owner).join(' ');
    await redisCall(this.command, 'relay open', () => this.command.set(this.keys.streamParts(this.nodeId), owners));
    if (part.owner === this.nodeId) {
      await redisCall(this.command, 'relay open', () => this.command.sbRelayOpen(part.stream));
      return;
    }
    const k = splitNodeTag(this.lease?.incarnationTag() ?? `${this.nodeId}!0`).suffix.slice(1);
    await redisCall(this.command, 'relay open', () => this.command.sbRelayPartOpen(part.stream, this.keys.partIncarnation(part.owner), k));
  }

  /**
   * Delivers what arrived after the last read and trims what nobody holds.
   * Senders stop once presence has left; a bounded number of rounds catches
   * the ones that decided just before.
   */
  private async drainStream(handler: RelayHandler, part: Partition): Promise<void> {
    const { stream } = part;
    for (let round = 0; round < 3; round++) {
      const entries: StreamEntry[] = await redisCall(this.command, 'relay drain', () =>
        this.command.xrangeBuffer(stream, `(${part.lastId === '0' ? '0-0' : part.lastId}`, '+', 'COUNT', this.opts.readBatch),
      );
      for (const [id, fields] of entries) {
        const entry: ReadEntry = { id: id.toString(), ms: streamIdMs(id.toString()), bytes: entryBytes(fields), holds: 0 };
        const handled = this.handleEntry(handler, fields, entry, part);
        if (handled !== true && !(handled !== false && (await handled))) return;
        part.readEntries.push(entry);
        part.lastId = entry.id;
      }
      await this.trimHandled(part, 0);
      if (entries.length < this.opts.readBatch) return;
    }
  }

  private async unsubscribeChannels(channels: string[]): Promise<void> {
    if (this.sharded) await this.subscriber.sunsubscribe(...channels);
    else await this.subscriber.unsubscribe(...channels);
  }

  private onTopicMessage(channel: Buffer, payload: Buffer): void {
    const handler = this.handler;
    if (!handler || this.closed || payload.length < 2) return;
    const originLength = payload.readUInt16BE(0);
    // Own publications: the broker delivered them locally already.
    if (payload.subarray(0, 2 + originLength).equals(this.origin)) return;
    // Only while subscribed here: a message racing an UNSUBSCRIBE is not delivered.
    if (!this.topics.has(channel.toString('utf8'))) return;
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
    this.unsubscribeChannels(channels).catch(() => {
      for (const channel of channels) this.staleChannels.add(channel);
    });
  }
}

/** Whether a client is an ioredis Cluster (sharded pub/sub) rather than one Redis (or a Sentinel-managed one). */
export function isClusterClient(client: object): boolean {
  return (client as { isCluster?: boolean }).isCluster === true;
}

/** The ERROR a sender gets when a target node's stream is full: that node is not keeping up. */
export function relayFull(maxBytes: number): BrokerError {
  return new BrokerError('ERR_RELAY_FULL', `a receiving node is not keeping up: its relay stream holds ${maxBytes} bytes (limit RELAY_MAX_STREAM_BYTES); send again later`);
}

function entryId(entry: StreamEntry | PushedEntry): string {
  return Array.isArray(entry) ? entry[0].toString() : entry.id;
}

function entryFields(entry: StreamEntry | PushedEntry): Buffer[] {
  return Array.isArray(entry) ? entry[1] : entry.fields;
}

/** Envelope bytes of a stream entry (what the sender counted into stream-bytes). */
function entryBytes(fields: Buffer[]): number {
  let bytes = 0;
  for (let i = 1; i < fields.length; i += 2) bytes += fields[i]!.length;
  return bytes;
}

function streamIdMs(id: string): number {
  const dash = id.indexOf('-');
  return Number(dash < 0 ? id : id.slice(0, dash));
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

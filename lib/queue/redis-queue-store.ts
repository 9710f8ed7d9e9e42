/*
 * `/queue/...` storage in Redis, shared by every node: each message goes to
 * one consumer in the cluster. Keys (redis-keys.ts), a queue's in its slot
 * `{q:<queue>}`:
 *
 *   list                 LIST  encoded messages, oldest first.
 *   bytes                STRING bytes in that list (QUEUE_MAX_BYTES), kept by
 *                              every script that moves messages in or out
 *                              of it; deleted with the emptied list.
 *   inflight:<id>!<k>    LIST  what incarnation k of node <id> popped and has
 *                              not acked or requeued, oldest first.
 *   ready                channel: messages were pushed (sharded pub/sub on
 *                              a cluster, published from the scripts: it is
 *                              in the queue's slot).
 *
 *   {n:<id>}:queues!<k>  SET   queues the incarnation has in-flight lists
 *                              for, for recovering it once it is dead. A
 *                              queue is added before the first pop and never
 *                              removed while the incarnation lives, so no
 *                              in-flight list is ever left unindexed.
 *
 * In-flight lists are named by incarnation (presence gives this node's,
 * `incarnationTag`): a node reaped while paused comes back as a new
 * incarnation and can never pop into, ack from or requeue from the list the
 * recovery now owns.
 *
 * Why lists, not streams: a queue message has exactly one consumer and is
 * gone once acked, with no history and no consumer groups to read it again.
 * A list does that directly: `pop` atomically moves the head into the
 * in-flight list (the LMOVE pattern, batched in a script), `requeue` and
 * `recoverNode` move messages back to the head. A stream would need a
 * consumer group, XCLAIM for recovery and trimming of acked entries, to end
 * where the list begins.
 *
 * `push` checks the limit and appends in one script (a full queue refuses
 * with ERR_QUEUE_FULL, atomically, however many nodes push at once) and
 * publishes on the ready channel; nodes that `watch` the queue subscribe
 * there and turn that into `onAvailable` calls (coalesced: one call per
 * queue per burst). After a reconnect every watched queue is announced once,
 * since pushes may have been missed meanwhile.
 */
import type { Result } from 'ioredis';
import { BrokerError } from '../core/errors.js';
import type { BrokerMessage } from '../core/message.js';
import { decodeMessage, encodeMessage } from '../cluster/envelope-codec.js';
import {
  closeClient,
  createRedisClient,
  redisCall,
  resolveConnectionOptions,
  type RedisClient,
  type RedisConnectionOptions,
  type RedisTarget,
} from '../cluster/redis-connection.js';
import { RedisKeys } from '../cluster/redis-keys.js';
import { isClusterClient } from '../cluster/redis-relay.js';
import { durableWrite, NO_WAIT, type Durability } from '../cluster/redis-durability.js';
import { defineScripts } from '../cluster/redis-scripts.js';
import { DEFAULT_QUEUE_LIMITS, queueFullError, type QueueLimits, type QueueStore } from './queue-store.js';

export type RedisQueueOptions = RedisConnectionOptions & QueueLimits & Durability;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    sbQueuePush(queueKey: string, bytesKey: string, payload: Buffer, maxMessages: number, channel: string, sharded: '0' | '1', maxBytes: number): Result<number, Context>;
    sbQueuePopBuffer(queueKey: string, inflightKey: string, bytesKey: string, max: number): Result<Buffer[], Context>;
    sbQueueAck(inflightKey: string, ...ids: string[]): Result<number, Context>;
    sbQueueRequeue(queueKey: string, inflightKey: string, bytesKey: string, channel: string, sharded: '0' | '1', ...payloads: Buffer[]): Result<number, Context>;
    sbQueueRecover(queueKey: string, inflightKey: string, bytesKey: string, channel: string, sharded: '0' | '1'): Result<number, Context>;
  }
}

const SCRIPTS = {
  sbQueuePush: 'queue-push',
  sbQueuePop: 'queue-pop',
  sbQueueAck: 'queue-ack',
  sbQueueRequeue: 'queue-requeue',
  sbQueueRecover: 'queue-recover',
} as const;

export class RedisQueueStore implements QueueStore {
  private readonly redis: RedisClient;
  private readonly subscriber: RedisClient;
  private readonly keys: RedisKeys;
  private readonly opts: RedisQueueOptions;
  /** Watched queues' ready channels → queue names. */
  private readonly channels = new Map<string, string>();
  private readonly watched = new Set<string>();
  private readonly pending = new Set<string>();
  private readonly listeners: Array<(queue: string) => void> = [];
  /** Channels an UNSUBSCRIBE failed for (Redis down): dropped once the subscriber is back. */
  private readonly staleChannels = new Set<string>();
  private closed = false;
  private readonly sharded: boolean;
  private readonly flag: '0' | '1';
  /** This node's incarnation tag (`<id>!<k>`), from presence; a store on its own is incarnation 0. */
  private incarnation: () => string;

  constructor(
    readonly nodeId: string,
    target: RedisTarget,
    options: Partial<RedisQueueOptions> = {},
  ) {
    this.opts = { ...DEFAULT_QUEUE_LIMITS, ...NO_WAIT, ...options, ...resolveConnectionOptions(options) };
    this.keys = new RedisKeys(this.opts.keyPrefix);
    this.redis = createRedisClient(target, 'command', { ...this.opts, name: 'queue' });
    this.subscriber = createRedisClient(target, 'subscriber', { ...this.opts, name: 'queue' });
    defineScripts(this.redis, SCRIPTS);
    this.sharded = isClusterClient(this.subscriber);
    this.flag = this.sharded ? '1' : '0';
    this.incarnation = () => `${nodeId}!0`;
    this.subscriber.on(this.sharded ? 'smessage' : 'message', (channel: string) => {
      const queue = this.channels.get(channel);
      if (queue !== undefined) this.notify(queue);
    });
    this.subscriber.on('ready', () => this.resumed());
  }

  async push(queue: string, message: BrokerMessage): Promise<void> {
    const args = [this.keys.queue(queue), this.keys.queueBytes(queue), encodeMessage(message), this.opts.maxMessages, this.keys.queueReady(queue), this.flag, this.opts.maxBytes] as const;
    // A RECEIPT answers for it: durable across a failover when replicas are asked for.
    const pushed = await durableWrite(
      this.redis,
      this.opts,
      'queue push',
      () => this.redis.sbQueuePush(...args),
      (pipeline) => pipeline.sbQueuePush(...args),
    );
    if (pushed !== 1) throw queueFullError(queue, this.opts, pushed === -1);
  }

  /** Presence's incarnation tag (redis-parts.ts): in-flight lists are named by it. */
  setIncarnation(incarnation: () => string): void {
    this.incarnation = incarnation;
  }

  async pop(queue: string, max: number): Promise<BrokerMessage[]> {
    if (!(max > 0)) return [];
    const tag = this.incarnation();
    // Indexed before the first pop, never removed while the incarnation lives (see header).
    await this.call(this.redis, 'queue pop', () => this.redis.sadd(this.keys.nodeQueues(tag), queue));
    const items = await this.call(this.redis, 'queue pop', () =>
      this.redis.sbQueuePopBuffer(this.keys.queue(queue), this.keys.queueInflight(tag, queue), this.keys.queueBytes(queue), Number.isFinite(max) ? Math.floor(max) : 0x7fffffff),
    );
    return items.map(decodeMessage);
  }

  async ack(queue: string, messageIds: readonly string[]): Promise<void> {
    if (messageIds.length === 0) return;
    await this.call(this.redis, 'queue ack', () => this.redis.sbQueueAck(this.keys.queueInflight(this.incarnation(), queue), ...messageIds));
  }

  async requeue(queue: string, messages: readonly BrokerMessage[]): Promise<void> {
    if (messages.length === 0) return;
    await this.call(this.redis, 'queue requeue', () =>
      this.redis.sbQueueRequeue(
        this.keys.queue(queue),
        this.keys.queueInflight(this.incarnation(), queue),
        this.keys.queueBytes(queue),
        this.keys.queueReady(queue),
        this.flag,
        ...messages.map(encodeMessage),
      ),
    );
  }

  async watch(queue: string): Promise<void> {
    const channel = this.keys.queueReady(queue);
    this.watched.add(queue);
    this.channels.set(channel, queue);
    this.staleChannels.delete(channel);
    try {
      await this.call(this.subscriber, 'queue watch', () => (this.sharded ? this.subscriber.ssubscribe(channel) : this.subscriber.subscribe(channel)));
    } catch (error) {
      this.watched.delete(queue);
      throw error;
    }
    // Pushed before the subscription was in place: announce it now.
    if ((await this.depth(queue)) > 0) this.notify(queue);
  }

  /** Never rejects: notifications stop at once; a failed UNSUBSCRIBE is repeated when Redis is back. */
  async unwatch(queue: string): Promise<void> {
    const channel = this.keys.queueReady(queue);
    this.watched.delete(queue);
    this.channels.delete(channel);
    try {
      await this.call(this.subscriber, 'queue unwatch', () => this.unsubscribeChannels([channel]));
    } catch {
      if (!this.watched.has(queue)) this.staleChannels.add(channel);
    }
  }

  onAvailable(listener: (queue: string) => void): void {
    this.listeners.push(listener);
  }

  async depth(queue: string): Promise<number> {
    return this.call(this.redis, 'queue depth', () => this.redis.llen(this.keys.queue(queue)));
  }

  /** Moves what incarnation `tag` (`<node>!<k>`) held in flight back to the head of each queue, in order. Returns how many. */
  async recoverNode(tag: string): Promise<number> {
    const index = this.keys.nodeQueues(tag);
    const queues = await this.call(this.redis, 'queue recover', () => this.redis.smembers(index));
    let total = 0;
    for (const queue of queues) {
      total += await this.call(this.redis, 'queue recover', () =>
        this.redis.sbQueueRecover(this.keys.queue(queue), this.keys.queueInflight(tag, queue), this.keys.queueBytes(queue), this.keys.queueReady(queue), this.flag),
      );
    }
    await this.call(this.redis, 'queue recover', () => this.redis.del(index));
    return total;
  }

  /** Puts back what this node still holds in flight (nothing, when its sessions requeued or acked), then disconnects. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watched.clear();
    if (this.redis.status === 'ready') {
      try {
        await this.recoverNode(this.incarnation());
      } catch (error) {
        this.opts.logger.warn({ module: 'queue', node: this.nodeId, error: String(error) }, 'could not requeue in-flight messages on close');
      }
    }
    await Promise.all([closeClient(this.subscriber), closeClient(this.redis)]);
  }

  private notify(queue: string): void {
    if (this.pending.has(queue)) return;
    this.pending.add(queue);
    // Deferred and coalesced: a burst of pushes is one call, and a push never re-enters the broker.
    queueMicrotask(() => {
      this.pending.delete(queue);
      if (!this.watched.has(queue)) return;
      for (const listener of this.listeners) {
        try {
          listener(queue);
        } catch (error) {
          this.opts.logger.error({ module: 'queue', node: this.nodeId, queue, error: String(error) }, 'onAvailable listener failed');
        }
      }
    });
  }

  /** The subscriber (re)connected: pushes may have gone unannounced meanwhile. */
  private resumed(): void {
    if (this.staleChannels.size > 0) {
      const channels = [...this.staleChannels];
      this.staleChannels.clear();
      this.unsubscribeChannels(channels).catch(() => {
        for (const channel of channels) this.staleChannels.add(channel);
      });
    }
    for (const queue of this.watched) this.notify(queue);
  }

  private async unsubscribeChannels(channels: string[]): Promise<void> {
    if (this.sharded) await this.subscriber.sunsubscribe(...channels);
    else await this.subscriber.unsubscribe(...channels);
  }

  private call<T>(client: RedisClient, what: string, call: () => Promise<T>): Promise<T> {
    return redisCall(client, what, call);
  }
}

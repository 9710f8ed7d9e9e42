/*
 * `/queue/...` storage in Redis, shared by every node: each message goes to
 * one consumer in the cluster.
 *
 * Data model (`{p}` is the key prefix, see lib/cluster/redis-keys.ts):
 *
 *   {p}queue:<name>                    LIST  encoded messages, oldest first.
 *   {p}queue-bytes:<name>              STRING  bytes in that list (QUEUE_MAX_BYTES),
 *                                            kept by every script that moves
 *                                            messages in or out of it; deleted
 *                                            with the emptied list.
 *   {p}queue-inflight:<nodeId>:<name>  LIST  what the node popped and has not
 *                                            acked or requeued, oldest first.
 *   {p}node-queues:<nodeId>            SET   queues the node has in flight,
 *                                            for recovering a dead node.
 *   {p}queue-ready:<name>              pub/sub channel: messages were pushed.
 *
 * Why lists, not streams: a queue message has exactly one consumer and is
 * gone once acked, with no history and no consumer groups to read it again.
 * A list does that directly: `pop` atomically moves the head into the node's
 * in-flight list (the LMOVE pattern, batched in a script), `requeue` and
 * `recoverNode` move messages back to the head. A stream would need a
 * consumer group, XCLAIM for recovery and trimming of acked entries, to end
 * where the list begins.
 *
 * `push` checks the limits and appends in one script (a full queue refuses
 * with ERR_QUEUE_FULL, atomically, however many nodes push at once) and
 * PUBLISHes on `{p}queue-ready:<name>`; nodes that `watch` the queue are
 * SUBSCRIBEd there and turn that into `onAvailable` calls (coalesced: one
 * call per queue per burst). After a reconnect every watched queue is
 * announced once, since pushes may have been missed meanwhile.
 *
 * The scripts name keys from data (queue names of a dead node), so this
 * layout is for a single Redis (or a primary with replicas), not Redis
 * Cluster's key slots.
 */
import type { Result } from 'ioredis';
import type { BrokerMessage } from '../core/message.js';
import { decodeMessage, encodeMessage, luaMessageId } from '../cluster/envelope-codec.js';
import {
  closeClient,
  createRedisClient,
  redisCall,
  resolveConnectionOptions,
  type RedisClient,
  type RedisConnectionOptions,
  type RedisTarget,
} from '../cluster/redis-connection.js';
import { luaKey, RedisKeys } from '../cluster/redis-keys.js';
import { DEFAULT_QUEUE_LIMITS, queueFullError, type QueueLimits, type QueueStore } from './queue-store.js';

export type RedisQueueOptions = RedisConnectionOptions & QueueLimits;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    sbQueuePush(queueKey: string, bytesKey: string, payload: Buffer, maxMessages: number, channel: string, maxBytes: number): Result<number, Context>;
    sbQueuePopBuffer(queueKey: string, inflightKey: string, nodeQueuesKey: string, bytesKey: string, max: number, queue: string): Result<Buffer[], Context>;
    sbQueueAck(inflightKey: string, nodeQueuesKey: string, queue: string, ...ids: string[]): Result<number, Context>;
    sbQueueRequeue(
      queueKey: string,
      inflightKey: string,
      nodeQueuesKey: string,
      bytesKey: string,
      queue: string,
      channel: string,
      ...payloads: Buffer[]
    ): Result<number, Context>;
    sbQueueRecover(nodeQueuesKey: string, prefix: string, nodeId: string): Result<number, Context>;
  }
}

/** Keeps in `inflight` only the messages whose id is not in `ids` (a set); drops it from the node's set when empty. */
const LUA_FORGET = `
local function forget(inflight, node_queues, queue, ids)
  local kept = {}
  for _, item in ipairs(redis.call('LRANGE', inflight, 0, -1)) do
    local id = ${luaMessageId('item')}
    if ids[id] then ids[id] = nil else kept[#kept + 1] = item end
  end
  redis.call('DEL', inflight)
  for _, item in ipairs(kept) do redis.call('RPUSH', inflight, item) end
  if #kept == 0 then redis.call('SREM', node_queues, queue) end
end
`;

const SCRIPTS = {
  // KEYS queue, queue-bytes; ARGV payload, max, channel, maxBytes → 1 pushed, 0 full (messages), -1 full (bytes)
  sbQueuePush: {
    numberOfKeys: 2,
    lua: `
if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
if tonumber(redis.call('GET', KEYS[2]) or '0') + #ARGV[1] > tonumber(ARGV[4]) then return -1 end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('INCRBY', KEYS[2], #ARGV[1])
redis.call('PUBLISH', ARGV[3], '1')
return 1`,
  },
  // KEYS queue, inflight, node-queues, queue-bytes; ARGV max, queue → messages
  sbQueuePop: {
    numberOfKeys: 4,
    lua: `
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items == 0 then return items end
redis.call('LTRIM', KEYS[1], #items, -1)
local size = 0
for _, item in ipairs(items) do
  redis.call('RPUSH', KEYS[2], item)
  size = size + #item
end
-- an emptied queue counts nothing: whatever the counter says is reset with it
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('DEL', KEYS[4]) else redis.call('DECRBY', KEYS[4], size) end
redis.call('SADD', KEYS[3], ARGV[2])
return items`,
  },
  // KEYS inflight, node-queues; ARGV queue, ids...
  sbQueueAck: {
    numberOfKeys: 2,
    lua: `${LUA_FORGET}
local ids = {}
for i = 2, #ARGV do ids[ARGV[i]] = true end
forget(KEYS[1], KEYS[2], ARGV[1], ids)
return 1`,
  },
  // KEYS queue, inflight, node-queues, queue-bytes; ARGV queue, channel, payloads (oldest first) → messages requeued
  // Only what is still in this node's in-flight list goes back: after this node was taken for dead
  // (a pause), its list moved away and was requeued by the recovery; pushing again would duplicate.
  // Never refused: these messages were accepted already.
  sbQueueRequeue: {
    numberOfKeys: 4,
    lua: `${LUA_FORGET}
local ids, idOf = {}, {}
for i = 3, #ARGV do
  local item = ARGV[i]
  local id = ${luaMessageId('item')}
  ids[id], idOf[i] = true, id
end
forget(KEYS[2], KEYS[3], ARGV[1], ids)
local n = 0
for i = #ARGV, 3, -1 do
  if not ids[idOf[i]] then
    redis.call('LPUSH', KEYS[1], ARGV[i])
    redis.call('INCRBY', KEYS[4], #ARGV[i])
    n = n + 1
  end
end
if n > 0 then redis.call('PUBLISH', ARGV[2], '1') end
return n`,
  },
  // KEYS node-queues; ARGV prefix, node id → messages moved back
  sbQueueRecover: {
    numberOfKeys: 1,
    lua: `
local P, node = ARGV[1], ARGV[2]
local total = 0
for _, queue in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local inflight = ${luaKey('P', 'queueInflight', 'node', 'queue')}
  local items = redis.call('LRANGE', inflight, 0, -1)
  local target = ${luaKey('P', 'queue', 'queue')}
  local size = 0
  for i = #items, 1, -1 do
    redis.call('LPUSH', target, items[i])
    size = size + #items[i]
  end
  if size > 0 then redis.call('INCRBY', ${luaKey('P', 'queueBytes', 'queue')}, size) end
  redis.call('DEL', inflight)
  if #items > 0 then redis.call('PUBLISH', ${luaKey('P', 'queueReady', 'queue')}, '1') end
  total = total + #items
end
redis.call('DEL', KEYS[1])
return total`,
  },
} as const;

export class RedisQueueStore implements QueueStore {
  private readonly redis: RedisClient;
  private readonly subscriber: RedisClient;
  private readonly keys: RedisKeys;
  private readonly opts: RedisQueueOptions;
  private readonly readyChannelPrefix: string;
  private readonly watched = new Set<string>();
  private readonly pending = new Set<string>();
  private readonly listeners: Array<(queue: string) => void> = [];
  /** Channels an UNSUBSCRIBE failed for (Redis down): dropped once the subscriber is back. */
  private readonly staleChannels = new Set<string>();
  private closed = false;

  constructor(
    readonly nodeId: string,
    target: RedisTarget,
    options: Partial<RedisQueueOptions> = {},
  ) {
    this.opts = { ...DEFAULT_QUEUE_LIMITS, ...options, ...resolveConnectionOptions(options) };
    this.keys = new RedisKeys(this.opts.keyPrefix);
    this.readyChannelPrefix = this.keys.queueReady('');
    this.redis = createRedisClient(target, 'command', { ...this.opts, name: 'queue' });
    this.subscriber = createRedisClient(target, 'subscriber', { ...this.opts, name: 'queue' });
    for (const [name, definition] of Object.entries(SCRIPTS)) this.redis.defineCommand(name, definition);
    this.subscriber.on('message', (channel: string) => {
      if (channel.startsWith(this.readyChannelPrefix)) this.notify(channel.slice(this.readyChannelPrefix.length));
    });
    this.subscriber.on('ready', () => this.resumed());
  }

  async push(queue: string, message: BrokerMessage): Promise<void> {
    const pushed = await this.call(this.redis, 'queue push', () =>
      this.redis.sbQueuePush(this.keys.queue(queue), this.keys.queueBytes(queue), encodeMessage(message), this.opts.maxMessages, this.keys.queueReady(queue), this.opts.maxBytes),
    );
    if (pushed !== 1) throw queueFullError(queue, this.opts, pushed === -1);
  }

  async pop(queue: string, max: number): Promise<BrokerMessage[]> {
    if (!(max > 0)) return [];
    const items = await this.call(this.redis, 'queue pop', () =>
      this.redis.sbQueuePopBuffer(
        this.keys.queue(queue),
        this.keys.queueInflight(this.nodeId, queue),
        this.keys.nodeQueues(this.nodeId),
        this.keys.queueBytes(queue),
        Number.isFinite(max) ? Math.floor(max) : 0x7fffffff,
        queue,
      ),
    );
    return items.map(decodeMessage);
  }

  async ack(queue: string, messageIds: readonly string[]): Promise<void> {
    if (messageIds.length === 0) return;
    await this.call(this.redis, 'queue ack', () =>
      this.redis.sbQueueAck(this.keys.queueInflight(this.nodeId, queue), this.keys.nodeQueues(this.nodeId), queue, ...messageIds),
    );
  }

  async requeue(queue: string, messages: readonly BrokerMessage[]): Promise<void> {
    if (messages.length === 0) return;
    await this.call(this.redis, 'queue requeue', () =>
      this.redis.sbQueueRequeue(
        this.keys.queue(queue),
        this.keys.queueInflight(this.nodeId, queue),
        this.keys.nodeQueues(this.nodeId),
        this.keys.queueBytes(queue),
        queue,
        this.keys.queueReady(queue),
        ...messages.map(encodeMessage),
      ),
    );
  }

  async watch(queue: string): Promise<void> {
    const channel = this.keys.queueReady(queue);
    this.watched.add(queue);
    this.staleChannels.delete(channel);
    try {
      await this.call(this.subscriber, 'queue watch', () => this.subscriber.subscribe(channel));
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
    try {
      await this.call(this.subscriber, 'queue unwatch', () => this.subscriber.unsubscribe(channel));
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

  /** Moves what `nodeId` held in flight back to the head of each queue, in order. Returns how many. */
  async recoverNode(nodeId: string): Promise<number> {
    return this.call(this.redis, 'queue recover', () => this.redis.sbQueueRecover(this.keys.nodeQueues(nodeId), this.keys.prefix, nodeId));
  }

  /** Puts back what this node still holds in flight (nothing, when its sessions requeued or acked), then disconnects. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watched.clear();
    if (this.redis.status === 'ready') {
      try {
        await this.recoverNode(this.nodeId);
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
      this.subscriber.unsubscribe(...channels).catch(() => {
        for (const channel of channels) this.staleChannels.add(channel);
      });
    }
    for (const queue of this.watched) this.notify(queue);
  }

  private call<T>(client: RedisClient, what: string, call: () => Promise<T>): Promise<T> {
    return redisCall(client, what, call);
  }
}

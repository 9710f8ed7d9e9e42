/*
 * Every Redis key and channel name the cluster uses, in one place: the key
 * schema. It is made for Redis Cluster's slots and works unchanged on one
 * Redis (or Sentinel): every key carries a hash tag, and what one script
 * must change atomically shares a tag, so it lives in one slot.
 *
 *   tag           what lives there                          touched
 *   {u:<user>}    a user's presence (nodes holding the user,  per message (route),
 *                 subscriptions, sessions per node), inboxes   per connect
 *                 and their bytes, inbox claims, known mark
 *   {n:<node>}    a node's liveness key, incarnation, relay   per message (hand-off),
 *                 stream, registrations index, claims index,   per beat
 *                 in-flight queue index, reap lock
 *   {q:<queue>}   a queue's list and bytes, its in-flight      per queue message
 *                 lists, its ready channel (sharded pub/sub)
 *   {t:<dest>}    a topic's channel (sharded pub/sub)          per topic message
 *   {g}           the live-node index, the online count,      per beat, per connect;
 *                 dead nodes awaiting recovery, dead letters,  never per message
 *                 timed-claim deadlines
 *
 * A key is `<prefix>{<tag>}:<rest>`. Scripts get every key they touch as
 * KEYS, except keys in the slot of a declared key, which a script may derive
 * with the Lua `sibling(key, rest)` (lua/lib.lua) — for a claim's inbox,
 * say, whose destination only the claim knows. No script spells a prefix or
 * a tag: that is this file's alone (spec/cluster/redis-scripts.spec.ts
 * checks the scripts for it).
 *
 * Tag contents are escaped (`%` → `%25`, `}` → `%7D`), so that a user or
 * queue name with a '}' cannot end its tag early: `sibling` finds the tag's
 * end at the first '}'. The prefix may contain neither '{' nor '}'.
 *
 * A node's keys are per incarnation where a reaped node must never touch
 * them again: a reap moves the node's stream, registrations and claims index
 * under the suffix `!<k>` (k: the incarnation reaped), and its in-flight
 * queue lists always carry `!<k>`. A recovery tag is `<node>!<k>`; node ids
 * contain neither ':' nor '!'.
 *
 * Stream partitions (a Redis Cluster): a node's relay stream is cut into
 * partitions so that hand-offs, reads and trims spread over the masters as
 * users do. Partition b holds the users whose slot lies in the b-th of
 * `count` equal ranges of the slot space (`slotBucket`), and its own tag is
 * chosen so that it lies in that range too: on the usual even split of
 * slots over `count` masters, a user's decision and hand-off meet on one
 * master. The partition of the node's own tag is its `{n:<node>}` stream;
 * the others are `{n:<node>:p<s>}` (a node id has no ':', so no node's tag
 * is ever a partition's). A user always maps to one partition: order per
 * user is kept. The list is the node's to choose and record
 * (`streamParts`); senders read it there.
 */
export const DEFAULT_KEY_PREFIX = 'sb:';

/** Hash slots of a Redis Cluster. */
export const CLUSTER_SLOTS = 16384;

/** Which of `count` equal ranges of the slot space `slot` lies in. */
export function slotBucket(slot: number, count: number): number {
  return Math.floor((slot * count) / CLUSTER_SLOTS);
}

/** Escapes a tag's content: the first '}' after the '{' ends a hash tag. */
function tagged(kind: string, name: string): string {
  return `{${kind}${name.replace(/%/g, '%25').replace(/}/g, '%7D')}}`;
}

/** The node id of a node id or recovery tag (`<node>!<k>`), and the tag's suffix (`!<k>`, or ''). */
export function splitNodeTag(nodeOrTag: string): { node: string; suffix: string } {
  const bang = nodeOrTag.indexOf('!');
  return bang < 0 ? { node: nodeOrTag, suffix: '' } : { node: nodeOrTag.slice(0, bang), suffix: nodeOrTag.slice(bang) };
}

/** The user a claim belongs to: claim ids are `<owner>:<user>:<rest>` (owner: a node id, or `t` for timed claims). */
export function claimUser(claimId: string): string {
  const first = claimId.indexOf(':');
  const second = first < 0 ? -1 : claimId.indexOf(':', first + 1);
  if (second < 0) throw new Error(`a claim id is <owner>:<user>:<rest> (got "${claimId}")`);
  return claimId.slice(first + 1, second);
}

export class RedisKeys {
  constructor(readonly prefix: string = DEFAULT_KEY_PREFIX) {
    if (/[{}]/.test(prefix)) throw new Error(`the Redis key prefix may contain neither "{" nor "}" (got "${prefix}")`);
  }

  // --- {g}: cluster-wide, never on the message path

  /** ZSET node id → last beat (Redis server time, ms): the index the reaper scans and every node's live view. */
  nodes(): string {
    return `${this.prefix}{g}:nodes`;
  }
  /** HASH user → number of nodes holding the user; HLEN is the online count. */
  online(): string {
    return `${this.prefix}{g}:online`;
  }
  /** SET of recovery tags whose stream, claims, registrations or in-flight messages wait to be recovered. */
  deadNodes(): string {
    return `${this.prefix}{g}:dead-nodes`;
  }
  /** STRING, the node recovering `<tag>` now (SET NX PX, renewed while it works). */
  recoverLock(tag: string): string {
    return `${this.prefix}{g}:recover:${tag}`;
  }
  /** STREAM of relay entries that could not be decoded or delivered. */
  deadLetter(): string {
    return `${this.prefix}{g}:dead-letter`;
  }
  /** ZSET `<user>\n<claimId>` of timed claims → deadline (Redis server time, ms). */
  claimDeadlines(): string {
    return `${this.prefix}{g}:claim-deadlines`;
  }

  // --- {n:<node>}: one node's

  private nodeKey(nodeOrTag: string, part: string): string {
    const { node, suffix } = splitNodeTag(nodeOrTag);
    return `${this.prefix}${tagged('n:', node)}:${part}${suffix}`;
  }
  /** STRING JSON NodeInfo, PX node timeout: the node is live while it exists. */
  node(id: string): string {
    return this.nodeKey(id, 'node');
  }
  /** STRING the node's current incarnation k (deleted when it is reaped). */
  incarnation(id: string): string {
    return this.nodeKey(id, 'inc');
  }
  /** Counter numbering the node's incarnations. */
  incarnationSeq(id: string): string {
    return this.nodeKey(id, 'seq');
  }
  /** STRING, the node reaping this one (SET NX PX). */
  reap(id: string): string {
    return this.nodeKey(id, 'reap');
  }
  /**
   * STRING, the stream owners of the node's partitions, space-separated, the
   * b-th for slot bucket b (absent: one stream, the node's own). Moved under
   * `!k` with the stream by a reap.
   */
  streamParts(nodeOrTag: string): string {
    return this.nodeKey(nodeOrTag, 'parts');
  }
  /** STRING, in a partition's slot: the incarnation that opened it (lua/relay-part-move.lua). */
  partIncarnation(owner: string): string {
    return this.nodeKey(owner, 'inc');
  }
  /**
   * STREAM of user envelopes not yet delivered by the node (or, under a tag,
   * left by a dead one). `nodeOrTag` may name a partition's owner
   * (`<node>:p<s>`, see `partitionOwners`).
   */
  stream(nodeOrTag: string): string {
    return this.nodeKey(nodeOrTag, 'stream');
  }
  /**
   * Pub/sub channel on which a one-Redis writer also publishes each entry of
   * the stream, for the reader fed by pushes (redis-push-feed.ts); lua/lib.lua
   * `relay_append` names it `sibling(stream, 'push')`.
   */
  streamPush(nodeOrTag: string): string {
    return this.nodeKey(nodeOrTag, 'push');
  }
  /**
   * STRING beside a one-Redis stream: the id of its newest entry appended with
   * a push, the next push's `prev` (lua/lib.lua `relay_append` names it
   * `sibling(stream, 'push-last')`); deleted whenever the stream is made,
   * moved or dropped.
   */
  streamLast(nodeOrTag: string): string {
    return this.nodeKey(nodeOrTag, 'push-last');
  }
  /** Counter of envelope bytes in the stream not yet trimmed. */
  streamBytes(nodeOrTag: string): string {
    return this.nodeKey(nodeOrTag, 'stream-bytes');
  }
  /** SET of what the node registered: `u:<user>`, `k:<subscription key>`, `h:<sessions key>`, so anyone can undo it. */
  nodeIndex(nodeOrTag: string): string {
    return this.nodeKey(nodeOrTag, 'index');
  }
  /** SET of the node's inbox claim ids. */
  nodeClaims(nodeOrTag: string): string {
    return this.nodeKey(nodeOrTag, 'claims');
  }
  /** SET of queues an incarnation (`<node>!<k>`) has in-flight lists for. */
  nodeQueues(incarnationTag: string): string {
    return this.nodeKey(incarnationTag, 'queues');
  }

  /**
   * The owners of a node's `count` stream partitions, the b-th in slot bucket
   * b: the node itself for the bucket its own tag is in, `<node>:p<s>` with
   * the least s whose tag falls in the bucket for the others. Deterministic.
   */
  partitionOwners(node: string, count: number, slotOf: (key: string) => number): string[] {
    const owners: string[] = [];
    const own = slotBucket(slotOf(this.stream(node)), count);
    let s = 0;
    for (let bucket = 0; bucket < count; bucket++) {
      if (bucket === own) {
        owners.push(node);
        continue;
      }
      for (;;) {
        const owner = `${node}:p${s++}`;
        if (slotBucket(slotOf(this.stream(owner)), count) === bucket) {
          owners.push(owner);
          break;
        }
      }
    }
    return owners;
  }

  // --- {u:<user>}: one user's

  private userKey(user: string, rest: string): string {
    return `${this.prefix}${tagged('u:', user)}:${rest}`;
  }
  /** HASH node id → incarnation, of the nodes holding a session of the user. */
  userNodes(user: string): string {
    return this.userKey(user, 'nodes');
  }
  /** HASH node id → incarnation, of the nodes holding a subscription of the user to `destination`. */
  subs(user: string, destination: string): string {
    return this.userKey(user, `subs:${destination}`);
  }
  /** LIST of encoded messages, oldest first. */
  inbox(user: string, destination: string): string {
    return this.userKey(user, `inbox:${destination}`);
  }
  /** SET of the user's destinations with an inbox. */
  inboxes(user: string): string {
    return this.userKey(user, 'inboxes');
  }
  /** HASH destination → bytes in that inbox, `total` → their sum (INBOX_MAX_BYTES), `settled` → when expired inboxes were last looked for (s). */
  inboxBytes(user: string): string {
    return this.userKey(user, 'inbox-bytes');
  }
  /** HASH node id → sessions of the user on that node (MAX_CONNECTIONS_PER_USER). */
  userSessions(user: string): string {
    return this.userKey(user, 'sessions');
  }
  /** STRING, EX inbox TTL: the user logged in within it (RECIPIENT_POLICY=known). */
  known(user: string): string {
    return this.userKey(user, 'known');
  }
  /** HASH message id → encoded message, of a claim (in its user's slot: claims move inbox messages). */
  claim(claimId: string): string {
    return this.userKey(claimUser(claimId), `claim:${claimId}`);
  }
  /** LIST of the claim's message ids, oldest first. */
  claimOrder(claimId: string): string {
    return this.userKey(claimUser(claimId), `claim-order:${claimId}`);
  }
  /** HASH user, destination of the claim (and deadline, ended for a timed claim). */
  claimMeta(claimId: string): string {
    return this.userKey(claimUser(claimId), `claim-meta:${claimId}`);
  }

  // --- {q:<queue>}: one queue's

  private queueKey(queue: string, rest: string): string {
    return `${this.prefix}${tagged('q:', queue)}:${rest}`;
  }
  /** LIST of encoded messages, oldest first. */
  queue(name: string): string {
    return this.queueKey(name, 'list');
  }
  /** Counter of the bytes in the queue's list (QUEUE_MAX_BYTES). */
  queueBytes(name: string): string {
    return this.queueKey(name, 'bytes');
  }
  /** LIST of what an incarnation (`<node>!<k>`) popped and has not acked or requeued. */
  queueInflight(incarnationTag: string, queue: string): string {
    return this.queueKey(queue, `inflight:${incarnationTag}`);
  }
  /** Channel (sharded on a cluster): messages were pushed. */
  queueReady(queue: string): string {
    return this.queueKey(queue, 'ready');
  }

  // --- {t:<destination>}

  /** Channel (sharded on a cluster) of a topic. */
  topic(destination: string): string {
    return `${this.prefix}${tagged('t:', destination)}`;
  }
}

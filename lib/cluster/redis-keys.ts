/*
 * Every Redis key and channel name the cluster uses, in one place, for
 * TypeScript (`RedisKeys`) and for Lua (`luaKey`): presence, relay, inbox
 * and queue scripts read each other's keys (the user router reads presence's
 * subscription sets, the reaper cleans up what any part registered), so they
 * must spell them identically.
 *
 * `{p}` below is the key prefix (default `sb:`). Names are joined with ':';
 * user destinations always start with '/', which keeps `<user>:<destination>`
 * unambiguous for user names without ":/". Node ids contain no ':' (a claim
 * id's node is the part before its first ':') and no '!' (a reaped node's
 * keys move under its recovery tag `<id>!<n>`, which the live node, if it
 * was only paused, can never spell).
 *
 * The prefix is applied here rather than through ioredis' `keyPrefix`
 * option, because Lua scripts build keys from ids they read (node ids from a
 * set, users from an index); with ioredis' prefix those keys would be spelled
 * differently from the ones it prefixes itself.
 */
export const DEFAULT_KEY_PREFIX = 'sb:';

/** The part of each key after the prefix and before its arguments. */
export const KEY = Object.freeze({
  /** `{p}node:<id>` string, JSON NodeInfo, PX nodeTimeoutMs: the node is live while it exists. */
  node: 'node:',
  /** `{p}nodes` ZSET node id → last beat (Redis server time, ms). */
  nodes: 'nodes',
  /** `{p}user-nodes:<user>` SET of node ids holding a session of the user. */
  userNodes: 'user-nodes:',
  /** `{p}online` HASH user → number of nodes holding the user. */
  online: 'online',
  /** `{p}subs:<user>:<destination>` SET of node ids holding a subscription. */
  subs: 'subs:',
  /** `{p}node-index:<id>` SET of what the node registered (`u:<user>`, `k:<set key>`, `h:<hash key>` holding a field named by the node id). */
  nodeIndex: 'node-index:',
  /** `{p}reap:<id>` string, the node reaping `<id>` (SET NX PX). */
  reap: 'reap:',
  /** `{p}reap-seq` counter numbering reaps: a reaped node's keys move under `<id>!<n>`. */
  reapSeq: 'reap-seq',
  /** `{p}dead-nodes` SET of recovery tags (`<id>!<n>`) whose stream, claims or in-flight messages wait to be recovered. */
  deadNodes: 'dead-nodes',
  /** `{p}recover:<tag>` string, the node recovering `<tag>` now (SET NX PX, renewed while it works). */
  recoverLock: 'recover:',
  /** `{p}stream-bytes:<id>` counter of envelope bytes in `{p}stream:<id>` not yet trimmed. */
  streamBytes: 'stream-bytes:',
  /** `{p}dead-letter` STREAM of relay entries that could not be decoded or delivered. */
  deadLetter: 'dead-letter',
  /** `{p}stream:<id>` STREAM of user envelopes not yet delivered by node `<id>`. */
  stream: 'stream:',
  /** `{p}topic:<destination>` pub/sub channel. */
  topic: 'topic:',
  /** `{p}inbox:<user>:<destination>` LIST of encoded messages, oldest first. */
  inbox: 'inbox:',
  /** `{p}inboxes:<user>` SET of the user's destinations with an inbox. */
  inboxes: 'inboxes:',
  /** `{p}inbox-bytes:<user>` HASH destination → bytes in that inbox, `total` → their sum (INBOX_MAX_BYTES), `settled` → when expired inboxes were last looked for (s). */
  inboxBytes: 'inbox-bytes:',
  /** `{p}claim:<claimId>` HASH message id → encoded message. */
  claim: 'claim:',
  /** `{p}claim-order:<claimId>` LIST of the claim's message ids, oldest first. */
  claimOrder: 'claim-order:',
  /** `{p}claim-meta:<claimId>` HASH user, destination. */
  claimMeta: 'claim-meta:',
  /** `{p}node-claims:<nodeId>` SET of the node's claim ids. */
  nodeClaims: 'node-claims:',
  /** `{p}claim-deadlines` ZSET timed claim id → deadline (Redis server time, ms). */
  claimDeadlines: 'claim-deadlines',
  /** `{p}queue:<name>` LIST of encoded messages, oldest first. */
  queue: 'queue:',
  /** `{p}queue-bytes:<name>` counter of the bytes in `{p}queue:<name>` (QUEUE_MAX_BYTES). */
  queueBytes: 'queue-bytes:',
  /** `{p}queue-inflight:<nodeId>:<queue>` LIST of encoded messages the node popped. */
  queueInflight: 'queue-inflight:',
  /** `{p}node-queues:<nodeId>` SET of queues the node has in-flight lists for. */
  nodeQueues: 'node-queues:',
  /** `{p}queue-ready:<queue>` pub/sub channel: messages were pushed. */
  queueReady: 'queue-ready:',
  /** `{p}known:<user>` string, EX inbox TTL: the user logged in within it (RECIPIENT_POLICY=known). */
  known: 'known:',
  /** `{p}user-sessions:{u:<user>}` HASH node id → sessions of the user on that node (MAX_CONNECTIONS_PER_USER); hash-tagged to the user's slot. */
  userSessions: 'user-sessions:',
});

export class RedisKeys {
  constructor(readonly prefix: string = DEFAULT_KEY_PREFIX) {}

  node(id: string): string {
    return this.prefix + KEY.node + id;
  }
  nodes(): string {
    return this.prefix + KEY.nodes;
  }
  userNodes(user: string): string {
    return this.prefix + KEY.userNodes + user;
  }
  online(): string {
    return this.prefix + KEY.online;
  }
  subs(user: string, destination: string): string {
    return `${this.prefix}${KEY.subs}${user}:${destination}`;
  }
  nodeIndex(id: string): string {
    return this.prefix + KEY.nodeIndex + id;
  }
  reap(id: string): string {
    return this.prefix + KEY.reap + id;
  }
  reapSeq(): string {
    return this.prefix + KEY.reapSeq;
  }
  deadNodes(): string {
    return this.prefix + KEY.deadNodes;
  }
  recoverLock(tag: string): string {
    return this.prefix + KEY.recoverLock + tag;
  }
  stream(id: string): string {
    return this.prefix + KEY.stream + id;
  }
  streamBytes(id: string): string {
    return this.prefix + KEY.streamBytes + id;
  }
  deadLetter(): string {
    return this.prefix + KEY.deadLetter;
  }
  topic(destination: string): string {
    return this.prefix + KEY.topic + destination;
  }
  inbox(user: string, destination: string): string {
    return `${this.prefix}${KEY.inbox}${user}:${destination}`;
  }
  inboxes(user: string): string {
    return this.prefix + KEY.inboxes + user;
  }
  inboxBytes(user: string): string {
    return this.prefix + KEY.inboxBytes + user;
  }
  claim(claimId: string): string {
    return this.prefix + KEY.claim + claimId;
  }
  claimOrder(claimId: string): string {
    return this.prefix + KEY.claimOrder + claimId;
  }
  claimMeta(claimId: string): string {
    return this.prefix + KEY.claimMeta + claimId;
  }
  nodeClaims(nodeId: string): string {
    return this.prefix + KEY.nodeClaims + nodeId;
  }
  claimDeadlines(): string {
    return this.prefix + KEY.claimDeadlines;
  }
  queue(name: string): string {
    return this.prefix + KEY.queue + name;
  }
  queueBytes(name: string): string {
    return this.prefix + KEY.queueBytes + name;
  }
  queueInflight(nodeId: string, queue: string): string {
    return `${this.prefix}${KEY.queueInflight}${nodeId}:${queue}`;
  }
  nodeQueues(nodeId: string): string {
    return this.prefix + KEY.nodeQueues + nodeId;
  }
  queueReady(queue: string): string {
    return this.prefix + KEY.queueReady + queue;
  }
  known(user: string): string {
    return this.prefix + KEY.known + user;
  }
  userSessions(user: string): string {
    return `${this.prefix}${KEY.userSessions}{u:${user}}`;
  }
}

/**
 * The Lua expression for a key, given Lua expressions for the prefix and the
 * arguments: `luaKey('P', 'node', 'id')` is `P .. 'node:' .. id`. Arguments
 * are joined with ':' as in `RedisKeys`.
 */
export function luaKey(prefix: string, part: keyof typeof KEY, ...args: string[]): string {
  return [prefix, `'${KEY[part]}'`, args.join(` .. ':' .. `)].filter((s) => s !== '').join(' .. ');
}

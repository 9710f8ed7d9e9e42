/*
 * Writes a RECEIPT answers for, made durable across a failover: Redis
 * replicates asynchronously, so a master that dies right after answering can
 * take the write with it when its replica is promoted. With `waitReplicas`
 * > 0 such a write leaves in one pipeline with `WAIT <replicas> <timeout>`:
 * on a cluster the pipeline goes to the write's own master (WAIT has no key;
 * it follows the pipeline's slot), so WAIT counts the replicas that hold it.
 * Fewer than asked within the timeout → the send is refused
 * (ERR_CLUSTER_UNAVAILABLE): the write may survive anyway, and a resend may
 * then duplicate it (same message-id), never lose it.
 */
import type { ChainableCommander } from 'ioredis';
import { BrokerError } from '../core/errors.js';
import { clusterError, redisCall, type RedisClient } from './redis-connection.js';
import { ReplyError, type RespArg, type RespConnection, type RespReply } from './resp-connection.js';

export interface Durability {
  /** Replicas that must hold the write (REDIS_WAIT_REPLICAS); 0: the master's word. */
  waitReplicas: number;
  /** REDIS_WAIT_TIMEOUT_MS. */
  waitTimeoutMs: number;
}

export const NO_WAIT: Durability = Object.freeze({ waitReplicas: 0, waitTimeoutMs: 1000 });

/**
 * Runs `write` (one command queued on the pipeline it is given, or called
 * directly without replicas to wait for) and resolves with its reply once
 * the replicas hold it.
 */
export async function durableWrite<T>(
  client: RedisClient,
  durability: Durability,
  what: string,
  direct: () => Promise<T>,
  queued: (pipeline: ChainableCommander) => ChainableCommander,
): Promise<T> {
  if (!(durability.waitReplicas > 0)) return redisCall(client, what, direct);
  const replies = await redisCall(client, what, () => queued(client.pipeline()).wait(durability.waitReplicas, durability.waitTimeoutMs).exec());
  if (replies === null || replies.length !== 2) throw new BrokerError('ERR_CLUSTER_UNAVAILABLE', `${what}: no reply from Redis`);
  const [[writeError, reply], [waitError, replicas]] = replies as [[Error | null, unknown], [Error | null, unknown]];
  // Mapped as any failed call is (ERR_CLUSTER_UNAVAILABLE for a connection lost, else as it came).
  if (writeError) await redisCall(client, what, () => Promise.reject(writeError));
  if (waitError || Number(replicas) < durability.waitReplicas) throw notHeld(durability, what, waitError ? undefined : Number(replicas));
  return reply as T;
}

const PING: readonly RespArg[] = ['PING'];

/**
 * As `durableWrite`, for one command on a lean connection (resp-connection.ts): the WAIT goes in its pipeline.
 *
 * `pushesFirst`: the command is a script that also publishes to other nodes' subscriptions (a
 * push-fed reader's, lua/lib.lua relay_append). A PING goes ahead of it so that Redis writes those
 * pushes before this reply: Redis writes the clients that got output in one event-loop turn newest
 * first (networking.c, putClientInPendingWriteQueue links each at the head of the list), so the
 * reply, made after the script's PUBLISH, went out first, and on a busy machine the caller it
 * woke could take the core from Redis before the push was written. With the PING this connection
 * has output before the script runs. Measured: docs/bench/two-node-profile.md, "Session 18".
 */
export async function durableLeanWrite(
  connection: RespConnection,
  durability: Durability,
  what: string,
  command: readonly RespArg[],
  pushesFirst = false,
): Promise<RespReply> {
  try {
    const commands = pushesFirst ? [PING, command] : [command];
    if (!(durability.waitReplicas > 0)) {
      const replies = await connection.pipeline(commands);
      const reply = replies[replies.length - 1];
      if (reply instanceof ReplyError) throw reply;
      return reply!;
    }
    const replies = await connection.pipeline([...commands, ['WAIT', durability.waitReplicas, durability.waitTimeoutMs]]);
    const [reply, replicas] = replies.slice(-2);
    if (reply instanceof ReplyError) throw reply;
    if (replicas instanceof ReplyError || Number(replicas) < durability.waitReplicas) throw notHeld(durability, what, replicas instanceof ReplyError ? undefined : Number(replicas));
    return reply!;
  } catch (error) {
    throw clusterError(error, what);
  }
}

/** Written, but not held by as many replicas as asked (undefined: WAIT itself failed). */
function notHeld(durability: Durability, what: string, replicas: number | undefined): BrokerError {
  return new BrokerError(
    'ERR_CLUSTER_UNAVAILABLE',
    `${what}: written, but ${replicas === undefined ? 'WAIT failed' : `held by ${replicas} of ${durability.waitReplicas} replicas`} within ${durability.waitTimeoutMs} ms (REDIS_WAIT_REPLICAS); send again`,
  );
}

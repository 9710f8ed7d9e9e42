/*
 * A benchmark target: a broker (or peer system) the runner can start, load
 * through the load generator, and sample (CPU, RSS) through its pids.
 */
import type { Protocol } from './connection.js';
import type { Placement } from './options.js';

export interface TargetNeeds {
  /** Most simultaneous client connections a shape of this run will open. */
  connections: number;
  log(line: string): void;
}

export interface StartedTarget {
  /** Broker processes whose CPU and RSS are reported. */
  pids: number[];
  /** What each pid is, in order ('sender node', 'receiver node', 'redis', 'beam'): CPU is reported per role. */
  roles?: string[];
  /** Facts worth printing next to the figures (limits, versions). */
  notes?: string[];
  /** Connections the target can hold, when known (an fd limit); shapes above it are skipped. */
  maxConnections?: number;
}

export interface BenchTarget {
  name: string;
  protocol: Protocol;
  /** WebSocket URL of the (first) node, loopback only. */
  url: string;
  /** Every node's URL when the target is a cluster: p2p pairs then cross nodes. @default [url] */
  urls?: string[];
  /** p2p destination of both sides, `{i}` = pair index. */
  destinationTemplate: string;
  /** p2p: what receiver i subscribes to, when the two sides name it differently (STOMP user destinations). @default destinationTemplate */
  subscribeDestinationTemplate?: string;
  /** p2p: what publisher i sends to. @default destinationTemplate */
  sendDestinationTemplate?: string;
  /** fanout destination (a topic). */
  fanoutDestination: string;
  /** idle destination, `{i}` = connection index. */
  idleDestination: string;
  /** Login of every connection (`{i}` = connection index), where the two below are not set. */
  login?: string;
  passcode?: string;
  /** Login of receiver i: p2p pair i, fanout subscriber i, idle connection i. @default login */
  receiverLoginTemplate?: string;
  /** Login of publisher i (p2p pair i; fanout: 0). @default login */
  senderLoginTemplate?: string;
  /** How connections spread over `urls` (see LoadOptions.placement). @default 'alternate' */
  placement?: Placement;
  sendHeaders?: Record<string, string>;
  subscribeHeaders?: Record<string, string>;
  /** Starts (or checks) the target; throws TargetUnavailable to skip it with a reason. */
  start(needs: TargetNeeds): Promise<StartedTarget>;
  /** Before each shape: clear what an earlier shape left (e.g. RabbitMQ's durable bench queues). */
  prepare?(): Promise<void>;
  /** After each shape: what the target saw of it (e.g. how its messages were routed), kept as notes of the result. */
  afterShape?(): Promise<string[]>;
  stop(): Promise<void>;
}

/** The target cannot run here (not installed, not written yet): the runner skips it and prints why. */
export class TargetUnavailable extends Error {
  override readonly name = 'TargetUnavailable';
}

/*
 * A benchmark target: a broker (or peer system) the runner can start, load
 * through the load generator, and sample (CPU, RSS) through its pids.
 */
import type { Protocol } from './connection.js';

export interface TargetNeeds {
  /** Most simultaneous client connections a shape of this run will open. */
  connections: number;
  log(line: string): void;
}

export interface StartedTarget {
  /** Broker processes whose CPU and RSS are reported. */
  pids: number[];
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
  /** p2p destination, `{i}` = pair index. */
  destinationTemplate: string;
  /** fanout destination (a topic). */
  fanoutDestination: string;
  /** idle destination, `{i}` = connection index. */
  idleDestination: string;
  login?: string;
  passcode?: string;
  sendHeaders?: Record<string, string>;
  subscribeHeaders?: Record<string, string>;
  /** Starts (or checks) the target; throws TargetUnavailable to skip it with a reason. */
  start(needs: TargetNeeds): Promise<StartedTarget>;
  /** Before each shape: clear what an earlier shape left (e.g. RabbitMQ's durable bench queues). */
  prepare?(): Promise<void>;
  stop(): Promise<void>;
}

/** The target cannot run here (not installed, not written yet): the runner skips it and prints why. */
export class TargetUnavailable extends Error {
  override readonly name = 'TargetUnavailable';
}

/*
 * The scenarios of the chaos matrix: what each one breaks, and how. Faults
 * are real: signals to real processes (SIGKILL, SIGTERM, SIGSTOP/SIGCONT),
 * never a mock. Each fault is bounded in time.
 */
import { RedisKeys } from '../../lib/cluster/redis-keys.js';
import type { Cluster, RedisBackend } from './cluster.js';
import { sleep, type Receiver } from './load.js';

/**
 * - live: receivers subscribed on node B, senders on node A, a fault under load;
 * - inbox-full: receivers offline while senders go past the inbox cap, then they connect;
 * - pull: receivers offline, pulling over HTTP with claim + ack.
 */
export type ScenarioKind = 'live' | 'inbox-full' | 'pull';

export interface FaultContext {
  cluster: Cluster;
  receivers: readonly Receiver[];
  /** NODE_TIMEOUT_MS of the nodes. */
  nodeTimeoutMs: number;
  note(line: string): void;
}

export interface Scenario {
  name: string;
  summary: string;
  kind: ScenarioKind;
  /** Part of `--quick`. */
  quick: boolean;
  /** Extra environment of both nodes. */
  nodeEnv?: Record<string, string>;
  /** What Redis the nodes stand on. @default 'single' */
  redis?: RedisBackend;
  /** A graceful fault: any duplicate is a failure. */
  noDuplicates?: boolean;
  fault?(context: FaultContext): Promise<void>;
}

const FLAPS = 10;
export const INBOX_FULL_CAP = 300;
export const INBOX_FULL_SENDS = 400;
const NODE_DOWN_MS = 3000;
const PAUSE_BETWEEN_RESTARTS_MS = 2000;

/** SIGKILL to node B, started again NODE_DOWN_MS later (same port and NODE_ID). */
async function killAndRestartB({ cluster }: FaultContext): Promise<void> {
  await cluster.killNode('B');
  await sleep(NODE_DOWN_MS);
  await cluster.startNode('B');
}

/** SIGSTOP to node B for twice the node timeout (reaped meanwhile), then SIGCONT. */
async function pauseBPastTimeout({ cluster, nodeTimeoutMs }: FaultContext): Promise<void> {
  cluster.pauseNode('B');
  await sleep(2 * nodeTimeoutMs);
  cluster.resumeNode('B');
}

function redisOutage(signal: 'SIGTERM' | 'SIGKILL', seconds: number, quick: boolean): Scenario {
  const verb = signal === 'SIGTERM' ? 'term' : 'kill';
  return {
    name: `redis-${verb}-${seconds}`,
    summary: `${signal} to redis-server, down ${seconds} s, restarted on the same port and data dir (appendonly, fsync every second)`,
    kind: 'live',
    quick,
    async fault({ cluster }) {
      await cluster.redisDown(signal);
      await sleep(seconds * 1000);
      await cluster.redisUp();
    },
  };
}

/** How long a killed Redis server stays down before it is started again (and rejoins as a replica). */
const REDIS_SERVER_DOWN_MS = 5000;
/** Between the two faults of sentinel-failover. */
const BETWEEN_FAILOVERS_MS = 4000;
/** The receivers' node's relay stream: the key whose master a cluster scenario takes away. */
const RECEIVERS_STREAM = new RedisKeys().stream('chaos-b');

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'receiver-flap',
    summary: `each receiver's connection drops (no DISCONNECT) and the client reconnects and re-subscribes, ${FLAPS} times`,
    kind: 'live',
    quick: true,
    async fault({ receivers }) {
      for (let i = 0; i < FLAPS; i++) {
        await Promise.all(receivers.map((receiver) => receiver.flap()));
        await sleep(200 + Math.random() * 300);
      }
    },
  },
  {
    name: 'node-kill',
    summary: `SIGKILL to the receivers' node B; restarted ${NODE_DOWN_MS / 1000} s later (same port and NODE_ID); receivers move to A meanwhile`,
    kind: 'live',
    quick: true,
    fault: killAndRestartB,
  },
  {
    name: 'node-stop',
    summary: "SIGSTOP to the receivers' node B for 2× NODE_TIMEOUT_MS (a GC pause or a frozen VM), then SIGCONT",
    kind: 'live',
    quick: true,
    fault: pauseBPastTimeout,
  },
  ...[1, 5, 10, 30].map((seconds) => redisOutage('SIGTERM', seconds, seconds === 1 || seconds === 10)),
  ...[1, 5, 10, 30].map((seconds) => redisOutage('SIGKILL', seconds, seconds === 1 || seconds === 10)),
  {
    name: 'rolling-restart',
    summary: 'SIGTERM to each node in turn under load, wait for its exit, start it again (same port and NODE_ID)',
    kind: 'live',
    quick: true,
    noDuplicates: true,
    async fault({ cluster, note }) {
      for (const name of ['A', 'B'] as const) {
        note(`node ${name}: ${await cluster.stopNode(name)}`);
        await cluster.startNode(name);
        await sleep(PAUSE_BETWEEN_RESTARTS_MS);
      }
    },
  },
  {
    name: 'cluster-node-kill',
    summary: `Redis Cluster (3 masters, 3 replicas; a node's stream in a partition per master): SIGKILL to the receivers' node B; restarted ${NODE_DOWN_MS / 1000} s later (same port and NODE_ID)`,
    kind: 'live',
    quick: false,
    redis: 'cluster',
    fault: killAndRestartB,
  },
  {
    name: 'cluster-node-stop',
    summary: "Redis Cluster (3 masters, 3 replicas; a node's stream in a partition per master): SIGSTOP to the receivers' node B for 2× NODE_TIMEOUT_MS, then SIGCONT",
    kind: 'live',
    quick: false,
    redis: 'cluster',
    fault: pauseBPastTimeout,
  },
  {
    name: 'cluster-master-kill',
    summary: `Redis Cluster (3 masters, 3 replicas): SIGKILL to the master holding the receivers' node stream; its replica is promoted; the killed server restarts ${REDIS_SERVER_DOWN_MS / 1000} s later and rejoins as a replica`,
    kind: 'live',
    quick: false,
    // As ARCHITECTURE.md says a RECEIPT survives a failover: every receipted write held by a replica.
    nodeEnv: { REDIS_WAIT_REPLICAS: '1' },
    redis: 'cluster',
    async fault({ cluster, note }) {
      const { killed, promoted } = await cluster.redisCluster.killMaster(RECEIVERS_STREAM);
      cluster.redisEvent(`redis master ${killed} SIGKILL; replica ${promoted} promoted`);
      note(`master ${killed} killed, ${promoted} promoted`);
      await sleep(REDIS_SERVER_DOWN_MS);
      await cluster.redisCluster.restart(killed);
      cluster.redisEvent(`redis ${killed} restarted as a replica`);
    },
  },
  {
    name: 'cluster-failover',
    summary: "Redis Cluster (3 masters, 3 replicas): CLUSTER FAILOVER on the replica of the master holding the receivers' node stream (a planned switch-over)",
    kind: 'live',
    quick: false,
    // As ARCHITECTURE.md says a RECEIPT survives a failover: every receipted write held by a replica.
    nodeEnv: { REDIS_WAIT_REPLICAS: '1' },
    redis: 'cluster',
    async fault({ cluster, note }) {
      const master = await cluster.redisCluster.masterOf(RECEIVERS_STREAM);
      const [replica] = await cluster.redisCluster.replicasOf(master);
      if (replica === undefined) throw new Error(`master ${master} has no live replica`);
      const { demoted, promoted } = await cluster.redisCluster.failover(replica);
      cluster.redisEvent(`CLUSTER FAILOVER: ${promoted} master, ${demoted} replica`);
      note(`${demoted} → ${promoted}`);
    },
  },
  {
    name: 'sentinel-failover',
    summary: `Sentinel (primary, replica, 3 sentinels): SENTINEL FAILOVER; ${BETWEEN_FAILOVERS_MS / 1000} s later SIGKILL to the new primary (the sentinels promote the other); the killed server restarts ${REDIS_SERVER_DOWN_MS / 1000} s later as a replica`,
    kind: 'live',
    quick: false,
    // As ARCHITECTURE.md says a RECEIPT survives a failover: every receipted write held by a replica.
    nodeEnv: { REDIS_WAIT_REPLICAS: '1' },
    redis: 'sentinel',
    async fault({ cluster, note }) {
      const switched = await cluster.sentinel.failover();
      cluster.redisEvent(`SENTINEL FAILOVER: ${switched.promoted} primary`);
      note(`failover ${switched.demoted} → ${switched.promoted}`);
      await sleep(BETWEEN_FAILOVERS_MS);
      const { killed, promoted } = await cluster.sentinel.killPrimary();
      cluster.redisEvent(`redis primary ${killed} SIGKILL; ${promoted} promoted`);
      note(`primary ${killed} killed, ${promoted} promoted`);
      await sleep(REDIS_SERVER_DOWN_MS);
      await cluster.sentinel.restart(killed);
      cluster.redisEvent(`redis ${killed} restarted as a replica`);
    },
  },
  {
    name: 'inbox-full',
    summary: `receivers offline; nodes with INBOX_MAX_MESSAGES=${INBOX_FULL_CAP}; each sender sends ${INBOX_FULL_SENDS} (past the cap: ERR_INBOX_FULL expected once full); then the receivers connect and must get every receipted message`,
    kind: 'inbox-full',
    quick: true,
    nodeEnv: { INBOX_MAX_MESSAGES: String(INBOX_FULL_CAP) },
  },
  {
    name: 'pull-claim',
    summary: 'receivers offline, pulling over HTTP with POST /api/inbox/claim + /api/inbox/ack on both nodes; some claims abandoned or their connection cut before the answer is read (they must come back after the visibility timeout)',
    kind: 'pull',
    quick: true,
  },
];

export function findScenarios(names: readonly string[], quick: boolean): Scenario[] {
  if (names.length === 0) return SCENARIOS.filter((scenario) => !quick || scenario.quick);
  return names.map((name) => {
    const found = SCENARIOS.find((scenario) => scenario.name === name);
    if (found === undefined) throw new Error(`unknown scenario "${name}"; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
    return found;
  });
}

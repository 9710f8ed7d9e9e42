/*
 * Nodes for specs: a real node (HTTP + WebSocket on port 0, in-memory parts)
 * started in-process, and a bare Broker over the same memory parts for unit
 * specs of the session state machine. Everything started here is stopped by
 * `stopTestNodes()`, meant for `afterEach`.
 */
import { pino } from 'pino';
import { OpenAuthenticator, type Authenticator } from '../../lib/broker/auth.js';
import { Broker } from '../../lib/broker/broker.js';
import { MemoryHub } from '../../lib/cluster/memory-hub.js';
import { MemoryPresence } from '../../lib/cluster/memory-presence.js';
import { MemoryRelay } from '../../lib/cluster/memory-relay.js';
import { MemoryUserRouter } from '../../lib/cluster/memory-user-router.js';
import { loadConfig, type Config } from '../../lib/config.js';
import { MemoryInboxStore } from '../../lib/inbox/memory-inbox-store.js';
import { startNode, type RunningNode } from '../../lib/node.js';
import { MemoryQueueStore } from '../../lib/queue/memory-queue-store.js';

export interface TestNode extends RunningNode {
  /** `ws://127.0.0.1:<port>/stomp` (the configured path). */
  readonly wsUrl: string;
}

/** Config for specs: port 0, silent logs, a short shutdown bound; `overrides` win. */
export function testConfig(overrides: Partial<Config> = {}): Config {
  return loadConfig({}, [], { port: 0, logLevel: 'silent', shutdownTimeoutMs: 2000, ...overrides });
}

const running = new Set<RunningNode>();
const cleanups = new Set<() => void | Promise<void>>();

/** Starts a real node in this process; stopped by `stopTestNodes()`. */
export async function startTestNode(overrides: Partial<Config> = {}): Promise<TestNode> {
  const node = await startNode(testConfig(overrides));
  running.add(node);
  const wsUrl = node.url.replace(/^http/, 'ws') + node.config.wsPath;
  return { ...node, wsUrl };
}

/** Registers something to undo before nodes stop (clients register their teardown here). */
export function onCleanup(fn: () => void | Promise<void>): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

/** Closes every registered client, then stops every node started by `startTestNode`. */
export async function stopTestNodes(): Promise<void> {
  const fns = [...cleanups];
  cleanups.clear();
  await Promise.allSettled(fns.map(async (fn) => fn()));
  const nodes = [...running];
  running.clear();
  await Promise.allSettled(nodes.map((node) => node.stop('spec finished')));
}

export interface MemoryBrokerOptions {
  auth?: Authenticator;
  nodeId?: string;
}

/**
 * A Broker over in-memory parts, without transport or HTTP: for unit specs
 * that drive sessions through a fake Connection. Its heart-beat wheel is not
 * ticking (specs call `session.onHeartbeatDue(now)` with the time they want).
 */
export async function createMemoryBroker(overrides: Partial<Config> = {}, options: MemoryBrokerOptions = {}): Promise<Broker> {
  const config = testConfig(overrides);
  const nodeId = options.nodeId ?? 'unit';
  const hub = new MemoryHub();
  const presence = new MemoryPresence(nodeId, hub);
  const relay = new MemoryRelay(nodeId, hub);
  const inbox = new MemoryInboxStore({
    maxMessages: config.inboxMaxMessages,
    maxBytes: config.inboxMaxBytes,
    ttlSeconds: config.inboxTtlSeconds,
    overflow: config.inboxOverflow,
  });
  const broker = new Broker({
    config,
    log: pino({ level: 'silent' }),
    nodeId,
    auth: options.auth ?? new OpenAuthenticator(),
    presence,
    relay,
    inbox,
    router: new MemoryUserRouter(nodeId, presence, inbox, relay),
    queues: new MemoryQueueStore({ maxMessages: config.queueMaxMessages, maxBytes: config.queueMaxBytes }),
  });
  await broker.start();
  broker.wheel.stop();
  onCleanup(() => broker.shutdown('spec finished'));
  return broker;
}

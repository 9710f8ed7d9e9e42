/*
 * What the multi-server Redis helpers (redis-cluster.ts, redis-sentinel.ts)
 * share: plain admin connections to single servers by port, bounded polls of
 * what the servers report, and the mocha hooks that give a spec file one
 * setup, flushed between tests.
 */
import { Redis } from 'ioredis';

/** One admin connection per server port, made on first use; they retry quietly while a server is down. */
export class AdminConnections {
  private readonly clients = new Map<number, Redis>();

  get(port: number): Redis {
    let client = this.clients.get(port);
    if (client === undefined) {
      client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 50 });
      client.on('error', () => {});
      this.clients.set(port, client);
    }
    return client;
  }

  /** Forgets the connection to `port` (its server is about to die). */
  drop(port: number): void {
    this.clients.get(port)?.disconnect();
    this.clients.delete(port);
  }

  closeAll(): void {
    for (const port of [...this.clients.keys()]) this.drop(port);
  }
}

/** `role`, `master_port` and the link state from INFO replication. */
export async function replicationOf(admin: Redis): Promise<{ role: string; masterPort?: number; linkUp: boolean }> {
  const info = await admin.info('replication');
  const role = /^role:(\w+)/m.exec(info)?.[1] ?? '';
  return { role, linkUp: info.includes('master_link_status:up'), ...(role === 'slave' ? { masterPort: Number(/^master_port:(\d+)/m.exec(info)?.[1]) } : {}) };
}

/** Polls `check` every `intervalMs` until it holds; rejects naming `what` after `timeoutMs`. */
export async function pollUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * One setup for the enclosing `describe`: started in `before` (bounded by
 * `startTimeoutMs`), flushed after each test, stopped in `after`. Read
 * `suite.setup` inside hooks and tests.
 */
export function useRedisSetup<T extends { flushAll(): Promise<void>; stop(): Promise<void> }>(
  start: () => Promise<T>,
  startTimeoutMs: number,
): { setup: T } {
  const suite = {} as { setup: T };
  before(async function () {
    this.timeout(startTimeoutMs);
    suite.setup = await start();
  });
  afterEach(async () => suite.setup?.flushAll());
  after(async () => suite.setup?.stop());
  return suite;
}

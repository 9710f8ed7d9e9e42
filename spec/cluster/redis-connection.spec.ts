import { expect } from 'chai';
import { Cluster, Redis } from 'ioredis';
import { BrokerError } from '../../lib/core/errors.js';
import {
  closeClient,
  clusterError,
  connected,
  createRedisClient,
  redisCall,
  waitReady,
  type RedisClient,
  type RedisRole,
  type RedisTarget,
} from '../../lib/cluster/redis-connection.js';
import { useRedisCluster } from '../helpers/redis-cluster.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { useRedisSentinel } from '../helpers/redis-sentinel.js';
import { deferred, eventually, recordingLogger } from './support.js';

describe('Redis connections', () => {
  let server: RedisServer;
  const clients: RedisClient[] = [];

  before(async () => {
    server = await startRedisServer();
  });

  afterEach(() => {
    for (const client of clients.splice(0)) client.disconnect();
  });

  after(async () => {
    await server.stop();
  });

  function client(logger = recordingLogger()): RedisClient {
    const redis = createRedisClient(server.url, 'command', { logger, reconnectMinDelayMs: 10, reconnectMaxDelayMs: 50, name: 'test' });
    clients.push(redis);
    return redis;
  }

  it('fails fast while Redis is down, logs the outage once and the recovery once', async () => {
    const logger = recordingLogger();
    const redis = client(logger);
    await connected(redis, 2000);
    await server.stop();
    // Several reconnect attempts fail while it is down.
    let attempts = 0;
    const tried = deferred<void>(3000, 'reconnect attempts');
    redis.on('reconnecting', () => ++attempts === 4 && tried.resolve());
    await tried.promise;

    const started = Date.now();
    try {
      await redisCall(redis, 'test set', () => redis.set('k', 'v'));
      expect.fail('resolved while Redis is down');
    } catch (error) {
      expect(error).to.be.instanceOf(BrokerError);
      expect((error as BrokerError).code).to.equal('ERR_CLUSTER_UNAVAILABLE');
    }
    expect(Date.now() - started).to.be.below(500);
    expect(logger.records.filter((r) => r.level === 'warn')).to.have.length(1);

    const ready = deferred<void>(3000, 'ready');
    redis.once('ready', () => ready.resolve());
    await server.restart();
    await ready.promise;
    expect(logger.records.map((r) => r.level)).to.deep.equal(['warn', 'info']);
    expect(await redisCall(redis, 'test set', () => redis.set('k', 'v'))).to.equal('OK');
  });

  it('rejects a command in flight when Redis dies instead of sending it again later', async () => {
    const redis = client();
    await connected(redis, 2000);
    // BLPOP holds the reply back: it is in flight when the server dies.
    const outcome = redisCall(redis, 'test blpop', () => redis.blpop('nothing', 5)).then(
      () => undefined,
      (error: unknown) => error,
    );
    try {
      await server.kill();
      const error = await outcome;
      expect(error).to.be.instanceOf(BrokerError);
      expect((error as BrokerError).code).to.equal('ERR_CLUSTER_UNAVAILABLE');
    } finally {
      await server.restart();
    }
  });

  it('waits for the first connection of a new client instead of failing at once', async () => {
    const redis = client();
    expect(await redisCall(redis, 'test ping', () => redis.ping())).to.equal('PONG');
  });

  it('tells refusals from outages', async () => {
    const redis = client();
    try {
      await redisCall(redis, 'test bogus', () => redis.call('NO-SUCH-COMMAND'));
      expect.fail('resolved');
    } catch (error) {
      expect((error as BrokerError).code).to.equal('ERR_INTERNAL');
    }
    const loading = Object.assign(new Error('LOADING Redis is loading the dataset in memory'), { name: 'ReplyError' });
    expect(clusterError(loading, 'x').code).to.equal('ERR_CLUSTER_UNAVAILABLE');
    expect(clusterError(new Error('Connection is closed.'), 'x').code).to.equal('ERR_CLUSTER_UNAVAILABLE');
  });
});

/** Clients made by `connect`, disconnected after each test. */
function clientsOf(target: () => RedisTarget) {
  const clients: RedisClient[] = [];
  afterEach(() => {
    for (const client of clients.splice(0)) client.disconnect();
  });
  return (role: RedisRole = 'command', logger = recordingLogger()): RedisClient => {
    const client = createRedisClient(target(), role, { logger, reconnectMinDelayMs: 10, reconnectMaxDelayMs: 100, name: 'test' });
    clients.push(client);
    return client;
  };
}

/** The outcome of a call: its value, or the BrokerError code it failed with. */
async function outcome<T>(call: Promise<T>): Promise<T | string> {
  try {
    return await call;
  } catch (error) {
    expect(error).to.be.instanceOf(BrokerError);
    return (error as BrokerError).code;
  }
}

describe('Redis connections to a Redis Cluster', function () {
  this.timeout(40_000);
  const suite = useRedisCluster();
  const connect = clientsOf(() => suite.cluster.target);

  it('is a Cluster client whose commands reach every master, on named connections', async () => {
    const redis = connect();
    expect(redis).to.be.instanceOf(Cluster);
    await connected(redis, 5000);
    const keys = Array.from({ length: 30 }, (_, i) => `k${i}`);
    for (const key of keys) expect(await redisCall(redis, 'test set', () => redis.set(key, key))).to.equal('OK');
    const masters = await suite.cluster.masters();
    const holding = await Promise.all(masters.map((port) => withAdmin(port, (admin) => admin.dbsize())));
    expect(holding.filter((count) => count > 0)).to.have.length(3);
    expect(holding.reduce((a, b) => a + b, 0)).to.equal(keys.length);
    const names = await withAdmin(masters[0]!, async (admin) => String(await admin.call('CLIENT', 'LIST')));
    expect(names).to.include('name=stompbox:test:command');
  });

  it("fails fast on a killed master's slots until its replica is promoted, then serves them; logs that server's outage once", async () => {
    const logger = recordingLogger();
    const redis = connect('command', logger);
    await connected(redis, 5000);
    const key = 'victim';
    await redisCall(redis, 'test set', () => redis.set(key, 'before'));
    const killing = suite.cluster.killMaster(key);
    let killed = false;
    void killing.then(() => (killed = true));
    const outcomes = new Set<string>();
    while (!killed) {
      const result = await outcome(redisCall(redis, 'test set', () => redis.set(key, 'during')));
      outcomes.add(String(result));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const { killed: port } = await killing;
    expect([...outcomes].every((o) => o === 'OK' || o === 'ERR_CLUSTER_UNAVAILABLE'), [...outcomes].join()).to.equal(true);
    expect(outcomes).to.include('ERR_CLUSTER_UNAVAILABLE');
    await eventually(async () => expect(await redisCall(redis, 'test set', () => redis.set(key, 'after'))).to.equal('OK'), 5000);
    const warnings = logger.records.filter((r) => r.level === 'warn' && (r.obj as { server?: string }).server === `127.0.0.1:${port}`);
    expect(warnings).to.have.length(1);
    await suite.cluster.restart(port);
  });

  it('rejects a command in flight when its master dies instead of sending it again to the promoted replica', async () => {
    const redis = connect('blocking');
    await connected(redis, 5000);
    const key = 'blocked';
    const pending = outcome(redisCall(redis, 'test blpop', () => redis.blpop(key, 10)));
    // Held by the server before it dies: CLIENT LIST on its master shows the BLPOP.
    const master = await suite.cluster.masterOf(key);
    await eventually(async () => expect(await withAdmin(master, async (admin) => String(await admin.call('CLIENT', 'LIST')))).to.include('cmd=blpop'));
    const { killed } = await suite.cluster.killMaster(key);
    expect(await pending).to.equal('ERR_CLUSTER_UNAVAILABLE');
    await suite.cluster.restart(killed);
  });

  it('subscriber: receives SPUBLISH on channels of every master, through one sharded subscriber per master', async () => {
    const subscriber = connect('subscriber');
    const publisher = connect();
    await Promise.all([connected(subscriber, 5000), connected(publisher, 5000)]);
    const channels = ['{a}news', '{b}news', '{c}news', '{d}news', '{e}news'];
    const owners = new Set(await Promise.all(channels.map((channel) => suite.cluster.masterOf(channel))));
    expect(owners.size).to.be.greaterThan(1);
    const received: string[] = [];
    const all = deferred<void>(5000, 'every smessage');
    subscriber.on('smessage', (channel: string, message: string) => {
      received.push(`${channel}=${message}`);
      if (received.length === channels.length) all.resolve();
    });
    for (const channel of channels) await redisCall(subscriber, 'test ssubscribe', () => subscriber.ssubscribe(channel));
    for (const channel of channels) expect(await redisCall(publisher, 'test spublish', () => publisher.spublish(channel, 'hi'))).to.equal(1);
    await all.promise;
    expect(received.sort()).to.deep.equal(channels.map((c) => `${c}=hi`).sort());
  });

  it('waitReady returns for a ready client; closeClient ends it, and its connection to every master', async () => {
    const redis = connect();
    await connected(redis, 5000);
    await waitReady(redis, new AbortController().signal);
    await closeClient(redis);
    expect(redis.status).to.equal('end');
    for (const port of await suite.cluster.masters()) {
      await eventually(async () => expect(await withAdmin(port, async (admin) => String(await admin.call('CLIENT', 'LIST')))).not.to.include('name=stompbox:test:'));
    }
  });
});

describe('Redis connections through Sentinel', function () {
  this.timeout(40_000);
  const suite = useRedisSentinel();
  const connect = clientsOf(() => suite.sentinel.target);

  it('reaches the primary the sentinels name, on named connections', async () => {
    const redis = connect();
    expect(redis).to.be.instanceOf(Redis);
    await connected(redis, 5000);
    expect(await redisCall(redis, 'test set', () => redis.set('k', 'v'))).to.equal('OK');
    const primary = suite.sentinel.primary.port;
    expect(await withAdmin(primary, (admin) => admin.get('k'))).to.equal('v');
    expect(await withAdmin(primary, async (admin) => String(await admin.call('CLIENT', 'LIST')))).to.include('name=stompbox:test:command');
  });

  it('connects again when its connection is cut while it asks a sentinel for the primary (as the failover detector does on +switch-master)', async () => {
    const redis = connect();
    // Created connecting: the cut lands while the Sentinel connector resolves the primary, and
    // ioredis would end the client for good there ("Connection is closed.", status end).
    expect(redis.status).to.equal('connecting');
    redis.disconnect(true);
    await connected(redis, 5000);
    expect(await redisCall(redis, 'test set', () => redis.set('after-cut', '1'))).to.equal('OK');
    // A disconnect asked for stays one.
    redis.disconnect();
    await eventually(() => expect(redis.status).to.equal('end'));
    await new Promise<void>((resolve) => setTimeout(resolve, 300));
    expect(redis.status).to.equal('end');
  });

  it("closeClient ends it, and the failover detector's subscription on every sentinel with it", async () => {
    // ioredis 6.0 left those subscriptions open after QUIT (redis/ioredis#1362, fixed in 6.1): a
    // stopped node kept sockets to every sentinel, reconnecting to them for good once they went away.
    const ports = suite.sentinel.sentinelPorts;
    const subscribers = async (port: number): Promise<number> =>
      String(await withAdmin(port, (admin) => admin.call('CLIENT', 'LIST')))
        .split('\n')
        .filter((line) => /\bsub=[1-9]/.test(line)).length;
    // Nothing else subscribes on the sentinels: the earlier cases' clients are gone (afterEach).
    const none = ports.map(() => 0);
    await eventually(async () => expect(await Promise.all(ports.map(subscribers))).to.deep.equal(none));
    const redis = connect();
    await connected(redis, 5000);
    await eventually(async () => expect(await Promise.all(ports.map(subscribers))).to.deep.equal(ports.map(() => 1)));
    await closeClient(redis);
    expect(redis.status).to.equal('end');
    await eventually(async () => expect(await Promise.all(ports.map(subscribers))).to.deep.equal(none));
  });

  for (const fault of ['failover', 'killPrimary'] as const) {
    it(`follows ${fault === 'failover' ? 'SENTINEL FAILOVER' : 'a killed primary'} to the new primary; commands meanwhile fail fast; at most one warning, and its recovery`, async () => {
      const logger = recordingLogger();
      const redis = connect('command', logger);
      const subscriber = connect('subscriber');
      await Promise.all([connected(redis, 5000), connected(subscriber, 5000)]);
      await redisCall(subscriber, 'test subscribe', () => subscriber.subscribe('news'));
      let done = false;
      const outcomes = new Set<string>();
      const writing = (async () => {
        while (!done) {
          outcomes.add(String(await outcome(redisCall(redis, 'test incr', () => redis.incr('n')))));
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })();
      const { promoted } = fault === 'failover' ? await suite.sentinel.failover() : await suite.sentinel.killPrimary();
      await eventually(async () => expect(await redisCall(redis, 'test set', () => redis.set('after', '1'))).to.equal('OK'), 10_000);
      done = true;
      await writing;
      expect(await withAdmin(promoted, (admin) => admin.get('after'))).to.equal('1');
      const nonNumeric = [...outcomes].filter((o) => !/^\d+$/.test(o));
      expect(nonNumeric.every((o) => o === 'ERR_CLUSTER_UNAVAILABLE'), nonNumeric.join()).to.equal(true);
      // A reconnect that works at once is no outage: at most one warning, and a recovery for it.
      const warnings = logger.records.filter((r) => r.level === 'warn');
      expect(warnings.length).to.be.at.most(1);
      expect(logger.records.filter((r) => r.level === 'info')).to.have.length(warnings.length);
      // The subscriber resubscribed on the new primary.
      const message = deferred<string>(10_000, 'a message after the failover');
      subscriber.on('message', (_channel: string, text: string) => message.resolve(text));
      await eventually(async () => expect(await withAdmin(promoted, (admin) => admin.publish('news', 'hello'))).to.equal(1), 10_000);
      expect(await message.promise).to.equal('hello');
      if (fault === 'killPrimary') await suite.sentinel.restart(suite.sentinel.replica.port);
    });
  }
});

/** A plain connection to one server for inspecting it. */
async function withAdmin<T>(port: number, use: (admin: Redis) => Promise<T>): Promise<T> {
  const admin = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
  admin.on('error', () => {});
  try {
    await admin.connect();
    return await use(admin);
  } finally {
    admin.disconnect();
  }
}

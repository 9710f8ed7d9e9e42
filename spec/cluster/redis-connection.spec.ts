import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { BrokerError } from '../../lib/core/errors.js';
import { clusterError, connected, createRedisClient, redisCall } from '../../lib/cluster/redis-connection.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { deferred, recordingLogger } from './support.js';

describe('Redis connections', () => {
  let server: RedisServer;
  const clients: Redis[] = [];

  before(async () => {
    server = await startRedisServer();
  });

  afterEach(() => {
    for (const client of clients.splice(0)) client.disconnect();
  });

  after(async () => {
    await server.stop();
  });

  function client(logger = recordingLogger()): Redis {
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

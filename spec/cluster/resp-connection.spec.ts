import { expect } from 'chai';
import { createServer, connect as connectTcp, type AddressInfo, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { closeClient, clusterError, connected, createRedisClient, type RedisClient, type RedisTarget } from '../../lib/cluster/redis-connection.js';
import { encode, ReplyError, RespConnection, RespReader, type RespReply } from '../../lib/cluster/resp-connection.js';
import { scriptSha } from '../../lib/cluster/redis-scripts.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { useRedisSentinel } from '../helpers/redis-sentinel.js';
import { eventually, recordingLogger } from './support.js';

const ECHO = { lua: "return {ARGV[1], string.len(ARGV[2]), tonumber(ARGV[3]) * 2}", numberOfKeys: 0 };
const ECHO_SHA = scriptSha(ECHO);

/** A lean connection following a fresh command client to `target`, and that client; both closed after each case. */
function leanPairs(): (target: RedisTarget, options?: { commandTimeoutMs?: number }) => Promise<{ lean: RespConnection; followed: Redis; logger: ReturnType<typeof recordingLogger> }> {
  const made: Array<{ lean: RespConnection; followed: RedisClient }> = [];
  afterEach(async () => {
    for (const { lean, followed } of made.splice(0)) {
      await lean.close();
      await closeClient(followed);
    }
  });
  return async (target, options = {}) => {
    const logger = recordingLogger();
    const followed = createRedisClient(target, 'command', { logger, name: 'test', reconnectMinDelayMs: 10, reconnectMaxDelayMs: 100 });
    const lean = new RespConnection(followed as Redis, {
      name: 'test',
      scripts: [ECHO.lua],
      commandTimeoutMs: options.commandTimeoutMs ?? 5000,
      connectTimeoutMs: 5000,
      reconnectMinDelayMs: 10,
      reconnectMaxDelayMs: 100,
      logger,
    });
    made.push({ lean, followed });
    await connected(followed, 5000);
    return { lean, followed: followed as Redis, logger };
  };
}

/** A TCP proxy to 127.0.0.1:`port` whose connections open at `freeze()` stop forwarding, both ways, without closing. */
async function freezableProxy(port: number): Promise<{ port: number; open: number; freeze(): void; close(): Promise<void> }> {
  const pairs = new Set<{ client: Socket; upstream: Socket; frozen: boolean }>();
  const server = createServer((client) => {
    const pair = { client, upstream: connectTcp({ host: '127.0.0.1', port }), frozen: false };
    pairs.add(pair);
    client.on('data', (chunk: Buffer) => pair.frozen || pair.upstream.write(chunk));
    pair.upstream.on('data', (chunk: Buffer) => pair.frozen || client.write(chunk));
    const end = (): void => {
      pairs.delete(pair);
      client.destroy();
      pair.upstream.destroy();
    };
    for (const socket of [client, pair.upstream]) {
      socket.on('error', end);
      socket.on('close', end);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get open() {
      return pairs.size;
    },
    freeze: () => pairs.forEach((pair) => (pair.frozen = true)),
    close: () => {
      for (const pair of pairs) pair.client.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A subscriber lean connection (as the push feed makes one) following a fresh command client to `url`; the caller closes both. */
function subscriberPair(
  url: string,
  options: { commandTimeoutMs?: number; onPush: (channel: Buffer, payload: Buffer) => void; onDrop: () => void },
): { followed: Redis; subscriber: RespConnection } {
  const logger = recordingLogger();
  const followed = createRedisClient(url, 'command', { logger, name: 'test', reconnectMinDelayMs: 10, reconnectMaxDelayMs: 100 }) as Redis;
  const subscriber = new RespConnection(followed, {
    name: 'test',
    scripts: [],
    role: 'subscriber',
    bulkBuffers: true,
    commandTimeoutMs: options.commandTimeoutMs ?? 5000,
    connectTimeoutMs: 5000,
    reconnectMinDelayMs: 10,
    reconnectMaxDelayMs: 100,
    logger,
    onPush: options.onPush,
    onDrop: options.onDrop,
  });
  return { followed, subscriber };
}

/** The outcome of a call: its reply, or the error's message. */
async function outcome(call: Promise<RespReply>): Promise<RespReply | string> {
  try {
    return await call;
  } catch (error) {
    return `rejected: ${(error as Error).message}`;
  }
}

describe('RespReader (RESP2 replies from a byte stream)', () => {
  const wire = Buffer.concat([
    Buffer.from('*2\r\n*2\r\n*1\r\n$2\r\nn1\r\n*0\r\n*4\r\n:5\r\n:-3\r\n$-1\r\n-ERR inside\r\n'),
    Buffer.from('+OK\r\n$6\r\nna\u00efve\r\n:0\r\n*-1\r\n$0\r\n\r\n-NOSCRIPT No matching script\r\n'),
  ]);
  const replies: RespReply[] = [[[['n1'], []], [5, -3, null, new ReplyError('ERR inside')]], 'OK', 'naïve', 0, null, '', new ReplyError('NOSCRIPT No matching script')];

  it('reads every reply of one chunk, nested arrays, nil, integers, errors and UTF-8 included', () => {
    expect(new RespReader().feed(wire)).to.deep.equal(replies);
  });

  it('reads the same replies however the stream is cut, down to single bytes', () => {
    for (const size of [1, 2, 3, 7, 13]) {
      const reader = new RespReader();
      const read: RespReply[] = [];
      for (let at = 0; at < wire.length; at += size) read.push(...reader.feed(wire.subarray(at, at + size)));
      expect(read, `chunks of ${size}`).to.deep.equal(replies);
    }
  });

  it('refuses a byte that starts no RESP2 reply', () => {
    expect(() => new RespReader().feed(Buffer.from('?what\r\n'))).to.throw(/unexpected RESP type byte/);
  });

  it('encodes commands as arrays of bulk strings, binary arguments intact', () => {
    const binary = Buffer.from([0, 13, 10, 255]);
    expect(encode([['SET', 'k', binary], ['INCRBY', 'n', 12]]).equals(
      Buffer.concat([Buffer.from('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\n'), binary, Buffer.from('\r\n*3\r\n$6\r\nINCRBY\r\n$1\r\nn\r\n$2\r\n12\r\n')]),
    )).to.equal(true);
  });
});

describe('encode (RESP commands into one buffer)', () => {
  /** The plain encoding, argument by argument, to check the single-buffer one against. */
  function reference(commands: readonly (readonly (string | number | Buffer)[])[]): Buffer {
    const parts: Buffer[] = [];
    for (const command of commands) {
      parts.push(Buffer.from(`*${command.length}\r\n`));
      for (const arg of command) {
        const bytes = Buffer.isBuffer(arg) ? arg : Buffer.from(String(arg), 'utf8');
        parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
      }
    }
    return Buffer.concat(parts);
  }

  it('writes what the plain encoding writes, for any mix of strings, numbers and buffers', () => {
    let seed = 7;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const strings = ['', 'k', 'évé', '日本語', '😀x', 'a'.repeat(9), 'b'.repeat(10), 'c'.repeat(99), 'd'.repeat(100), 'e'.repeat(1000)];
    const numbers = [0, 7, 9, 10, 99, 100, 12345678, -1, -250, 1.5, 1e21];
    for (let round = 0; round < 300; round++) {
      const commands: (string | number | Buffer)[][] = [];
      for (let c = 0, count = 1 + next(3); c < count; c++) {
        const command: (string | number | Buffer)[] = [];
        for (let a = 0, args = 1 + next(round % 10 === 0 ? 120 : 12); a < args; a++) {
          const kind = next(3);
          if (kind === 0) command.push(strings[next(strings.length)]!);
          else if (kind === 1) command.push(numbers[next(numbers.length)]!);
          else command.push(Buffer.from(Array.from({ length: next(300) }, () => next(256))));
        }
        commands.push(command);
      }
      expect(encode(commands).equals(reference(commands)), `round ${round}`).to.equal(true);
    }
  });
});

describe('RespConnection (the user router lean connection)', function () {
  this.timeout(30_000);
  let server: RedisServer;
  const pair = leanPairs();

  before(async () => {
    server = await startRedisServer();
  });

  after(async () => {
    await server.stop();
  });

  it('runs its scripts by SHA from the first call (loaded at connect), and pipelines commands in order', async () => {
    const { lean } = await pair(server.url);
    expect(await lean.call(['EVALSHA', ECHO_SHA, 0, 'hi', Buffer.from([1, 2, 13, 10, 0]), 21])).to.deep.equal(['hi', 5, 42]);
    expect(await lean.pipeline([['SET', 'p', '1'], ['INCR', 'p'], ['HGET', 'p', 'x'], ['GET', 'p']])).to.deep.equal([
      'OK',
      2,
      new ReplyError('WRONGTYPE Operation against a key holding the wrong kind of value'),
      '2',
    ]);
  });

  it('writes binary values byte for byte', async () => {
    const { lean, followed } = await pair(server.url);
    const value = Buffer.from([0, 255, 13, 10, 36, 42, 0xc3]);
    expect(await lean.call(['SET', 'bin', value])).to.equal('OK');
    expect((await followed.getBuffer('bin'))!.equals(value)).to.equal(true);
  });

  it('authenticates (ACL user and password) and selects the database of the URL it follows', async () => {
    const guarded = await startRedisServer();
    try {
      const setup = new Redis({ port: guarded.port, host: '127.0.0.1' });
      await setup.call('ACL', 'SETUSER', 'broker', 'on', '>s3cret', '~*', '&*', '+@all');
      await setup.call('ACL', 'SETUSER', 'default', 'off');
      setup.disconnect();
      const { lean } = await pair(`redis://broker:s3cret@127.0.0.1:${guarded.port}/3`);
      expect(await lean.call(['SET', 'in-db-3', 'yes'])).to.equal('OK');
      expect(await lean.call(['ACL', 'WHOAMI'])).to.equal('broker');
      const admin = new Redis({ port: guarded.port, host: '127.0.0.1', username: 'broker', password: 's3cret', db: 3 });
      try {
        expect(await admin.get('in-db-3')).to.equal('yes');
        expect(String(await admin.call('CLIENT', 'LIST'))).to.include('name=stompbox:test:lean');
      } finally {
        admin.disconnect();
      }
    } finally {
      await guarded.dispose();
    }
  });

  it('after SCRIPT FLUSH refuses the call (NOSCRIPT, a transient error) and loads its scripts again on a new connection', async () => {
    const { lean, followed } = await pair(server.url);
    expect(await lean.call(['EVALSHA', ECHO_SHA, 0, 'a', 'b', 1])).to.deep.equal(['a', 1, 2]);
    await followed.script('FLUSH');
    const refused = await outcome(lean.call(['EVALSHA', ECHO_SHA, 0, 'a', 'b', 1]));
    expect(refused).to.match(/^rejected: NOSCRIPT/);
    expect(clusterError(new ReplyError('NOSCRIPT No matching script'), 'test').code).to.equal('ERR_CLUSTER_UNAVAILABLE');
    await eventually(async () => expect(await lean.call(['EVALSHA', ECHO_SHA, 0, 'c', 'dd', 2])).to.deep.equal(['c', 2, 4]));
  });

  it('rejects a call in flight when its connection is killed, and connects again by itself', async () => {
    const { lean, followed } = await pair(server.url);
    await lean.call(['PING']);
    const blocked = outcome(lean.call(['BLPOP', 'never', 5]));
    await eventually(async () => expect(String(await followed.call('CLIENT', 'LIST'))).to.match(/name=stompbox:test:lean .*cmd=blpop/));
    await followed.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    expect(await blocked).to.match(/^rejected: Connection is closed/);
    await eventually(async () => expect(await lean.call(['PING'])).to.equal('PONG'));
  });

  it('rejects a call unanswered after the command timeout, and connects again', async () => {
    const { lean } = await pair(server.url, { commandTimeoutMs: 200 });
    const started = Date.now();
    expect(await outcome(lean.call(['BLPOP', 'never', 3]))).to.match(/^rejected: Command timed out/);
    expect(Date.now() - started).to.be.below(2000);
    await eventually(async () => expect(await lean.call(['PING'])).to.equal('PONG'));
  });

  it('fails fast while Redis is down and follows it back after a restart; logs the outage once and its recovery once', async () => {
    const { lean, logger } = await pair(server.url);
    await lean.call(['SET', 'before', '1']);
    await server.stop();
    const started = Date.now();
    expect(await outcome(lean.call(['PING']))).to.match(/^rejected: Connection is closed/);
    expect(Date.now() - started).to.be.below(500);
    await server.restart();
    await eventually(async () => expect(await lean.call(['EVALSHA', ECHO_SHA, 0, 'back', '', 0])).to.deep.equal(['back', 0, 0]), 10_000);
    const own = logger.records.filter((record) => (record.obj as { role?: string }).role === 'lean').map((record) => `${record.level} ${record.msg}`);
    expect(own).to.deep.equal(['warn redis unreachable; reconnecting', 'info redis reachable again']);
  });

  it('waits for its first connection (up to the connect timeout) rather than refusing a call made at once', async () => {
    const followed = createRedisClient(server.url, 'command', { logger: recordingLogger(), name: 'test' }) as Redis;
    const lean = new RespConnection(followed, {
      name: 'test',
      scripts: [],
      commandTimeoutMs: 5000,
      connectTimeoutMs: 5000,
      reconnectMinDelayMs: 10,
      reconnectMaxDelayMs: 100,
      logger: recordingLogger(),
    });
    try {
      expect(lean.ready).to.equal(false);
      expect(await lean.call(['PING'])).to.equal('PONG');
    } finally {
      await lean.close();
      await closeClient(followed);
    }
  });

  it('answers what is in flight before it closes; refuses calls after', async () => {
    const { lean } = await pair(server.url);
    await lean.call(['PING']);
    const blocked = lean.call(['BLPOP', 'never', 0.2]);
    await lean.close();
    expect(await blocked).to.equal(null);
    expect(await outcome(lean.call(['PING']))).to.match(/^rejected: Connection is closed/);
  });

  it('replaces a connection that went silent at the same address once the followed client reconnects (half-open)', async () => {
    const proxy = await freezableProxy(server.port);
    let drops = 0;
    // A subscriber makes no calls of its own: nothing but the probe can find its socket dead.
    const { followed, subscriber: lean } = subscriberPair(`redis://127.0.0.1:${proxy.port}`, { commandTimeoutMs: 300, onPush: () => {}, onDrop: () => drops++ });
    try {
      await connected(followed, 5000);
      await lean.whenReady(5000);
      expect(proxy.open).to.equal(2);
      // Every connection open now stops forwarding without closing: what a vanished host leaves.
      proxy.freeze();
      followed.disconnect(true);
      await eventually(() => expect(drops).to.equal(1), 5000);
      await eventually(() => expect(lean.ready).to.equal(true), 5000);
      expect(((await lean.call(['PING'])) as Buffer).toString()).to.equal('PONG');
    } finally {
      await lean.close();
      followed.disconnect();
      await proxy.close();
    }
  });

  it('as a subscriber: hands binary pushes over in order, tells of a drop, and subscribes again only when asked', async () => {
    const pushes: string[] = [];
    let drops = 0;
    const { followed, subscriber } = subscriberPair(server.url, {
      onPush: (channel, payload) => pushes.push(`${channel.toString()}:${payload.toString('hex')}`),
      onDrop: () => drops++,
    });
    try {
      await connected(followed, 5000);
      await subscriber.whenReady(5000);
      const confirmed = (await subscriber.call(['SUBSCRIBE', 'ch'])) as Buffer[];
      expect(confirmed.map(String)).to.deep.equal(['subscribe', 'ch', '1']);
      // Binary payloads (NUL, CR LF, invalid UTF-8), enough of them to span several reads.
      const payloads = Array.from({ length: 2000 }, (_, i) => Buffer.concat([Buffer.from([0, 13, 10, 0xff, i & 0xff]), Buffer.alloc(i % 300, 'x')]));
      const published = followed.pipeline();
      for (const payload of payloads) published.publish('ch', payload);
      await published.exec();
      await eventually(() => expect(pushes).to.have.length(payloads.length));
      expect(pushes).to.deep.equal(payloads.map((payload) => `ch:${payload.toString('hex')}`));
      // A cut pub/sub connection: told once; connects again but is subscribed to nothing until asked.
      await followed.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      await eventually(() => expect(drops).to.equal(1));
      await eventually(() => expect(subscriber.ready).to.equal(true));
      pushes.length = 0;
      expect(await followed.publish('ch', 'lost')).to.equal(0);
      await subscriber.call(['SUBSCRIBE', 'ch']);
      expect(await followed.publish('ch', 'after')).to.equal(1);
      await eventually(() => expect(pushes).to.deep.equal([`ch:${Buffer.from('after').toString('hex')}`]));
      expect(String(await followed.call('CLIENT', 'LIST'))).to.match(/name=stompbox:test:subscriber /);
    } finally {
      await subscriber.close();
      await closeClient(followed);
    }
  });
});

describe('RespConnection through Sentinel', function () {
  this.timeout(60_000);
  const suite = useRedisSentinel();
  const pair = leanPairs();

  for (const fault of ['failover', 'killPrimary'] as const) {
    it(`follows ${fault === 'failover' ? 'SENTINEL FAILOVER' : 'a killed primary'} to the new primary; calls meanwhile are refused, never lost silently`, async () => {
      const { lean } = await pair(suite.sentinel.target);
      expect(await lean.call(['SET', 'k', 'before'])).to.equal('OK');
      let done = false;
      const outcomes = new Set<string>();
      const writing = (async () => {
        while (!done) {
          outcomes.add(String(await outcome(lean.call(['INCR', 'n']))));
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })();
      const { promoted } = fault === 'failover' ? await suite.sentinel.failover() : await suite.sentinel.killPrimary();
      await eventually(async () => expect(await lean.call(['SET', 'after', '1'])).to.equal('OK'), 15_000);
      done = true;
      await writing;
      const admin = new Redis({ port: promoted, host: '127.0.0.1' });
      try {
        expect(await admin.get('after')).to.equal('1');
      } finally {
        admin.disconnect();
      }
      const refusals = [...outcomes].filter((o) => !/^\d+$/.test(o));
      expect(refusals.every((o) => /^rejected: (Connection is closed|READONLY)/.test(o)), refusals.join(' | ')).to.equal(true);
      if (fault === 'killPrimary') await suite.sentinel.restart(suite.sentinel.replica.port);
    });
  }
});

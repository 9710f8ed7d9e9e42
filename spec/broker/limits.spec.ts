/*
 * Limits and bad input on a real node: every codec limit and malformed frame
 * gets an ERROR with its stable code and a close, while another client on the
 * same node keeps working; a 16 MiB body passes when the limits allow it; a
 * consumer that stops reading is cut off at maxOutgoingBuffer and what it
 * could not take is kept in its inbox.
 */
import { createHash, randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { Config } from '../../lib/config.js';
import { startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { RawStompClient, StompJsClient } from '../helpers/stomp-client.js';

const SMALL: Partial<Config> = { maxBodySize: 1024, maxFrameSize: 4096, maxHeaders: 8, maxHeaderLineLength: 256 };

interface BadInput {
  name: string;
  code: string;
  overrides?: Partial<Config>;
  /** Raw bytes sent after a successful CONNECT. */
  bytes: () => string | Buffer;
}

const CASES: BadInput[] = [
  { name: 'a header line without a colon', code: 'ERR_STOMP_MALFORMED_FRAME', bytes: () => 'SEND\ndestination /topic/x\n\nbody\0' },
  { name: 'a malformed command line', code: 'ERR_STOMP_MALFORMED_FRAME', bytes: () => 'SE ND\ndestination:/topic/x\n\n\0' },
  { name: 'an undefined escape sequence', code: 'ERR_STOMP_INVALID_ESCAPE', bytes: () => 'SEND\ndestination:/topic/\\t\n\n\0' },
  { name: 'an invalid content-length', code: 'ERR_STOMP_INVALID_CONTENT_LENGTH', bytes: () => 'SEND\ndestination:/topic/x\ncontent-length:12a\n\nbody\0' },
  { name: 'a content-length body not followed by NUL', code: 'ERR_STOMP_MISSING_NUL', bytes: () => 'SEND\ndestination:/topic/x\ncontent-length:2\n\nbody\0' },
  {
    name: 'a content-length above maxBodySize',
    code: 'ERR_STOMP_BODY_TOO_LARGE',
    overrides: SMALL,
    bytes: () => `SEND\ndestination:/topic/x\ncontent-length:2000\n\n${'x'.repeat(2000)}\0`,
  },
  {
    name: 'a NUL-terminated body above maxBodySize',
    code: 'ERR_STOMP_BODY_TOO_LARGE',
    overrides: SMALL,
    bytes: () => `SEND\ndestination:/topic/x\n\n${'x'.repeat(1500)}\0`,
  },
  {
    name: 'a frame above maxFrameSize (body within maxBodySize)',
    code: 'ERR_STOMP_FRAME_TOO_LARGE',
    overrides: { ...SMALL, maxBodySize: 8192, maxFrameSize: 2048 },
    bytes: () => `SEND\ndestination:/topic/x\ncontent-length:3000\n\n${'x'.repeat(3000)}\0`,
  },
  {
    name: 'more headers than maxHeaders',
    code: 'ERR_STOMP_TOO_MANY_HEADERS',
    overrides: SMALL,
    bytes: () => `SEND\ndestination:/topic/x\n${Array.from({ length: 9 }, (_, i) => `h${i}:v`).join('\n')}\n\n\0`,
  },
  {
    name: 'a header line above maxHeaderLineLength',
    code: 'ERR_STOMP_HEADER_LINE_TOO_LONG',
    overrides: SMALL,
    bytes: () => `SEND\ndestination:/topic/x\nx-long:${'v'.repeat(300)}\n\n\0`,
  },
  {
    name: 'a header line above maxHeaderLineLength, with no line end yet',
    code: 'ERR_STOMP_HEADER_LINE_TOO_LONG',
    overrides: SMALL,
    bytes: () => `SEND\ndestination:/topic/x\nx-long:${'v'.repeat(300)}`,
  },
];

describe('limits and bad input (real node, real WebSockets)', () => {
  afterEach(stopTestNodes);

  for (const bad of CASES) {
    it(`${bad.name} → ERROR ${bad.code} and close; another client keeps working`, async () => {
      const node = await startTestNode(bad.overrides);
      const witness = await StompJsClient.connect(node.wsUrl, { login: 'witness' });
      const inbox = await witness.subscribe('/topic/alive');
      const client = await RawStompClient.connect(node.wsUrl, { login: 'mallory' });
      client.sendRaw(bad.bytes());
      const error = await client.expectFrame('ERROR');
      expect(error.headers.code).to.equal(bad.code);
      expect(error.headers.message).to.be.a('string').and.not.empty;
      expect((await client.closed).code).to.equal(1000);
      expect([...node.broker.sessions].map((s) => s.user)).to.deep.equal(['witness']);
      await witness.publish('/topic/alive', 'still here');
      expect((await inbox.next()).body).to.equal('still here');
    });
  }

  it('a bad CONNECT frame gets the same treatment', async () => {
    const node = await startTestNode(SMALL);
    const client = await RawStompClient.open(node.wsUrl);
    client.sendRaw(`CONNECT\naccept-version:1.2\nlogin:${'x'.repeat(300)}\n\n\0`);
    expect((await client.expectFrame('ERROR')).headers.code).to.equal('ERR_STOMP_HEADER_LINE_TOO_LONG');
    await client.closed;
  });

  it('a body of exactly maxBodySize passes, one byte more does not', async () => {
    const node = await startTestNode(SMALL);
    const client = await RawStompClient.connect(node.wsUrl);
    await client.request({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/topic/edge' } });
    await client.request({ command: 'SEND', headers: { destination: '/topic/edge' }, body: Buffer.alloc(1024, 0x61) });
    expect((await client.nextFrame((f) => f.command === 'MESSAGE')).body.length).to.equal(1024);
    client.sendFrame({ command: 'SEND', headers: { destination: '/topic/edge' }, body: Buffer.alloc(1025, 0x61) });
    expect((await client.expectFrame('ERROR')).headers.code).to.equal('ERR_STOMP_BODY_TOO_LARGE');
  });

  it('a 16 MiB binary body passes end to end when maxBodySize and maxFrameSize allow it', async function () {
    this.timeout(60_000);
    const size = 16 * 1024 * 1024;
    const node = await startTestNode({ maxBodySize: size, maxFrameSize: size + 64 * 1024 });
    const receiver = await RawStompClient.connect(node.wsUrl, { login: 'r' });
    await receiver.request({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/queue/big' } });
    const sender = await RawStompClient.connect(node.wsUrl, { login: 's' });
    const body = randomBytes(size);
    body[1000] = 0; // a NUL inside: only content-length can carry it
    await sender.request({ command: 'SEND', headers: { destination: '/queue/big', 'content-type': 'application/octet-stream' }, body });
    const message = await receiver.nextFrame((f) => f.command === 'MESSAGE', 30_000);
    expect(message.body.length).to.equal(size);
    expect(message.headers['content-length']).to.equal(String(size));
    expect(message.headers['content-type']).to.equal('application/octet-stream');
    const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
    expect(digest(message.body)).to.equal(digest(body));
    expect(message.binary, 'a non-UTF-8 body travels in a binary WebSocket message').to.equal(true);
  });

  describe('slow consumers', () => {
    let node: TestNode;
    const LIMIT = 64 * 1024;

    beforeEach(async () => {
      node = await startTestNode({ maxOutgoingBuffer: LIMIT });
    });

    it('a subscriber that stops reading is disconnected with ERR_SLOW_CONSUMER; what it could not take is in its inbox', async () => {
      const slow = await RawStompClient.open(node.wsUrl);
      const connected = await slow.stompConnect({ login: 'slow' });
      await slow.request({ command: 'SUBSCRIBE', headers: { id: 'feed', destination: '/user/queue/feed' } });
      await slow.request({ command: 'SUBSCRIBE', headers: { id: 'news', destination: '/topic/news' } });
      const session = [...node.broker.sessions].find((s) => s.id === connected.headers.session)!;
      const watcher = await StompJsClient.connect(node.wsUrl, { login: 'watcher' });
      const news = await watcher.subscribe('/topic/news');
      slow.pause();

      const publisher = await RawStompClient.connect(node.wsUrl, { login: 'pub' });
      const chunk = 'x'.repeat(16 * 1024);
      let sent = 0;
      // Each RECEIPT means the broker has handled that SEND; stop at the first one that found the session gone.
      while (node.broker.sessions.has(session)) {
        if (sent >= 8192) throw new Error(`still connected after ${sent} messages of ${chunk.length} bytes`);
        await publisher.request({ command: 'SEND', headers: { destination: '/user/slow/queue/feed' }, body: `${++sent}:${chunk}` });
      }
      expect(session.state).to.equal('closed');
      expect(node.broker.stats.errors.get('ERR_SLOW_CONSUMER')).to.equal(1);
      expect(node.broker.userSessions.has('slow')).to.equal(false);
      expect(await node.broker.presence.isOnline('slow')).to.equal(false);

      // The message that found the buffer full was not written: it is the inbox head.
      const stored = await node.broker.inbox.peek('slow', '/queue/feed');
      expect(stored.map((m) => m.body.toString().split(':')[0])).to.deep.equal([String(sent)]);

      // The publisher keeps working: later messages for `slow` are stored after it, topics flow.
      await publisher.request({ command: 'SEND', headers: { destination: '/user/slow/queue/feed' }, body: 'later' });
      await publisher.request({ command: 'SEND', headers: { destination: '/topic/news' }, body: 'headline' });
      expect((await news.next()).body).to.equal('headline');
      const after = await node.broker.inbox.peek('slow', '/queue/feed');
      expect(after.map((m) => m.body.toString().split(':')[0])).to.deep.equal([String(sent), 'later']);

      // When `slow` comes back it receives them, in order.
      const back = await StompJsClient.connect(node.wsUrl, { login: 'slow' });
      const feed = await back.subscribe('/user/queue/feed');
      expect((await feed.next()).body.split(':')[0]).to.equal(String(sent));
      expect((await feed.next()).body).to.equal('later');
    });

    /** Publishes 16 KiB messages to `queue` until the broker holds some back (its consumers are congested). */
    async function fillUntilHeldBack(publisher: RawStompClient, queue: string): Promise<number> {
      const chunk = 'y'.repeat(16 * 1024);
      let sent = 0;
      while ((await node.broker.queues.depth(queue)) === 0) {
        if (sent >= 8192) throw new Error(`no backpressure after ${sent} messages`);
        await publisher.request({ command: 'SEND', headers: { destination: queue }, body: `${++sent}:${chunk}` });
      }
      return sent;
    }

    const index = (body: string | Buffer): number => Number(body.toString().split(':')[0]);

    it('a congested queue consumer is skipped: the queue keeps the messages and a new consumer gets them', async () => {
      const slow = await RawStompClient.connect(node.wsUrl, { login: 'slow' });
      await slow.request({ command: 'SUBSCRIBE', headers: { id: 'q', destination: '/queue/work' } });
      slow.pause();
      const publisher = await RawStompClient.connect(node.wsUrl, { login: 'pub' });
      const sent = await fillUntilHeldBack(publisher, '/queue/work');
      const held = await node.broker.queues.depth('/queue/work');
      // Skipped, not cut off: its buffer stays under the bound.
      expect(slow.ws.readyState).to.equal(slow.ws.OPEN);
      expect(node.broker.stats.errors.get('ERR_SLOW_CONSUMER')).to.equal(undefined);
      const worker = await StompJsClient.connect(node.wsUrl, { login: 'worker' });
      const work = await worker.subscribe('/queue/work');
      const got: number[] = [];
      for (let i = 0; i < held; i++) got.push(index((await work.next()).body));
      expect(got.at(-1)).to.equal(sent);
      expect(got).to.deep.equal([...got].sort((a, b) => a - b));
    });

    it('a congested queue consumer gets the rest, in order, once it reads again', async () => {
      const consumer = await RawStompClient.connect(node.wsUrl, { login: 'consumer' });
      await consumer.request({ command: 'SUBSCRIBE', headers: { id: 'q', destination: '/queue/burst' } });
      consumer.pause();
      const publisher = await RawStompClient.connect(node.wsUrl, { login: 'pub' });
      let sent = await fillUntilHeldBack(publisher, '/queue/burst');
      for (let i = 0; i < 3; i++) await publisher.request({ command: 'SEND', headers: { destination: '/queue/burst' }, body: `${++sent}:tail` });
      consumer.resume();
      // No more SENDs: the broker must notice by itself that the consumer has room again.
      for (let i = 1; i <= sent; i++) {
        const message = await consumer.nextFrame((f) => f.command === 'MESSAGE');
        expect(index(message.body)).to.equal(i);
      }
      expect(await node.broker.queues.depth('/queue/burst')).to.equal(0);
    });
  });
});

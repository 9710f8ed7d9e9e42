/*
 * The WebSocket transport: subprotocol negotiation, frames split over or
 * merged into WebSocket messages, text versus binary messages both ways,
 * and graceful shutdown.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect } from 'chai';
import { pino } from 'pino';
import { serializeFrame } from '../../lib/stomp/index.js';
import { WebSocketTransport } from '../../lib/transport/websocket-server.js';
import { createMemoryBroker, onCleanup, startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { RawStompClient, refusedUpgrade, rejection, StompErrorFrame, StompJsClient } from '../helpers/stomp-client.js';

/** A body that is not valid UTF-8. */
const BINARY = Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80, 0xc3]);

describe('WebSocket transport', () => {
  let node: TestNode;
  afterEach(stopTestNodes);

  describe('subprotocols', () => {
    beforeEach(async () => {
      node = await startTestNode();
    });

    const cases: Array<{ offered: string[]; chosen: string; version: string }> = [
      { offered: ['v12.stomp', 'v11.stomp', 'v10.stomp'], chosen: 'v12.stomp', version: '1.2' },
      { offered: ['v10.stomp', 'v11.stomp', 'v12.stomp'], chosen: 'v12.stomp', version: '1.2' },
      { offered: ['v11.stomp'], chosen: 'v11.stomp', version: '1.1' },
      { offered: ['v10.stomp', 'v11.stomp'], chosen: 'v11.stomp', version: '1.1' },
      { offered: ['v10.stomp'], chosen: 'v10.stomp', version: '1.0' },
      { offered: ['mqtt', 'v12.stomp'], chosen: 'v12.stomp', version: '1.2' },
    ];
    for (const { offered, chosen, version } of cases) {
      it(`offered ${offered.join(', ')} → ${chosen}, which caps CONNECT at STOMP ${version}`, async () => {
        const client = await RawStompClient.open(node.wsUrl, { protocols: offered });
        expect(client.protocol).to.equal(chosen);
        const connected = await client.stompConnect({ 'accept-version': '1.0,1.1,1.2' });
        expect(connected.headers.version).to.equal(version);
      });
    }

    it('a client offering no subprotocol is accepted and served as STOMP 1.2', async () => {
      const client = await RawStompClient.open(node.wsUrl, { protocols: [] });
      expect(client.protocol).to.equal('');
      const connected = await client.stompConnect({ 'accept-version': '1.0,1.1,1.2' });
      expect(connected.headers.version).to.equal('1.2');
      await client.request({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/topic/np' } });
    });

    it('@stomp/stompjs offering only v11.stomp speaks 1.1', async () => {
      const client = await StompJsClient.connect(node.wsUrl, { protocols: ['v11.stomp'] });
      expect(client.client.connectedVersion).to.equal('1.1');
    });

    it('an upgrade on another path is refused, not left hanging', async () => {
      const refused = await refusedUpgrade(node.wsUrl.replace(/\/stomp$/, '/elsewhere'));
      expect(refused.status).to.equal(404);
    });
  });

  describe('framing over WebSocket messages', () => {
    beforeEach(async () => {
      node = await startTestNode();
    });

    it('reassembles a frame split across several WebSocket messages', async () => {
      const client = await RawStompClient.open(node.wsUrl);
      const connect = serializeFrame({ command: 'CONNECT', headers: { 'accept-version': '1.2', login: 'alice' } });
      for (const piece of [connect.subarray(0, 3), connect.subarray(3, 20), connect.subarray(20)]) client.sendRaw(piece, { binary: false });
      await client.expectFrame('CONNECTED');
      await client.request({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/topic/split' } });
      const send = serializeFrame({ command: 'SEND', headers: { destination: '/topic/split', receipt: 'r' }, body: 'in pieces' });
      // One byte per WebSocket message.
      for (let i = 0; i < send.length; i++) client.sendRaw(send.subarray(i, i + 1), { binary: true });
      const message = await client.expectFrame('MESSAGE');
      expect(message.body.toString()).to.equal('in pieces');
      expect((await client.expectFrame('RECEIPT')).headers['receipt-id']).to.equal('r');
    });

    it('handles several frames (and heart-beat EOLs) in one WebSocket message', async () => {
      const client = await RawStompClient.connect(node.wsUrl);
      const batch = Buffer.concat([
        serializeFrame({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/topic/many', receipt: 'r1' } }),
        Buffer.from('\n\r\n'),
        serializeFrame({ command: 'SEND', headers: { destination: '/topic/many', receipt: 'r2' }, body: 'one' }),
        serializeFrame({ command: 'SEND', headers: { destination: '/topic/many', receipt: 'r3' }, body: 'two' }),
      ]);
      client.sendRaw(batch, { binary: false });
      const frames = [];
      for (let i = 0; i < 5; i++) {
        const f = await client.nextFrame();
        frames.push(f.command === 'MESSAGE' ? `MESSAGE ${f.body.toString()}` : `${f.command} ${f.headers['receipt-id']}`);
      }
      // Every frame was handled; receipts come in frame order and messages in send order. (A SEND's
      // RECEIPT may follow the MESSAGE of the next SEND: routing is pipelined, STOMP orders neither.)
      expect(frames.filter((f) => f.startsWith('RECEIPT'))).to.deep.equal(['RECEIPT r1', 'RECEIPT r2', 'RECEIPT r3']);
      expect(frames.filter((f) => f.startsWith('MESSAGE'))).to.deep.equal(['MESSAGE one', 'MESSAGE two']);
      expect(frames[0]).to.equal('RECEIPT r1');
    });

    it('a message may end one frame and start the next', async () => {
      const client = await RawStompClient.connect(node.wsUrl);
      const both = Buffer.concat([
        serializeFrame({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/topic/overlap', receipt: 'a' } }),
        serializeFrame({ command: 'SEND', headers: { destination: '/topic/overlap', receipt: 'b' }, body: 'x' }),
      ]);
      const cut = both.indexOf(0) + 5;
      client.sendRaw(both.subarray(0, cut), { binary: false });
      client.sendRaw(both.subarray(cut), { binary: false });
      expect((await client.expectFrame('RECEIPT')).headers['receipt-id']).to.equal('a');
      expect((await client.expectFrame('MESSAGE')).body.toString()).to.equal('x');
      expect((await client.expectFrame('RECEIPT')).headers['receipt-id']).to.equal('b');
    });

    it('text and binary WebSocket messages both carry frames', async () => {
      const client = await RawStompClient.connect(node.wsUrl);
      await client.request({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/topic/kinds' } });
      client.sendRaw(serializeFrame({ command: 'SEND', headers: { destination: '/topic/kinds' }, body: 'as text' }), { binary: false });
      client.sendRaw(serializeFrame({ command: 'SEND', headers: { destination: '/topic/kinds' }, body: 'as binary' }), { binary: true });
      client.sendRaw(serializeFrame({ command: 'SEND', headers: { destination: '/topic/kinds' }, body: BINARY }), { binary: true });
      expect((await client.expectFrame('MESSAGE')).body.toString()).to.equal('as text');
      expect((await client.expectFrame('MESSAGE')).body.toString()).to.equal('as binary');
      expect((await client.expectFrame('MESSAGE')).body).to.deep.equal(BINARY);
    });
  });

  describe('server messages: text or binary', () => {
    it('a body that is not UTF-8 goes in a binary message, everything else in text', async () => {
      node = await startTestNode();
      const client = await RawStompClient.connect(node.wsUrl);
      await client.request({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/topic/bin', receipt: 'sub' } });
      client.sendFrame({ command: 'SEND', headers: { destination: '/topic/bin' }, body: BINARY });
      client.sendFrame({ command: 'SEND', headers: { destination: '/topic/bin' }, body: 'héllo wörld' });
      client.sendFrame({ command: 'SEND', headers: { destination: '/topic/bin', receipt: 'r' } });
      const binary = await client.expectFrame('MESSAGE');
      expect(binary.binary).to.equal(true);
      expect(binary.body).to.deep.equal(BINARY);
      const text = await client.expectFrame('MESSAGE');
      expect(text.binary).to.equal(false);
      expect(text.body.toString()).to.equal('héllo wörld');
      const empty = await client.expectFrame('MESSAGE');
      expect(empty.binary).to.equal(false);
      const receipt = await client.expectFrame('RECEIPT');
      expect(receipt.binary).to.equal(false);
    });

    it('CONNECTED and ERROR frames are text', async () => {
      node = await startTestNode();
      const client = await RawStompClient.open(node.wsUrl);
      expect((await client.stompConnect()).binary).to.equal(false);
      client.sendFrame({ command: 'FROB' });
      expect((await client.expectFrame('ERROR')).binary).to.equal(false);
    });

    it('wsBinaryFrames "always" makes every frame binary', async () => {
      node = await startTestNode({ wsBinaryFrames: 'always' });
      const client = await RawStompClient.open(node.wsUrl);
      const connected = await client.stompConnect();
      expect(connected.command).to.equal('CONNECTED');
      expect(connected.binary).to.equal(true);
      await client.request({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/topic/always' } });
      client.sendFrame({ command: 'SEND', headers: { destination: '/topic/always', receipt: 'r' }, body: 'plain text' });
      const message = await client.expectFrame('MESSAGE');
      expect(message.binary).to.equal(true);
      expect(message.body.toString()).to.equal('plain text');
      expect((await client.expectFrame('RECEIPT')).binary).to.equal(true);
    });

    it('@stomp/stompjs receives a binary body intact, and a text body as text', async () => {
      node = await startTestNode();
      const client = await StompJsClient.connect(node.wsUrl);
      const inbox = await client.subscribe('/topic/js-bin');
      await client.publish('/topic/js-bin', new Uint8Array(BINARY));
      await client.publish('/topic/js-bin', 'texte');
      const binary = await inbox.next();
      expect(Buffer.from(binary.binaryBody)).to.deep.equal(BINARY);
      expect((await inbox.next()).body).to.equal('texte');
    });
  });

  describe('oversized messages', () => {
    // maxFrameSize 4096: the WebSocket bound (maxPayload) is 2 × 4096 + 1024.
    it('a message over the WebSocket bound gets ERROR naming the limit before the close (not a bare 1009)', async () => {
      node = await startTestNode({ maxFrameSize: 4096 });
      const client = await RawStompClient.connect(node.wsUrl);
      client.sendFrame({ command: 'SEND', headers: { destination: '/topic/big' }, body: 'x'.repeat(64 * 1024) });
      const error = await client.expectFrame('ERROR');
      expect(error.headers.code).to.equal('ERR_STOMP_FRAME_TOO_LARGE');
      expect(error.headers.message).to.include('4096');
      expect((await client.closed).code).to.equal(1000);
      expect(node.broker.sessions.size).to.equal(0);
    });

    it('stompjs sees the ERROR frame for a message over the bound', async () => {
      node = await startTestNode({ maxFrameSize: 4096 });
      const client = await StompJsClient.connect(node.wsUrl);
      client.client.publish({ destination: '/topic/big', body: 'x'.repeat(64 * 1024) });
      const error = await client.errors.take();
      expect(error.headers.code).to.equal('ERR_STOMP_FRAME_TOO_LARGE');
      await client.closed;
    });
  });

  describe('what an open connection keeps', () => {
    it('an open WebSocket does not keep its HTTP upgrade request alive (headers, stream state: idle memory per connection)', async () => {
      node = await startTestNode();
      let request: WeakRef<IncomingMessage> | undefined;
      node.server.prependListener('upgrade', (req: IncomingMessage) => {
        request = new WeakRef(req);
      });
      const client = await RawStompClient.open(node.wsUrl);
      await client.stompConnect({ 'accept-version': '1.2' });
      expect(request, 'the upgrade was seen').to.not.equal(undefined);
      // A WeakRef read in this job keeps its target until the job ends: collect in a later one.
      await new Promise((resolve) => setImmediate(resolve));
      collectGarbage();
      expect(request!.deref(), 'the upgrade request, after a full collection').to.equal(undefined);
      await client.request({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/topic/kept' } });
    });
  });

  describe('graceful shutdown', () => {
    it('sends every connected client ERROR ERR_SHUTTING_DOWN with the reason, then closes', async () => {
      node = await startTestNode();
      const raw = await RawStompClient.connect(node.wsUrl, { login: 'raw' });
      const stompjs = await StompJsClient.connect(node.wsUrl, { login: 'js' });
      const notConnected = await RawStompClient.open(node.wsUrl);
      await node.stop('bye');
      const error = await raw.expectFrame('ERROR');
      expect(error.headers.code).to.equal('ERR_SHUTTING_DOWN');
      expect(error.headers.message).to.equal('bye');
      expect((await raw.closed).code).to.equal(1000);
      const jsError = await stompjs.errors.take();
      expect(jsError.headers.code).to.equal('ERR_SHUTTING_DOWN');
      await stompjs.closed;
      expect((await notConnected.expectFrame('ERROR')).headers.code).to.equal('ERR_SHUTTING_DOWN');
      await notConnected.closed;
      expect(node.broker.sessions.size).to.equal(0);
      expect(node.broker.accepting).to.equal(false);
    });

    it('refuses new connections once stopped', async () => {
      node = await startTestNode();
      await node.stop('bye');
      const error = await rejection(RawStompClient.open(node.wsUrl));
      expect(error.message).to.match(/ECONNREFUSED|refused/);
      const js = await rejection(StompJsClient.connect(node.wsUrl));
      expect(js).to.not.be.instanceOf(StompErrorFrame);
    });

    it('ends within its bound even when a client does not answer the close', async () => {
      node = await startTestNode({ shutdownTimeoutMs: 200 });
      const deaf = await RawStompClient.connect(node.wsUrl);
      deaf.pause();
      await node.stop('bye');
      deaf.resume();
      await deaf.closed;
    });

    describe('the transport alone', () => {
      let server: Server;
      let url: string;
      let transport: WebSocketTransport;

      beforeEach(async () => {
        const broker = await createMemoryBroker();
        server = createServer((_req, res) => res.writeHead(404).end());
        transport = new WebSocketTransport(server, broker, pino({ level: 'silent' }), {
          path: '/stomp',
          alwaysBinary: false,
          maxPayload: 1024 * 1024,
          coalesce: true,
        });
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/stomp`;
        onCleanup(async () => {
          server.closeAllConnections();
          await new Promise<void>((resolve) => server.close(() => resolve()));
        });
      });

      it('answers upgrades during and after its close with 503 ERR_SHUTTING_DOWN', async () => {
        const client = await RawStompClient.connect(url);
        const closing = transport.close(5000);
        // Still closing (a client is connected): a new upgrade is refused with the reason.
        const during = await refusedUpgrade(url);
        expect(during.status).to.equal(503);
        expect(JSON.parse(during.body)).to.deep.equal({ error: { code: 'ERR_SHUTTING_DOWN', message: 'shutting down' } });
        client.terminate();
        await closing;
        expect(transport.connectionCount).to.equal(0);
        // Closed, on a server that still runs: still refused, not left hanging.
        expect((await refusedUpgrade(url)).status).to.equal(503);
      });

      it('waits for open sockets to close, then cuts them at its bound', async () => {
        const client = await RawStompClient.connect(url);
        client.pause();
        await transport.close(100);
        client.resume();
        await client.closed;
        expect(transport.connectionCount).to.equal(0);
      });
    });
  });
});

/** A full garbage collection, whatever flags mocha runs with. */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

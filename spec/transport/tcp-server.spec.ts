/*
 * STOMP over TCP and TLS (STOMP_TCP_PORT, STOMP_TLS_PORT) against a real
 * node: the raw codec over a socket, @stomp/stompjs over TCP (spec/helpers/
 * tcp.ts) talking with stompjs over WebSocket, authentication from CONNECT,
 * the frame limit, and shutdown.
 */
import { createServer, type AddressInfo } from 'node:net';
import { expect } from 'chai';
import { SignJWT } from 'jose';
import { serializeFrame } from '../../lib/stomp/index.js';
import { startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { rejection, StompErrorFrame, StompJsClient } from '../helpers/stomp-client.js';
import { openTcpChannel, TcpStompSocket, TLS_CERT, TLS_KEY, type TcpOptions } from '../helpers/tcp.js';

function stompJsOverTcp(node: TestNode, login: string, options: TcpOptions & { passcode?: string } = {}): Promise<StompJsClient> {
  const port = options.tls ? node.tlsPort! : node.tcpPort!;
  return StompJsClient.connect('', { login, passcode: options.passcode, socket: () => new TcpStompSocket(port, options) });
}

describe('STOMP over TCP and TLS', () => {
  afterEach(stopTestNodes);

  it('is off unless STOMP_TCP_PORT is set', async () => {
    const node = await startTestNode();
    expect(node.tcpPort).to.equal(undefined);
    expect(node.tlsPort).to.equal(undefined);
  });

  it('runs CONNECT, SUBSCRIBE, SEND and MESSAGE over a raw socket', async () => {
    const node = await startTestNode({ stompTcpPort: 0 });
    const bob = await openTcpChannel(node.tcpPort!);
    const connected = await bob.connect({ login: 'bob' });
    expect(connected.command).to.equal('CONNECTED');
    expect(connected.headers['user-name']).to.equal('bob');
    expect((await bob.subscribe('/user/queue/reply', 'r')).command).to.equal('RECEIPT');
    const alice = await openTcpChannel(node.tcpPort!);
    await alice.connect({ login: 'alice' });
    expect((await alice.send('/user/bob/queue/reply', 'héllo over TCP')).command).to.equal('RECEIPT');
    const message = await bob.nextMessage();
    expect(message.headers).to.include({ destination: '/user/queue/reply', sender: 'alice', subscription: 'r' });
    expect(message.body.toString('utf8')).to.equal('héllo over TCP');
    expect((await node.metrics.text()).body).to.match(/connections\{[^}]*transport="tcp"[^}]*\} 2/);
  });

  for (const tls of [false, true]) {
    const over = tls ? 'TLS' : 'TCP';
    it(`stompjs over ${over} and stompjs over WebSocket send to each other`, async () => {
      const node = await startTestNode({ stompTcpPort: 0, stompTlsPort: 0, stompTlsCert: TLS_CERT, stompTlsKey: TLS_KEY });
      const backend = await stompJsOverTcp(node, 'backend', { tls });
      const browser = await StompJsClient.connect(node.wsUrl, { login: 'carol' });
      const toCarol = await browser.subscribe('/user/queue/notifications');
      const toBackend = await backend.subscribe('/user/queue/requests');

      await backend.publish('/user/carol/queue/notifications', `from a backend over ${over}`);
      const notification = await toCarol.next();
      expect(notification.headers.sender).to.equal('backend');
      expect(notification.body).to.equal(`from a backend over ${over}`);

      const bytes = Uint8Array.from([0, 1, 2, 0xff, 0xfe]);
      await browser.publish('/user/backend/queue/requests', bytes, { 'content-type': 'application/octet-stream' });
      const request = await toBackend.next();
      expect(request.headers.sender).to.equal('carol');
      expect([...request.binaryBody]).to.deep.equal([...bytes]);
      await backend.disconnect();
    });
  }

  it('authenticates from CONNECT login and passcode (static mode)', async () => {
    const node = await startTestNode({ stompTcpPort: 0, authMode: 'static', authUsers: 'svc:s3cret' });
    const good = await stompJsOverTcp(node, 'svc', { passcode: 's3cret' });
    expect(good.connected!.headers['user-name']).to.equal('svc');
    const bad = await rejection(stompJsOverTcp(node, 'svc', { passcode: 'wrong' }));
    expect(bad).to.be.instanceOf(StompErrorFrame);
    expect((bad as StompErrorFrame).code).to.equal('ERR_AUTH_FAILED');
  });

  it('authenticates a JWT sent as passcode (jwt mode)', async () => {
    const secret = 'spec-jwt-secret-0123456789abcdef0123456789';
    const node = await startTestNode({ stompTcpPort: 0, authMode: 'jwt', jwtSecret: secret });
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('svc-jwt')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(secret));
    const channel = await openTcpChannel(node.tcpPort!);
    const connected = await channel.connect({ login: 'ignored', passcode: token });
    expect(connected.headers['user-name']).to.equal('svc-jwt');
  });

  it('answers a frame over maxFrameSize with ERROR naming the limit, then closes', async () => {
    const node = await startTestNode({ stompTcpPort: 0, maxFrameSize: 4096 });
    const channel = await openTcpChannel(node.tcpPort!);
    await channel.connect({ login: 'alice' });
    // No content-length: the parser meets the limit while the body streams in.
    channel.sendFrame({ command: 'SEND', headers: { destination: '/topic/big' }, body: 'x'.repeat(64 * 1024) });
    const error = await channel.next();
    expect(error.command).to.equal('ERROR');
    expect(error.headers.code).to.equal('ERR_STOMP_FRAME_TOO_LARGE');
    expect(error.headers.message).to.include('4096');
    await channel.closed;
  });

  it('input backpressure: a thousand frames in one write all get their RECEIPT, in order', async () => {
    // Past 256 queued frames the session pauses the socket, and resumes it as it catches up.
    const node = await startTestNode({ stompTcpPort: 0 });
    const channel = await openTcpChannel(node.tcpPort!);
    await channel.connect({ login: 'burst' });
    const frames = Array.from({ length: 1000 }, (_, i) =>
      serializeFrame({ command: 'SEND', headers: { destination: '/topic/burst', receipt: `r${i}` }, body: String(i) }),
    );
    channel.socket.write(Buffer.concat(frames));
    for (let i = 0; i < 1000; i++) expect((await channel.next()).headers['receipt-id']).to.equal(`r${i}`);
  });

  it('output backpressure: a subscriber that stops reading is ended with ERR_SLOW_CONSUMER', async () => {
    const node = await startTestNode({ stompTcpPort: 0, maxOutgoingBuffer: 64 * 1024 });
    const slow = await openTcpChannel(node.tcpPort!);
    const connected = await slow.connect({ login: 'slow' });
    await slow.subscribe('/user/queue/feed', 'feed');
    const session = [...node.broker.sessions].find((s) => s.id === connected.headers.session)!;
    slow.socket.pause();
    const publisher = await openTcpChannel(node.tcpPort!);
    await publisher.connect({ login: 'pub' });
    const chunk = 'x'.repeat(16 * 1024);
    let sent = 0;
    // Each RECEIPT means the SEND was handled; the kernel's buffers fill first, then the socket's.
    while (node.broker.sessions.has(session)) {
      if (sent >= 8192) throw new Error(`still connected after ${sent} messages`);
      expect((await publisher.send('/user/slow/queue/feed', `${++sent}:${chunk}`)).command).to.equal('RECEIPT');
    }
    expect(node.broker.stats.errors.get('ERR_SLOW_CONSUMER')).to.equal(1);
    // What it could not take waits in its inbox.
    expect(await node.broker.inbox.depth('slow', '/queue/feed')).to.be.greaterThan(0);
  });

  it('a STOMP_TCP_PORT in use fails the start (the node never joins), closing what it had bound', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const error = await rejection(startTestNode({ stompTcpPort: (taken.address() as AddressInfo).port }));
      expect((error as Error & { code?: string }).code).to.equal('EADDRINUSE');
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });

  it('STOMP_TLS_PORT without a certificate and key is refused at start', async () => {
    const error = await rejection(startTestNode({ stompTlsPort: 0 }));
    expect(error.message).to.include('STOMP_TLS_CERT');
  });

  it('graceful shutdown sends ERROR ERR_SHUTTING_DOWN over TCP, then closes', async () => {
    const node = await startTestNode({ stompTcpPort: 0 });
    const channel = await openTcpChannel(node.tcpPort!);
    await channel.connect({ login: 'alice' });
    const stopped = node.stop('maintenance');
    const error = await channel.next();
    expect(error.headers.code).to.equal('ERR_SHUTTING_DOWN');
    await channel.closed;
    await stopped;
  });
});

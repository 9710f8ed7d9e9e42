/*
 * Application destinations through APP_PROXY_URL, with the example
 * application (examples/app-server) as a real process: the round trip from
 * a SEND to /app/... to the application and its reply messages routed back
 * as SENDs of the user; the failures as ERROR frames with stable codes.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { startExampleApp, type ExampleApp } from '../helpers/example-app.js';
import { startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { rejection, StompErrorFrame, StompJsClient } from '../helpers/stomp-client.js';
import { TcpStompSocket } from '../helpers/tcp.js';

describe('application destinations (APP_PROXY_URL)', () => {
  let app: ExampleApp;
  let node: TestNode;

  before(async () => {
    app = await startExampleApp();
  });
  after(async () => {
    await app.stop();
  });
  afterEach(stopTestNodes);

  async function appNode(overrides: Parameters<typeof startTestNode>[0] = {}): Promise<TestNode> {
    node = await startTestNode({ appProxyUrl: `${app.url}/stomp`, stompTcpPort: 0, ...overrides });
    return node;
  }

  it('a SEND to /app/echo reaches the application, whose reply comes back to the sender', async () => {
    await appNode();
    const alice = await StompJsClient.connect(node.wsUrl, { login: 'alice' });
    const echo = await alice.subscribe('/user/queue/echo');
    await alice.publish('/app/echo', 'hello app');
    const reply = await echo.next();
    expect(reply.body).to.equal('echo: hello app');
    expect(reply.headers.sender).to.equal('alice');
    expect(reply.headers.destination).to.equal('/user/queue/echo');
  });

  it('the application routes to another user as a SEND of the sender (here over TCP): offline, it waits in the inbox', async () => {
    await appNode();
    const alice = await StompJsClient.connect('', { login: 'alice', socket: () => new TcpStompSocket(node.tcpPort!) });
    const sent = await alice.subscribe('/user/queue/chat-sent');
    // bob is offline: the reply is routed as any SEND and waits in his inbox.
    await alice.publish('/app/chat', JSON.stringify({ to: 'bob', text: 'hi bob' }));
    expect(JSON.parse((await sent.next()).body)).to.deep.equal({ from: 'alice', text: 'hi bob' });
    const bob = await StompJsClient.connect(node.wsUrl, { login: 'bob' });
    const chat = await bob.subscribe('/user/queue/chat');
    const message = await chat.next();
    expect(message.headers.sender).to.equal('alice');
    expect(message.headers['content-type']).to.equal('application/json');
    expect(JSON.parse(message.body)).to.deep.equal({ from: 'alice', text: 'hi bob' });
  });

  it('works under another prefix (APP_PREFIX=/message/, as seed 002) and to topics', async () => {
    await appNode({ appPrefix: '/message/' });
    const carol = await StompJsClient.connect(node.wsUrl, { login: 'carol' });
    const listener = await StompJsClient.connect(node.wsUrl, { login: 'dave' });
    const topic = await listener.subscribe('/topic/broadcast');
    await carol.publish('/message/broadcast', 'to all');
    expect((await topic.next()).body).to.equal('carol: to all');
  });

  const failures: Array<{ path: string; code: string; overrides?: Parameters<typeof startTestNode>[0] }> = [
    { path: '/app/fail', code: 'ERR_APP_REJECTED' },
    { path: '/app/nowhere', code: 'ERR_APP_REJECTED' },
    { path: '/app/slow', code: 'ERR_APP_TIMEOUT', overrides: { appProxyTimeoutMs: 200 } },
  ];
  for (const { path, code, overrides } of failures) {
    it(`SEND to ${path} → ERROR ${code}`, async () => {
      await appNode(overrides);
      const alice = await StompJsClient.connect(node.wsUrl, { login: 'alice' });
      const error = await rejection(alice.publish(path, 'x'));
      expect(error).to.be.instanceOf(StompErrorFrame);
      expect((error as StompErrorFrame).code).to.equal(code);
    });
  }

  it('says what the application answered when it refuses', async () => {
    await appNode();
    const alice = await StompJsClient.connect(node.wsUrl, { login: 'alice' });
    const error = (await rejection(alice.publish('/app/fail', 'x'))) as StompErrorFrame;
    expect(error.frame.headers.message).to.include('HTTP 500').and.include('failing on purpose');
  });

  it('an application that cannot be reached → ERROR ERR_APP_UNAVAILABLE', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    node = await startTestNode({ appProxyUrl: `http://127.0.0.1:${port}/` });
    const alice = await StompJsClient.connect(node.wsUrl, { login: 'alice' });
    expect(((await rejection(alice.publish('/app/echo', 'x'))) as StompErrorFrame).code).to.equal('ERR_APP_UNAVAILABLE');
  });

  describe('an answer that breaks the contract → ERROR ERR_APP_BAD_RESPONSE', () => {
    let bad: Server;
    let answer = '';
    before(async () => {
      bad = createServer((_request, response) => response.end(answer));
      await new Promise<void>((resolve) => bad.listen(0, '127.0.0.1', resolve));
    });
    after(() => new Promise<void>((resolve) => bad.close(() => resolve())));

    for (const [why, text] of [
      ['not JSON', 'ok'],
      ['messages not an array', '{"messages": 1}'],
      ['a reply back to the application prefix', '{"messages": [{"destination": "/app/loop", "body": "x"}]}'],
      ['a reply to no known destination', '{"messages": [{"destination": "/nowhere", "body": "x"}]}'],
      ['an answer larger than the bound of a request body', `{"messages": []}${' '.repeat(2 * 1024 * 1024)}`],
    ] as const) {
      it(why, async () => {
        answer = text;
        node = await startTestNode({ appProxyUrl: `http://127.0.0.1:${(bad.address() as AddressInfo).port}/` });
        const alice = await StompJsClient.connect(node.wsUrl, { login: 'alice' });
        expect(((await rejection(alice.publish('/app/x', 'x'))) as StompErrorFrame).code).to.equal('ERR_APP_BAD_RESPONSE');
      });
    }
  });

  it('without APP_PROXY_URL a SEND to /app/ stays ERR_UNKNOWN_DESTINATION', async () => {
    node = await startTestNode();
    const alice = await StompJsClient.connect(node.wsUrl, { login: 'alice' });
    expect(((await rejection(alice.publish('/app/echo', 'x'))) as StompErrorFrame).code).to.equal('ERR_UNKNOWN_DESTINATION');
  });
});

/*
 * STOMP over SockJS at /chat-websocket, driven by sockjs-client in Node (as
 * a browser page would use it) over the websocket transport and the XHR
 * fallbacks, and by a hand-made xhr-polling client where a spec needs to
 * send a Cookie on every request.
 */
import { expect } from 'chai';
import { startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { call, login, openSockJs, openWs, XhrPollingClient, type StompChannel } from '../http/helpers.js';

const SECRET = 'spec-session-secret-0123456789abcdef';

describe('SockJS transport', () => {
  let node: TestNode;
  let sockjsUrl: string;

  beforeEach(async () => {
    node = await startTestNode({ sessionSecret: SECRET });
    sockjsUrl = node.url + node.config.sockjsPath;
  });
  afterEach(stopTestNodes);

  async function connected(channel: StompChannel, headers: Record<string, string> = {}): Promise<string> {
    const reply = await channel.connect(headers);
    expect(reply.command, reply.headers.message).to.equal('CONNECTED');
    return reply.headers['user-name']!;
  }

  it('answers /info like Spring\'s SockJS endpoint', async () => {
    const answer = await call(node, 'GET', `${node.config.sockjsPath}/info`);
    expect(answer.status).to.equal(200);
    expect(answer.json).to.include({ websocket: true, cookie_needed: false });
  });

  for (const transports of [['websocket'], ['xhr-streaming'], ['xhr-polling']]) {
    it(`runs CONNECT, SUBSCRIBE, SEND and MESSAGE over ${transports[0]}`, async () => {
      const bob = await openSockJs(sockjsUrl, { transports });
      expect(bob.transport).to.equal(transports[0]);
      expect(await connected(bob, { login: 'bob' })).to.equal('bob');
      expect((await bob.subscribe('/user/queue/reply')).command).to.equal('RECEIPT');
      expect((await bob.subscribe('/topic/news', 'news')).command).to.equal('RECEIPT');

      const alice = await openSockJs(sockjsUrl, { transports });
      await connected(alice, { login: 'alice' });
      expect((await alice.send('/user/bob/queue/reply', 'héllo bob')).command).to.equal('RECEIPT');
      const direct = await bob.nextMessage();
      expect(direct.command).to.equal('MESSAGE');
      expect(direct.headers).to.include({ destination: '/user/queue/reply', sender: 'alice' });
      expect(direct.body.toString('utf8')).to.equal('héllo bob');

      await alice.send('/topic/news', 'extra');
      const news = await bob.nextMessage();
      expect(news.headers).to.include({ destination: '/topic/news', subscription: 'news' });
      expect(news.body.toString('utf8')).to.equal('extra');
    });
  }

  it('a message from a raw-WebSocket client reaches a SockJS client, and back', async () => {
    const viaSockJs = await openSockJs(sockjsUrl, { transports: ['xhr-streaming'] });
    await connected(viaSockJs, { login: 'bob' });
    await viaSockJs.subscribe('/user/queue/reply');
    const viaWs = await openWs(node.wsUrl);
    await connected(viaWs, { login: 'alice' });
    await viaWs.subscribe('/user/queue/reply');

    await viaWs.send('/user/bob/queue/reply', 'from ws');
    const atSockJs = await viaSockJs.nextMessage();
    expect(atSockJs.headers.sender).to.equal('alice');
    expect(atSockJs.body.toString('utf8')).to.equal('from ws');

    await viaSockJs.send('/user/alice/queue/reply', 'from sockjs');
    const atWs = await viaWs.nextMessage();
    expect(atWs.headers.sender).to.equal('bob');
    expect(atWs.body.toString('utf8')).to.equal('from sockjs');
  });

  it('a message sent while the user was offline is delivered on SUBSCRIBE over SockJS', async () => {
    const alice = await login(node, 'alice');
    await call(node, 'POST', '/api/messages', { token: alice.token, json: { to: 'bob', destination: '/queue/reply', body: 'stored' } });
    const bob = await openSockJs(sockjsUrl, { transports: ['xhr-polling'] });
    await connected(bob, { login: 'bob' });
    await bob.subscribe('/user/queue/reply');
    const message = await bob.nextMessage();
    expect(message.body.toString('utf8')).to.equal('stored');
  });

  describe('identity', () => {
    it('takes the user from the session cookie on the websocket transport', async () => {
      const { cookie } = await login(node, 'carol');
      const sock = await openSockJs(sockjsUrl, { transports: ['websocket'], transportOptions: { websocket: { headers: { Cookie: cookie } } } });
      // CONNECT names nobody (or someone else): the cookie's user wins.
      expect(await connected(sock, { login: 'mallory' })).to.equal('carol');
    });

    it('takes the user from the session cookie on every xhr-polling request', async () => {
      const { cookie } = await login(node, 'carol');
      const client = new XhrPollingClient(XhrPollingClient.sessionUrl(sockjsUrl), { cookie });
      await client.opened;
      expect(await connected(client.channel)).to.equal('carol');
      await client.channel.subscribe('/user/queue/reply');
      const ws = await openWs(node.wsUrl);
      await connected(ws, { login: 'dave' });
      await ws.send('/user/carol/queue/reply', 'polled');
      expect((await client.channel.nextMessage()).body.toString('utf8')).to.equal('polled');
    });

    it('takes the user from access_token on the base URL, for every transport', async () => {
      const { token } = await login(node, 'erin');
      for (const transports of [['websocket'], ['xhr-streaming'], ['xhr-polling']]) {
        const sock = await openSockJs(`${sockjsUrl}?access_token=${encodeURIComponent(token)}`, { transports });
        expect(sock.transport).to.equal(transports[0]);
        expect(await connected(sock, { login: 'mallory' })).to.equal('erin');
        sock.close();
      }
    });

    it('refuses an invalid access_token with 401 JSON', async () => {
      const answer = await call(node, 'POST', `${node.config.sockjsPath}/000/abcdefgh/xhr?access_token=forged.token`);
      expect(answer.status).to.equal(401);
      expect(answer.json.error.code).to.equal('ERR_AUTH_FAILED');
    });
  });

  describe('limits and shutdown', () => {
    it('cuts an xhr_send larger than the bound, after an ERROR naming the limit', async () => {
      const small = await startTestNode({ sessionSecret: SECRET, maxFrameSize: 4096, maxBodySize: 2048 });
      const client = new XhrPollingClient(XhrPollingClient.sessionUrl(small.url + small.config.sockjsPath), {});
      await client.opened;
      expect((await client.channel.connect({ login: 'bob' })).command).to.equal('CONNECTED');
      // The connection is cut (fetch fails) rather than the body buffered.
      const status = await client.sendRaw(JSON.stringify(['x'.repeat(20_000)])).catch(() => 0);
      expect(status).to.equal(0);
      const error = await client.channel.next();
      expect(error.command).to.equal('ERROR');
      expect(error.headers.code).to.equal('ERR_STOMP_FRAME_TOO_LARGE');
      expect(error.headers.message).to.include('4096');
    });

    it('answers a websocket-transport message larger than the bound with an ERROR naming the limit, then closes', async () => {
      const small = await startTestNode({ sessionSecret: SECRET, maxFrameSize: 4096, maxBodySize: 2048 });
      const sock = await openSockJs(small.url + small.config.sockjsPath, { transports: ['websocket'] });
      await connected(sock, { login: 'bob' });
      sock.sendFrame({ command: 'SEND', headers: { destination: '/topic/a' }, body: 'x'.repeat(20_000) });
      const error = await sock.next();
      expect(error.command).to.equal('ERROR');
      expect(error.headers.code).to.equal('ERR_STOMP_FRAME_TOO_LARGE');
      expect(error.headers.message).to.include('4096');
      const closed = await sock.next(() => true).catch((e: Error) => e);
      expect((closed as Error).message).to.match(/SockJS closed/);
    });

    it('graceful shutdown ends SockJS sessions with an ERROR', async () => {
      const sock = await openSockJs(sockjsUrl, { transports: ['xhr-streaming'] });
      await connected(sock, { login: 'bob' });
      const stopped = node.stop('maintenance');
      const error = await sock.next((f) => f.command === 'ERROR');
      expect(error.headers.code).to.equal('ERR_SHUTTING_DOWN');
      await stopped;
    });
  });
});

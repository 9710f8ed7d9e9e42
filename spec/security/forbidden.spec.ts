/*
 * Each forbidden action, tried, and its refusal asserted: reading another
 * user's messages, sending as someone else, switching user after the
 * transport identified the client, and cross-site use of the cookie
 * session (WebSocket, SockJS, HTTP API: CSRF and CORS).
 */
import { expect } from 'chai';
import { startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { call, errorCode, login, openSockJs, openWs, upgradeAnswer, XhrPollingClient, type Answer } from '../http/helpers.js';

const SECRET = 'spec-session-secret-0123456789abcdef';
const EVIL = 'https://evil.example';

function refused(answer: Answer, status: number, code: string): void {
  expect(answer.status, answer.text).to.equal(status);
  expect(errorCode(answer), answer.text).to.equal(code);
}

describe('forbidden actions', () => {
  let node: TestNode;
  let host: string;

  beforeEach(async () => {
    node = await startTestNode({ sessionSecret: SECRET });
    host = new URL(node.url).host;
  });
  afterEach(stopTestNodes);

  async function storeFor(user: string, target: string, body: string): Promise<void> {
    const { token } = await login(node, 'sender');
    const answer = await call(node, 'POST', '/api/messages', { token, json: { to: user, destination: target, body } });
    expect(answer.status).to.equal(202);
  }

  describe("another user's messages", () => {
    it("STOMP: SUBSCRIBE to another user's destination is an ERROR", async () => {
      const mallory = await openWs(node.wsUrl);
      await mallory.connect({ login: 'mallory' });
      const reply = await mallory.subscribe('/user/bob/queue/reply');
      expect(reply.command).to.equal('ERROR');
      expect(reply.headers.code).to.equal('ERR_FORBIDDEN');
    });

    it("HTTP: peeking at or pulling another user's inbox is 403, and leaves it intact", async () => {
      await storeFor('bob', '/queue/reply', 'private');
      const { token } = await login(node, 'mallory');
      refused(await call(node, 'GET', '/api/inbox?destination=/user/bob/queue/reply', { token }), 403, 'ERR_FORBIDDEN');
      refused(await call(node, 'POST', '/api/inbox/pull', { token, json: { destination: '/user/bob/queue/reply' } }), 403, 'ERR_FORBIDDEN');
      refused(await call(node, 'POST', '/wsTemplate/pullUnreadMessage', { token, json: { destination: '/user/bob/queue/reply' } }), 403, 'ERR_FORBIDDEN');
      // Encoded names are the same user.
      refused(await call(node, 'POST', '/api/inbox/pull', { token, json: { destination: '/user/%62ob/queue/reply' } }), 403, 'ERR_FORBIDDEN');
      // What mallory can name is only mallory's own inbox.
      expect((await call(node, 'POST', '/api/inbox/pull', { token, json: { destination: '/queue/reply' } })).json.messages).to.deep.equal([]);
      const bob = await login(node, 'bob');
      const pulled = await call(node, 'POST', '/api/inbox/pull', { token: bob.token, json: { destination: '/queue/reply' } });
      expect(pulled.json.messages.map((m: { body: string }) => m.body)).to.deep.equal(['private']);
    });
  });

  describe('sending as someone else', () => {
    it('STOMP: a client-set sender header is overwritten with the authenticated user', async () => {
      const bob = await openWs(node.wsUrl);
      await bob.connect({ login: 'bob' });
      await bob.subscribe('/user/queue/reply');
      const mallory = await openWs(node.wsUrl);
      await mallory.connect({ login: 'mallory' });
      await mallory.send('/user/bob/queue/reply', 'trust me', { sender: 'alice' });
      const message = await bob.nextMessage();
      expect(message.headers.sender).to.equal('mallory');
    });

    it('HTTP: a sender header is refused; the sender is the caller', async () => {
      const { token } = await login(node, 'mallory');
      refused(await call(node, 'POST', '/api/messages', { token, json: { to: 'bob', destination: '/queue/reply', body: 'x', headers: { sender: 'alice' } } }), 400, 'ERR_BAD_REQUEST');
      await call(node, 'POST', '/api/messages', { token, json: { to: 'bob', destination: '/queue/reply', body: 'x', sender: 'alice' } });
      await call(node, 'POST', '/wsTemplate/sendToUser', { token, json: { receiver: 'bob', msg: 'hi', sender: 'alice' } });
      const bob = await login(node, 'bob');
      const stored = await call(node, 'GET', '/api/inbox?destination=/queue/reply', { token: bob.token });
      expect(stored.json.messages.map((m: { sender: string }) => m.sender)).to.deep.equal(['mallory']);
      const seed = await call(node, 'POST', '/wsTemplate/pullUnreadMessage', { token: bob.token, json: { destination: '/topic/reply' } });
      expect(seed.json.result).to.deep.equal([JSON.stringify({ content: 'mallory say: hi' })]);
    });

    it('CONNECT cannot switch away from the identity the transport established', async () => {
      const guarded = await startTestNode({ authMode: 'static', authUsers: 'alice:a-pass,bob:b-pass', sessionSecret: SECRET });
      const alice = await call(guarded, 'POST', '/api/login', { json: { user: 'alice', password: 'a-pass' } });
      const cookie = (alice.headers.get('set-cookie') ?? '').split(';')[0]!;
      const byCookie = await openWs(guarded.wsUrl, { Cookie: cookie });
      expect((await byCookie.connect({ login: 'bob', passcode: 'b-pass' })).headers['user-name']).to.equal('alice');
      const byQuery = await openWs(`${guarded.wsUrl}?access_token=${alice.json.token}`);
      expect((await byQuery.connect({ login: 'bob', passcode: 'b-pass' })).headers['user-name']).to.equal('alice');
      // Without a transport identity, static mode wants the password.
      const anonymous = await openWs(guarded.wsUrl);
      const reply = await anonymous.connect({ login: 'bob', passcode: 'wrong' });
      expect(reply.command).to.equal('ERROR');
      expect(reply.headers.code).to.equal('ERR_AUTH_FAILED');
    });
  });

  describe('cross-site WebSocket', () => {
    it('refuses a foreign Origin with 403 JSON', async () => {
      const { cookie } = await login(node, 'alice');
      const answer = await upgradeAnswer(node.wsUrl, { Origin: EVIL, Cookie: cookie });
      expect(answer.status).to.equal(403);
      expect(answer.json.error.code).to.equal('ERR_FORBIDDEN');
      const nullOrigin = await upgradeAnswer(node.wsUrl, { Origin: 'null', Cookie: cookie });
      expect(nullOrigin.status).to.equal(403);
      const fetchMetadata = await upgradeAnswer(node.wsUrl, { 'Sec-Fetch-Site': 'cross-site', Cookie: cookie });
      expect(fetchMetadata.status).to.equal(403);
    });

    it('accepts the same origin, no Origin (non-browser clients), and listed origins', async () => {
      const { cookie } = await login(node, 'alice');
      const same = await openWs(node.wsUrl, { Origin: `http://${host}`, Cookie: cookie });
      expect((await same.connect()).headers['user-name']).to.equal('alice');
      const none = await openWs(node.wsUrl, { Cookie: cookie });
      expect((await none.connect()).headers['user-name']).to.equal('alice');
      const listed = await startTestNode({ sessionSecret: SECRET, allowedOrigins: `https://app.example, ${EVIL}:8443` });
      const ok = await openWs(listed.wsUrl, { Origin: 'https://app.example', Cookie: cookie });
      expect((await ok.connect()).headers['user-name']).to.equal('alice');
      expect((await upgradeAnswer(listed.wsUrl, { Origin: EVIL })).status).to.equal(403);
    });
  });

  describe('cross-site SockJS', () => {
    it('refuses a foreign Origin on every SockJS request', async () => {
      const base = node.config.sockjsPath;
      refused(await call(node, 'GET', `${base}/info`, { headers: { Origin: EVIL } }), 403, 'ERR_FORBIDDEN');
      refused(await call(node, 'POST', `${base}/000/abcdefgh/xhr_streaming`, { headers: { Origin: EVIL } }), 403, 'ERR_FORBIDDEN');
      refused(await call(node, 'OPTIONS', `${base}/000/abcdefgh/xhr`, { headers: { Origin: EVIL } }), 403, 'ERR_FORBIDDEN');
      const upgrade = await upgradeAnswer(`${node.wsUrl.replace(node.config.wsPath, base)}/000/abcdefgh/websocket`, { Origin: EVIL });
      expect(upgrade.status).to.equal(403);
      // The same origin passes.
      expect((await call(node, 'GET', `${base}/info`, { headers: { Origin: `http://${host}` } })).status).to.equal(200);
    });

    it('disables the script-inclusion transports (jsonp, htmlfile, iframe)', async () => {
      const base = node.config.sockjsPath;
      for (const path of [`${base}/000/abcdefgh/jsonp?c=cb`, `${base}/000/abcdefgh/htmlfile?c=cb`, `${base}/iframe.html`]) {
        refused(await call(node, 'GET', path), 404, 'ERR_NOT_FOUND');
      }
      refused(await call(node, 'POST', `${base}/000/abcdefgh/jsonp_send`, { form: { d: '["x"]' } }), 404, 'ERR_NOT_FOUND');
    });

    it("knowing a session id does not give access to another user's SockJS session", async () => {
      const carol = await login(node, 'carol');
      const sessionUrl = XhrPollingClient.sessionUrl(node.url + node.config.sockjsPath);
      const client = new XhrPollingClient(sessionUrl, { cookie: carol.cookie });
      await client.opened;
      const reply = await client.channel.connect();
      expect(reply.headers['user-name']).to.equal('carol');
      const mallory = await login(node, 'mallory');
      const inject = JSON.stringify(['SEND\ndestination:/user/bob/queue/x\n\nforged\0']);
      for (const headers of [{ cookie: mallory.cookie }, {}] as Array<Record<string, string>>) {
        const send = await fetch(`${sessionUrl}/xhr_send`, { method: 'POST', headers: { ...headers, 'content-type': 'text/plain' }, body: inject });
        expect(send.status).to.equal(403);
        const poll = await fetch(`${sessionUrl}/xhr`, { method: 'POST', headers });
        expect(poll.status).to.equal(403);
      }
      // Carol's own session still works.
      expect((await client.channel.subscribe('/user/queue/x')).command).to.equal('RECEIPT');
    });

    it('takes no identity from CONNECT when the SockJS transport established one', async () => {
      const { token } = await login(node, 'carol');
      const sock = await openSockJs(`${node.url}${node.config.sockjsPath}?access_token=${token}`, { transports: ['xhr-streaming'] });
      expect((await sock.connect({ login: 'bob' })).headers['user-name']).to.equal('carol');
    });
  });

  describe('cross-site HTTP (CSRF)', () => {
    it('refuses cookie-authenticated state changes from a foreign Origin', async () => {
      const { cookie } = await login(node, 'alice');
      const headers = { Origin: EVIL };
      refused(await call(node, 'POST', '/wsTemplate/sendToUser', { cookie, headers, form: { receiver: 'bob', msg: 'x' } }), 403, 'ERR_FORBIDDEN');
      refused(await call(node, 'POST', '/api/messages', { cookie, headers, json: { to: 'bob', destination: '/queue/a', body: 'x' } }), 403, 'ERR_FORBIDDEN');
      refused(await call(node, 'POST', '/api/inbox/pull', { cookie, headers, json: { destination: '/queue/a' } }), 403, 'ERR_FORBIDDEN');
      refused(await call(node, 'GET', '/api/inbox', { cookie, headers }), 403, 'ERR_FORBIDDEN');
      // Login CSRF: a foreign page logging the victim in as someone else.
      refused(await call(node, 'POST', '/api/login', { headers, form: { user: 'mallory' } }), 403, 'ERR_FORBIDDEN');
    });

    it('refuses a cookie-authenticated form POST without an Origin; accepts it with the same Origin, and JSON without one', async () => {
      const { cookie } = await login(node, 'alice');
      refused(await call(node, 'POST', '/wsTemplate/sendToUser', { cookie, form: { receiver: 'bob', msg: 'x' } }), 403, 'ERR_FORBIDDEN');
      const sameOrigin = await call(node, 'POST', '/wsTemplate/sendToUser', { cookie, headers: { Origin: `http://${host}` }, form: { receiver: 'bob', msg: 'x' } });
      expect(sameOrigin.status, sameOrigin.text).to.equal(200);
      const fetchMetadata = await call(node, 'POST', '/wsTemplate/sendToUser', { cookie, headers: { 'Sec-Fetch-Site': 'same-origin' }, form: { receiver: 'bob', msg: 'x' } });
      expect(fetchMetadata.status).to.equal(200);
      const json = await call(node, 'POST', '/wsTemplate/sendToUser', { cookie, json: { receiver: 'bob', msg: 'x' } });
      expect(json.status).to.equal(200);
    });

    it('a bearer token is not ambient: no origin check applies to it', async () => {
      const { token } = await login(node, 'alice');
      const answer = await call(node, 'POST', '/api/messages', { token, headers: { Origin: EVIL }, json: { to: 'bob', destination: '/queue/a', body: 'x' } });
      expect(answer.status).to.equal(202);
    });

    it('grants CORS with credentials to listed origins only', async () => {
      const listed = await startTestNode({ sessionSecret: SECRET, allowedOrigins: 'https://app.example' });
      const { cookie } = await login(listed, 'alice');
      const preflight = await call(listed, 'OPTIONS', '/api/messages', {
        headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
      });
      expect(preflight.status).to.equal(204);
      expect(preflight.headers.get('access-control-allow-origin')).to.equal('https://app.example');
      expect(preflight.headers.get('access-control-allow-credentials')).to.equal('true');
      const me = await call(listed, 'GET', '/api/me', { cookie, headers: { Origin: 'https://app.example' } });
      expect(me.json.user).to.equal('alice');
      expect(me.headers.get('access-control-allow-origin')).to.equal('https://app.example');
      const evil = await call(listed, 'GET', '/api/me', { cookie, headers: { Origin: EVIL } });
      expect(evil.status).to.equal(403);
      expect(evil.headers.get('access-control-allow-origin')).to.equal(null);
      const evilPreflight = await call(listed, 'OPTIONS', '/api/messages', { headers: { Origin: EVIL, 'Access-Control-Request-Method': 'POST' } });
      expect(evilPreflight.headers.get('access-control-allow-origin')).to.equal(null);
    });
  });
});

/*
 * The HTTP API through a real node (koa's callback on an http.Server on
 * port 0), with `fetch`: login sessions, sending, the inbox, presence, the
 * cluster view, health, metrics, and every kind of bad request.
 */
import { expect } from 'chai';
import { startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { call, errorCode, login, openWs, type Answer } from './helpers.js';

const SECRET = 'spec-session-secret-0123456789abcdef';

function expectError(answer: Answer, status: number, code: string): void {
  expect(answer.status, answer.text).to.equal(status);
  expect(answer.headers.get('content-type')).to.match(/^application\/json/);
  expect(errorCode(answer), answer.text).to.equal(code);
  expect(answer.json.error.message).to.be.a('string').and.not.empty;
  // Never a stack trace.
  expect(answer.text).not.to.match(/\bat .*\.(ts|js):\d+/);
}

describe('HTTP API', () => {
  let node: TestNode;

  beforeEach(async () => {
    node = await startTestNode({ sessionSecret: SECRET });
  });
  afterEach(stopTestNodes);

  describe('login session', () => {
    it('sets an HttpOnly, SameSite=Lax session cookie that /api/me and Bearer both accept', async () => {
      const alice = await login(node, 'alice');
      expect(alice.user).to.equal('alice');
      expect(alice.setCookie).to.match(/^sb_session=[^;]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+/);
      const byCookie = await call(node, 'GET', '/api/me', { cookie: alice.cookie });
      expect(byCookie.status).to.equal(200);
      expect(byCookie.json).to.include({ user: 'alice', via: 'cookie', authMode: 'open' });
      const byToken = await call(node, 'GET', '/api/me', { token: alice.token });
      expect(byToken.json).to.include({ user: 'alice', via: 'bearer' });
    });

    it('accepts a form login too', async () => {
      const answer = await call(node, 'POST', '/api/login', { form: { user: 'carol' } });
      expect(answer.status).to.equal(200);
      expect(answer.json.user).to.equal('carol');
    });

    it('accepts username (Spring Security\'s form field) for user', async () => {
      const form = await call(node, 'POST', '/api/login', { form: { username: 'dave', password: '' } });
      expect(form.status).to.equal(200);
      expect(form.json.user).to.equal('dave');
      const json = await call(node, 'POST', '/api/login', { json: { username: 'erin' } });
      expect(json.json.user).to.equal('erin');
    });

    it('refuses a login without a user name, or with an invalid one', async () => {
      expectError(await call(node, 'POST', '/api/login', { json: {} }), 401, 'ERR_AUTH_REQUIRED');
      expectError(await call(node, 'POST', '/api/login', { json: { user: 'two words' } }), 401, 'ERR_AUTH_FAILED');
      expectError(await call(node, 'POST', '/api/login', { json: { user: 42 } }), 400, 'ERR_BAD_REQUEST');
    });

    it('logout clears the cookie', async () => {
      const alice = await login(node, 'alice');
      const answer = await call(node, 'POST', '/api/logout', { cookie: alice.cookie, json: {} });
      expect(answer.status).to.equal(200);
      expect(answer.headers.get('set-cookie')).to.match(/^sb_session=; .*Max-Age=0/);
    });

    it('/api/me without credentials is 401', async () => {
      expectError(await call(node, 'GET', '/api/me'), 401, 'ERR_AUTH_REQUIRED');
    });
  });

  describe('static mode', () => {
    it('checks the password', async () => {
      const guarded = await startTestNode({ authMode: 'static', authUsers: 'alice:s3cret,bob:hunter2', sessionSecret: SECRET });
      expect((await call(guarded, 'POST', '/api/login', { json: { user: 'alice', password: 's3cret' } })).status).to.equal(200);
      expectError(await call(guarded, 'POST', '/api/login', { json: { user: 'alice', password: 'wrong' } }), 401, 'ERR_AUTH_FAILED');
      expectError(await call(guarded, 'POST', '/api/login', { json: { user: 'mallory', password: 's3cret' } }), 401, 'ERR_AUTH_FAILED');
    });
  });

  describe('POST /api/messages', () => {
    it('delivers to a connected subscriber: 202 with the id, sender set by the broker', async () => {
      const bob = await openWs(node.wsUrl);
      expect((await bob.connect({ login: 'bob' })).command).to.equal('CONNECTED');
      expect((await bob.subscribe('/user/queue/reply')).command).to.equal('RECEIPT');
      const alice = await login(node, 'alice');
      const answer = await call(node, 'POST', '/api/messages', {
        cookie: alice.cookie,
        json: { to: 'bob', destination: '/queue/reply', body: 'hello bob', headers: { 'content-type': 'text/plain', 'x-trace': '7' } },
      });
      expect(answer.status, answer.text).to.equal(202);
      expect(answer.json.id).to.be.a('string');
      const message = await bob.nextMessage();
      expect(message.command).to.equal('MESSAGE');
      expect(message.headers['message-id']).to.equal(answer.json.id);
      expect(message.headers.destination).to.equal('/user/queue/reply');
      expect(message.headers.sender).to.equal('alice');
      expect(message.headers['x-trace']).to.equal('7');
      expect(message.body.toString('utf8')).to.equal('hello bob');
    });

    it('keeps a message for an offline user; peek shows it, pull takes it in order', async () => {
      const alice = await login(node, 'alice');
      for (const body of ['one', 'two', 'three']) {
        const sent = await call(node, 'POST', '/api/messages', { token: alice.token, json: { to: 'bob', destination: '/queue/reply', body } });
        expect(sent.status).to.equal(202);
      }
      const bob = await login(node, 'bob');
      const listed = await call(node, 'GET', '/api/inbox', { cookie: bob.cookie });
      expect(listed.json.destinations).to.deep.equal([{ destination: '/queue/reply', depth: 3 }]);
      const peeked = await call(node, 'GET', '/api/inbox?destination=/queue/reply&limit=2', { cookie: bob.cookie });
      expect(peeked.status).to.equal(200);
      expect(peeked.json.depth).to.equal(3);
      expect(peeked.json.messages.map((m: { body: string }) => m.body)).to.deep.equal(['one', 'two']);
      const first = peeked.json.messages[0];
      expect(first).to.include({ destination: '/user/bob/queue/reply', sender: 'alice' });
      expect(first.timestamp).to.be.a('number');
      expect(first).not.to.have.property('encoding');
      // The subscribe form names the same inbox.
      const pulled = await call(node, 'POST', '/api/inbox/pull', { cookie: bob.cookie, json: { destination: '/user/queue/reply' } });
      expect(pulled.status).to.equal(200);
      expect(pulled.json.messages.map((m: { body: string }) => m.body)).to.deep.equal(['one', 'two', 'three']);
      const again = await call(node, 'POST', '/api/inbox/pull', { cookie: bob.cookie, json: { destination: '/queue/reply' } });
      expect(again.json.messages).to.deep.equal([]);
    });

    it('pull takes at most `max`', async () => {
      const alice = await login(node, 'alice');
      for (const body of ['a', 'b', 'c']) await call(node, 'POST', '/api/messages', { token: alice.token, json: { to: 'bob', destination: '/topic/t', body } });
      const bob = await login(node, 'bob');
      const pulled = await call(node, 'POST', '/api/inbox/pull', { token: bob.token, json: { destination: '/topic/t', max: 2 } });
      expect(pulled.json.messages.map((m: { body: string }) => m.body)).to.deep.equal(['a', 'b']);
      const rest = await call(node, 'GET', '/api/inbox?destination=/topic/t', { token: bob.token });
      expect(rest.json.messages.map((m: { body: string }) => m.body)).to.deep.equal(['c']);
    });

    it('carries a binary body as base64 both ways', async () => {
      const alice = await login(node, 'alice');
      const bytes = Buffer.from([0xff, 0x00, 0xfe, 0x80]);
      const sent = await call(node, 'POST', '/api/messages', { token: alice.token, json: { to: 'bob', destination: '/queue/bin', body: bytes.toString('base64'), encoding: 'base64' } });
      expect(sent.status).to.equal(202);
      const bob = await login(node, 'bob');
      const pulled = await call(node, 'POST', '/api/inbox/pull', { token: bob.token, json: { destination: '/queue/bin' } });
      expect(pulled.json.messages[0]).to.include({ encoding: 'base64', body: bytes.toString('base64') });
    });

    it('refuses bad requests with 4xx JSON errors', async () => {
      const { token } = await login(node, 'alice');
      const post = (json: unknown) => call(node, 'POST', '/api/messages', { token, json });
      expectError(await post({ destination: '/queue/a', body: 'x' }), 400, 'ERR_BAD_REQUEST');
      expectError(await post({ to: 'bob', body: 'x' }), 400, 'ERR_BAD_REQUEST');
      expectError(await post({ to: 'bob', destination: '/queue/a' }), 400, 'ERR_BAD_REQUEST');
      expectError(await post({ to: ['bob'], destination: '/queue/a', body: 'x' }), 400, 'ERR_BAD_REQUEST');
      expectError(await post({ to: 'bob', destination: 7, body: 'x' }), 400, 'ERR_BAD_REQUEST');
      expectError(await post({ to: 'bob', destination: '/queue/a', body: { text: 'x' } }), 400, 'ERR_BAD_REQUEST');
      expectError(await post({ to: 'bob smith', destination: '/queue/a', body: 'x' }), 400, 'ERR_BAD_REQUEST');
      expectError(await post({ to: 'bob', destination: '/elsewhere/a', body: 'x' }), 400, 'ERR_UNKNOWN_DESTINATION');
      expectError(await post({ to: 'bob', destination: '/user/carol/queue/a', body: 'x' }), 400, 'ERR_UNKNOWN_DESTINATION');
      expectError(await post({ to: 'bob', destination: 'queue/a', body: 'x' }), 400, 'ERR_BAD_REQUEST');
      expectError(await post({ to: 'bob', destination: '/queue/a', body: 'x', headers: { sender: 'mallory' } }), 400, 'ERR_BAD_REQUEST');
      expectError(await post({ to: 'bob', destination: '/queue/a', body: 'x', headers: { 'x-n': 1 } }), 400, 'ERR_BAD_REQUEST');
      expectError(await post({ to: 'bob', destination: '/queue/a', body: 'x', headers: ['a'] }), 400, 'ERR_BAD_REQUEST');
      expectError(await post({ to: 'bob', destination: '/queue/a', body: '%%%', encoding: 'base64' }), 400, 'ERR_BAD_REQUEST');
      expectError(await post({ to: 'bob', destination: '/queue/a', body: 'x', encoding: 'rot13' }), 400, 'ERR_BAD_REQUEST');
      expectError(await post(['to', 'bob']), 400, 'ERR_BAD_REQUEST');
      expectError(await call(node, 'POST', '/api/messages', { token, raw: '{"to": "bob",', headers: { 'content-type': 'application/json' } }), 400, 'ERR_BAD_REQUEST');
      expectError(await call(node, 'POST', '/api/messages', { token, raw: 'to=bob', headers: { 'content-type': 'text/plain' } }), 415, 'ERR_UNSUPPORTED_MEDIA_TYPE');
      expectError(await call(node, 'POST', '/api/messages', { token, form: { to: 'bob', destination: '/queue/a', body: 'x' } }), 415, 'ERR_UNSUPPORTED_MEDIA_TYPE');
      expectError(await call(node, 'POST', '/api/messages', { token }), 415, 'ERR_UNSUPPORTED_MEDIA_TYPE');
    });

    it('refuses a body over MAX_BODY_SIZE (413), and a request body over the parser bound (413)', async () => {
      const small = await startTestNode({ sessionSecret: SECRET, maxBodySize: 1024 });
      const { token } = await login(small, 'alice');
      const over = await call(small, 'POST', '/api/messages', { token, json: { to: 'bob', destination: '/queue/a', body: 'x'.repeat(1025) } });
      expectError(over, 413, 'ERR_PAYLOAD_TOO_LARGE');
      const huge = await call(small, 'POST', '/api/messages', { token, json: { to: 'bob', destination: '/queue/a', body: 'x'.repeat(200 * 1024) } });
      expectError(huge, 413, 'ERR_PAYLOAD_TOO_LARGE');
      const fits = await call(small, 'POST', '/api/messages', { token, json: { to: 'bob', destination: '/queue/a', body: 'x'.repeat(1024) } });
      expect(fits.status).to.equal(202);
    });
  });

  describe('routes and methods', () => {
    it('an unknown route is 404 JSON, a wrong method 405 JSON', async () => {
      const { token } = await login(node, 'alice');
      expectError(await call(node, 'GET', '/api/nothing-here', { token }), 404, 'ERR_NOT_FOUND');
      expectError(await call(node, 'GET', '/no/such/page'), 404, 'ERR_NOT_FOUND');
      expectError(await call(node, 'GET', '/api/messages', { token }), 405, 'ERR_METHOD_NOT_ALLOWED');
      expectError(await call(node, 'DELETE', '/api/inbox', { token }), 405, 'ERR_METHOD_NOT_ALLOWED');
    });

    it('every API route but login needs an identity', async () => {
      for (const [method, path] of [
        ['POST', '/api/messages'],
        ['GET', '/api/inbox'],
        ['GET', '/api/inbox?destination=/queue/a'],
        ['POST', '/api/inbox/pull'],
        ['POST', '/api/inbox/claim'],
        ['POST', '/api/inbox/ack'],
        ['GET', '/api/presence'],
        ['GET', '/api/presence/bob'],
        ['GET', '/api/cluster'],
        ['POST', '/wsTemplate/sendToUser'],
        ['POST', '/wsTemplate/pullUnreadMessage'],
      ] as const) {
        const answer = await call(node, method, path, method === 'POST' ? { json: { destination: '/queue/a', to: 'bob', body: 'x', receiver: 'bob', msg: 'x' } } : {});
        expectError(answer, 401, 'ERR_AUTH_REQUIRED');
      }
    });

    it('GET /api/inbox validates its query', async () => {
      const { token } = await login(node, 'alice');
      expectError(await call(node, 'GET', '/api/inbox?destination=', { token }), 400, 'ERR_BAD_REQUEST');
      expectError(await call(node, 'GET', '/api/inbox?destination=/queue/a&destination=/queue/b', { token }), 400, 'ERR_BAD_REQUEST');
      expectError(await call(node, 'GET', '/api/inbox?destination=/queue/a&limit=-1', { token }), 400, 'ERR_BAD_REQUEST');
      expectError(await call(node, 'GET', '/api/inbox?destination=/nowhere', { token }), 400, 'ERR_UNKNOWN_DESTINATION');
      expectError(await call(node, 'POST', '/api/inbox/pull', { token, json: {} }), 400, 'ERR_BAD_REQUEST');
      expectError(await call(node, 'POST', '/api/inbox/pull', { token, json: { destination: '/queue/a', max: 'all' } }), 400, 'ERR_BAD_REQUEST');
    });
  });

  describe('presence and cluster', () => {
    it('reports a user online while a STOMP session is connected', async () => {
      const { token } = await login(node, 'alice');
      const before = await call(node, 'GET', '/api/presence/bob', { token });
      expect(before.json).to.deep.equal({ user: 'bob', online: false, nodes: [] });
      const bob = await openWs(node.wsUrl);
      await bob.connect({ login: 'bob' });
      const after = await call(node, 'GET', '/api/presence/bob', { token });
      expect(after.json).to.deep.equal({ user: 'bob', online: true, nodes: [node.broker.nodeId] });
      const all = await call(node, 'GET', '/api/presence', { token });
      expect(all.json).to.deep.equal({ online: 1, users: ['bob'] });
      expectError(await call(node, 'GET', '/api/presence?limit=0', { token }), 400, 'ERR_BAD_REQUEST');
      expectError(await call(node, 'GET', `/api/presence/${encodeURIComponent('no body')}`, { token }), 400, 'ERR_BAD_REQUEST');
    });

    it('GET /api/cluster describes the nodes and this node\'s counters', async () => {
      const bob = await openWs(node.wsUrl);
      await bob.connect({ login: 'bob' });
      const { token } = await login(node, 'alice');
      const answer = await call(node, 'GET', '/api/cluster', { token });
      expect(answer.status).to.equal(200);
      expect(answer.json.self).to.equal(node.broker.nodeId);
      expect(answer.json.online).to.equal(1);
      // Nothing undeliverable, no dead node being recovered (in memory: never).
      expect(answer.json.deadLetters).to.equal(0);
      expect(answer.json.recovering).to.deep.equal([]);
      expect(answer.json.nodes).to.have.length(1);
      const self = answer.json.nodes[0];
      expect(self).to.have.keys(['id', 'connections', 'sessions', 'startedAt', 'lastBeat', 'url']);
      expect(self.id).to.equal(node.broker.nodeId);
      expect(self.url).to.equal(node.url);
      expect(answer.json.stats).to.include.keys(['framesIn', 'framesOut', 'messagesDelivered', 'routedLocal', 'routedRemote', 'storedInbox']);
      expect(answer.json.stats.framesIn).to.be.at.least(1);
    });
  });

  describe('health and metrics', () => {
    it('/healthz and /readyz answer without credentials', async () => {
      expect((await call(node, 'GET', '/healthz')).json).to.deep.equal({ status: 'ok', node: node.broker.nodeId });
      expect((await call(node, 'GET', '/readyz')).status).to.equal(200);
    });

    it('/metrics is Prometheus text with connections, frames, routing and errors by code', async () => {
      const bob = await openWs(node.wsUrl);
      await bob.connect({ login: 'bob' });
      await bob.subscribe('/user/queue/reply');
      const alice = await login(node, 'alice');
      await call(node, 'POST', '/api/messages', { token: alice.token, json: { to: 'bob', destination: '/queue/reply', body: 'x' } });
      await call(node, 'POST', '/api/messages', { token: alice.token, json: { to: 'carol', destination: '/queue/reply', body: 'x' } });
      await bob.nextMessage();
      const eve = await openWs(node.wsUrl);
      await eve.connect({ login: 'eve' });
      expect((await eve.subscribe('/user/dave/queue/reply', 'stolen')).command).to.equal('ERROR');
      await eve.next(undefined, 5000).catch(() => undefined); // the socket closes after ERROR
      const answer = await call(node, 'GET', '/metrics');
      expect(answer.status).to.equal(200);
      expect(answer.headers.get('content-type')).to.match(/^text\/plain/);
      const text = answer.text;
      const node_ = `node="${node.broker.nodeId}"`;
      expect(text).to.include(`stompbox_connections{transport="websocket",${node_}} 1`);
      expect(text).to.match(/stompbox_frames_in_total\{node="[^"]+"\} [1-9]/);
      expect(text).to.match(/stompbox_frames_out_total\{node="[^"]+"\} [1-9]/);
      expect(text).to.include(`stompbox_messages_routed_total{route="local",${node_}} 1`);
      expect(text).to.include(`stompbox_messages_routed_total{route="inbox",${node_}} 1`);
      expect(text).to.include(`stompbox_errors_total{code="ERR_FORBIDDEN",${node_}} 1`);
      expect(text).to.include('# TYPE stompbox_relay_latency_seconds histogram');
    });
  });
});

/*
 * Seed 002's two routes, /wsTemplate/sendToUser and
 * /wsTemplate/pullUnreadMessage, as the seed's page uses them: the legacy
 * stomp.js 2.3.x over sockjs-client at /chat-websocket, subscribed to
 * /user/topic/reply, with the login session's cookie; form-encoded posts.
 */
import { expect } from 'chai';
import SockJS from 'sockjs-client';
import { AsyncQueue } from '../helpers/stomp-client.js';
import { legacyStomp, type LegacyClient, type LegacyFrame } from '../helpers/legacy-stomp.js';
import { onCleanup, startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { call, errorCode, login } from './helpers.js';

const SECRET = 'spec-session-secret-0123456789abcdef';

const legacy = legacyStomp;

describe('seed routes (/wsTemplate)', () => {
  let node: TestNode;
  let origin: string;

  beforeEach(async () => {
    node = await startTestNode({ sessionSecret: SECRET });
    origin = node.url;
  });
  afterEach(stopTestNodes);

  /** The seed page's connect(): SockJS + Stomp.over, identity from the session cookie. */
  function seedPageConnect(cookie: string): Promise<{ client: LegacyClient; replies: AsyncQueue<LegacyFrame> }> {
    const socket = new SockJS(node.url + node.config.sockjsPath, undefined, {
      transports: ['websocket'],
      transportOptions: { websocket: { headers: { Cookie: cookie } } },
    } as SockJS.Options);
    const client = legacy.over(socket);
    client.heartbeat = { outgoing: 0, incoming: 0 };
    client.debug = null;
    const replies = new AsyncQueue<LegacyFrame>((f) => f.body);
    onCleanup(() => socket.close());
    return new Promise((resolve, reject) => {
      client.connect(
        {},
        () => {
          // The seed's page subscribes without a receipt; the spec asks for one to know it is in place.
          client.onreceipt = () => resolve({ client, replies });
          client.subscribe('/user/topic/reply', (message) => replies.push(message), { receipt: 'subscribed' });
        },
        (error) => reject(new Error(typeof error === 'string' ? error : error.headers.message)),
      );
    });
  }

  it("delivers sendToUser to the receiver's page as {content: '<sender> say: <msg>'}", async () => {
    const bob = await login(node, 'bob');
    const page = await seedPageConnect(bob.cookie);
    const pulled = await call(node, 'POST', '/wsTemplate/pullUnreadMessage', { cookie: bob.cookie, headers: { Origin: origin }, form: { destination: '/topic/reply' } });
    expect(pulled.json).to.deep.equal({ code: '200', result: [] });

    const alice = await login(node, 'alice');
    const sent = await call(node, 'POST', '/wsTemplate/sendToUser', { cookie: alice.cookie, headers: { Origin: origin }, form: { receiver: 'bob', msg: '你好 bob' } });
    expect(sent.status, sent.text).to.equal(200);
    expect(sent.json.code).to.equal('200');
    const reply = await page.replies.take();
    expect(JSON.parse(reply.body)).to.deep.equal({ content: 'alice say: 你好 bob' });
    expect(reply.headers.sender).to.equal('alice');
  });

  it('keeps messages for an offline receiver; pullUnreadMessage takes them once, in order', async () => {
    const alice = await login(node, 'alice');
    for (const msg of ['first', 'second', 'third']) {
      const sent = await call(node, 'POST', '/wsTemplate/sendToUser', { cookie: alice.cookie, headers: { Origin: origin }, form: { receiver: 'bob', msg } });
      expect(sent.status).to.equal(200);
    }
    const bob = await login(node, 'bob');
    const pulled = await call(node, 'POST', '/wsTemplate/pullUnreadMessage', { cookie: bob.cookie, headers: { Origin: origin }, form: { destination: '/topic/reply' } });
    expect(pulled.json.code).to.equal('200');
    expect(pulled.json.result.map((item: string) => JSON.parse(item).content)).to.deep.equal(['alice say: first', 'alice say: second', 'alice say: third']);
    const again = await call(node, 'POST', '/wsTemplate/pullUnreadMessage', { cookie: bob.cookie, json: { destination: '/topic/reply' } });
    expect(again.json).to.deep.equal({ code: '200', result: [] });
  });

  it('accepts JSON bodies as well as forms', async () => {
    const alice = await login(node, 'alice');
    expect((await call(node, 'POST', '/wsTemplate/sendToUser', { token: alice.token, json: { receiver: 'bob', msg: 'json' } })).status).to.equal(200);
    const bob = await login(node, 'bob');
    const pulled = await call(node, 'POST', '/wsTemplate/pullUnreadMessage', { token: bob.token, json: { destination: '/topic/reply' } });
    expect(pulled.json.result).to.have.length(1);
  });

  it('refuses bad input with 4xx JSON errors', async () => {
    const { token } = await login(node, 'alice');
    for (const form of [{ msg: 'x' }, { receiver: 'bob' }, { receiver: 'no body', msg: 'x' }] as Array<Record<string, string>>) {
      const answer = await call(node, 'POST', '/wsTemplate/sendToUser', { token, form });
      expect(answer.status, JSON.stringify(form)).to.equal(400);
      expect(errorCode(answer)).to.equal('ERR_BAD_REQUEST');
    }
    const noDestination = await call(node, 'POST', '/wsTemplate/pullUnreadMessage', { token, form: {} });
    expect(errorCode(noDestination)).to.equal('ERR_BAD_REQUEST');
    const badDestination = await call(node, 'POST', '/wsTemplate/pullUnreadMessage', { token, form: { destination: '/nowhere' } });
    expect(errorCode(badDestination)).to.equal('ERR_UNKNOWN_DESTINATION');
    const text = await call(node, 'POST', '/wsTemplate/sendToUser', { token, raw: 'receiver=bob', headers: { 'content-type': 'text/plain' } });
    expect(text.status).to.equal(415);
    const anonymous = await call(node, 'POST', '/wsTemplate/sendToUser', { form: { receiver: 'bob', msg: 'x' } });
    expect(anonymous.status).to.equal(401);
  });

  it('answers {code:"500", msg} when the inbox store fails', async () => {
    const { token } = await login(node, 'bob');
    node.broker.inbox.take = async () => {
      throw new Error('connection to the store lost');
    };
    const answer = await call(node, 'POST', '/wsTemplate/pullUnreadMessage', { token, form: { destination: '/topic/reply' } });
    expect(answer.status).to.equal(200);
    expect(answer.json).to.deep.equal({ code: '500', msg: 'the inbox store failed' });
  });
});

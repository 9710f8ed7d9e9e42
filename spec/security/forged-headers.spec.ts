/*
 * Attacks on what a receiver reads (issue 10): a second `sender` smuggled in
 * as a name its reader trims or folds (`sender `, U+00A0, a tab, `Sender`),
 * and a frame injected through a NUL or a newline in a header value, which
 * stomp.js 2.3 (the seed page's library) would parse as a frame of its own.
 * Each is refused or stripped, read back with @stomp/stompjs 7, stomp.js 2.3
 * and stomp.py, while a good pair loses nothing. A NUL in a body (legal with
 * content-length) reaches STOMP 1.0/1.1 sessions as U+FFFD (message-frame.ts).
 */
import { expect } from 'chai';
import { startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { RawStompClient, StompJsClient } from '../helpers/stomp-client.js';
import { ensureStompPy, StompPyClient } from '../helpers/stomp-py.js';
import { GoodPair, LegacyStompClient } from './support.js';

const USERS = 'alice:pw,bob:pw,carol:pw,dave:pw,mallory:pw';

describe('security: forged headers', () => {
  let node: TestNode;
  let pair: GoodPair;

  beforeEach(async () => {
    node = await startTestNode({ authMode: 'static', authUsers: USERS });
    pair = await GoodPair.open(node.wsUrl, { passcode: 'pw' });
    await pair.exchange(3);
  });
  afterEach(stopTestNodes);

  async function readers(): Promise<{ bob: StompJsClient; inbox: Awaited<ReturnType<StompJsClient['subscribe']>>; carol: LegacyStompClient }> {
    const bob = await StompJsClient.connect(node.wsUrl, { login: 'bob', passcode: 'pw' });
    const inbox = await bob.subscribe('/user/queue/chat');
    const carol = await LegacyStompClient.connect(node.wsUrl, 'carol', 'pw');
    await carol.subscribe('/user/queue/chat');
    return { bob, inbox, carol };
  }

  function mallory(): Promise<RawStompClient> {
    return RawStompClient.connect(node.wsUrl, { login: 'mallory', passcode: 'pw' });
  }

  it('refuses a header name a client would trim into `sender`; readers see only the broker-stamped sender', async () => {
    const { inbox, carol } = await readers();
    for (const name of ['sender ', ' sender', 'sender\u00a0', '\ufeffsender', 'sender\t']) {
      const attacker = await mallory();
      attacker.sendFrame({ command: 'SEND', headers: { destination: '/user/bob/queue/chat', [name]: 'alice', receipt: 'r' }, body: 'from alice?' });
      const answer = await attacker.nextFrame();
      expect(answer.command, JSON.stringify(name)).to.equal('ERROR');
      expect(answer.headers.code).to.equal('ERR_INVALID_HEADER');
      await pair.exchange(1);
    }
    // Names equal to a broker-owned one but for case are dropped, not forwarded.
    const attacker = await mallory();
    await attacker.request({ command: 'SEND', headers: { destination: '/user/bob/queue/chat', Sender: 'alice', SENDER: 'alice', 'Message-Id': 'x' }, body: 'hello' });
    await attacker.request({ command: 'SEND', headers: { destination: '/user/carol/queue/chat', Sender: 'alice' }, body: 'hello' });
    const seen = await inbox.next();
    expect(seen.body).to.equal('hello');
    expect(seen.headers.sender).to.equal('mallory');
    expect(Object.keys(seen.headers).filter((h) => h.toLowerCase() === 'sender' || h.toLowerCase() === 'message-id').sort()).to.deep.equal(['message-id', 'sender']);
    const legacy = await carol.messages.take();
    expect(legacy.headers.sender).to.equal('mallory');
    expect(legacy.headers.Sender).to.equal(undefined);
    expect(inbox.messages.size + carol.messages.size).to.equal(0);
    await pair.exchange(2);
    expect(await pair.check()).to.deep.equal({ delivered: 10, lost: 0 });
  });

  it('refuses NUL and newlines in header values: no frame is injected into a stomp.js 2.3 or stompjs 7 reader', async () => {
    const { inbox, carol } = await readers();
    const injected = 'x\u0000\nERROR\nmessage:forged by mallory\n\n';
    for (const [to, value] of [
      ['carol', injected],
      ['bob', injected],
      ['carol', 'x\nsender:alice'],
      ['carol', 'x\rsender:alice'],
      ['bob', 'bell\u0007'],
    ] as const) {
      const attacker = await mallory();
      attacker.sendFrame({ command: 'SEND', headers: { destination: `/user/${to}/queue/chat`, 'x-note': value }, body: 'body' });
      const answer = await attacker.nextFrame();
      expect(answer.command).to.equal('ERROR');
      expect(answer.headers.code).to.equal('ERR_INVALID_HEADER');
      await pair.exchange(1);
    }
    // A TAB stays allowed; the next message each reader gets is this one, and nothing came before it.
    const attacker = await mallory();
    await attacker.request({ command: 'SEND', headers: { destination: '/user/carol/queue/chat', 'x-note': 'a\tb' }, body: 'plain' });
    await attacker.request({ command: 'SEND', headers: { destination: '/user/bob/queue/chat', 'x-note': 'a\tb' }, body: 'plain' });
    expect((await carol.messages.take()).body).to.equal('plain');
    expect((await inbox.next()).body).to.equal('plain');
    expect(carol.errors).to.deep.equal([]);
    await pair.exchange(1);
    expect(await pair.check()).to.deep.equal({ delivered: 9, lost: 0 });
  });

  it('a NUL in a body reaches stomp.js 2.3 (STOMP 1.1) as U+FFFD, never as the end of the frame; stompjs 7 (1.2) gets the bytes as sent', async () => {
    const { inbox, carol } = await readers();
    const body = Buffer.from('hi\u0000\nMESSAGE\nsubscription:sub-0\nsender:alice\nmessage-id:x\n\nforged by alice\u0000');
    const attacker = await mallory();
    await attacker.request({ command: 'SEND', headers: { destination: '/user/carol/queue/chat' }, body });
    await attacker.request({ command: 'SEND', headers: { destination: '/user/bob/queue/chat' }, body });
    await attacker.request({ command: 'SEND', headers: { destination: '/user/carol/queue/chat' }, body: 'next' });
    const legacy = await carol.messages.take();
    expect(legacy.headers.sender).to.equal('mallory');
    expect(legacy.body).to.equal(body.toString('utf8').replaceAll('\u0000', '\ufffd'));
    // The next thing carol reads is mallory's next message, not a MESSAGE "from alice".
    const next = await carol.messages.take();
    expect([next.body, next.headers.sender]).to.deep.equal(['next', 'mallory']);
    const modern = await inbox.next();
    expect(Buffer.from(modern.binaryBody).equals(body)).to.equal(true);
    expect(modern.headers.sender).to.equal('mallory');
    expect(carol.errors).to.deep.equal([]);
    await pair.exchange(1);
    expect(await pair.check()).to.deep.equal({ delivered: 4, lost: 0 });
  });

  it('stomp.py (STOMP 1.2 and 1.1) reads the broker-stamped sender, and a NUL in a body as one message', async function () {
    this.timeout(60_000);
    await ensureStompPy();
    const body = 'hi\u0000\nMESSAGE\nsubscription:s\nsender:alice\nmessage-id:x\n\nforged by alice\u0000';
    for (const version of ['1.2', '1.1'] as const) {
      const dave = await StompPyClient.connect({ url: node.wsUrl, login: 'dave', passcode: 'pw', version });
      await dave.subscribe('/user/queue/chat', 's');
      const attacker = await mallory();
      await attacker.request({ command: 'SEND', headers: { destination: '/user/dave/queue/chat', Sender: 'alice' }, body: 'case' });
      await attacker.request({ command: 'SEND', headers: { destination: '/user/dave/queue/chat' }, body: Buffer.from(body) });
      await attacker.request({ command: 'SEND', headers: { destination: '/user/dave/queue/chat' }, body: 'next' });
      const read = [await dave.next('message'), await dave.next('message'), await dave.next('message')];
      expect(read.map((m) => m.headers?.sender), version).to.deep.equal(['mallory', 'mallory', 'mallory']);
      expect(read.map((m) => m.body), version).to.deep.equal(['case', version === '1.2' ? body : body.replaceAll('\u0000', '\ufffd'), 'next']);
      expect(read[0]!.headers?.Sender).to.equal(undefined);
      await dave.disconnect();
      await pair.exchange(1);
    }
    expect(await pair.check()).to.deep.equal({ delivered: 5, lost: 0 });
  });

  it('refuses a control character in the headers of any client frame (here SUBSCRIBE and CONNECT)', async () => {
    const attacker = await mallory();
    attacker.sendFrame({ command: 'SUBSCRIBE', headers: { destination: '/topic/a', id: 's\u0000' } });
    expect((await attacker.nextFrame()).headers.code).to.equal('ERR_INVALID_HEADER');
    const raw = await RawStompClient.open(node.wsUrl);
    const answer = await raw.stompConnect({ login: 'mallory', passcode: 'pw', 'x\u0001': '1' });
    expect(answer.headers.code).to.equal('ERR_INVALID_HEADER');
    await pair.exchange(1);
    expect(await pair.check()).to.deep.equal({ delivered: 4, lost: 0 });
  });
});

/*
 * CONNECT over real WebSockets against a real node: CONNECTED headers,
 * authentication, heart-beats both ways, and the CONNECT deadline.
 */
import { expect } from 'chai';
import { startTestNode, stopTestNodes } from '../helpers/node.js';
import { RawStompClient, rejection, StompErrorFrame, StompJsClient } from '../helpers/stomp-client.js';

describe('CONNECT (real node, real WebSockets)', () => {
  afterEach(stopTestNodes);

  it('answers CONNECTED with version, heart-beat, server, session and user-name', async () => {
    const node = await startTestNode();
    const client = await RawStompClient.open(node.wsUrl);
    const frame = await client.stompConnect({ 'accept-version': '1.1,1.2', login: 'alice', 'heart-beat': '4000,5000' });
    expect(frame.command).to.equal('CONNECTED');
    expect(frame.headers.version).to.equal('1.2');
    // We send every 5000 ms (the client's cy) and expect its beats every 4000 ms (its cx).
    expect(frame.headers['heart-beat']).to.equal('5000,4000');
    expect(frame.headers.server).to.match(/^stompbox\/\d+\.\d+\.\d+/);
    expect(frame.headers['user-name']).to.equal('alice');
    const session = [...node.broker.sessions].find((s) => s.id === frame.headers.session);
    expect(session, 'the session header names the broker session').to.not.equal(undefined);
    expect(session!.user).to.equal('alice');
  });

  it('gives each session its own id', async () => {
    const node = await startTestNode();
    const a = await RawStompClient.open(node.wsUrl);
    const b = await RawStompClient.open(node.wsUrl);
    const [ca, cb] = [await a.stompConnect(), await b.stompConnect()];
    expect(ca.headers.session).to.not.equal(cb.headers.session);
  });

  it('accepts the STOMP command as CONNECT', async () => {
    const node = await startTestNode();
    const client = await RawStompClient.open(node.wsUrl);
    const frame = await client.stompConnect({ login: 'bob' }, 'STOMP');
    expect(frame.command).to.equal('CONNECTED');
    expect(frame.headers['user-name']).to.equal('bob');
    await client.request({ command: 'SUBSCRIBE', headers: { id: '1', destination: '/topic/t' } });
  });

  it('answers a receipt requested on CONNECT after CONNECTED', async () => {
    const node = await startTestNode();
    const client = await RawStompClient.open(node.wsUrl);
    expect((await client.stompConnect({ receipt: 'c-1' })).command).to.equal('CONNECTED');
    const receipt = await client.expectFrame('RECEIPT');
    expect(receipt.headers['receipt-id']).to.equal('c-1');
  });

  it('connects @stomp/stompjs, which negotiates 1.2', async () => {
    const node = await startTestNode();
    const client = await StompJsClient.connect(node.wsUrl, { login: 'carol' });
    expect(client.connected!.headers.version).to.equal('1.2');
    expect(client.connected!.headers['user-name']).to.equal('carol');
    expect(client.client.connectedVersion).to.equal('1.2');
    await client.disconnect();
  });

  describe('open (development) authentication', () => {
    it('refuses an empty login with ERROR and closes', async () => {
      const node = await startTestNode();
      const client = await RawStompClient.open(node.wsUrl);
      const error = await client.stompConnect({ login: '' });
      expect(error.command).to.equal('ERROR');
      expect(error.headers.code).to.equal('ERR_AUTH_REQUIRED');
      expect(error.headers.message).to.contain('login');
      expect((await client.closed).code).to.equal(1000);
    });

    it('refuses a CONNECT without login', async () => {
      const node = await startTestNode();
      const client = await RawStompClient.open(node.wsUrl);
      client.sendFrame({ command: 'CONNECT', headers: { 'accept-version': '1.2' } });
      expect((await client.expectFrame('ERROR')).headers.code).to.equal('ERR_AUTH_REQUIRED');
      await client.closed;
    });

    it('accepts any non-empty login without a passcode', async () => {
      const node = await startTestNode();
      const client = await StompJsClient.connect(node.wsUrl, { login: 'whoever' });
      expect(client.connected!.headers['user-name']).to.equal('whoever');
    });
  });

  describe('static authentication', () => {
    const overrides = { authMode: 'static' as const, authUsers: 'alice:secret,bob:hunter2' };

    it('refuses a wrong passcode with ERROR ERR_AUTH_FAILED and closes', async () => {
      const node = await startTestNode(overrides);
      const client = await RawStompClient.open(node.wsUrl);
      const error = await client.stompConnect({ login: 'alice', passcode: 'guess' });
      expect(error.command).to.equal('ERROR');
      expect(error.headers.code).to.equal('ERR_AUTH_FAILED');
      await client.closed;
      expect(node.broker.sessions.size).to.equal(0);
    });

    it('refuses an unknown user and a missing passcode', async () => {
      const node = await startTestNode(overrides);
      const unknown = await RawStompClient.open(node.wsUrl);
      expect((await unknown.stompConnect({ login: 'mallory', passcode: 'secret' })).headers.code).to.equal('ERR_AUTH_FAILED');
      const bare = await RawStompClient.open(node.wsUrl);
      expect((await bare.stompConnect({ login: 'alice' })).headers.code).to.equal('ERR_AUTH_FAILED');
    });

    it('accepts the right passcode', async () => {
      const node = await startTestNode(overrides);
      const client = await RawStompClient.open(node.wsUrl);
      const frame = await client.stompConnect({ login: 'alice', passcode: 'secret' });
      expect(frame.command).to.equal('CONNECTED');
      expect(frame.headers['user-name']).to.equal('alice');
    });

    it('works the same through @stomp/stompjs', async () => {
      const node = await startTestNode(overrides);
      const good = await StompJsClient.connect(node.wsUrl, { login: 'bob', passcode: 'hunter2' });
      expect(good.connected!.headers['user-name']).to.equal('bob');
      const bad = await rejection(StompJsClient.connect(node.wsUrl, { login: 'bob', passcode: 'nope' }));
      expect(bad).to.be.instanceOf(StompErrorFrame);
      expect((bad as StompErrorFrame).code).to.equal('ERR_AUTH_FAILED');
    });
  });

  describe('heart-beats', () => {
    // What clients' own suites check (stomp.py, stompjs, RabbitMQ's): the answer is what they asked.
    const negotiated: Array<{ version: string; asked: string | undefined; answer: string }> = [
      { version: '1.2', asked: '1000,1000', answer: '1000,1000' },
      { version: '1.2', asked: '0,0', answer: '0,0' },
      { version: '1.1', asked: '0,2000', answer: '2000,0' },
      // below the floor (HEARTBEAT_MIN_MS, 1000) and above the ceiling of our beats (HEARTBEAT_MAX_MS, 30000)
      { version: '1.2', asked: '100,100', answer: '1000,1000' },
      { version: '1.2', asked: '120000,120000', answer: '30000,120000' },
      // a 1.0 client sends no heart-beat header: none either way
      { version: '1.0', asked: undefined, answer: '0,0' },
    ];
    for (const { version, asked, answer } of negotiated) {
      it(`answers a ${version} client asking heart-beat ${asked ?? '(none)'} with ${answer}`, async () => {
        const node = await startTestNode();
        const client = await RawStompClient.open(node.wsUrl);
        const headers: Record<string, string> = { 'accept-version': version };
        if (asked !== undefined) headers['heart-beat'] = asked;
        const frame = await client.stompConnect(headers);
        expect(frame.headers.version).to.equal(version);
        expect(frame.headers['heart-beat']).to.equal(answer);
      });
    }

    it('the server sends EOLs at the negotiated interval', async () => {
      const node = await startTestNode({ heartbeatMinMs: 100 });
      const client = await RawStompClient.open(node.wsUrl);
      const frame = await client.stompConnect({ 'heart-beat': '0,100' });
      expect(frame.headers['heart-beat']).to.equal('100,0');
      await client.until(() => client.heartbeats >= 3, 5000, 'three heart-beats');
      expect(client.parseError).to.equal(undefined);
    });

    it('the server sends no EOLs when the client asked for none', async () => {
      const node = await startTestNode({ heartbeatMinMs: 100 });
      const silent = await RawStompClient.open(node.wsUrl);
      await silent.stompConnect({ 'heart-beat': '0,0' });
      // A second client asks for beats: once it has had three, the first would have had some.
      const beating = await RawStompClient.open(node.wsUrl);
      await beating.stompConnect({ 'heart-beat': '0,100' });
      await beating.until(() => beating.heartbeats >= 3, 5000, 'three heart-beats');
      expect(await silent.roundTrip()).to.deep.equal([]);
      expect(silent.heartbeats).to.equal(0);
    });

    it('disconnects a client that goes silent past interval plus grace with ERROR ERR_HEARTBEAT_TIMEOUT', async () => {
      const node = await startTestNode({ heartbeatMinMs: 100, heartbeatGraceMs: 100 });
      const silent = await RawStompClient.open(node.wsUrl);
      const connected = await silent.stompConnect({ 'heart-beat': '100,0' });
      expect(connected.headers['heart-beat']).to.equal('0,100');
      const error = await silent.expectFrame('ERROR');
      expect(error.headers.code).to.equal('ERR_HEARTBEAT_TIMEOUT');
      expect((await silent.closed).code).to.equal(1000);
      expect(node.broker.sessions.size).to.equal(0);
    });

    it('keeps a client that beats, past the deadline that ends a silent one', async () => {
      // A larger grace than above only so that a loaded machine pausing this
      // process (client and server alike) for a few hundred ms does not count.
      const node = await startTestNode({ heartbeatMinMs: 100, heartbeatGraceMs: 400 });
      const beating = await RawStompClient.open(node.wsUrl);
      await beating.stompConnect({ 'heart-beat': '100,0' });
      const timer = setInterval(() => beating.sendRaw('\n'), 20);
      try {
        const silent = await RawStompClient.open(node.wsUrl);
        await silent.stompConnect({ 'heart-beat': '100,0' });
        expect((await silent.expectFrame('ERROR')).headers.code).to.equal('ERR_HEARTBEAT_TIMEOUT');
        // The beating client connected first, so it has outlived the silent one's deadline.
        expect(await beating.roundTrip()).to.deep.equal([]);
        expect(node.broker.sessions.size).to.equal(1);
      } finally {
        clearInterval(timer);
      }
    });

    it('does not check a client that offered no beats', async () => {
      const node = await startTestNode({ heartbeatMinMs: 100, heartbeatGraceMs: 100 });
      const quiet = await RawStompClient.open(node.wsUrl);
      await quiet.stompConnect({ 'heart-beat': '0,0' });
      const silent = await RawStompClient.open(node.wsUrl);
      await silent.stompConnect({ 'heart-beat': '100,0' });
      expect((await silent.expectFrame('ERROR')).headers.code).to.equal('ERR_HEARTBEAT_TIMEOUT');
      expect(await quiet.roundTrip()).to.deep.equal([]);
    });
  });

  it('closes a socket that never sends CONNECT', async () => {
    const node = await startTestNode();
    node.broker.connectTimeoutMs = 200;
    const client = await RawStompClient.open(node.wsUrl);
    const error = await client.expectFrame('ERROR');
    expect(error.headers.code).to.equal('ERR_NOT_CONNECTED');
    expect((await client.closed).code).to.equal(1000);
    expect(node.broker.sessions.size).to.equal(0);
  });
});

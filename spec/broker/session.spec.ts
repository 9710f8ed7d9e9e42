/*
 * The session state machine (connecting → connected → closed) over an
 * in-memory Connection: what the broker writes is captured and parsed; time
 * is given to the heart-beat logic explicitly (the wheel is not ticking).
 */
import { expect } from 'chai';
import type { Broker } from '../../lib/broker/broker.js';
import type { RouteOutcome, UserRoute } from '../../lib/cluster/user-router.js';
import { BrokerError } from '../../lib/core/errors.js';
import type { Connection, TransportContext } from '../../lib/broker/connection.js';
import type { Session } from '../../lib/broker/session.js';
import type { Config } from '../../lib/config.js';
import { serializeFrame, StompParser, type OutgoingFrame, type StompFrame, type StompVersion } from '../../lib/stomp/index.js';
import { createMemoryBroker, stopTestNodes } from '../helpers/node.js';
import { AsyncQueue } from '../helpers/stomp-client.js';

/** A Connection that keeps what the session writes, parsed back into frames. */
class FakeConnection implements Connection {
  readonly writes: Array<{ data: Buffer; binary: boolean }> = [];
  readonly frames = new AsyncQueue<StompFrame>((f) => `${f.command} ${f.headers.code ?? ''}`);
  heartbeats = 0;
  closedWith: { code: number; reason: string } | undefined;
  bufferedAmount = 0;
  readonly remoteAddress = 'fake';
  paused = false;
  private readonly parser = new StompParser({
    onFrame: (frame) => this.frames.push(frame),
    onHeartbeat: () => {
      this.heartbeats++;
    },
    onError: (error) => {
      throw error;
    },
  });

  send(data: Buffer, binary: boolean): void {
    if (this.closedWith) throw new Error('write after close');
    this.writes.push({ data, binary });
    this.parser.push(data);
  }

  close(code = 1000, reason = ''): void {
    this.closedWith = { code, reason };
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  /** Server frames use the session's version for escaping. */
  setVersion(version: StompVersion): void {
    this.parser.version = version;
  }
}

/** Lets every pending promise job of the in-memory parts run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

interface Harness {
  broker: Broker;
  session: Session;
  conn: FakeConnection;
  send(frame: OutgoingFrame): void;
  next(): Promise<StompFrame>;
}

async function harness(overrides: Partial<Config> = {}, transport: TransportContext = {}): Promise<Harness> {
  const broker = await createMemoryBroker(overrides);
  const conn = new FakeConnection();
  const session = broker.createSession(conn, transport);
  return {
    broker,
    session,
    conn,
    send: (frame) => session.receive(serializeFrame(frame, session.version)),
    next: () => conn.frames.take(undefined, 2000, 'a frame'),
  };
}

async function connected(h: Harness, headers: Record<string, string> = {}): Promise<StompFrame> {
  h.send({ command: 'CONNECT', headers: { 'accept-version': '1.2', host: 'x', login: 'alice', ...headers } });
  const frame = await h.next();
  expect(frame.command, frame.headers.message).to.equal('CONNECTED');
  h.conn.setVersion(h.session.version);
  return frame;
}

/** The frames written to the client, after CONNECTED: `COMMAND receipt-id`. */
function written(h: Harness): string[] {
  const seen: string[] = [];
  const parser = new StompParser({ onFrame: (f) => seen.push(`${f.command} ${f.headers['receipt-id'] ?? ''}`.trim()), onError: (error) => { throw error; } });
  parser.version = h.session.version;
  for (const { data } of h.conn.writes) parser.push(data);
  return seen.filter((line) => !line.startsWith('CONNECTED'));
}

describe('Session state machine', () => {
  afterEach(stopTestNodes);

  describe('before CONNECT', () => {
    for (const command of ['SEND', 'SUBSCRIBE', 'ACK', 'BEGIN', 'DISCONNECT']) {
      it(`refuses ${command} with ERROR ERR_NOT_CONNECTED and closes`, async () => {
        const h = await harness();
        h.send({ command, headers: { destination: '/topic/a', id: '1', transaction: 't', receipt: 'r1' } });
        const error = await h.next();
        expect(error.command).to.equal('ERROR');
        expect(error.headers.code).to.equal('ERR_NOT_CONNECTED');
        expect(error.headers.message).to.be.a('string').and.not.empty;
        expect(error.headers['receipt-id']).to.equal('r1');
        expect(h.conn.closedWith).to.deep.equal({ code: 1000, reason: 'ERR_NOT_CONNECTED' });
        expect(h.session.state).to.equal('closed');
        expect(h.broker.sessions.has(h.session)).to.equal(false);
      });
    }

    it('is filed in the heart-beat wheel at once, and fails ERR_NOT_CONNECTED when its CONNECT deadline comes', async () => {
      const h = await harness();
      expect(h.broker.wheel.size).to.equal(1);
      // The wheel calls this when the CONNECT deadline falls due.
      expect(h.session.onHeartbeatDue(Date.now() + h.broker.connectTimeoutMs)).to.equal(0);
      const error = await h.next();
      expect(error.command).to.equal('ERROR');
      expect(error.headers.code).to.equal('ERR_NOT_CONNECTED');
      expect(h.conn.closedWith?.code).to.equal(1000);
      expect(h.broker.wheel.size).to.equal(0);
    });

    it('ignores input after it closed', async () => {
      const h = await harness();
      h.send({ command: 'SEND', headers: { destination: '/topic/a' } });
      await h.next();
      const written = h.conn.writes.length;
      h.send({ command: 'CONNECT', headers: { 'accept-version': '1.2', login: 'alice' } });
      await settle();
      expect(h.conn.writes.length).to.equal(written);
    });
  });

  describe('CONNECT', () => {
    it('answers CONNECTED and moves to connected', async () => {
      const h = await harness();
      expect(h.session.state).to.equal('connecting');
      const frame = await connected(h);
      expect(frame.headers.version).to.equal('1.2');
      expect(frame.headers['user-name']).to.equal('alice');
      expect(frame.headers.session).to.equal(h.session.id);
      expect(h.session.state).to.equal('connected');
      expect(h.broker.userSessions.get('alice')?.includes(h.session)).to.equal(true);
    });

    it('refuses a second CONNECT with ERROR ERR_ALREADY_CONNECTED', async () => {
      const h = await harness();
      await connected(h);
      h.send({ command: 'CONNECT', headers: { 'accept-version': '1.2', login: 'alice' } });
      const error = await h.next();
      expect(error.command).to.equal('ERROR');
      expect(error.headers.code).to.equal('ERR_ALREADY_CONNECTED');
      expect(h.conn.closedWith).to.not.equal(undefined);
    });

    it('refuses a second STOMP frame too', async () => {
      const h = await harness();
      await connected(h);
      h.send({ command: 'STOMP', headers: { 'accept-version': '1.2', login: 'alice' } });
      expect((await h.next()).headers.code).to.equal('ERR_ALREADY_CONNECTED');
    });
  });

  describe('unknown commands', () => {
    it('answer ERROR with a message header and the receipt-id of the frame', async () => {
      const h = await harness();
      await connected(h);
      h.send({ command: 'FROB', headers: { receipt: 'r-77' } });
      const error = await h.next();
      expect(error.command).to.equal('ERROR');
      expect(error.headers.code).to.equal('ERR_UNKNOWN_COMMAND');
      expect(error.headers.message).to.contain('FROB');
      expect(error.headers['receipt-id']).to.equal('r-77');
      expect(error.body.toString()).to.contain('ERR_UNKNOWN_COMMAND');
      expect(h.conn.closedWith).to.not.equal(undefined);
    });

    it('answer ERROR without receipt-id when the frame asked for none', async () => {
      const h = await harness();
      await connected(h);
      h.send({ command: 'FROB' });
      const error = await h.next();
      expect(error.headers.code).to.equal('ERR_UNKNOWN_COMMAND');
      expect(error.headers).to.not.have.property('receipt-id');
    });

    it('before CONNECT are unknown commands too', async () => {
      const h = await harness();
      h.send({ command: 'HELLO' });
      expect((await h.next()).headers.code).to.equal('ERR_UNKNOWN_COMMAND');
    });
  });

  describe('version negotiation (STOMP 1.2 "Protocol Negotiation")', () => {
    const cases: Array<[string | undefined, string]> = [
      [undefined, '1.0'],
      ['1.0', '1.0'],
      ['1.1', '1.1'],
      ['1.1,1.2', '1.2'],
      ['1.2,1.1', '1.2'],
      ['1.0,1.1', '1.1'],
      ['1.0, 1.1, 1.2', '1.2'],
      ['2.0,1.1', '1.1'],
    ];
    for (const [offered, chosen] of cases) {
      it(`accept-version ${offered === undefined ? 'absent' : `"${offered}"`} → ${chosen}`, async () => {
        const h = await harness();
        const headers: Record<string, string | undefined> = { login: 'alice', 'accept-version': offered };
        h.send({ command: 'CONNECT', headers });
        const frame = await h.next();
        expect(frame.command).to.equal('CONNECTED');
        expect(frame.headers.version).to.equal(chosen);
        expect(h.session.version).to.equal(chosen);
      });
    }

    it('refuses only unsupported versions with ERROR carrying a version header', async () => {
      const h = await harness();
      h.send({ command: 'CONNECT', headers: { login: 'alice', 'accept-version': '2.0', receipt: 'c1' } });
      const error = await h.next();
      expect(error.command).to.equal('ERROR');
      expect(error.headers.code).to.equal('ERR_UNSUPPORTED_VERSION');
      expect(error.headers.version).to.equal('1.0,1.1,1.2');
      expect(error.headers['receipt-id']).to.equal('c1');
      expect(h.conn.closedWith).to.not.equal(undefined);
    });

    it('is capped by the negotiated WebSocket subprotocol', async () => {
      const h = await harness({}, { subprotocol: 'v11.stomp' });
      h.send({ command: 'CONNECT', headers: { login: 'alice', 'accept-version': '1.0,1.1,1.2' } });
      expect((await h.next()).headers.version).to.equal('1.1');
    });
  });

  describe('heart-beat negotiation (STOMP 1.2 "Heart-beating")', () => {
    // Floor 100 ms, ceiling of our beats 1000 ms, grace 50 ms.
    const server = { heartbeatMinMs: 100, heartbeatMaxMs: 1000, heartbeatGraceMs: 50 };
    const cases: Array<{ client: string | undefined; send: number; receive: number }> = [
      { client: undefined, send: 0, receive: 0 },
      { client: '0,0', send: 0, receive: 0 },
      // client cx=300 (sends every 300), cy=500 (wants ours every 500): honoured
      { client: '300,500', send: 500, receive: 300 },
      // below the floor: the floor
      { client: '50,20', send: 100, receive: 100 },
      // our beats no rarer than the ceiling; the client's own cx is honoured whatever it is
      { client: '5000,5000', send: 1000, receive: 5000 },
      { client: '0,500', send: 500, receive: 0 },
      { client: '1000,0', send: 0, receive: 1000 },
    ];
    for (const { client, send, receive } of cases) {
      it(`client heart-beat ${client ?? '(absent)'} → we send every ${send} ms, expect beats within ${receive} ms (+grace)`, async () => {
        const h = await harness(server);
        const headers: Record<string, string> = { login: 'alice', 'accept-version': '1.2' };
        if (client !== undefined) headers['heart-beat'] = client;
        h.send({ command: 'CONNECT', headers });
        const frame = await h.next();
        // CONNECTED carries the negotiated intervals, so the client's max() lands on them.
        expect(frame.headers['heart-beat']).to.equal(`${send},${receive}`);
        expect(h.session.sendIntervalMs).to.equal(send);
        expect(h.session.receiveTimeoutMs).to.equal(receive === 0 ? 0 : receive + 50);
      });
    }

    it('schedules nothing for a client that asked for no beats', async () => {
      const h = await harness(server);
      await connected(h, { 'heart-beat': '0,0' });
      expect(h.session.sendIntervalMs).to.equal(0);
      expect(h.session.receiveTimeoutMs).to.equal(0);
      expect(h.broker.wheel.size).to.equal(0);
    });

    it('refuses a malformed heart-beat header', async () => {
      const h = await harness(server);
      h.send({ command: 'CONNECT', headers: { login: 'alice', 'accept-version': '1.2', 'heart-beat': 'often' } });
      const error = await h.next();
      expect(error.command).to.equal('ERROR');
      expect(error.headers.code).to.equal('ERR_INVALID_HEADER');
    });

    it('sends an EOL when its send interval is due', async () => {
      const h = await harness(server);
      await connected(h, { 'heart-beat': '0,100' });
      const at = h.session.lastSentAt;
      expect(h.session.onHeartbeatDue(at + 50)).to.equal(at + 100);
      expect(h.conn.heartbeats).to.equal(0);
      const next = h.session.onHeartbeatDue(at + 100);
      expect(h.conn.heartbeats).to.equal(1);
      expect(h.conn.writes.at(-1)!.data.toString()).to.equal('\n');
      expect(next).to.be.greaterThan(at);
    });

    it('disconnects a client silent past interval plus grace with ERROR ERR_HEARTBEAT_TIMEOUT', async () => {
      const h = await harness(server);
      await connected(h, { 'heart-beat': '200,0' });
      const last = h.session.lastReceivedAt;
      // interval 200 (the client's cx), plus grace 50
      expect(h.session.onHeartbeatDue(last + 250)).to.be.greaterThan(0);
      expect(h.conn.closedWith).to.equal(undefined);
      expect(h.session.onHeartbeatDue(last + 251)).to.equal(0);
      const error = await h.next();
      expect(error.command).to.equal('ERROR');
      expect(error.headers.code).to.equal('ERR_HEARTBEAT_TIMEOUT');
      expect(h.conn.closedWith).to.not.equal(undefined);
      expect(h.broker.sessions.has(h.session)).to.equal(false);
    });

    it('any input (a beat) restarts the silence count', async () => {
      const h = await harness(server);
      await connected(h, { 'heart-beat': '200,0' });
      h.session.receive('\n');
      const last = h.session.lastReceivedAt;
      expect(h.session.onHeartbeatDue(last + 250)).to.equal(last + 251);
      expect(h.session.state).to.equal('connected');
    });
  });

  describe('pipelined SENDs', () => {
    /** Routing that settles when the test says: one deferred per SEND, in frame order. */
    function controlledRouting(h: Harness): Array<{ resolve: () => void; reject: (error: unknown) => void }> {
      const calls: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];
      h.broker.route = () => new Promise<void>((resolve, reject) => calls.push({ resolve, reject }));
      return calls;
    }


    it('answers in frame order whatever order their routing settles in; a later frame waits for them all', async () => {
      const h = await harness();
      await connected(h);
      const calls = controlledRouting(h);
      for (const receipt of ['r1', 'r2', 'r3']) h.send({ command: 'SEND', headers: { destination: '/topic/a', receipt }, body: 'x' });
      h.send({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/topic/b', receipt: 'sub' } });
      await settle();
      expect(calls).to.have.length(3);
      calls[2]!.resolve();
      calls[1]!.resolve();
      await settle();
      expect(written(h)).to.deep.equal([]);
      calls[0]!.resolve();
      await settle();
      expect(written(h)).to.deep.equal(['RECEIPT r1', 'RECEIPT r2', 'RECEIPT r3', 'RECEIPT sub']);
    });

    it('sends the ERROR of a failed one after the RECEIPTs before it, and nothing after it', async () => {
      const h = await harness();
      await connected(h);
      const calls = controlledRouting(h);
      for (const receipt of ['r1', 'r2', 'r3']) h.send({ command: 'SEND', headers: { destination: '/topic/a', receipt }, body: 'x' });
      await settle();
      calls[1]!.reject(new Error('routing failed'));
      calls[2]!.resolve();
      await settle();
      expect(written(h)).to.deep.equal([]);
      calls[0]!.resolve();
      await settle();
      expect(written(h)).to.deep.equal(['RECEIPT r1', 'ERROR r2']);
      expect(h.session.state).to.equal('closed');
    });
  });

  describe('pipelined SENDs to user destinations (the router told through a ticket, no promise)', () => {
    /** The router's outcomes, told when the test says; each SEND's route recorded in frame order. */
    function controlledRouter(h: Harness): Array<{ route: UserRoute; outcome: RouteOutcome }> {
      const calls: Array<{ route: UserRoute; outcome: RouteOutcome }> = [];
      h.broker.router.routeTo = (route, outcome) => calls.push({ route, outcome });
      return calls;
    }

    const relayed = { local: false, remote: ['elsewhere'], stored: false };

    it('answers in frame order whatever order the router tells them in, a transaction SEND between them; a later frame waits for them all', async () => {
      const h = await harness();
      await connected(h);
      const calls = controlledRouter(h);
      h.send({ command: 'BEGIN', headers: { transaction: 't' } });
      h.send({ command: 'SEND', headers: { destination: '/user/bob/queue/a', receipt: 'r1' }, body: 'x' });
      h.send({ command: 'SEND', headers: { destination: '/user/bob/queue/a', receipt: 'r2', transaction: 't' }, body: 'x' });
      h.send({ command: 'SEND', headers: { destination: '/user/bob/queue/a', receipt: 'r3' }, body: 'x' });
      h.send({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/topic/b', receipt: 'sub' } });
      await settle();
      expect(calls.map((c) => c.route.message.destination)).to.deep.equal(['/user/bob/queue/a', '/user/bob/queue/a']);
      expect(calls.map((c) => c.route.user)).to.deep.equal(['bob', 'bob']);
      calls[1]!.outcome.routed({ local: false, remote: [], stored: true });
      // Told again (a router bug): the first telling stands.
      calls[1]!.outcome.failed(new BrokerError('ERR_INBOX_FULL', 'full'));
      await settle();
      expect(written(h)).to.deep.equal([]);
      calls[0]!.outcome.routed(relayed);
      calls[0]!.outcome.routed(relayed);
      await settle();
      expect(written(h)).to.deep.equal(['RECEIPT r1', 'RECEIPT r2', 'RECEIPT r3', 'RECEIPT sub']);
    });

    it('sends the ERROR of a refused one after the RECEIPTs before it, and nothing after it', async () => {
      const h = await harness();
      await connected(h);
      const calls = controlledRouter(h);
      for (const receipt of ['r1', 'r2', 'r3']) h.send({ command: 'SEND', headers: { destination: '/user/bob/queue/a', receipt }, body: 'x' });
      await settle();
      calls[1]!.outcome.failed(new BrokerError('ERR_INBOX_FULL', 'full'));
      calls[1]!.outcome.routed(relayed);
      calls[2]!.outcome.routed(relayed);
      await settle();
      expect(written(h)).to.deep.equal([]);
      calls[0]!.outcome.routed(relayed);
      await settle();
      expect(written(h)).to.deep.equal(['RECEIPT r1', 'ERROR r2']);
      expect(h.session.state).to.equal('closed');
    });

    it('a graceful shutdown answers the SENDs in flight before its ERROR, and is not held by one never answered', async () => {
      const h = await harness({ shutdownTimeoutMs: 2000 });
      await connected(h);
      const calls = controlledRouter(h);
      h.send({ command: 'SEND', headers: { destination: '/user/bob/queue/a', receipt: 'r1' }, body: 'x' });
      await settle();
      const shutdown = h.broker.shutdown('restarting');
      await settle();
      expect(h.session.state, 'the session waits for its SEND').to.equal('connected');
      calls[0]!.outcome.routed(relayed);
      await shutdown;
      expect(written(h)).to.deep.equal(['RECEIPT r1', 'ERROR']);
      expect(h.conn.writes.map(({ data }) => data.toString()).join('')).to.contain('ERR_SHUTTING_DOWN');

      const stuck = await harness({ shutdownTimeoutMs: 400 });
      await connected(stuck);
      controlledRouter(stuck);
      stuck.send({ command: 'SEND', headers: { destination: '/user/bob/queue/a', receipt: 'never' }, body: 'x' });
      await settle();
      // Held for ever, it would time the test out.
      await stuck.broker.shutdown('restarting');
      expect(written(stuck)).to.deep.equal(['ERROR']);
      expect(stuck.session.state).to.equal('closed');
    });

    it('a router that throws as it is called refuses that SEND in its turn, as a rejected route would', async () => {
      const h = await harness();
      await connected(h);
      const calls = controlledRouter(h);
      h.send({ command: 'SEND', headers: { destination: '/user/bob/queue/a', receipt: 'r1' }, body: 'x' });
      await settle();
      h.broker.router.routeTo = () => {
        throw new Error('store client gone');
      };
      h.send({ command: 'SEND', headers: { destination: '/user/bob/queue/a', receipt: 'r2' }, body: 'x' });
      await settle();
      expect(written(h)).to.deep.equal([]);
      calls[0]!.outcome.routed(relayed);
      await settle();
      const frames = written(h);
      expect(frames).to.deep.equal(['RECEIPT r1', 'ERROR r2']);
      expect(h.conn.writes.map(({ data }) => data.toString()).join('')).to.contain('ERR_CLUSTER_UNAVAILABLE');
    });
  });

  describe('ending', () => {
    it('DISCONNECT answers its RECEIPT, then closes', async () => {
      const h = await harness();
      await connected(h);
      h.send({ command: 'DISCONNECT', headers: { receipt: 'bye' } });
      const receipt = await h.next();
      expect(receipt.command).to.equal('RECEIPT');
      expect(receipt.headers['receipt-id']).to.equal('bye');
      expect(h.conn.closedWith?.code).to.equal(1000);
      expect(h.session.state).to.equal('closed');
    });

    it('the transport closing ends the session and withdraws its user', async () => {
      const h = await harness();
      await connected(h);
      h.send({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/user/queue/a', receipt: 'r' } });
      expect((await h.next()).command).to.equal('RECEIPT');
      expect(await h.broker.presence.isOnline('alice')).to.equal(true);
      h.session.transportClosed();
      await settle();
      expect(h.broker.sessions.has(h.session)).to.equal(false);
      expect(h.broker.userSessions.has('alice')).to.equal(false);
      expect(await h.broker.presence.isOnline('alice')).to.equal(false);
      expect(await h.broker.presence.nodesFor('alice', '/queue/a')).to.deep.equal([]);
    });

    it('a session that ends while its presence is being recorded does not leave its user online', async () => {
      const h = await harness();
      const presence = h.broker.presence;
      const record = presence.userOnline.bind(presence);
      let release: () => void = () => {};
      const gate = new Promise<void>((resolve) => (release = resolve));
      // The cluster store is slow to answer (a Redis round trip).
      presence.userOnline = async (user: string) => {
        await gate;
        await record(user);
      };
      h.send({ command: 'CONNECT', headers: { 'accept-version': '1.2', login: 'alice', 'heart-beat': '10000,10000' } });
      await settle();
      h.session.transportClosed();
      release();
      await settle();
      expect(h.broker.userSessions.has('alice')).to.equal(false);
      expect(await presence.isOnline('alice')).to.equal(false);
      expect(h.conn.frames.size).to.equal(0);
      expect(h.broker.wheel.size, 'nothing left in the heart-beat wheel').to.equal(0);
    });

    it('a second session of a user waits for the first one\'s presence, and a failure to record it is not fatal', async () => {
      const h = await harness();
      const presence = h.broker.presence;
      presence.userOnline = async () => {
        throw new Error('store down');
      };
      await connected(h);
      const conn = new FakeConnection();
      const second = h.broker.createSession(conn);
      second.receive(serializeFrame({ command: 'CONNECT', headers: { 'accept-version': '1.2', login: 'alice' } }));
      expect((await conn.frames.take(undefined, 2000)).command).to.equal('CONNECTED');
      expect(h.broker.userSessions.get('alice')?.length).to.equal(2);
    });

    it('a slow consumer is ended with ERR_SLOW_CONSUMER; the user message it could not take is stored once, without re-routing loops', async () => {
      const h = await harness({ maxOutgoingBuffer: 1000 });
      await connected(h);
      h.send({ command: 'SUBSCRIBE', headers: { id: 's', destination: '/user/queue/feed', receipt: 'r' } });
      expect((await h.next()).command).to.equal('RECEIPT');
      await settle(); // the (empty) inbox hand-over that follows the RECEIPT
      const router = h.broker.router;
      const route = router.route.bind(router);
      let lookups = 0;
      router.route = (...args) => {
        lookups++;
        return route(...args);
      };
      h.conn.bufferedAmount = 1001;
      await h.broker.routeUser('alice', '/queue/feed', { id: 'm1', destination: '/user/alice/queue/feed', headers: {}, body: Buffer.from('x'), timestamp: Date.now() });
      const error = await h.next();
      expect(error.headers.code).to.equal('ERR_SLOW_CONSUMER');
      expect(h.session.state).to.equal('closed');
      // One lookup for the SEND, one to re-route after the local delivery failed: then stored.
      expect(lookups).to.equal(2);
      expect((await h.broker.inbox.peek('alice', '/queue/feed')).map((m) => m.id)).to.deep.equal(['m1']);
    });

    it('a codec error ends the session with ERROR carrying the codec code', async () => {
      const h = await harness();
      await connected(h);
      h.session.receive('SEND\ndestination\n\n\0');
      const error = await h.next();
      expect(error.headers.code).to.equal('ERR_STOMP_MALFORMED_FRAME');
      expect(h.conn.closedWith).to.not.equal(undefined);
    });
  });
});

/*
 * Real STOMP clients of other stacks against stompbox, over TCP and
 * WebSocket: stomp.py (Debian's python3-stomp, a process per client) and
 * @stomp/stompjs (over WebSocket, and over TCP through spec/helpers/tcp.ts).
 * They send to each other through one node, and across two node processes
 * on a private redis-server; and what their own suites check of a broker:
 * heart-beats as asked, 1.1 ACK by message id.
 */
import { expect } from 'chai';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { killAllNodes, spawnNode, type NodeProcess } from '../helpers/node-process.js';
import { startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { StompJsClient } from '../helpers/stomp-client.js';
import { ensureStompPy, PYTHON, StompPyClient } from '../helpers/stomp-py.js';
import { TcpStompSocket } from '../helpers/tcp.js';
import { INSTALL_TIMEOUT_MS, run } from '../helpers/apt.js';

interface Endpoints {
  wsUrl: string;
  tcpPort: number;
}

const stompJsTcp = (node: Endpoints, login: string) => StompJsClient.connect('', { login, socket: () => new TcpStompSocket(node.tcpPort) });
const stompJsWs = (node: Endpoints, login: string) => StompJsClient.connect(node.wsUrl, { login });
const pyTcp = (node: Endpoints, login: string) => StompPyClient.connect({ url: `tcp://127.0.0.1:${node.tcpPort}`, login });
const pyWs = (node: Endpoints, login: string) => StompPyClient.connect({ url: node.wsUrl, login });

/** stomp.py receives from stompjs and answers it; `py` and `js` may sit on different nodes. */
async function exchange(py: StompPyClient, js: StompJsClient, pyUser: string, jsUser: string): Promise<void> {
  await py.subscribe('/user/queue/in', 'in');
  const jsInbox = await js.subscribe('/user/queue/in');
  await js.publish(`/user/${pyUser}/queue/in`, `to python from ${jsUser}`);
  const received = await py.next('message');
  expect(received.body).to.equal(`to python from ${jsUser}`);
  expect(received.headers).to.include({ sender: jsUser, destination: '/user/queue/in', subscription: 'in' });
  await py.send(`/user/${jsUser}/queue/in`, 'to stompjs from python', { 'content-type': 'text/plain' });
  const answer = await jsInbox.next();
  expect(answer.body).to.equal('to stompjs from python');
  expect(answer.headers.sender).to.equal(pyUser);
}

describe('other STOMP clients: stomp.py and stompjs over TCP and WebSocket', function () {
  before(async function () {
    this.timeout(INSTALL_TIMEOUT_MS);
    await ensureStompPy();
  });

  describe('one node', () => {
    let node: TestNode & Endpoints;
    beforeEach(async () => {
      const started = await startTestNode({ stompTcpPort: 0 });
      node = { ...started, tcpPort: started.tcpPort! };
    });
    afterEach(stopTestNodes);

    it('stomp.py over TCP ↔ stompjs over WebSocket', async () => {
      await exchange(await pyTcp(node, 'py1'), await stompJsWs(node, 'js1'), 'py1', 'js1');
    });

    it('stomp.py over WebSocket ↔ stompjs over TCP', async () => {
      await exchange(await pyWs(node, 'py2'), await stompJsTcp(node, 'js2'), 'py2', 'js2');
    });

    it('stomp.py gets the heart-beat it asked for, over TCP and WebSocket', async () => {
      const tcp = await StompPyClient.connect({ url: `tcp://127.0.0.1:${node.tcpPort}`, login: 'hb1', heartbeat: '1000,1000' });
      expect(tcp.connected.headers!['heart-beat']).to.equal('1000,1000');
      const ws = await StompPyClient.connect({ url: node.wsUrl, login: 'hb2', heartbeat: '0,0' });
      expect(ws.connected.headers!['heart-beat']).to.equal('0,0');
    });

    it('stompjs over TCP asking 1 s heart-beats gets them both ways', async () => {
      const client = await StompJsClient.connect('', { login: 'hb3', socket: () => new TcpStompSocket(node.tcpPort), heartbeatIncoming: 1000, heartbeatOutgoing: 1000 });
      expect(client.connected!.headers['heart-beat']).to.equal('1000,1000');
      const session = [...node.broker.sessions].find((s) => s.user === 'hb3')!;
      expect(session.sendIntervalMs).to.equal(1000);
      expect(session.receiveTimeoutMs).to.equal(1000 + node.config.heartbeatGraceMs);
    });

    it('stomp.py 1.1: an ACK whose subscription header does not match is taken by message id', async () => {
      const py = await StompPyClient.connect({ url: `tcp://127.0.0.1:${node.tcpPort}`, login: 'ack11', version: '1.1' });
      await py.subscribe('/queue/ack11', 'sub-0', 'client-individual');
      await py.send('/queue/ack11', 'one');
      const message = await py.next('message');
      await py.ack(message.headers!['message-id']!, 'not-sub-0');
      await py.disconnect();
      // Acknowledged: had it stayed unacknowledged, the session's end would have put it back at the queue's head.
      const next = await StompJsClient.connect(node.wsUrl, { login: 'ack11b' });
      await next.publish('/queue/ack11', 'two');
      const consumer = await next.subscribe('/queue/ack11');
      expect((await consumer.next()).body).to.equal('two');
    });
  });

  describe("the README's backend examples (examples/*-backend/notify)", () => {
    afterEach(stopTestNodes);

    it('a Python and a Node backend notify a browser user over TCP', async () => {
      const node = await startTestNode({ stompTcpPort: 0 });
      const bob = await StompJsClient.connect(node.wsUrl, { login: 'bob' });
      const notifications = await bob.subscribe('/user/queue/notifications');
      const env = { STOMP_PORT: String(node.tcpPort) };
      await run(PYTHON, ['examples/python-backend/notify.py', 'bob', 'from python'], { timeoutMs: 20_000, env: { ...env, STOMP_LOGIN: 'py-backend' } });
      await run(process.execPath, ['--import', 'tsx', 'examples/node-backend/notify.ts', 'bob', 'from node'], { timeoutMs: 20_000, env: { ...env, STOMP_LOGIN: 'node-backend' } });
      const received = [await notifications.next(), await notifications.next()];
      expect(received.map((m) => [m.headers.sender, JSON.parse(m.body).text])).to.deep.equal([
        ['py-backend', 'from python'],
        ['node-backend', 'from node'],
      ]);
    });
  });

  describe('two node processes on one Redis', function () {
    this.timeout(60_000);
    let redis: RedisServer;
    let nodes: Array<NodeProcess & Endpoints>;

    before(async () => {
      redis = await startRedisServer();
      const started = await Promise.all(['t1', 't2'].map((id) => spawnNode({ id, redisUrl: redis.url, env: { STOMP_TCP_PORT: '0' } })));
      nodes = started.map((n) => ({ ...n, tcpPort: n.tcpPort! }));
    });
    after(async () => {
      await stopTestNodes();
      await killAllNodes();
      await redis.stop();
    });

    it('stomp.py over TCP on node 1 ↔ stompjs over WebSocket on node 2', async () => {
      await exchange(await pyTcp(nodes[0]!, 'xpy1'), await stompJsWs(nodes[1]!, 'xjs1'), 'xpy1', 'xjs1');
    });

    it('stomp.py over WebSocket on node 2 ↔ stompjs over TCP on node 1', async () => {
      await exchange(await pyWs(nodes[1]!, 'xpy2'), await stompJsTcp(nodes[0]!, 'xjs2'), 'xpy2', 'xjs2');
    });
  });
});

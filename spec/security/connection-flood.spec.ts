/*
 * Attack: open sessions until the node gives out. Past
 * MAX_CONNECTIONS_PER_USER sessions of one user on a node, CONNECT is
 * answered ERR_TOO_MANY_CONNECTIONS; past MAX_CONNECTIONS sessions on the
 * node, a new connection is. Sessions already open keep working.
 */
import { expect } from 'chai';
import { startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { RawStompClient } from '../helpers/stomp-client.js';
import { GoodPair } from './support.js';

describe('security: connection flood', () => {
  let node: TestNode;
  afterEach(stopTestNodes);

  it('refuses a user past MAX_CONNECTIONS_PER_USER, and anyone past MAX_CONNECTIONS; a good pair loses nothing', async () => {
    node = await startTestNode({ maxConnectionsPerUser: 3, maxConnections: 8 });
    const pair = await GoodPair.open(node.wsUrl);
    const mallory: RawStompClient[] = [];
    for (let i = 0; i < 3; i++) mallory.push(await RawStompClient.connect(node.wsUrl, { login: 'mallory' }));
    const fourth = await RawStompClient.open(node.wsUrl);
    expect((await fourth.stompConnect({ login: 'mallory' })).headers.code).to.equal('ERR_TOO_MANY_CONNECTIONS');
    await pair.exchange(2);
    // 2 + 3 open; three more users fill the node, the ninth connection is refused before CONNECT.
    for (let i = 0; i < 3; i++) await RawStompClient.connect(node.wsUrl, { login: `m${i}` });
    const ninth = await RawStompClient.open(node.wsUrl);
    const refused = await ninth.nextFrame();
    expect(refused.headers.code).to.equal('ERR_TOO_MANY_CONNECTIONS');
    await pair.exchange(2);
    expect(await pair.check()).to.deep.equal({ delivered: 4, lost: 0 });
  });
});

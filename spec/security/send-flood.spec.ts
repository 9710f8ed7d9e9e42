/*
 * Attack: send as fast as the socket allows. Each session's SENDs draw on
 * two token buckets, SEND_RATE_MESSAGES a second and SEND_RATE_BYTES a
 * second, each with a second's worth of burst (the byte bucket at least one
 * largest body); past either, ERROR ERR_RATE_LIMITED. The flood is far
 * larger than a second's worth, so the outcome does not depend on timing.
 */
import { expect } from 'chai';
import { startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { RawStompClient } from '../helpers/stomp-client.js';
import { floodUntilAnswered, GoodPair, MiB } from './support.js';

describe('security: send flood', () => {
  let node: TestNode;
  let pair: GoodPair;

  beforeEach(async () => {
    node = await startTestNode({ sendRateMessages: 100, sendRateBytes: MiB });
    pair = await GoodPair.open(node.wsUrl);
  });
  afterEach(stopTestNodes);

  it('messages a second: ERR_RATE_LIMITED past the bucket; a good pair loses nothing', async () => {
    const mallory = await RawStompClient.connect(node.wsUrl, { login: 'mallory' });
    const { error, written } = await floodUntilAnswered(mallory, () => ({ command: 'SEND', headers: { destination: '/topic/void' }, body: 'x' }), 20_000);
    expect(error.headers.code).to.equal('ERR_RATE_LIMITED');
    expect(written, JSON.stringify(error.headers)).to.be.below(20_000);
    await pair.exchange(3);
    expect(await pair.check()).to.deep.equal({ delivered: 3, lost: 0 });
  });

  it('bytes a second: ERR_RATE_LIMITED past the bucket; a good pair loses nothing', async () => {
    const mallory = await RawStompClient.connect(node.wsUrl, { login: 'mallory' });
    const body = Buffer.alloc(MiB / 2, 'y');
    const { error } = await floodUntilAnswered(mallory, () => ({ command: 'SEND', headers: { destination: '/topic/void' }, body }), 40);
    expect(error.headers.code).to.equal('ERR_RATE_LIMITED');
    await pair.exchange(3);
    expect(await pair.check()).to.deep.equal({ delivered: 3, lost: 0 });
  });
});

/*
 * Attack: grow a node through open transactions (issue 10: 1 000 × 1 MiB
 * SENDs in one transaction took a node from 61 to 1 082 MB). The node runs
 * as a child process with its default bounds; four attackers at once each
 * try 100 × 1 MiB in one transaction and are cut at MAX_TRANSACTION_BYTES
 * (8 MiB), and one more tries to open a ninth transaction and a 1 001st frame.
 * The node's peak RSS (VmHWM of its own process) stays within 200 MB of
 * what it was before, and a good pair loses nothing.
 */
import { expect } from 'chai';
import { DEFAULT_CONFIG } from '../../lib/config.js';
import { killAllNodes, spawnNode, type NodeProcess } from '../helpers/node-process.js';
import { stopTestNodes } from '../helpers/node.js';
import { RawStompClient } from '../helpers/stomp-client.js';
import { floodUntilAnswered, GoodPair, memoryOf, MiB } from './support.js';

/** What the attack may add to the node's peak resident set. */
const RSS_BOUND = 200 * MiB;

describe('security: transaction flood (node in a child process)', function () {
  this.timeout(60_000);
  let node: NodeProcess;

  before(async () => {
    node = await spawnNode({ id: 'tx-flood' });
  });
  after(async () => {
    await stopTestNodes();
    await killAllNodes();
  });

  it('cuts each session at its transaction bound; the node stays within its RSS bound and a good pair loses nothing', async () => {
    const pair = await GoodPair.open(node.wsUrl);
    await pair.exchange(5);
    const before = memoryOf(node.child.pid!);
    const body = Buffer.alloc(MiB, 'x');
    const attacks = Array.from({ length: 4 }, async (_, a) => {
      const attacker = await RawStompClient.connect(node.wsUrl, { login: `mallory${a}` });
      attacker.sendFrame({ command: 'BEGIN', headers: { transaction: 't' } });
      return floodUntilAnswered(attacker, () => ({ command: 'SEND', headers: { destination: '/topic/void', transaction: 't' }, body }), 100);
    });
    await pair.exchange(5);
    for (const { error, written } of await Promise.all(attacks)) {
      expect(error.headers.code).to.equal('ERR_TRANSACTION_TOO_LARGE');
      expect(written).to.be.below(100);
    }
    const after = memoryOf(node.child.pid!);
    expect(after.peak - before.rss, `RSS ${before.rss / MiB} MiB before, peak ${after.peak / MiB} MiB`).to.be.below(RSS_BOUND);
    await pair.exchange(5);
    expect(await pair.check()).to.deep.equal({ delivered: 15, lost: 0 });
  });

  it('refuses a transaction past MAX_TRANSACTIONS and a frame past MAX_TRANSACTION_FRAMES', async () => {
    const pair = await GoodPair.open(node.wsUrl);
    const many = await RawStompClient.connect(node.wsUrl, { login: 'mallory' });
    const opened = await floodUntilAnswered(many, (i) => ({ command: 'BEGIN', headers: { transaction: `t${i}` } }), 100);
    expect(opened.error.headers.code).to.equal('ERR_TOO_MANY_TRANSACTIONS');
    const long = await RawStompClient.connect(node.wsUrl, { login: 'mallory' });
    long.sendFrame({ command: 'BEGIN', headers: { transaction: 't' } });
    const frames = await floodUntilAnswered(long, () => ({ command: 'SEND', headers: { destination: '/topic/void', transaction: 't' }, body: 'x' }), 5000);
    expect(frames.error.headers.code).to.equal('ERR_TRANSACTION_TOO_LARGE');
    expect(frames.error.headers.message).to.include(String(DEFAULT_CONFIG.maxTransactionFrames));
    await pair.exchange(3);
    expect(await pair.check()).to.deep.equal({ delivered: 3, lost: 0 });
  });
});

/*
 * Attack: outrun the node's reading. A WebSocket session is paused past 256
 * waiting frames, but SockJS cannot pause its client (issue 10), so a
 * SockJS session's input is bounded by cutting it: past MAX_INPUT_FRAMES
 * frames (or MAX_INPUT_BYTES body bytes) waiting to be handled, ERROR
 * ERR_INPUT_OVERFLOW. Here one SockJS message carries more SENDs than the
 * bound, over sockjs-client's websocket and xhr-streaming transports.
 */
import { expect } from 'chai';
import { serializeFrame } from '../../lib/stomp/index.js';
import { startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { openSockJs } from '../http/helpers.js';
import { GoodPair } from './support.js';

const MAX_INPUT_FRAMES = 500;

describe('security: input flood over SockJS', () => {
  let node: TestNode;
  afterEach(stopTestNodes);

  for (const transport of ['websocket', 'xhr-streaming']) {
    it(`${transport}: cuts the session whose waiting frames pass MAX_INPUT_FRAMES; a good pair loses nothing`, async () => {
      node = await startTestNode({ maxInputFrames: MAX_INPUT_FRAMES });
      const pair = await GoodPair.open(node.wsUrl);
      const mallory = await openSockJs(node.url + node.config.sockjsPath, { transports: [transport] });
      expect((await mallory.connect({ login: 'mallory' })).command).to.equal('CONNECTED');
      const send = serializeFrame({ command: 'SEND', headers: { destination: '/topic/void' }, body: 'x' }).toString('utf8');
      // One SockJS message: the node parses it at once, faster than it can route.
      mallory.sendRaw(send.repeat(4 * MAX_INPUT_FRAMES));
      const answer = await mallory.next((f) => f.command === 'ERROR');
      expect(answer.headers.code).to.equal('ERR_INPUT_OVERFLOW');
      await pair.exchange(3);
      expect(await pair.check()).to.deep.equal({ delivered: 3, lost: 0 });
    });
  }
});

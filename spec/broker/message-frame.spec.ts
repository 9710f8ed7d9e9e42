import { expect } from 'chai';
import { messageFrame } from '../../lib/broker/message-frame.js';
import type { BrokerMessage } from '../../lib/core/message.js';
import { serializeFrame, type StompVersion } from '../../lib/stomp/index.js';

describe('messageFrame', () => {
  const message: BrokerMessage = {
    id: 'n1-abc-1',
    destination: '/user/bob/queue/a:b',
    headers: { 'content-type': 'text/plain', 'x-line': 'one\ntwo', 'x-colon': 'a:b' },
    body: Buffer.from('héllo'),
    sender: 'alice',
    timestamp: 0,
  };

  for (const version of ['1.0', '1.1', '1.2'] as StompVersion[]) {
    it(`equals the general serialiser's frame for STOMP ${version}`, () => {
      const expected = serializeFrame(
        {
          command: 'MESSAGE',
          headers: { destination: '/user/queue/a:b', 'message-id': message.id, subscription: 'sub-1', ack: '7', sender: 'alice', ...message.headers },
          body: message.body,
        },
        version,
      );
      const { data, binary } = messageFrame(message, version, '/user/queue/a:b', 'sub-1', '7');
      expect(data.equals(expected)).to.equal(true);
      expect(binary).to.equal(false);
    });
  }

  it('replaces each NUL of a body with U+FFFD for STOMP 1.0/1.1 (stomp.js 2.3 ends a frame at any NUL), not for 1.2', () => {
    const body = Buffer.from('a\u0000b\u0000');
    for (const version of ['1.0', '1.1'] as StompVersion[]) {
      const text = messageFrame({ ...message, body }, version, '/queue/x', 's', undefined).data.toString('utf8');
      expect(text.endsWith('content-length:8\n\na\ufffdb\ufffd\u0000'), version).to.equal(true);
    }
    const { data } = messageFrame({ ...message, body }, '1.2', '/queue/x', 's', undefined);
    expect(data.subarray(data.length - 5).equals(Buffer.from('a\u0000b\u0000\u0000'))).to.equal(true);
  });

  it('marks a body that is not UTF-8 as binary, and keeps its bytes', () => {
    const body = Buffer.from([0xff, 0x00, 0xfe]);
    const { data, binary } = messageFrame({ ...message, body }, '1.2', '/queue/x', 's', undefined);
    expect(binary).to.equal(true);
    expect(data.subarray(data.length - 4).equals(Buffer.from([0xff, 0x00, 0xfe, 0x00]))).to.equal(true);
    expect(data.toString('latin1')).to.not.include('\nack:');
  });

  it('serialises one message for many subscriptions with only the head differing', () => {
    const a = messageFrame(message, '1.2', '/topic/t', 'a', undefined).data.toString();
    const b = messageFrame(message, '1.2', '/topic/t', 'b', undefined).data.toString();
    expect(a.replace('subscription:a', 'subscription:b')).to.equal(b);
  });
});

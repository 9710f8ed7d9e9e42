import { expect } from 'chai';
import fc from 'fast-check';
import { BrokerError } from '../../lib/core/errors.js';
import type { BrokerMessage } from '../../lib/core/message.js';
import {
  decodeEnvelope,
  decodeEnvelopeBatch,
  decodeMessage,
  encodedMessageSize,
  encodeEnvelope,
  encodeEnvelopeBatch,
  encodeMessage,
  encodeMessageAfter,
} from '../../lib/cluster/envelope-codec.js';
import type { RelayEnvelope } from '../../lib/cluster/relay.js';
import { inheritsNothing } from '../helpers/inherits-nothing.js';

function msg(extra: Partial<BrokerMessage> = {}): BrokerMessage {
  return { id: 'm1', destination: '/q', headers: { a: 'b' }, body: Buffer.from('x'), timestamp: 1, ...extra };
}

function plain(message: BrokerMessage): object {
  return { ...message, headers: { ...message.headers }, body: [...message.body] };
}

function expectInternal(fn: () => unknown): void {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(BrokerError);
    expect((error as BrokerError).code).to.equal('ERR_INTERNAL');
    return;
  }
  expect.fail('decoded malformed input');
}

/** The layout, spelled with Buffer.from (lone surrogates become U+FFFD, as Buffer.from writes them). */
function str16(text: string): Buffer {
  const bytes = Buffer.from(text);
  return Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes]);
}

function u32(value: number): Buffer {
  const buf = Buffer.alloc(4);
  buf.writeUInt32BE(value);
  return buf;
}

function referenceEncoding(message: BrokerMessage): Buffer {
  const timestamp = Buffer.alloc(8);
  timestamp.writeDoubleBE(message.timestamp);
  const sender = message.sender === undefined ? Buffer.from([0, 0]) : Buffer.from(message.sender);
  const names = Object.keys(message.headers);
  return Buffer.concat([
    Buffer.from([1]),
    str16(message.id),
    str16(message.destination),
    message.sender === undefined ? sender : Buffer.concat([Buffer.from([(sender.length + 1) >> 8, (sender.length + 1) & 0xff]), sender]),
    timestamp,
    Buffer.from([names.length >> 8, names.length & 0xff]),
    ...names.flatMap((name) => {
      const value = Buffer.from(message.headers[name]!);
      return [str16(name), u32(value.length), value];
    }),
    u32(message.body.length),
    message.body,
  ]);
}

describe('envelope codec', () => {
  it('writes the documented layout', () => {
    const expected = Buffer.concat([
      Buffer.from([1]), // format
      Buffer.from([0, 2]), Buffer.from('m1'),
      Buffer.from([0, 2]), Buffer.from('/q'),
      Buffer.from([0, 0]), // no sender
      Buffer.from([0x3f, 0xf0, 0, 0, 0, 0, 0, 0]), // 1.0
      Buffer.from([0, 1]), Buffer.from([0, 1]), Buffer.from('a'), Buffer.from([0, 0, 0, 1]), Buffer.from('b'),
      Buffer.from([0, 0, 0, 1]), Buffer.from('x'),
    ]);
    expect(encodeMessage(msg()).equals(expected)).to.equal(true);
    expect(encodedMessageSize(msg())).to.equal(expected.length);
  });

  it('leads a user envelope with its kind, user and destination', () => {
    const buf = encodeEnvelope({ kind: 'user', user: 'bo', destination: '/r', message: msg() });
    expect([...buf.subarray(0, 9)]).to.deep.equal([1, 0, 2, 0x62, 0x6f, 0, 2, 0x2f, 0x72]);
    expect(buf.subarray(9).equals(encodeMessage(msg()))).to.equal(true);
    expect(encodeEnvelope({ kind: 'topic', message: msg() })[0]).to.equal(2);
  });

  it('round-trips envelopes of both kinds', () => {
    const message = msg({ sender: 'alice', headers: { 'content-type': 'text/plain; charset=utf-8', 'x-ü': 'é:\n\r\\' }, body: Buffer.from([0, 255, 0, 10]) });
    const envelopes: RelayEnvelope[] = [
      { kind: 'user', user: 'bob', destination: '/queue/reply', message },
      { kind: 'topic', message: msg({ body: Buffer.alloc(0), headers: {} }) },
    ];
    for (const envelope of envelopes) {
      const back = decodeEnvelope(encodeEnvelope(envelope));
      expect({ ...back, message: plain(back.message) }).to.deep.equal({ ...envelope, message: plain(envelope.message) });
    }
  });

  it('keeps an absent sender absent and a __proto__ header a plain key', () => {
    const headers = Object.create(null) as Record<string, string>;
    headers['__proto__'] = 'p';
    const back = decodeMessage(encodeMessage(msg({ headers })));
    expect('sender' in back).to.equal(false);
    expect(inheritsNothing(back.headers)).to.equal(true);
    expect(back.headers['__proto__']).to.equal('p');
  });

  it('encodes a name the same the first time and every later time, past the limit of names it remembers', () => {
    // The codec remembers the bytes of short names (users, destinations, headers) and reads
    // them back through a table of its own: every pass must give the same bytes and texts.
    const first = new Map<string, Buffer>();
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 1500; i += 7) {
        const envelope: RelayEnvelope = {
          kind: 'user',
          user: `ü-user-${i % 50}`,
          destination: i % 2 === 0 ? '/queue/a' : '/queue/ö',
          message: msg({ id: `id-${i}`, destination: `/user/x-${i}/queue/a`, sender: `s€nder-${i % 3}`, headers: { [`h-${i}`]: `v-${i}`, 'content-type': 'text/plain', long: 'L'.repeat(65 + (i % 3)) } }),
        };
        const bytes = encodeEnvelope(envelope);
        const key = `${i}`;
        if (round === 0) first.set(key, bytes);
        else expect(bytes.equals(first.get(key)!), `envelope ${i}, round ${round}`).to.equal(true);
        const back = decodeEnvelope(bytes);
        expect(back.kind === 'user' && [back.user, back.destination]).to.deep.equal([envelope.user, envelope.destination]);
        expect(plain(back.message)).to.deep.equal(plain(envelope.message));
      }
    }
  });

  it('round-trips any message', () => {
    const message = fc.record({
      id: fc.string({ minLength: 1, maxLength: 40 }),
      destination: fc.string({ maxLength: 60 }),
      headers: fc.dictionary(fc.string({ maxLength: 20 }), fc.string({ maxLength: 50 }), { maxKeys: 8 }),
      body: fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
      sender: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
      timestamp: fc.integer({ min: 0, max: 2 ** 50 }),
    });
    fc.assert(
      fc.property(message, (raw) => {
        const original: BrokerMessage = { ...raw };
        if (original.sender === undefined) delete original.sender;
        expect(plain(decodeMessage(encodeMessage(original)))).to.deep.equal(plain(original));
      }),
    );
  });

  it('writes any text as UTF-8, short or long, ASCII or not, in exactly the size it reports', () => {
    // Short ASCII strings are written byte by byte, the rest by the native encoder: both, and the switch.
    const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.string({ maxLength: 80 }), fc.string({ minLength: 60, maxLength: 70 }));
    const message = fc.record({
      id: text.filter((id) => id.length > 0),
      destination: text,
      headers: fc.dictionary(text, text, { maxKeys: 4 }),
      body: fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes)),
      sender: fc.option(text, { nil: undefined }),
      timestamp: fc.integer({ min: 0, max: 2 ** 50 }),
    });
    fc.assert(
      fc.property(message, text, text, (raw, user, destination) => {
        const original: BrokerMessage = { ...raw };
        if (original.sender === undefined) delete original.sender;
        const encoded = encodeMessage(original);
        expect(encoded.length).to.equal(encodedMessageSize(original));
        expect(encoded.equals(referenceEncoding(original))).to.equal(true);
        const envelope = encodeEnvelope({ kind: 'user', user, destination, message: original });
        expect(envelope.equals(Buffer.concat([Buffer.from([1]), str16(user), str16(destination), encoded]))).to.equal(true);
      }),
    );
  });

  it('decodes bodies as copies, detached from the input', () => {
    const buf = encodeMessage(msg({ body: Buffer.from('abc') }));
    const back = decodeMessage(buf);
    buf.fill(0);
    expect(back.body.toString()).to.equal('abc');
  });

  it('carries a 1 MiB body', () => {
    const body = Buffer.alloc(1024 * 1024, 7);
    expect(decodeMessage(encodeMessage(msg({ body }))).body.equals(body)).to.equal(true);
  });

  it('prefixes a message in one buffer', () => {
    const prefix = Buffer.from([0, 1, 0x41]);
    const buf = encodeMessageAfter(prefix, msg());
    expect(buf.subarray(0, 3).equals(prefix)).to.equal(true);
    expect(plain(decodeMessage(buf.subarray(3)))).to.deep.equal(plain(msg()));
  });

  it('refuses truncated input at every length, trailing bytes and unknown tags', () => {
    const buf = encodeEnvelope({ kind: 'user', user: 'bob', destination: '/q', message: msg({ sender: 's' }) });
    for (let length = 0; length < buf.length; length++) expectInternal(() => decodeEnvelope(buf.subarray(0, length)));
    expectInternal(() => decodeEnvelope(Buffer.concat([buf, Buffer.from([0])])));
    expectInternal(() => decodeEnvelope(Buffer.from([9])));
    const wrongFormat = encodeMessage(msg());
    wrongFormat[0] = 2;
    expectInternal(() => decodeMessage(wrongFormat));
  });

  it('refuses to encode a name longer than 65535 bytes', () => {
    expect(() => encodeMessage(msg({ id: 'x'.repeat(65536) }))).to.throw(RangeError, /65535/);
    expect(() => encodeEnvelope({ kind: 'user', user: 'é'.repeat(40000), destination: '/q', message: msg() })).to.throw(RangeError);
  });

  it('round-trips a batch of envelopes in order, and refuses one cut inside an envelope', () => {
    const encoded = ['a', 'b', 'c'].map((id) => encodeEnvelope({ kind: 'user', user: 'bob', destination: '/q', message: msg({ id }) }));
    const batch = encodeEnvelopeBatch(encoded);
    expect(decodeEnvelopeBatch(batch).map((e) => e.message.id)).to.deep.equal(['a', 'b', 'c']);
    expect(decodeEnvelopeBatch(Buffer.alloc(0))).to.deep.equal([]);
    // Cut between two envelopes, a batch is just shorter; anywhere else it is malformed.
    const boundaries = new Map<number, number>();
    let at = 0;
    encoded.forEach((envelope, i) => boundaries.set((at += 4 + envelope.length), i + 1));
    for (let length = 1; length < batch.length; length++) {
      const cut = batch.subarray(0, length);
      const whole = boundaries.get(length);
      if (whole === undefined) expectInternal(() => decodeEnvelopeBatch(cut));
      else expect(decodeEnvelopeBatch(cut)).to.have.length(whole);
    }
  });
});

import { expect } from 'chai';
import {
  DEFAULT_FRAME_LIMITS,
  StompCodecError,
  StompParser,
  type StompCodecErrorCode,
  type StompFrame,
} from '../../lib/stomp/index.js';
import { b, bytewise, collector, parseChunks, plain, splitAt, type Collected } from './helpers.js';
import { inheritsNothing } from '../helpers/inherits-nothing.js';

/** Asserts the run ended in exactly one error with `code`, and the parser is dead. */
function expectError(c: Collected, code: StompCodecErrorCode): StompCodecError {
  expect(c.errors, 'exactly one error').to.have.length(1);
  const error = c.errors[0]!;
  expect(error).to.be.instanceOf(StompCodecError);
  expect(error.name).to.equal('StompCodecError');
  expect(error.code).to.equal(code);
  expect(error.message).to.be.a('string').and.not.equal('');
  expect(c.parser.failed).to.equal(true);
  expect(c.parser.bufferedBytes).to.equal(0);
  return error;
}

function only(c: Collected): StompFrame {
  expect(c.errors.map((e) => `${e.code}: ${e.message}`)).to.deep.equal([]);
  expect(c.frames).to.have.length(1);
  return c.frames[0]!;
}

describe('stomp/parser', () => {
  describe('basic frames', () => {
    it('parses a STOMP 1.2 SEND frame: command, headers, body', () => {
      const c = parseChunks([b('SEND\ndestination:/queue/a\ncontent-type:text/plain\n\nhello\x00')]);
      expect(plain(only(c))).to.deep.equal({
        command: 'SEND',
        headers: [
          ['destination', '/queue/a'],
          ['content-type', 'text/plain'],
        ],
        body: 'hello',
      });
      expect(c.parser.failed).to.equal(false);
      expect(c.parser.bufferedBytes).to.equal(0);
    });

    it('parses a CONNECT frame (1.0 style, no accept-version)', () => {
      const c = parseChunks([b('CONNECT\nlogin:guest\npasscode:guest\n\n\x00')]);
      expect(plain(only(c))).to.deep.equal({
        command: 'CONNECT',
        headers: [
          ['login', 'guest'],
          ['passcode', 'guest'],
        ],
        body: '',
      });
    });

    it('parses a 1.1 CONNECT with accept-version and heart-beat', () => {
      const c = parseChunks([b('CONNECT\naccept-version:1.0,1.1\nhost:stomp.example\nheart-beat:10000,0\n\n\x00')], {}, '1.1');
      expect(plain(only(c)).headers).to.deep.equal([
        ['accept-version', '1.0,1.1'],
        ['host', 'stomp.example'],
        ['heart-beat', '10000,0'],
      ]);
    });

    it('parses a 1.2 STOMP frame', () => {
      const c = parseChunks([b('STOMP\naccept-version:1.2\nhost:h\n\n\x00')]);
      expect(only(c).command).to.equal('STOMP');
    });

    it('parses frames with no headers and an empty body', () => {
      const c = parseChunks([b('DISCONNECT\n\n\x00')]);
      const frame = only(c);
      expect(frame.command).to.equal('DISCONNECT');
      expect(Object.keys(frame.headers)).to.deep.equal([]);
      expect(frame.body).to.be.instanceOf(Buffer);
      expect(frame.body.length).to.equal(0);
    });

    it('accepts lower- and mixed-case commands (command must match /^[A-Za-z]+$/)', () => {
      const c = parseChunks([b('send\n\n\x00Ack\n\n\x00')]);
      expect(c.frames.map((f) => f.command)).to.deep.equal(['send', 'Ack']);
    });

    it('keeps header values verbatim: no trimming, empty values allowed, later colons are part of the value', () => {
      const c = parseChunks([b('SEND\n a : b \nempty:\nx:y:z\n\n\x00')], {}, '1.0');
      expect(plain(only(c)).headers).to.deep.equal([
        [' a ', ' b '],
        ['empty', ''],
        ['x', 'y:z'],
      ]);
    });

    it('decodes UTF-8 header names and values, even when a multi-byte char is split across chunks', () => {
      const bytes = Buffer.from('SEND\ndestination:/q/ünï€😀\nnàme:välue\n\nbödy\x00', 'utf8');
      for (let cut = 1; cut < bytes.length; cut++) {
        const frame = only(parseChunks(splitAt(bytes, [cut])));
        expect(frame.headers['destination']).to.equal('/q/ünï€😀');
        expect(frame.headers['nàme']).to.equal('välue');
        expect(frame.body.toString('utf8')).to.equal('bödy');
      }
    });

    it('returns headers that inherit nothing', () => {
      const frame = only(parseChunks([b('SEND\na:1\n\n\x00')]));
      expect(inheritsNothing(frame.headers)).to.equal(true);
      expect('toString' in frame.headers).to.equal(false);
      expect('constructor' in frame.headers).to.equal(false);
      expect('hasOwnProperty' in frame.headers).to.equal(false);
    });

    it('treats header names like __proto__, constructor and toString as plain keys', () => {
      const c = parseChunks([b('SEND\n__proto__:polluted\nconstructor:c\ntoString:t\nhasOwnProperty:h\n\n\x00')]);
      const frame = only(c);
      expect(inheritsNothing(frame.headers)).to.equal(true);
      expect(Object.keys(frame.headers)).to.deep.equal(['__proto__', 'constructor', 'toString', 'hasOwnProperty']);
      expect(frame.headers['__proto__']).to.equal('polluted');
      expect(frame.headers['constructor']).to.equal('c');
      expect(frame.headers['toString']).to.equal('t');
      expect(Object.getOwnPropertyDescriptor(frame.headers, '__proto__')?.value).to.equal('polluted');
      // Nothing leaked onto Object.prototype.
      expect(({} as Record<string, unknown>)['polluted']).to.equal(undefined);
      expect(Object.prototype).to.not.have.property('polluted');
    });

    it('keeps the first of repeated __proto__ / constructor headers too', () => {
      const frame = only(parseChunks([b('SEND\n__proto__:1\n__proto__:2\nconstructor:a\nconstructor:b\n\n\x00')]));
      expect(frame.headers['__proto__']).to.equal('1');
      expect(frame.headers['constructor']).to.equal('a');
    });

    it('uses the first occurrence of a repeated header', () => {
      const c = parseChunks([b('MESSAGE\nfoo:World\nfoo:Hello\nbar:1\nfoo:again\n\n\x00')]);
      expect(plain(only(c)).headers).to.deep.equal([
        ['foo', 'World'],
        ['bar', '1'],
      ]);
    });

    it('uses the first of repeated content-length headers to frame the body', () => {
      const c = parseChunks([b('SEND\ncontent-length:3\ncontent-length:10\n\na\x00b\x00')]);
      const frame = only(c);
      expect(frame.headers['content-length']).to.equal('3');
      expect(frame.body.toString('latin1')).to.equal('a\x00b');
    });

    it('compares repeated headers after unescaping (1.2): a\\cb and a:b are the same name', () => {
      const frame = only(parseChunks([b('SEND\na\\cb:first\na:b:second\n\n\x00')]));
      // `a:b:second` splits at the first colon: name `a`, value `b:second`.
      expect(plain(frame).headers).to.deep.equal([
        ['a:b', 'first'],
        ['a', 'b:second'],
      ]);
    });
  });

    it('reads names a byte away from the ones it knows as themselves, whole or cut anywhere', () => {
      // The parser matches common names and commands by their bytes before decoding
      // anything; a near miss, a name it knows spelt escaped, or one cut across chunks
      // must read exactly as any other name.
      const bytes = b(
        'SEND\ndestinatioN:1\ndestination:/q/a\ncontent-typf:2\ncontent\\ctype:3\nreceipts:4\nid:5\ni:6\nack:7\nACK:8\n\n\x00',
      );
      const expected = [
        ['destinatioN', '1'],
        ['destination', '/q/a'],
        ['content-typf', '2'],
        ['content:type', '3'],
        ['receipts', '4'],
        ['id', '5'],
        ['i', '6'],
        ['ack', '7'],
        ['ACK', '8'],
      ];
      for (let cut = 1; cut < bytes.length; cut++) {
        const frame = only(parseChunks(splitAt(bytes, [cut])));
        expect(frame.command).to.equal('SEND');
        expect(plain(frame).headers).to.deep.equal(expected);
      }
    });

    it('reads a command a byte away from a known one as itself', () => {
      for (const command of ['SENT', 'SENDS', 'send', 'CONNECTS', 'ABORTED']) {
        expect(only(parseChunks([b(`${command}\na:1\n\n\x00`)])).command).to.equal(command);
      }
    });

  describe('bodies', () => {
    it('reads a content-length body that contains NUL bytes (binary)', () => {
      const body = b('\x00\x01\x00\xff\x00\n\r\n\x00');
      const frame = only(parseChunks([Buffer.concat([b(`SEND\ncontent-length:${body.length}\n\n`), body, b('\x00')])]));
      expect(frame.body.equals(body)).to.equal(true);
      expect(frame.headers['content-length']).to.equal(String(body.length));
    });

    it('reads a body consisting only of NUL bytes', () => {
      const frame = only(parseChunks([b('MESSAGE\ncontent-length:4\n\n\x00\x00\x00\x00\x00')]));
      expect([...frame.body]).to.deep.equal([0, 0, 0, 0]);
    });

    it('reads every byte value 0..255 exactly when content-length is given', () => {
      const body = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const frame = only(parseChunks([b('SEND\ncontent-length:256\n\n'), body, b('\x00')]));
      expect(frame.body.equals(body)).to.equal(true);
    });

    it('accepts content-length:0 followed directly by the NUL', () => {
      const frame = only(parseChunks([b('SEND\ncontent-length:0\n\n\x00')]));
      expect(frame.body.length).to.equal(0);
    });

    it('accepts a content-length with leading zeros and surrounding whitespace', () => {
      const c = parseChunks([b('SEND\ncontent-length:005\n\nab\x00de\x00SEND\ncontent-length: 2 \n\nxy\x00')]);
      expect(c.errors).to.deep.equal([]);
      expect(c.frames.map((f) => f.body.toString('latin1'))).to.deep.equal(['ab\x00de', 'xy']);
    });

    it('ends a body without content-length at the first NUL', () => {
      const c = parseChunks([b('SEND\ndestination:/q\n\nhello\x00world\n\n\x00')]);
      // After the first NUL, "world\n\n\0" is a second frame with command "world".
      expect(c.errors).to.deep.equal([]);
      expect(c.frames.map(plain)).to.deep.equal([
        { command: 'SEND', headers: [['destination', '/q']], body: 'hello' },
        { command: 'world', headers: [], body: '' },
      ]);
    });

    it('keeps CR and LF bytes inside a NUL-terminated body', () => {
      const frame = only(parseChunks([b('SEND\n\nline1\r\nline2\n\n\r\x00')]));
      expect(frame.body.toString('latin1')).to.equal('line1\r\nline2\n\n\r');
    });
  });

  describe('line endings and heart-beats', () => {
    it('accepts \\r\\n line endings for command and headers (1.2)', () => {
      const c = parseChunks([b('SEND\r\ndestination:/q\r\ncontent-length:2\r\n\r\nhi\x00')]);
      expect(plain(only(c))).to.deep.equal({
        command: 'SEND',
        headers: [
          ['destination', '/q'],
          ['content-length', '2'],
        ],
        body: 'hi',
      });
    });

    it('accepts a mix of \\n and \\r\\n line endings in one frame', () => {
      const c = parseChunks([b('SEND\r\na:1\nb:2\r\n\n\x00')]);
      expect(plain(only(c)).headers).to.deep.equal([
        ['a', '1'],
        ['b', '2'],
      ]);
    });

    it('strips only one trailing CR of a header line; an inner CR stays in the value (1.0)', () => {
      const frame = only(parseChunks([b('SEND\na:x\ry\r\n\n\x00')], {}, '1.0'));
      expect(frame.headers['a']).to.equal('x\ry');
    });

    it('counts \\n heart-beats between frames and before the first one', () => {
      const c = parseChunks([b('\n\nSEND\n\n\x00\nACK\nid:1\n\n\x00\n\n\n')]);
      expect(c.errors).to.deep.equal([]);
      expect(c.frames.map((f) => f.command)).to.deep.equal(['SEND', 'ACK']);
      expect(c.heartbeats).to.equal(6);
    });

    it('counts a \\r\\n heart-beat once', () => {
      const c = parseChunks([b('\r\n\r\nSEND\n\n\x00\r\n')]);
      expect(c.frames).to.have.length(1);
      expect(c.heartbeats).to.equal(3);
    });

    it('counts \\r\\n heart-beats split between chunks once each', () => {
      const c = parseChunks([b('\r'), b('\n\r'), b('\n'), b('SEND\n\n\x00\r'), b('\n')]);
      expect(c.frames).to.have.length(1);
      expect(c.heartbeats).to.equal(3);
    });

    it('counts heart-beats that arrive with no frames at all', () => {
      const c = collector();
      for (let i = 0; i < 10; i++) c.parser.push(i % 2 === 0 ? '\n' : '\r\n');
      expect(c.heartbeats).to.equal(10);
      expect(c.frames).to.deep.equal([]);
      expect(c.errors).to.deep.equal([]);
      expect(c.parser.bufferedBytes).to.equal(0);
    });

    it('ignores a lone \\r between frames (deliberate) without counting a beat', () => {
      const c = parseChunks([b('\rSEND\n\n\x00\r\rACK\n\n\x00')]);
      expect(c.errors).to.deep.equal([]);
      expect(c.frames.map((f) => f.command)).to.deep.equal(['SEND', 'ACK']);
      expect(c.heartbeats).to.equal(0);
    });

    it('works without an onHeartbeat handler', () => {
      const frames: StompFrame[] = [];
      const parser = new StompParser({ onFrame: (f) => frames.push(f), onError: (e) => expect.fail(e.message) });
      parser.push('\n\r\nSEND\n\n\x00\n');
      expect(frames).to.have.length(1);
    });
  });

  describe('escaping per version', () => {
    it('1.2 unescapes \\\\ \\n \\r \\c in names and values', () => {
      const c = parseChunks([b('MESSAGE\nk\\cey\\n:v\\\\a\\nb\\rc\\cd\n\n\x00')]);
      expect(plain(only(c)).headers).to.deep.equal([['k:ey\n', 'v\\a\nb\rc:d']]);
    });

    it('1.2 unescapes a value consisting only of escapes, including \\\\n (backslash then n)', () => {
      const frame = only(parseChunks([b('SEND\na:\\\\n\\n\\\\\\c\n\n\x00')]));
      expect(frame.headers['a']).to.equal('\\n\n\\:');
    });

    it('1.1 unescapes \\\\ \\n \\c', () => {
      const frame = only(parseChunks([b('MESSAGE\nk\\cey:a\\\\b\\nc\\cd\n\n\x00')], {}, '1.1'));
      expect(plain(frame).headers).to.deep.equal([['k:ey', 'a\\b\nc:d']]);
    });

    it('1.1 rejects \\r as an undefined escape (ERR_STOMP_INVALID_ESCAPE)', () => {
      const c = parseChunks([b('MESSAGE\nk:a\\rb\n\n\x00')], {}, '1.1');
      expect(c.frames).to.deep.equal([]);
      expectError(c, 'ERR_STOMP_INVALID_ESCAPE');
    });

    it('1.0 performs no unescaping at all (even \\t is literal)', () => {
      const frame = only(parseChunks([b('MESSAGE\nk\\c:a\\\\b\\nc\\rd\\te\\\n\n\x00')], {}, '1.0'));
      expect(plain(frame).headers).to.deep.equal([['k\\c', 'a\\\\b\\nc\\rd\\te\\']]);
    });

    for (const version of ['1.0', '1.1', '1.2'] as const) {
      for (const command of ['CONNECT', 'CONNECTED', 'STOMP']) {
        it(`never unescapes ${command} headers (version ${version})`, () => {
          const c = parseChunks([b(`${command}\nlogin:a\\cb\npasscode:x\\ty\\\nk\\n:v\\r\n\n\x00`)], {}, version);
          expect(plain(only(c)).headers).to.deep.equal([
            ['login', 'a\\cb'],
            ['passcode', 'x\\ty\\'],
            ['k\\n', 'v\\r'],
          ]);
        });
      }
    }

    it('resumes unescaping for the frame after a CONNECT in the same chunk', () => {
      const c = parseChunks([b('CONNECT\nlogin:a\\cb\n\n\x00SEND\ndestination:a\\cb\n\n\x00')]);
      expect(c.frames.map((f) => f.headers['login'] ?? f.headers['destination'])).to.deep.equal(['a\\cb', 'a:b']);
    });

    it('is case-sensitive about the unescaped commands (a lowercase "connect" is unescaped)', () => {
      const frame = only(parseChunks([b('connect\nlogin:a\\cb\n\n\x00')]));
      expect(frame.headers['login']).to.equal('a:b');
    });

    for (const version of ['1.1', '1.2'] as const) {
      for (const [label, raw] of [
        ['\\t in a value', 'SEND\nk:a\\tb\n\n\x00'],
        ['\\t in a name', 'SEND\nk\\t:v\n\n\x00'],
        ['\\C (escapes are case-sensitive)', 'SEND\nk:\\C\n\n\x00'],
        ['a trailing lone backslash in a value', 'SEND\nk:abc\\\n\n\x00'],
        ['a trailing lone backslash in a name', 'SEND\nk\\:v\n\n\x00'],
        ['\\0', 'SEND\nk:\\0\n\n\x00'],
        ['\\ followed by a space', 'SEND\nk:\\ x\n\n\x00'],
      ] as const) {
        it(`${version}: ${label} is ERR_STOMP_INVALID_ESCAPE`, () => {
          const c = parseChunks([b(raw)], {}, version);
          expect(c.frames).to.deep.equal([]);
          expectError(c, 'ERR_STOMP_INVALID_ESCAPE');
        });
      }
    }

    it('honours a version change made between frames (e.g. by the session after CONNECT)', () => {
      const c = collector();
      c.parser.version = '1.0';
      c.parser.push(b('SEND\nk:a\\tb\n\n\x00'));
      c.parser.version = '1.2';
      c.parser.push(b('SEND\nk:a\\cb\n\n\x00'));
      c.parser.version = '1.1';
      c.parser.push(b('SEND\nk:a\\rb\n\n\x00'));
      expect(c.frames.map((f) => f.headers['k'])).to.deep.equal(['a\\tb', 'a:b']);
      expectError(c, 'ERR_STOMP_INVALID_ESCAPE');
    });

    it('honours a version change made inside onFrame for the next frame in the same chunk', () => {
      const frames: StompFrame[] = [];
      const parser: StompParser = new StompParser({
        onFrame: (f) => {
          frames.push(f);
          parser.version = '1.0';
        },
        onError: (e) => expect.fail(e.message),
      });
      parser.push(b('SEND\nk:a\\cb\n\n\x00SEND\nk:a\\cb\n\n\x00'));
      expect(frames.map((f) => f.headers['k'])).to.deep.equal(['a:b', 'a\\cb']);
    });

    it('defaults to version 1.2', () => {
      const c = collector();
      expect(c.parser.version).to.equal('1.2');
    });
  });

  describe('streaming', () => {
    const frames = [
      b('SEND\r\ndestination:/queue/a\r\nreceipt:r-1\r\nk\\ce\\ny:v\\\\a\\rl\r\ncontent-length:7\r\n\r\n\x00a\nb\x00\r\n\x00'),
      b('MESSAGE\ndestination:/topic/t\nsubscription:0\nmessage-id:007\n\nno content length\x00'),
      b('CONNECT\naccept-version:1.2\nhost:h\nlogin:a\\cb\n\n\x00'),
      Buffer.from('SEND\nnàme:välue😀\ncontent-length:5\n\nbödy\x00', 'utf8'),
    ];

    frames.forEach((bytes, index) => {
      it(`yields the same frame #${index} when split into two chunks at every byte position`, () => {
        const whole = only(parseChunks([bytes]));
        const expected = plain(whole);
        for (let cut = 0; cut <= bytes.length; cut++) {
          const c = parseChunks(splitAt(bytes, [cut]));
          expect(c.errors, `cut at ${cut}`).to.deep.equal([]);
          expect(c.frames.map(plain), `cut at ${cut}`).to.deep.equal([expected]);
          expect(c.parser.bufferedBytes, `cut at ${cut}`).to.equal(0);
        }
      });

      it(`yields the same frame #${index} when fed one byte at a time`, () => {
        const expected = plain(only(parseChunks([bytes])));
        const c = parseChunks(bytewise(bytes));
        expect(c.frames.map(plain)).to.deep.equal([expected]);
        expect(c.errors).to.deep.equal([]);
      });

      it(`yields the same frame #${index} when split at every pair of positions into three chunks`, () => {
        const expected = plain(only(parseChunks([bytes])));
        for (let i = 0; i <= bytes.length; i += 3) {
          for (let j = i; j <= bytes.length; j += 2) {
            const c = parseChunks(splitAt(bytes, [i, j]));
            expect(c.frames.map(plain), `cuts ${i},${j}`).to.deep.equal([expected]);
          }
        }
      });
    });

    it('yields several frames (with heart-beats between them) from one chunk, in order', () => {
      const all = Buffer.concat([b('\n'), frames[0]!, b('\r\n'), frames[1]!, frames[2]!, b('\n\n'), frames[3]!]);
      const expected = frames.map((f) => plain(only(parseChunks([f]))));
      const c = parseChunks([all]);
      expect(c.errors).to.deep.equal([]);
      expect(c.frames.map(plain)).to.deep.equal(expected);
      expect(c.heartbeats).to.equal(4);

      // And the same byte-by-byte and at every single split point.
      const bytewiseRun = parseChunks(bytewise(all));
      expect(bytewiseRun.frames.map(plain)).to.deep.equal(expected);
      expect(bytewiseRun.heartbeats).to.equal(4);
      for (let cut = 0; cut <= all.length; cut++) {
        const split = parseChunks(splitAt(all, [cut]));
        expect(split.frames.map(plain), `cut at ${cut}`).to.deep.equal(expected);
        expect(split.heartbeats, `cut at ${cut}`).to.equal(4);
      }
    });

    it('accepts string chunks as well as Buffers (strings are UTF-8 encoded)', () => {
      const text = 'SEND\ndestination:/q/é\ncontent-length:3\n\nhé\x00MESSAGE\nx:y\n\nplain\x00';
      const fromString = parseChunks([text]);
      const fromBuffer = parseChunks([Buffer.from(text, 'utf8')]);
      expect(fromString.errors).to.deep.equal([]);
      expect(fromString.frames.map(plain)).to.deep.equal(fromBuffer.frames.map(plain));
      expect(fromString.frames[0]!.headers['destination']).to.equal('/q/é');
      expect(fromString.frames[0]!.body.toString('utf8')).to.equal('hé');
      expect(fromString.frames[1]!.body.toString()).to.equal('plain');
    });

    it('accepts a mix of string and Buffer chunks', () => {
      const c = parseChunks(['SEN', b('D\ncontent-'), 'length:2\n', b('\nab'), '\x00']);
      expect(plain(only(c))).to.deep.equal({ command: 'SEND', headers: [['content-length', '2']], body: 'ab' });
    });

    it('accepts empty chunks anywhere', () => {
      const c = parseChunks(['', b(''), 'SEND\n', '', 'a:1\n\n', Buffer.alloc(0), 'x', '', '\x00', '']);
      expect(plain(only(c))).to.deep.equal({ command: 'SEND', headers: [['a', '1']], body: 'x' });
    });

    it('reports bufferedBytes for a partial line and a partial body, and 0 after the frame', () => {
      const c = collector();
      c.parser.push('SEND\ndesti');
      expect(c.parser.bufferedBytes).to.equal(5);
      c.parser.push('nation:/q\ncontent-length:10\n\n0123');
      expect(c.parser.bufferedBytes).to.equal(4);
      c.parser.push('456789');
      expect(c.parser.bufferedBytes).to.equal(10);
      c.parser.push('\x00');
      expect(c.parser.bufferedBytes).to.equal(0);
      expect(only(c).body.toString()).to.equal('0123456789');
    });
  });

  describe('limits', () => {
    it('uses the documented defaults', () => {
      expect({ ...DEFAULT_FRAME_LIMITS }).to.deep.equal({
        maxFrameSize: 1024 * 1024 + 64 * 1024,
        maxHeaders: 64,
        maxHeaderLineLength: 8192,
        maxBodySize: 1024 * 1024,
      });
      expect(Object.isFrozen(DEFAULT_FRAME_LIMITS)).to.equal(true);
    });

    describe('maxHeaders', () => {
      it('accepts exactly maxHeaders headers', () => {
        const c = parseChunks([b('SEND\na:1\nb:2\nc:3\n\n\x00')], { maxHeaders: 3 });
        expect(Object.keys(only(c).headers)).to.have.length(3);
      });

      it('rejects one header more with ERR_STOMP_TOO_MANY_HEADERS', () => {
        const c = parseChunks([b('SEND\na:1\nb:2\nc:3\nd:4\n\n\x00')], { maxHeaders: 3 });
        expect(c.frames).to.deep.equal([]);
        expectError(c, 'ERR_STOMP_TOO_MANY_HEADERS');
      });

      it('counts repeated headers towards the limit', () => {
        const c = parseChunks([b('SEND\na:1\na:2\na:3\n\n\x00')], { maxHeaders: 2 });
        expectError(c, 'ERR_STOMP_TOO_MANY_HEADERS');
      });

      it('enforces the default of 64', () => {
        const lines = Array.from({ length: 65 }, (_, i) => `h${i}:v\n`).join('');
        expectError(parseChunks([b(`SEND\n${lines}\n\x00`)]), 'ERR_STOMP_TOO_MANY_HEADERS');
        const ok = Array.from({ length: 64 }, (_, i) => `h${i}:v\n`).join('');
        expect(Object.keys(only(parseChunks([b(`SEND\n${ok}\n\x00`)])).headers)).to.have.length(64);
      });

      it('rejects endless headers fed one per chunk, with bounded buffering', () => {
        const c = collector({ maxHeaders: 50 });
        c.parser.push('SEND\n');
        let pushes = 0;
        while (!c.parser.failed && pushes < 1000) {
          c.parser.push(`h${pushes}:v\n`);
          expect(c.parser.bufferedBytes).to.equal(0);
          pushes++;
        }
        expect(pushes).to.equal(51);
        expectError(c, 'ERR_STOMP_TOO_MANY_HEADERS');
      });
    });

    describe('maxHeaderLineLength', () => {
      it('accepts a header line of exactly maxHeaderLineLength bytes (excluding the EOL), with \\n or \\r\\n', () => {
        const line = 'k:' + 'v'.repeat(18); // 20 bytes
        expect(only(parseChunks([b(`SEND\n${line}\n\n\x00`)], { maxHeaderLineLength: 20 })).headers['k']).to.have.length(18);
        expect(only(parseChunks([b(`SEND\r\n${line}\r\n\r\n\x00`)], { maxHeaderLineLength: 20 })).headers['k']).to.have.length(18);
        // Also byte by byte, where the CR is held before its LF arrives.
        const c = parseChunks(bytewise(b(`SEND\r\n${line}\r\n\r\n\x00`)), { maxHeaderLineLength: 20 });
        expect(only(c).headers['k']).to.have.length(18);
      });

      it('rejects a header line one byte longer with ERR_STOMP_HEADER_LINE_TOO_LONG', () => {
        const line = 'k:' + 'v'.repeat(19); // 21 bytes
        expectError(parseChunks([b(`SEND\n${line}\n\n\x00`)], { maxHeaderLineLength: 20 }), 'ERR_STOMP_HEADER_LINE_TOO_LONG');
        expectError(parseChunks([b(`SEND\r\n${line}\r\n\r\n\x00`)], { maxHeaderLineLength: 20 }), 'ERR_STOMP_HEADER_LINE_TOO_LONG');
      });

      it('counts the line length in bytes, not characters', () => {
        const line = 'k:' + '€'.repeat(6); // 2 + 18 bytes
        expect(only(parseChunks([`SEND\n${line}\n\n\x00`], { maxHeaderLineLength: 20 })).headers['k']).to.equal('€'.repeat(6));
        expectError(parseChunks([`SEND\n${line}é\n\n\x00`], { maxHeaderLineLength: 21 }), 'ERR_STOMP_HEADER_LINE_TOO_LONG');
      });

      it('applies to the command line too', () => {
        expectError(parseChunks([b('SUBSCRIBEX\n\n\x00')], { maxHeaderLineLength: 9 }), 'ERR_STOMP_HEADER_LINE_TOO_LONG');
        expect(only(parseChunks([b('SUBSCRIBE\n\n\x00')], { maxHeaderLineLength: 9 })).command).to.equal('SUBSCRIBE');
      });

      it('rejects an endless header line fed in many small chunks, with bounded buffering', () => {
        const limit = 100;
        const c = collector({ maxHeaderLineLength: limit });
        c.parser.push('SEND\nk:');
        let pushed = 0;
        while (!c.parser.failed && pushed < 10_000) {
          c.parser.push('vvv');
          pushed++;
          // The line itself plus room for the CR of a CRLF line end.
          expect(c.parser.bufferedBytes).to.be.at.most(limit + 1);
        }
        expect(pushed).to.be.lessThan(40);
        expect(c.frames).to.deep.equal([]);
        expectError(c, 'ERR_STOMP_HEADER_LINE_TOO_LONG');
      });

      it('rejects an endless command line fed one byte at a time, with bounded buffering', () => {
        const limit = 64;
        const c = collector({ maxHeaderLineLength: limit });
        let pushed = 0;
        while (!c.parser.failed && pushed < 10_000) {
          c.parser.push('A');
          pushed++;
          expect(c.parser.bufferedBytes).to.be.at.most(limit + 1);
        }
        expect(pushed).to.be.at.most(limit + 2);
        expectError(c, 'ERR_STOMP_HEADER_LINE_TOO_LONG');
      });

      it('enforces the default of 8192 bytes', () => {
        expect(only(parseChunks([b(`SEND\nk:${'v'.repeat(8190)}\n\n\x00`)])).headers['k']).to.have.length(8190);
        expectError(parseChunks([b(`SEND\nk:${'v'.repeat(8191)}\n\n\x00`)]), 'ERR_STOMP_HEADER_LINE_TOO_LONG');
      });
    });

    describe('maxBodySize', () => {
      it('accepts a NUL-terminated body of exactly maxBodySize bytes', () => {
        const frame = only(parseChunks([b(`SEND\n\n${'x'.repeat(32)}\x00`)], { maxBodySize: 32 }));
        expect(frame.body.length).to.equal(32);
      });

      it('rejects a NUL-terminated body one byte larger with ERR_STOMP_BODY_TOO_LARGE', () => {
        expectError(parseChunks([b(`SEND\n\n${'x'.repeat(33)}\x00`)], { maxBodySize: 32 }), 'ERR_STOMP_BODY_TOO_LARGE');
      });

      it('accepts content-length equal to maxBodySize', () => {
        const frame = only(parseChunks([b(`SEND\ncontent-length:32\n\n${'\x00'.repeat(32)}\x00`)], { maxBodySize: 32 }));
        expect(frame.body.length).to.equal(32);
      });

      it('rejects a content-length above maxBodySize as soon as the headers end, before any body byte', () => {
        const c = collector({ maxBodySize: 32 });
        c.parser.push(b('SEND\ncontent-length:33\n'));
        expect(c.errors).to.deep.equal([]);
        c.parser.push(b('\n'));
        expectError(c, 'ERR_STOMP_BODY_TOO_LARGE');
      });

      it('rejects a huge content-length immediately (does not wait for or buffer the body)', () => {
        const c = collector();
        c.parser.push(b('SEND\ncontent-length:999999999999999\n\n'));
        expectError(c, 'ERR_STOMP_BODY_TOO_LARGE');
        expect(c.parser.bufferedBytes).to.equal(0);
      });

      it('rejects an endless NUL-terminated body fed in many small chunks, with bounded buffering', () => {
        const limit = 1000;
        const c = collector({ maxBodySize: limit });
        c.parser.push('SEND\ndestination:/q\n\n');
        let pushed = 0;
        while (!c.parser.failed && pushed < 100_000) {
          c.parser.push(b('0123456'));
          pushed++;
          expect(c.parser.bufferedBytes).to.be.at.most(limit);
        }
        expect(pushed).to.equal(Math.floor(limit / 7) + 1);
        expect(c.frames).to.deep.equal([]);
        expectError(c, 'ERR_STOMP_BODY_TOO_LARGE');
      });

      it('enforces the default of 1 MiB for NUL-terminated bodies', () => {
        const c = collector();
        c.parser.push('SEND\n\n');
        const chunk = Buffer.alloc(64 * 1024, 0x61);
        let pushed = 0;
        while (!c.parser.failed && pushed < 100) {
          c.parser.push(chunk);
          pushed++;
          expect(c.parser.bufferedBytes).to.be.at.most(1024 * 1024);
        }
        expect(pushed).to.equal(17);
        expectError(c, 'ERR_STOMP_BODY_TOO_LARGE');
      });
    });

    describe('maxFrameSize', () => {
      it('counts command, header lines (with EOLs), body and the NUL', () => {
        // "SEND\n" 5 + "content-length:3\n" 17 + "\n" 1 + "abc" 3 + NUL 1 = 27
        const raw = b('SEND\ncontent-length:3\n\nabc\x00');
        expect(raw.length).to.equal(27);
        expect(only(parseChunks([raw], { maxFrameSize: 27 })).body.toString()).to.equal('abc');
        expectError(parseChunks([raw], { maxFrameSize: 26 }), 'ERR_STOMP_FRAME_TOO_LARGE');
      });

      it('counts the terminating NUL of a frame without content-length too (same bound for both framings)', () => {
        // "SEND\n" 5 + "\n" 1 + "abc" 3 + NUL 1 = 10
        const raw = b('SEND\n\nabc\x00');
        expect(only(parseChunks([raw], { maxFrameSize: 10 })).body.toString()).to.equal('abc');
        expectError(parseChunks([raw], { maxFrameSize: 9 }), 'ERR_STOMP_FRAME_TOO_LARGE');
        expectError(parseChunks(bytewise(raw), { maxFrameSize: 9 }), 'ERR_STOMP_FRAME_TOO_LARGE');
        // An empty body: "SEND\n\n\0" is 7 bytes.
        expect(only(parseChunks([b('SEND\n\n\x00')], { maxFrameSize: 7 })).command).to.equal('SEND');
        expectError(parseChunks([b('SEND\n\n\x00')], { maxFrameSize: 6 }), 'ERR_STOMP_FRAME_TOO_LARGE');
        // The same with content-length:0: "SEND\ncontent-length:0\n\n\0" is 24 bytes.
        expect(only(parseChunks([b('SEND\ncontent-length:0\n\n\x00')], { maxFrameSize: 24 })).command).to.equal('SEND');
        expectError(parseChunks([b('SEND\ncontent-length:0\n\n\x00')], { maxFrameSize: 23 }), 'ERR_STOMP_FRAME_TOO_LARGE');
      });

      it('rejects a content-length that would make the frame too large as soon as the headers end', () => {
        const c = collector({ maxFrameSize: 100, maxBodySize: 1000 });
        c.parser.push(b('SEND\ncontent-length:500\n'));
        expect(c.errors).to.deep.equal([]);
        c.parser.push(b('\n'));
        expectError(c, 'ERR_STOMP_FRAME_TOO_LARGE');
      });

      it('rejects too many header bytes (lines each within their own limit) with ERR_STOMP_FRAME_TOO_LARGE', () => {
        const c = collector({ maxFrameSize: 200, maxHeaders: 1000 });
        c.parser.push('SEND\n');
        let pushed = 0;
        while (!c.parser.failed && pushed < 1000) {
          c.parser.push(`header-${pushed}:value\n`);
          pushed++;
          expect(c.parser.bufferedBytes).to.be.at.most(200);
        }
        expect(pushed).to.be.lessThan(20);
        expectError(c, 'ERR_STOMP_FRAME_TOO_LARGE');
      });

      it('rejects a partial header line that would overflow the frame, byte by byte', () => {
        const c = collector({ maxFrameSize: 50, maxHeaderLineLength: 1000 });
        c.parser.push('SEND\nk:');
        let pushed = 0;
        while (!c.parser.failed && pushed < 1000) {
          c.parser.push('v');
          pushed++;
          expect(c.parser.bufferedBytes).to.be.at.most(50);
        }
        expect(pushed).to.be.lessThan(50);
        expectError(c, 'ERR_STOMP_FRAME_TOO_LARGE');
      });

      it('rejects an endless NUL-terminated body (within maxBodySize) fed in small chunks, with bounded buffering', () => {
        const limit = 500;
        const c = collector({ maxFrameSize: limit, maxBodySize: 10_000 });
        c.parser.push('SEND\ndestination:/q\n\n');
        let pushed = 0;
        while (!c.parser.failed && pushed < 100_000) {
          c.parser.push(b('abcdefghijk'));
          pushed++;
          expect(c.parser.bufferedBytes).to.be.at.most(limit);
        }
        expect(pushed).to.be.lessThan(50);
        expect(c.frames).to.deep.equal([]);
        expectError(c, 'ERR_STOMP_FRAME_TOO_LARGE');
      });

      it('resets the frame size budget for each frame', () => {
        const one = b('SEND\ncontent-length:10\n\n0123456789\x00');
        const c = parseChunks([Buffer.concat([one, one, one, one, one])], { maxFrameSize: one.length });
        expect(c.errors).to.deep.equal([]);
        expect(c.frames).to.have.length(5);
      });
    });

    it('accepts a 16 MiB binary body fed in 64 KiB chunks when the limits allow it, with exact bytes', function () {
      this.timeout(60_000);
      const size = 16 * 1024 * 1024;
      const body = Buffer.allocUnsafe(size);
      // Deterministic pseudo-random bytes with plenty of NULs, CRs and LFs.
      let x = 0x12345678;
      for (let i = 0; i < size; i++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        body[i] = (x >>> 24) % 5 === 0 ? 0 : x >>> 24;
      }
      const raw = Buffer.concat([b(`SEND\ndestination:/q/big\ncontent-length:${size}\n\n`), body, b('\x00\n')]);
      const c = collector({ maxBodySize: size, maxFrameSize: size + 4096 });
      const chunkSize = 64 * 1024;
      for (let i = 0; i < raw.length; i += chunkSize) {
        // Copy each chunk, as a transport would hand over fresh buffers.
        c.parser.push(Buffer.from(raw.subarray(i, i + chunkSize)));
        expect(c.parser.bufferedBytes).to.be.at.most(size);
      }
      const frame = only(c);
      expect(frame.command).to.equal('SEND');
      expect(frame.headers['content-length']).to.equal(String(size));
      expect(frame.body.length).to.equal(size);
      expect(frame.body.equals(body)).to.equal(true);
      expect(c.heartbeats).to.equal(1);
      expect(c.parser.bufferedBytes).to.equal(0);
    });

    it('rejects the same 16 MiB body under the default limits at the headers', () => {
      const c = collector();
      c.parser.push(b(`SEND\ncontent-length:${16 * 1024 * 1024}\n\n`));
      expectError(c, 'ERR_STOMP_BODY_TOO_LARGE');
    });
  });

  describe('malformed input', () => {
    const cases: Array<[string, string, StompCodecErrorCode]> = [
      ['a header line without a colon', 'SEND\ndestination\n\n\x00', 'ERR_STOMP_MALFORMED_FRAME'],
      ['an empty header name', 'SEND\n:value\n\n\x00', 'ERR_STOMP_MALFORMED_FRAME'],
      ['an empty header name with an empty value', 'SEND\n:\n\n\x00', 'ERR_STOMP_MALFORMED_FRAME'],
      ['a command with a space', 'SEND NOW\n\n\x00', 'ERR_STOMP_MALFORMED_FRAME'],
      ['a command with a trailing space', 'SEND \n\n\x00', 'ERR_STOMP_MALFORMED_FRAME'],
      ['a command with a leading space', ' SEND\n\n\x00', 'ERR_STOMP_MALFORMED_FRAME'],
      ['a command with digits', 'SEND2\n\n\x00', 'ERR_STOMP_MALFORMED_FRAME'],
      ['a command with punctuation', 'SEND-IT\n\n\x00', 'ERR_STOMP_MALFORMED_FRAME'],
      ['a command with non-ASCII letters', 'SÉND\n\n\x00', 'ERR_STOMP_MALFORMED_FRAME'],
      ['a command line that is a header', 'destination:/q\n\n\x00', 'ERR_STOMP_MALFORMED_FRAME'],
      ['a NUL where a command should start', '\x00SEND\n\n\x00', 'ERR_STOMP_MALFORMED_FRAME'],
      ['HTTP instead of STOMP', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'ERR_STOMP_MALFORMED_FRAME'],
      ['content-length "abc"', 'SEND\ncontent-length:abc\n\n\x00', 'ERR_STOMP_INVALID_CONTENT_LENGTH'],
      ['content-length "-1"', 'SEND\ncontent-length:-1\n\n\x00', 'ERR_STOMP_INVALID_CONTENT_LENGTH'],
      ['content-length "+1"', 'SEND\ncontent-length:+1\n\nx\x00', 'ERR_STOMP_INVALID_CONTENT_LENGTH'],
      ['content-length ""', 'SEND\ncontent-length:\n\n\x00', 'ERR_STOMP_INVALID_CONTENT_LENGTH'],
      ['content-length "1.5"', 'SEND\ncontent-length:1.5\n\nx\x00', 'ERR_STOMP_INVALID_CONTENT_LENGTH'],
      ['content-length "1e3"', 'SEND\ncontent-length:1e3\n\nx\x00', 'ERR_STOMP_INVALID_CONTENT_LENGTH'],
      ['content-length "0x10"', 'SEND\ncontent-length:0x10\n\nx\x00', 'ERR_STOMP_INVALID_CONTENT_LENGTH'],
      ['content-length "1 2"', 'SEND\ncontent-length:1 2\n\nx\x00', 'ERR_STOMP_INVALID_CONTENT_LENGTH'],
      ['content-length with 16 digits', 'SEND\ncontent-length:1000000000000000\n\n\x00', 'ERR_STOMP_INVALID_CONTENT_LENGTH'],
      ['content-length body not followed by NUL', 'SEND\ncontent-length:3\n\nabcd\x00', 'ERR_STOMP_MISSING_NUL'],
      ['content-length:0 followed by a body byte', 'SEND\ncontent-length:0\n\nx\x00', 'ERR_STOMP_MISSING_NUL'],
      ['content-length body followed by a newline', 'SEND\ncontent-length:2\n\nab\n\x00', 'ERR_STOMP_MISSING_NUL'],
    ];

    for (const [label, raw, code] of cases) {
      it(`${label} → ${code}`, () => {
        const c = parseChunks([b(raw)]);
        expect(c.frames).to.deep.equal([]);
        expectError(c, code);
      });

      it(`${label} → ${code} (fed one byte at a time)`, () => {
        const c = parseChunks(bytewise(b(raw)));
        expect(c.frames).to.deep.equal([]);
        expectError(c, code);
      });
    }

    it('reports the content-length error only once the headers end (the first content-length counts)', () => {
      const c = collector();
      c.parser.push(b('SEND\ncontent-length:abc\n'));
      expect(c.errors).to.deep.equal([]);
      c.parser.push(b('\n'));
      expectError(c, 'ERR_STOMP_INVALID_CONTENT_LENGTH');
    });

    it('reports MISSING_NUL as soon as the byte after the body arrives', () => {
      const c = collector();
      c.parser.push(b('SEND\ncontent-length:3\n\nabc'));
      expect(c.errors).to.deep.equal([]);
      c.parser.push(b('X'));
      expectError(c, 'ERR_STOMP_MISSING_NUL');
    });

    it('emits frames before the error, then ignores all further input', () => {
      const c = parseChunks([b('SEND\n\nok\x00BAD LINE\n\n\x00SEND\n\nlost\x00')]);
      expect(c.frames.map(plain)).to.deep.equal([{ command: 'SEND', headers: [], body: 'ok' }]);
      expectError(c, 'ERR_STOMP_MALFORMED_FRAME');
      for (const more of ['SEND\n\nafter\x00', '\n\n', '\x00\x00', 'garbage', b('\xff\xfe')]) {
        expect(() => c.parser.push(more)).to.not.throw();
      }
      expect(c.frames).to.have.length(1);
      expect(c.errors).to.have.length(1);
      expect(c.heartbeats).to.equal(0);
      expect(c.parser.failed).to.equal(true);
      expect(c.parser.bufferedBytes).to.equal(0);
    });

    it('does not throw out of push() for any of the errors', () => {
      const parser = new StompParser({ onFrame: () => {}, onError: () => {} }, { maxHeaders: 1 });
      expect(() => parser.push('SEND\na:1\nb:2\n\n\x00')).to.not.throw();
      expect(parser.failed).to.equal(true);
    });

    it('is not failed before any error', () => {
      const c = collector();
      expect(c.parser.failed).to.equal(false);
      expect(c.parser.bufferedBytes).to.equal(0);
      c.parser.push('SEND\n\nx\x00');
      expect(c.parser.failed).to.equal(false);
    });

    it('lets exceptions thrown by handlers propagate (they are not codec errors)', () => {
      const parser = new StompParser({
        onFrame: () => {
          throw new RangeError('handler bug');
        },
        onError: () => expect.fail('not a codec error'),
      });
      expect(() => parser.push('SEND\n\n\x00')).to.throw(RangeError, 'handler bug');
    });
  });
});

import { expect } from 'chai';
import { HEARTBEAT_EOL, createHeaders, serializeFrame, type OutgoingHeaders } from '../../lib/stomp/index.js';
import { b, parseChunks, plain } from './helpers.js';
import { inheritsNothing } from '../helpers/inherits-nothing.js';

/** The serialised bytes as a latin1 string, so NULs and every byte are visible in diffs. */
function bytesOf(...args: Parameters<typeof serializeFrame>): string {
  const out = serializeFrame(...args);
  expect(out).to.be.instanceOf(Buffer);
  return out.toString('latin1');
}

describe('stomp/serializer', () => {
  describe('frame layout', () => {
    it('writes command, headers, content-length, blank line, body and NUL', () => {
      expect(bytesOf({ command: 'MESSAGE', headers: { destination: '/q', 'message-id': 'm1' }, body: 'hello' })).to.equal(
        'MESSAGE\ndestination:/q\nmessage-id:m1\ncontent-length:5\n\nhello\x00',
      );
    });

    it('writes no content-length when there is no body', () => {
      expect(bytesOf({ command: 'RECEIPT', headers: { 'receipt-id': '77' } })).to.equal('RECEIPT\nreceipt-id:77\n\n\x00');
    });

    it('writes content-length:0 for an empty body (string or Buffer)', () => {
      expect(bytesOf({ command: 'MESSAGE', body: '' })).to.equal('MESSAGE\ncontent-length:0\n\n\x00');
      expect(bytesOf({ command: 'MESSAGE', body: Buffer.alloc(0) })).to.equal('MESSAGE\ncontent-length:0\n\n\x00');
    });

    it('writes a frame with neither headers nor body', () => {
      expect(bytesOf({ command: 'DISCONNECT' })).to.equal('DISCONNECT\n\n\x00');
      expect(bytesOf({ command: 'DISCONNECT', headers: {} })).to.equal('DISCONNECT\n\n\x00');
    });

    it('ends with exactly one NUL and has the exact length', () => {
      const out = serializeFrame({ command: 'SEND', headers: { a: '1' }, body: 'xyz' });
      expect(out.length).to.equal('SEND\na:1\ncontent-length:3\n\nxyz\x00'.length);
      expect(out[out.length - 1]).to.equal(0);
      expect(out.indexOf(0)).to.equal(out.length - 1);
    });

    it('copies a binary Buffer body (with NULs) exactly and counts it in content-length', () => {
      const body = b('\x00\x01\x00\xff\n\r\x00');
      const out = serializeFrame({ command: 'MESSAGE', headers: { destination: '/q' }, body });
      expect(out.toString('latin1')).to.equal('MESSAGE\ndestination:/q\ncontent-length:7\n\n\x00\x01\x00\xff\n\r\x00\x00');
      expect(out.subarray(out.length - 8, out.length - 1).equals(body)).to.equal(true);
    });

    it('encodes a string body as UTF-8 and counts bytes, not characters', () => {
      const out = serializeFrame({ command: 'MESSAGE', body: 'é€😀' });
      expect(out.equals(Buffer.from('MESSAGE\ncontent-length:9\n\né€😀\x00', 'utf8'))).to.equal(true);
    });

    it('encodes UTF-8 header names and values', () => {
      const out = serializeFrame({ command: 'MESSAGE', headers: { 'nàme': 'välue€' } });
      expect(out.equals(Buffer.from('MESSAGE\nnàme:välue€\n\n\x00', 'utf8'))).to.equal(true);
    });

    it('keeps the caller header order', () => {
      expect(bytesOf({ command: 'MESSAGE', headers: { z: '1', a: '2', m: '3' } })).to.equal('MESSAGE\nz:1\na:2\nm:3\n\n\x00');
    });

    it('ignores a caller content-length and writes the real one', () => {
      expect(bytesOf({ command: 'SEND', headers: { 'content-length': 99, a: 'b' }, body: 'abc' })).to.equal(
        'SEND\na:b\ncontent-length:3\n\nabc\x00',
      );
      expect(bytesOf({ command: 'SEND', headers: { 'content-length': '1' }, body: b('\x00\x00') })).to.equal(
        'SEND\ncontent-length:2\n\n\x00\x00\x00',
      );
    });

    it('drops a caller content-length when there is no body', () => {
      expect(bytesOf({ command: 'SEND', headers: { 'content-length': '5' } })).to.equal('SEND\n\n\x00');
    });

    it('skips undefined header values', () => {
      const headers: OutgoingHeaders = { a: '1', b: undefined, c: '3', receipt: undefined };
      expect(bytesOf({ command: 'SEND', headers })).to.equal('SEND\na:1\nc:3\n\n\x00');
    });

    it('keeps empty-string header values', () => {
      expect(bytesOf({ command: 'SEND', headers: { a: '' } })).to.equal('SEND\na:\n\n\x00');
    });

    it('stringifies numeric header values', () => {
      expect(bytesOf({ command: 'MESSAGE', headers: { a: 0, b: 42, c: -7, d: 1.5, e: 1e21 } })).to.equal(
        'MESSAGE\na:0\nb:42\nc:-7\nd:1.5\ne:1e+21\n\n\x00',
      );
    });

    it('defaults to version 1.2', () => {
      const frame = { command: 'MESSAGE', headers: { k: 'a\rb' } };
      expect(serializeFrame(frame).equals(serializeFrame(frame, '1.2'))).to.equal(true);
      expect(bytesOf(frame)).to.equal('MESSAGE\nk:a\\rb\n\n\x00');
    });

    it('accepts headers made by createHeaders, including __proto__ as a name', () => {
      const headers = createHeaders({ constructor: 'y' });
      headers['__proto__'] = 'x'; // an own key: nothing inherited
      expect(inheritsNothing(headers)).to.equal(true);
      expect(bytesOf({ command: 'MESSAGE', headers })).to.equal('MESSAGE\nconstructor:y\n__proto__:x\n\n\x00');
    });

    it('does not mutate the caller frame', () => {
      const headers = { 'content-length': 1, a: 'x:y' };
      const body = Buffer.from('abc');
      const frame = { command: 'SEND', headers, body };
      serializeFrame(frame);
      expect(frame).to.deep.equal({ command: 'SEND', headers: { 'content-length': 1, a: 'x:y' }, body: Buffer.from('abc') });
    });

    it('exports a single-LF heart-beat', () => {
      expect(HEARTBEAT_EOL.toString('latin1')).to.equal('\n');
    });
  });

  describe('escaping per version', () => {
    const headers = { 'we:ird\nname': 'a:b\nc\rd\\e' };

    it('1.2 escapes \\\\ \\n \\r and : in names and values', () => {
      expect(bytesOf({ command: 'MESSAGE', headers }, '1.2')).to.equal('MESSAGE\nwe\\cird\\nname:a\\cb\\nc\\rd\\\\e\n\n\x00');
    });

    it('1.1 escapes \\\\ \\n and : but writes \\r raw (1.1 has no \\r escape)', () => {
      expect(bytesOf({ command: 'MESSAGE', headers }, '1.1')).to.equal('MESSAGE\nwe\\cird\\nname:a\\cb\\nc\rd\\\\e\n\n\x00');
    });

    it('1.0 escapes nothing', () => {
      expect(bytesOf({ command: 'MESSAGE', headers: { k: 'a\\cb' } }, '1.0')).to.equal('MESSAGE\nk:a\\cb\n\n\x00');
      expect(bytesOf({ command: 'MESSAGE', headers }, '1.0')).to.equal('MESSAGE\nwe:ird\nname:a:b\nc\rd\\e\n\n\x00');
    });

    it('escapes a literal backslash-c so that it is not read back as a colon', () => {
      expect(bytesOf({ command: 'MESSAGE', headers: { k: 'a\\cb' } }, '1.2')).to.equal('MESSAGE\nk:a\\\\cb\n\n\x00');
      expect(bytesOf({ command: 'MESSAGE', headers: { k: 'a\\cb' } }, '1.1')).to.equal('MESSAGE\nk:a\\\\cb\n\n\x00');
    });

    it('writes numeric values as plain text when they need no escaping', () => {
      expect(bytesOf({ command: 'MESSAGE', headers: { n: 12 } }, '1.1')).to.equal('MESSAGE\nn:12\n\n\x00');
    });

    for (const command of ['CONNECTED', 'CONNECT', 'STOMP']) {
      for (const version of ['1.0', '1.1', '1.2'] as const) {
        it(`never escapes ${command} headers (version ${version})`, () => {
          expect(bytesOf({ command, headers: { 'ses:sion': 'a:b\\c', server: 'stompbox/0.1' } }, version)).to.equal(
            `${command}\nses:sion:a:b\\c\nserver:stompbox/0.1\n\n\x00`,
          );
        });
      }
    }

    it('writes a CONNECTED frame exactly', () => {
      expect(
        bytesOf({ command: 'CONNECTED', headers: { version: '1.2', 'heart-beat': '0,10000', session: 's:1', server: 'stompbox' } }),
      ).to.equal('CONNECTED\nversion:1.2\nheart-beat:0,10000\nsession:s:1\nserver:stompbox\n\n\x00');
    });

    it('writes an ERROR frame with a body exactly', () => {
      expect(bytesOf({ command: 'ERROR', headers: { message: 'bad: frame', 'content-type': 'text/plain' }, body: 'oops\n' })).to.equal(
        'ERROR\nmessage:bad\\c frame\ncontent-type:text/plain\ncontent-length:5\n\noops\n\x00',
      );
    });
  });

  describe('parser compatibility (literal frames)', () => {
    for (const version of ['1.1', '1.2'] as const) {
      it(`a serialised MESSAGE parses back to the same frame (${version})`, () => {
        const body = b('bin\x00ary\x00');
        const out = serializeFrame(
          { command: 'MESSAGE', headers: { destination: '/q/a:b', 'message-id': 'x\\y', 'multi\nline': 'v\nw', n: 5 }, body },
          version,
        );
        const c = parseChunks([out], {}, version);
        expect(c.errors).to.deep.equal([]);
        expect(c.frames.map(plain)).to.deep.equal([
          {
            command: 'MESSAGE',
            headers: [
              ['destination', '/q/a:b'],
              ['message-id', 'x\\y'],
              ['multi\nline', 'v\nw'],
              ['n', '5'],
              ['content-length', '8'],
            ],
            body: 'bin\x00ary\x00',
          },
        ]);
      });
    }

    it('a serialised CONNECTED parses back verbatim', () => {
      const out = serializeFrame({ command: 'CONNECTED', headers: { version: '1.2', session: 'a\\cb' } });
      const c = parseChunks([out]);
      expect(c.frames.map(plain)).to.deep.equal([
        {
          command: 'CONNECTED',
          headers: [
            ['version', '1.2'],
            ['session', 'a\\cb'],
          ],
          body: '',
        },
      ]);
    });

    it('a serialised 1.0 frame parses back when it needs no escaping', () => {
      const out = serializeFrame({ command: 'MESSAGE', headers: { k: 'a\\tb' }, body: 'x' }, '1.0');
      const c = parseChunks([out], {}, '1.0');
      expect(c.frames.map(plain)).to.deep.equal([
        {
          command: 'MESSAGE',
          headers: [
            ['k', 'a\\tb'],
            ['content-length', '1'],
          ],
          body: 'x',
        },
      ]);
    });
  });
});

import { expect } from 'chai';
import fc from 'fast-check';
import {
  SUPPORTED_VERSIONS,
  StompCodecError,
  createHeaders,
  escapeHeader,
  isUnescapedCommand,
  unescapeHeader,
  type StompVersion,
} from '../../lib/stomp/index.js';
import { inheritsNothing } from '../helpers/inherits-nothing.js';

function expectInvalidEscape(raw: string, version: StompVersion): StompCodecError {
  let caught: unknown;
  try {
    unescapeHeader(raw, version);
  } catch (error) {
    caught = error;
  }
  expect(caught, `unescapeHeader(${JSON.stringify(raw)}, ${version}) should throw`).to.be.instanceOf(StompCodecError);
  const error = caught as StompCodecError;
  expect(error.code).to.equal('ERR_STOMP_INVALID_ESCAPE');
  expect(error.name).to.equal('StompCodecError');
  expect(error).to.be.instanceOf(Error);
  return error;
}

/** Strings that lean heavily on the characters escaping cares about. */
const specialUnit = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(':', '\n', '\r', '\\', 'c', 'n', 'r', 't') },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
);
const tricky = fc.string({ unit: specialUnit, maxLength: 30 });

describe('stomp/escaping', () => {
  describe('escapeHeader', () => {
    it('1.2 escapes backslash, CR, LF and colon', () => {
      expect(escapeHeader('a\\b\rc\nd:e', '1.2')).to.equal('a\\\\b\\rc\\nd\\ce');
    });

    it('1.1 escapes backslash, LF and colon but leaves CR alone', () => {
      expect(escapeHeader('a\\b\rc\nd:e', '1.1')).to.equal('a\\\\b\rc\\nd\\ce');
    });

    it('1.0 returns the value unchanged', () => {
      expect(escapeHeader('a\\b\rc\nd:e', '1.0')).to.equal('a\\b\rc\nd:e');
    });

    it('returns strings needing no escape unchanged (all versions)', () => {
      for (const version of SUPPORTED_VERSIONS) {
        expect(escapeHeader('', version)).to.equal('');
        expect(escapeHeader('/queue/plain-name_1 with spaces\tand tabs/é😀', version)).to.equal(
          '/queue/plain-name_1 with spaces\tand tabs/é😀',
        );
      }
    });

    it('escapes every occurrence, including consecutive ones', () => {
      expect(escapeHeader('::\n\n\\\\\r\r', '1.2')).to.equal('\\c\\c\\n\\n\\\\\\\\\\r\\r');
      expect(escapeHeader('::\n\n\\\\\r\r', '1.1')).to.equal('\\c\\c\\n\\n\\\\\\\\\r\r');
    });

    it('escapes a literal "\\c" to "\\\\c"', () => {
      expect(escapeHeader('\\c', '1.2')).to.equal('\\\\c');
      expect(escapeHeader('\\c', '1.1')).to.equal('\\\\c');
    });
  });

  describe('unescapeHeader', () => {
    it('1.2 decodes \\\\ \\n \\r \\c', () => {
      expect(unescapeHeader('a\\\\b\\rc\\nd\\ce', '1.2')).to.equal('a\\b\rc\nd:e');
    });

    it('1.1 decodes \\\\ \\n \\c', () => {
      expect(unescapeHeader('a\\\\b\\nd\\ce', '1.1')).to.equal('a\\b\nd:e');
    });

    it('1.1 rejects \\r', () => {
      const error = expectInvalidEscape('a\\rb', '1.1');
      expect(error.message).to.contain('\\r');
    });

    it('1.0 decodes nothing and rejects nothing', () => {
      for (const raw of ['a\\\\b', '\\n', '\\c', '\\r', '\\t', 'trailing\\', '\\']) {
        expect(unescapeHeader(raw, '1.0')).to.equal(raw);
      }
    });

    it('returns strings without a backslash unchanged (all versions)', () => {
      for (const version of SUPPORTED_VERSIONS) {
        expect(unescapeHeader('', version)).to.equal('');
        expect(unescapeHeader('a:b\nc\rd é😀', version)).to.equal('a:b\nc\rd é😀');
      }
    });

    it('decodes left to right: "\\\\\\\\n" is backslash + "n", "\\\\\\n" is backslash + LF', () => {
      expect(unescapeHeader('\\\\n', '1.2')).to.equal('\\n');
      expect(unescapeHeader('\\\\\\n', '1.2')).to.equal('\\\n');
      expect(unescapeHeader('\\\\\\\\', '1.1')).to.equal('\\\\');
    });

    it('decodes escapes at the start, the end and back to back', () => {
      expect(unescapeHeader('\\cabc\\c', '1.2')).to.equal(':abc:');
      expect(unescapeHeader('\\n\\r\\c\\\\', '1.2')).to.equal('\n\r:\\');
    });

    for (const version of ['1.1', '1.2'] as const) {
      for (const raw of ['\\t', 'a\\tb', '\\C', '\\N', '\\R', '\\0', '\\ ', '\\:', '\\x41', '\\u0041', 'end\\', '\\', '\\é', '\\😀']) {
        it(`${version} rejects ${JSON.stringify(raw)} with ERR_STOMP_INVALID_ESCAPE`, () => {
          expectInvalidEscape(raw, version);
        });
      }
    }

    it('rejects an undefined escape even after valid ones', () => {
      expectInvalidEscape('\\c\\n\\\\\\q', '1.2');
    });

    it('puts a bounded excerpt of the header in the error message', () => {
      const error = expectInvalidEscape('\\t' + 'x'.repeat(10_000), '1.2');
      expect(error.message.length).to.be.lessThan(200);
    });
  });

  describe('properties', () => {
    it('1.2: unescape(escape(s)) === s for any string', () => {
      fc.assert(
        fc.property(fc.oneof(tricky, fc.string({ unit: 'binary' })), (s) => {
          expect(unescapeHeader(escapeHeader(s, '1.2'), '1.2')).to.equal(s);
        }),
        { numRuns: 300 },
      );
    });

    it('1.1: unescape(escape(s)) === s for any string', () => {
      // Raw CRs pass through 1.1 escaping untouched, and unescaping leaves them untouched too.
      fc.assert(
        fc.property(fc.oneof(tricky, fc.string({ unit: 'binary' })), (s) => {
          expect(unescapeHeader(escapeHeader(s, '1.1'), '1.1')).to.equal(s);
        }),
        { numRuns: 300 },
      );
    });

    it('1.0: escape and unescape are the identity', () => {
      fc.assert(
        fc.property(fc.oneof(tricky, fc.string({ unit: 'binary' })), (s) => {
          expect(escapeHeader(s, '1.0')).to.equal(s);
          expect(unescapeHeader(s, '1.0')).to.equal(s);
        }),
        { numRuns: 200 },
      );
    });

    it('escaped output never contains a raw colon or LF (nor CR in 1.2), so it is safe on a header line', () => {
      fc.assert(
        fc.property(tricky, (s) => {
          const e12 = escapeHeader(s, '1.2');
          expect(e12).to.not.match(/[:\n\r]/);
          const e11 = escapeHeader(s, '1.1');
          expect(e11).to.not.match(/[:\n]/);
        }),
        { numRuns: 200 },
      );
    });

    it('every backslash in escaped output starts a defined escape', () => {
      fc.assert(
        fc.property(tricky, (s) => {
          expect(escapeHeader(s, '1.2').replace(/\\[\\nrc]/g, '')).to.not.contain('\\');
          expect(escapeHeader(s, '1.1').replace(/\\[\\nc]/g, '')).to.not.contain('\\');
        }),
        { numRuns: 200 },
      );
    });

    it('unescapeHeader either returns a string or throws ERR_STOMP_INVALID_ESCAPE, nothing else', () => {
      fc.assert(
        fc.property(tricky, fc.constantFrom<StompVersion>('1.1', '1.2'), (raw, version) => {
          try {
            const out = unescapeHeader(raw, version);
            expect(out).to.be.a('string');
            // Decoding only ever shrinks the text.
            expect(out.length).to.be.at.most(raw.length);
            // When the input holds no raw character that escaping would encode, re-escaping gives it back.
            const needsEscape = version === '1.2' ? /[:\n\r]/ : /[:\n]/;
            if (!needsEscape.test(raw)) expect(escapeHeader(out, version)).to.equal(raw);
          } catch (error) {
            expect(error).to.be.instanceOf(StompCodecError);
            expect((error as StompCodecError).code).to.equal('ERR_STOMP_INVALID_ESCAPE');
          }
        }),
        { numRuns: 300 },
      );
    });
  });

  describe('frame helpers', () => {
    it('isUnescapedCommand is true exactly for CONNECT, CONNECTED and STOMP', () => {
      expect(['CONNECT', 'CONNECTED', 'STOMP'].map(isUnescapedCommand)).to.deep.equal([true, true, true]);
      expect(['SEND', 'MESSAGE', 'ERROR', 'connect', 'Stomp', 'CONNECTX', ''].map(isUnescapedCommand)).to.deep.equal([
        false,
        false,
        false,
        false,
        false,
        false,
        false,
      ]);
    });

    it('createHeaders makes a copy that inherits nothing and drops undefined values', () => {
      const init: Record<string, string | undefined> = { a: '1', b: undefined, constructor: 'c' };
      const headers = createHeaders(init);
      expect(inheritsNothing(headers)).to.equal(true);
      expect(Object.entries(headers)).to.deep.equal([
        ['a', '1'],
        ['constructor', 'c'],
      ]);
      headers['a'] = 'changed';
      expect(init['a']).to.equal('1');
      expect(Object.keys(createHeaders())).to.deep.equal([]);
    });

    it('lists the supported versions', () => {
      expect([...SUPPORTED_VERSIONS]).to.deep.equal(['1.0', '1.1', '1.2']);
    });
  });
});

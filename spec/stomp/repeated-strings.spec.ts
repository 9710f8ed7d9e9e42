import { expect } from 'chai';
import fc from 'fast-check';
import { RepeatedStrings } from '../../lib/stomp/repeated-strings.js';

describe('stomp/repeated-strings', () => {
  it('decodes any bytes as Buffer#toString does, remembered or not, at any offset', () => {
    const strings = new RepeatedStrings();
    const pool = fc.uint8Array({ maxLength: 80 });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(4), fc.integer({ min: 0, max: 40 })), { minLength: 1, maxLength: 200 }), fc.array(pool, { minLength: 1, maxLength: 5 }), (picks, arrays) => {
        for (const [which, pad] of picks) {
          const bytes = Buffer.from(arrays[which % arrays.length]!);
          // The same bytes inside a larger buffer, at an offset.
          const padded = Buffer.concat([Buffer.alloc(pad, 0x61), bytes, Buffer.alloc(3, 0x62)]);
          expect(strings.decode(padded, pad, pad + bytes.length)).to.equal(bytes.toString('utf8'));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('gives the right string when slots collide: thousands of distinct names, each read back', () => {
    const strings = new RepeatedStrings();
    const names = Array.from({ length: 5000 }, (_, i) => `user-${i}-ü`);
    for (let round = 0; round < 2; round++) {
      for (const name of names) {
        const bytes = Buffer.from(name, 'utf8');
        expect(strings.decode(bytes, 0, bytes.length)).to.equal(name);
      }
    }
  });

  it('tells apart names of equal length a byte apart, and longer ones not remembered', () => {
    const strings = new RepeatedStrings();
    for (const text of ['/queue/a', '/queue/b', '/queue/a', 'x'.repeat(64), 'x'.repeat(65), 'x'.repeat(64) + 'y', '', '\u00fc', '\u00fd']) {
      const bytes = Buffer.from(text, 'utf8');
      expect(strings.decode(bytes, 0, bytes.length)).to.equal(text);
    }
    // Invalid UTF-8 decodes to U+FFFD whether remembered or not.
    const invalid = Buffer.from([0x61, 0xc3, 0x28]);
    expect(strings.decode(invalid, 0, 3)).to.equal(invalid.toString('utf8'));
    expect(strings.decode(invalid, 0, 3)).to.equal(invalid.toString('utf8'));
  });
});

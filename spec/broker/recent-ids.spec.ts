import { expect } from 'chai';
import fc from 'fast-check';
import { RecentIds } from '../../lib/broker/recent-ids.js';

describe('RecentIds', () => {
  it('accepts an id once', () => {
    const recent = new RecentIds(8);
    expect(recent.add('a')).to.equal(true);
    expect(recent.add('a')).to.equal(false);
    expect(recent.add('b')).to.equal(true);
    expect(recent.has('b')).to.equal(true);
    expect(recent.has('c')).to.equal(false);
  });

  it('remembers at least the last capacity/2 ids, and stays bounded', () => {
    const recent = new RecentIds(8);
    for (let i = 0; i < 100; i++) expect(recent.add(`id${i}`)).to.equal(true);
    for (let i = 96; i < 100; i++) expect(recent.add(`id${i}`)).to.equal(false);
    // Long forgotten: offered again, accepted again.
    expect(recent.add('id0')).to.equal(true);
  });

  it('remembers an id added without asking, and rotates generations as add does', () => {
    const recent = new RecentIds(8);
    recent.remember('x');
    expect(recent.has('x')).to.equal(true);
    expect(recent.add('x')).to.equal(false);
    for (let i = 0; i < 8; i++) recent.remember(`id${i}`);
    // Two generations of four: 'x' and the first ids are forgotten, the last four kept.
    expect(recent.has('x')).to.equal(false);
    for (let i = 4; i < 8; i++) expect(recent.has(`id${i}`)).to.equal(true);
  });
});

describe('RecentIds, against a model', () => {
  it('never reports an id it was not given, and always one of the last capacity/2 it was given', () => {
    // Ids as the broker makes them (node prefix, base-36 counter) from a few origins, repeated at
    // random distances; the model is the exact list of what was remembered.
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(3), fc.nat(300), fc.boolean()), { minLength: 1, maxLength: 600 }), fc.constantFrom(2, 8, 64, 1000), (steps, capacity) => {
        const recent = new RecentIds(capacity);
        const given: string[] = [];
        const everGiven = new Set<string>();
        for (const [origin, counter, ask] of steps) {
          const id = `node-${origin}-lq3x-${counter.toString(36)}`;
          const known = recent.has(id);
          if (!everGiven.has(id)) expect(known, `never given: ${id}`).to.equal(false);
          if (given.slice(-Math.max(1, capacity >> 1)).includes(id)) expect(known, `given recently: ${id}`).to.equal(true);
          if (ask) expect(recent.add(id)).to.equal(!known);
          else recent.remember(id);
          given.push(id);
          everGiven.add(id);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('tells apart ids whose hashes meet in a slot: thousands of ids in a small table', () => {
    const recent = new RecentIds(4096);
    for (let i = 0; i < 2048; i++) expect(recent.add(`id-${i}`)).to.equal(true);
    for (let i = 0; i < 2048; i++) expect(recent.has(`id-${i}`)).to.equal(true);
    for (let i = 2048; i < 4096; i++) expect(recent.has(`id-${i}`)).to.equal(false);
  });

  it('compares ids whole: two ids of the same 32-bit hash are two ids', () => {
    // FNV-1a('n-lq3x-x8o') === FNV-1a('n-lq3x-76b0') === 408775312 (found by a birthday search).
    const recent = new RecentIds(64);
    expect(recent.add('n-lq3x-x8o')).to.equal(true);
    expect(recent.has('n-lq3x-76b0')).to.equal(false);
    expect(recent.add('n-lq3x-76b0')).to.equal(true);
    expect(recent.has('n-lq3x-x8o')).to.equal(true);
    expect(recent.has('n-lq3x-76b0')).to.equal(true);
  });

  it('compares ids of one length and one hash by every code unit', () => {
    // FNV-1a('n-lq3x-5wzx') === FNV-1a('n-lq3x-c6cd') (a birthday search over ids of ten units).
    const recent = new RecentIds(64);
    expect(recent.add('n-lq3x-5wzx')).to.equal(true);
    expect(recent.has('n-lq3x-c6cd')).to.equal(false);
    expect(recent.add('n-lq3x-c6cd')).to.equal(true);
    expect(recent.has('n-lq3x-5wzx')).to.equal(true);
    expect(recent.has('n-lq3x-c6cd')).to.equal(true);
  });

  it('keeps ids far longer than the broker makes, and any UTF-16, across generations', () => {
    // The ids' code units are kept in a typed array sized for short ids: long ones grow it.
    const recent = new RecentIds(16);
    const long = (i: number): string => `${'x'.repeat(500 + i)}-\u00e9\u{1f600}-${i}`;
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 8; i++) expect(recent.add(long(round * 8 + i)), `round ${round}, id ${i}`).to.equal(true);
      for (let i = 0; i < 8; i++) expect(recent.has(long(round * 8 + i))).to.equal(true);
      // Same length, last unit different.
      expect(recent.has(long(round * 8).slice(0, -1) + 'z')).to.equal(false);
    }
  });
});

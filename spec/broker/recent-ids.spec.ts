import { expect } from 'chai';
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

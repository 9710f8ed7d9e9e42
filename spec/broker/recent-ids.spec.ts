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
});

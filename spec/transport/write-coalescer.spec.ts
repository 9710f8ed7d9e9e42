import { expect } from 'chai';
import { WriteCoalescer } from '../../lib/transport/write-coalescer.js';

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('WriteCoalescer', () => {
  function recorder() {
    const writes: Array<{ data: string; binary: boolean }> = [];
    const coalescer = new WriteCoalescer((data, binary) => writes.push({ data: data.toString('latin1'), binary }));
    return { writes, coalescer };
  }

  it('writes the frames of one event-loop turn as one message, in order', async () => {
    const { writes, coalescer } = recorder();
    coalescer.push(Buffer.from('A\n\n\0'), false);
    coalescer.push(Buffer.from('B\n\n\0'), false);
    expect(writes).to.deep.equal([]);
    expect(coalescer.pendingBytes).to.equal(8);
    await nextTurn();
    expect(writes).to.deep.equal([{ data: 'A\n\n\0B\n\n\0', binary: false }]);
    expect(coalescer.pendingBytes).to.equal(0);
  });

  it('never puts text and binary frames in one message', async () => {
    const { writes, coalescer } = recorder();
    coalescer.push(Buffer.from('T1'), false);
    coalescer.push(Buffer.from([0xff]), true);
    coalescer.push(Buffer.from('T2'), false);
    await nextTurn();
    expect(writes).to.deep.equal([
      { data: 'T1', binary: false },
      { data: '\xff', binary: true },
      { data: 'T2', binary: false },
    ]);
  });

  it('writes at once when a batch reaches 64 KiB', () => {
    const { writes, coalescer } = recorder();
    coalescer.push(Buffer.alloc(40 * 1024, 0x61), false);
    expect(writes).to.have.length(0);
    coalescer.push(Buffer.alloc(30 * 1024, 0x62), false);
    expect(writes).to.have.length(1);
    expect(writes[0]!.data.length).to.equal(70 * 1024);
  });

  it('flushes on demand (before a close) and drops what it holds once discarded', async () => {
    const { writes, coalescer } = recorder();
    coalescer.push(Buffer.from('ERROR'), false);
    coalescer.flush();
    expect(writes).to.deep.equal([{ data: 'ERROR', binary: false }]);
    coalescer.push(Buffer.from('late'), false);
    coalescer.discard();
    await nextTurn();
    expect(writes).to.have.length(1);
  });

  it('flushes every connection written in the turn', async () => {
    const a = recorder();
    const b = recorder();
    a.coalescer.push(Buffer.from('a'), false);
    b.coalescer.push(Buffer.from('b'), false);
    await nextTurn();
    expect(a.writes).to.deep.equal([{ data: 'a', binary: false }]);
    expect(b.writes).to.deep.equal([{ data: 'b', binary: false }]);
  });

  it('writes what is pushed during the end-of-turn flush in the next turn, to every connection', async () => {
    const writes: string[] = [];
    const late = new WriteCoalescer((data) => writes.push(`late:${data.toString('latin1')}`));
    let echoed = false;
    // A write that leads to another write (a drained socket's next frame) while the flush runs.
    const first = new WriteCoalescer((data) => {
      writes.push(`first:${data.toString('latin1')}`);
      if (!echoed) {
        echoed = true;
        first.push(Buffer.from('2'), false);
        late.push(Buffer.from('x'), false);
      }
    });
    first.push(Buffer.from('1'), false);
    await nextTurn();
    expect(writes).to.deep.equal(['first:1']);
    await nextTurn();
    expect(writes).to.deep.equal(['first:1', 'first:2', 'late:x']);
    // Both are out of the queue: a later push is flushed once, in its own turn.
    first.push(Buffer.from('3'), false);
    await nextTurn();
    expect(writes).to.deep.equal(['first:1', 'first:2', 'late:x', 'first:3']);
  });
});

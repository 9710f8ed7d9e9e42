/** A bounded set of recently seen ids, for de-duplicating redelivered messages. */
export class RecentIds {
  private readonly seen = new Set<string>();
  private readonly ring: Array<string | undefined>;
  private next = 0;

  constructor(capacity = 65536) {
    this.ring = new Array<string | undefined>(capacity);
  }

  /** True the first time an id is offered (within the window). */
  add(id: string): boolean {
    if (this.seen.has(id)) return false;
    const evicted = this.ring[this.next];
    if (evicted !== undefined) this.seen.delete(evicted);
    this.ring[this.next] = id;
    this.next = (this.next + 1) % this.ring.length;
    this.seen.add(id);
    return true;
  }
}

/**
 * A bounded set of recently seen ids, for de-duplicating redelivered
 * messages. Two generations of at most `capacity / 2` ids each: when the
 * current one fills, it becomes the previous one and the oldest generation
 * is emptied whole. No per-id deletes; an id is remembered for at least
 * `capacity / 2` newer ones.
 *
 * Each generation is an open-addressing table in typed arrays (linear
 * probing, at most half full) holding each id's 32-bit hash beside it: a
 * lookup of a new id — nearly every lookup — reads one run of adjacent
 * slots and compares no string. With two `Set`s, every lookup of a fresh id
 * string walked hash chains whose entries each pointed elsewhere in the heap:
 * 7–8 % of the receiving node's samples at saturation. Ids are compared
 * whole where their hashes match, so the set is exact.
 *
 * The ids are kept as UTF-16 code units copied into a typed array, not as
 * the strings: a string held here outlived the young generation (at 100k
 * messages a second a generation turns over in ~0.1 s) and every one was
 * copied by the scavenger and promoted — the receiving node's GC was 17–18 %
 * of its samples at saturation with the strings held, 10–12 % without.
 */
export class RecentIds {
  private current: Generation;
  private previous: Generation;
  private readonly generation: number;

  constructor(capacity = 65536) {
    this.generation = Math.max(1, capacity >> 1);
    // At most half full: a miss ends within a few slots.
    let slots = 2;
    while (slots < this.generation * 2) slots *= 2;
    this.current = new Generation(slots);
    this.previous = new Generation(slots);
  }

  has(id: string): boolean {
    const hash = hashOf(id);
    return this.current.has(id, hash) || this.previous.has(id, hash);
  }

  /** True the first time an id is offered (within the window). */
  add(id: string): boolean {
    if (this.has(id)) return false;
    this.remember(id);
    return true;
  }

  /**
   * Adds an id without asking whether it is known: for a caller that has
   * just asked `has` (the relay's read path). An id known already is at
   * worst held twice, in both generations.
   */
  remember(id: string): void {
    if (this.current.size >= this.generation) {
      const emptied = this.previous;
      emptied.clear();
      this.previous = this.current;
      this.current = emptied;
    }
    this.current.add(id, hashOf(id));
  }
}

/** FNV-1a over the UTF-16 code units. */
function hashOf(id: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193);
  return hash;
}

class Generation {
  size = 0;
  private readonly mask: number;
  /** Per slot: 0 when empty, else the hash of its id with the low bit set. */
  private readonly tags: Int32Array;
  /** Per slot: where its id's UTF-16 code units start in `units`, and how many there are. */
  private readonly starts: Int32Array;
  private readonly lengths: Int32Array;
  /** The ids' code units, one after another; grown (doubled) when an id does not fit. */
  private units: Uint16Array;
  private used = 0;

  constructor(slots: number) {
    this.mask = slots - 1;
    this.tags = new Int32Array(slots);
    this.starts = new Int32Array(slots);
    this.lengths = new Int32Array(slots);
    // Room for ids as the broker makes them (~25 code units); longer ones grow it.
    this.units = new Uint16Array(slots * 16);
  }

  has(id: string, hash: number): boolean {
    const tag = hash | 1;
    const tags = this.tags;
    const mask = this.mask;
    for (let slot = (hash ^ (hash >>> 15)) & mask; ; slot = (slot + 1) & mask) {
      const found = tags[slot]!;
      if (found === 0) return false;
      if (found === tag && this.holds(slot, id)) return true;
    }
  }

  add(id: string, hash: number): void {
    const tag = hash | 1;
    const tags = this.tags;
    const mask = this.mask;
    let slot = (hash ^ (hash >>> 15)) & mask;
    for (; tags[slot] !== 0; slot = (slot + 1) & mask) if (tags[slot] === tag && this.holds(slot, id)) return;
    const length = id.length;
    if (this.used + length > this.units.length) {
      let size = this.units.length * 2;
      while (this.used + length > size) size *= 2;
      const grown = new Uint16Array(size);
      grown.set(this.units.subarray(0, this.used));
      this.units = grown;
    }
    const units = this.units;
    const start = this.used;
    for (let i = 0; i < length; i++) units[start + i] = id.charCodeAt(i);
    this.used = start + length;
    tags[slot] = tag;
    this.starts[slot] = start;
    this.lengths[slot] = length;
    this.size++;
  }

  clear(): void {
    if (this.size === 0) return;
    this.tags.fill(0);
    this.used = 0;
    this.size = 0;
  }

  private holds(slot: number, id: string): boolean {
    const length = this.lengths[slot]!;
    if (length !== id.length) return false;
    const units = this.units;
    const start = this.starts[slot]!;
    for (let i = 0; i < length; i++) if (units[start + i] !== id.charCodeAt(i)) return false;
    return true;
  }
}

/**
 * A bounded set of recently seen ids, for de-duplicating redelivered
 * messages. Two generations of at most `capacity / 2` ids each: when the
 * current one fills, it becomes the previous one and the oldest generation
 * is dropped whole. No per-id deletes, which keep a hash set rehashing on
 * the hot path; an id is remembered for at least `capacity / 2` newer ones.
 */
export class RecentIds {
  private current = new Set<string>();
  private previous = new Set<string>();
  private readonly generation: number;

  constructor(capacity = 65536) {
    this.generation = Math.max(1, capacity >> 1);
  }

  has(id: string): boolean {
    return this.current.has(id) || this.previous.has(id);
  }

  /** True the first time an id is offered (within the window). */
  add(id: string): boolean {
    if (this.has(id)) return false;
    this.remember(id);
    return true;
  }

  /**
   * Adds an id without asking whether it is known: for a caller that has
   * just asked `has` (the relay's read path, where each lookup of a fresh
   * id string was a measurable share of the receiving node's time). An id
   * known already is at worst held twice, in both generations.
   */
  remember(id: string): void {
    if (this.current.size >= this.generation) {
      this.previous = this.current;
      this.current = new Set();
    }
    this.current.add(id);
  }
}

/**
 * A token bucket: `rate` tokens a second, at most `burst` saved up. Used for
 * the per-session send rate (messages and bytes); a rate of 0 never refuses.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = this.now();
  }

  /**
   * Takes `n` tokens if they are there; false (and nothing taken) otherwise.
   * `now`: the caller's reading of the clock, when it takes from two buckets at once.
   */
  take(n: number, now = this.now()): boolean {
    if (this.rate === 0) return true;
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }
}

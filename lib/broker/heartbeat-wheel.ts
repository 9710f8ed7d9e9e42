/*
 * One timer for every session's heart-beats (STOMP 1.2 "Heart-beating"):
 * a hashed timing wheel. Each session is filed under the tick when it next
 * needs attention (a beat to send, or the deadline for the client's beats);
 * a tick visits only the sessions due then. This keeps 20 000 idle
 * connections at one timer instead of 40 000.
 */
export interface HeartbeatClient {
  /** Called when due; returns the next time (ms since epoch) it wants a call, or 0 for never. */
  onHeartbeatDue(now: number): number;
}

export class HeartbeatWheel {
  /** A coarse clock, refreshed every tick: cheap to read on hot paths. */
  now = Date.now();
  private readonly slots: Array<Map<HeartbeatClient, number>>;
  private readonly slotOf = new Map<HeartbeatClient, number>();
  private cursor = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly tickMs = 100,
    slotCount = 1024,
  ) {
    this.slots = Array.from({ length: slotCount }, () => new Map<HeartbeatClient, number>());
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.tickMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  schedule(client: HeartbeatClient, dueAt: number): void {
    this.cancel(client);
    if (dueAt <= 0) return;
    const ticks = Math.max(1, Math.ceil((dueAt - this.now) / this.tickMs));
    const slot = (this.cursor + Math.min(ticks, this.slots.length - 1)) % this.slots.length;
    this.slots[slot]!.set(client, dueAt);
    this.slotOf.set(client, slot);
  }

  cancel(client: HeartbeatClient): void {
    const slot = this.slotOf.get(client);
    if (slot === undefined) return;
    this.slots[slot]!.delete(client);
    this.slotOf.delete(client);
  }

  get size(): number {
    return this.slotOf.size;
  }

  private tick(): void {
    this.now = Date.now();
    this.cursor = (this.cursor + 1) % this.slots.length;
    const slot = this.slots[this.cursor]!;
    if (slot.size === 0) return;
    const due = [...slot];
    for (const [client, dueAt] of due) {
      slot.delete(client);
      this.slotOf.delete(client);
      // Filed a whole wheel turn (or more) ahead: not yet.
      const next = dueAt > this.now + this.tickMs ? dueAt : client.onHeartbeatDue(this.now);
      if (next > 0) this.schedule(client, next);
    }
  }
}

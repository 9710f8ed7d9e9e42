/*
 * A node's stream read by pushes, on one Redis (or Sentinel): every writer
 * also publishes each entry it appends on the stream's push channel
 * (lua/lib.lua `relay_append`), and the reader takes entries from its
 * subscription instead of issuing XREAD BLOCK after every wake-up — one
 * round trip, one command built and one Redis wake-up less per delivery at
 * moderate rates (docs/bench/two-node-profile.md, session 6).
 *
 * The stream stays the record; pushes only save reading it. The reader
 * (redis-relay.ts) reads the stream itself, from the last id it handled,
 * whenever the pushes cannot be trusted to be complete (`live` false):
 *
 * - until a subscription is confirmed on the current connection, and after
 *   every loss of it: pushes meanwhile are dropped, and reads go on until
 *   one issued after the confirmation comes back empty — an entry appended
 *   after the confirmation is pushed, one appended before is in the reads;
 * - on a gap: each push names the newest entry before it (`prev`, kept
 *   beside the stream: lua/lib.lua relay_append); a prev the reader has not
 *   handled means an entry appended without a push (a writer of a version
 *   from before push reads);
 * - when the reader falls behind: pushes waiting past a bound are dropped,
 *   and while a read returns a full batch the feed unsubscribes, so that a
 *   reader far behind does not take every entry twice;
 * - after an idle turn without pushes (`recheck`).
 *
 * Entries are handed out in stream order, each after the reader's last id;
 * what reads and pushes both bring is dropped by id.
 *
 * The subscription is on a lean connection of its own (resp-connection.ts)
 * that follows the relay's command client; it is never subscribed again
 * behind the feed's back: after a drop the reader's next turn subscribes,
 * and reads until it may trust the pushes.
 */
import type { Redis } from 'ioredis';
import { RespConnection, type RespConnectionOptions } from './resp-connection.js';

/** One pushed stream entry, as XREAD would give it (`fields`: one field name, one value). */
export interface PushedEntry {
  readonly id: string;
  /** The newest entry of the stream before this one when it was appended; '' for none. */
  readonly prev: string;
  readonly fields: Buffer[];
}

export interface PushFeedLimits {
  /** Entries waiting at most before the backlog is dropped (the reader reads instead). */
  maxEntries: number;
  /** Their bytes at most. */
  maxBytes: number;
  /** With no push for this long, `waitPush` returns false (the reader's idle turn), ms. */
  idleMs: number;
}

const SPACE = 0x20;
/** The one-byte field names of relay entries, shared by every pushed entry (never written to). */
const FIELD_NAMES = new Map<number, Buffer>();

export class PushFeed {
  /** Whether pushes are complete: every entry after the reader's last id is (or will be) in the queue. */
  live = false;
  /** The reader's last read was a full batch: it reads, unsubscribed, until one is not. */
  behind = false;
  private readonly channelBytes: Buffer;
  private queue: PushedEntry[] = [];
  private head = 0;
  private queuedBytes = 0;
  /** Subscribed, confirmed on the current connection. */
  private subscribed = false;
  /** Bumped whenever pushes may have been missed: a lost connection, a dropped backlog, a gap. */
  private generation = 0;
  private waiter: ((pushed: boolean) => void) | undefined;
  private pushedSinceTick = false;
  private readonly idleTimer: NodeJS.Timeout;
  private closed = false;

  /** The subscriber connection (one per feed). */
  readonly connection: RespConnection;

  /** `followed`: where to connect (resp-connection.ts); `options`: its timeouts, logger and name. */
  constructor(
    followed: Redis,
    options: Omit<RespConnectionOptions, 'scripts' | 'role' | 'bulkBuffers' | 'onPush' | 'onDrop'>,
    readonly channel: string,
    private readonly limits: PushFeedLimits,
  ) {
    this.channelBytes = Buffer.from(channel);
    this.connection = new RespConnection(followed, {
      ...options,
      scripts: [],
      role: 'subscriber',
      bulkBuffers: true,
      onPush: (from, payload) => {
        if (from.equals(this.channelBytes)) this.onPush(payload);
      },
      onDrop: () => {
        this.subscribed = false;
        this.miss();
      },
    });
    // One timer for the idle turn, not one per wait: a wait per message would arm and clear one each.
    this.idleTimer = setInterval(() => {
      if (!this.pushedSinceTick) this.wake(false);
      this.pushedSinceTick = false;
    }, limits.idleMs);
    this.idleTimer.unref();
  }

  /**
   * Subscribes unless the current connection is; rejects while it is down.
   * Returns the generation the subscription holds at: a read issued after
   * this, that comes back empty while the generation is unchanged, makes the
   * feed live.
   */
  async subscribe(): Promise<number> {
    if (!this.subscribed) {
      const generation = this.generation;
      await this.connection.call(['SUBSCRIBE', this.channel]);
      // A drop meanwhile bumped the generation: that subscription is gone with its connection.
      if (generation === this.generation && this.connection.ready) this.subscribed = true;
    }
    return this.generation;
  }

  /** Stops the pushes while the reader is far behind (it reads until a read is no longer full). */
  async unsubscribe(): Promise<void> {
    if (!this.subscribed) return;
    this.subscribed = false;
    this.miss();
    await this.connection.call(['UNSUBSCRIBE', this.channel]).catch(() => {});
  }

  /** Whether a subscription holds on the current connection. */
  get isSubscribed(): boolean {
    return this.subscribed;
  }

  /** Makes the feed live if nothing was missed since `generation` (see `subscribe`). */
  goLive(generation: number): boolean {
    if (this.subscribed && generation === this.generation) this.live = true;
    return this.live;
  }

  /**
   * The pushed entries after `lastId`, in order, `max` at most. At a gap the
   * feed stops being live and hands out what came before it.
   */
  take(lastId: string, max: number): PushedEntry[] {
    const out: PushedEntry[] = [];
    let last = lastId;
    while (this.live && this.head < this.queue.length && out.length < max) {
      const entry = this.queue[this.head]!;
      if (compareStreamIds(entry.id, last) <= 0) {
        this.dequeue();
        continue;
      }
      if (entry.prev !== '' && compareStreamIds(entry.prev, last) > 0) {
        this.miss();
        break;
      }
      out.push(entry);
      last = entry.id;
      this.dequeue();
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return out;
  }

  /** Resolves true on a push or a loss (at once if one is waiting), false after an idle turn without pushes. */
  waitPush(): Promise<boolean> {
    if (this.closed || !this.live || this.head < this.queue.length) return Promise.resolve(true);
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /**
   * Reads the stream once more before trusting the pushes again: on an idle
   * turn, so that an entry whose push was lost without its connection closing
   * (nothing known does that) waits one idle turn at most, not for the next push.
   */
  recheck(): void {
    this.live = false;
  }

  /** Stops handing out entries (the reader's loop ends); the connection is closed by `disconnect`. */
  close(): void {
    this.closed = true;
    clearInterval(this.idleTimer);
    this.wake(true);
  }

  /** Closes the connection (after close()): politely, or at once with `now` (a crash). */
  async disconnect(now = false): Promise<void> {
    if (now) this.connection.destroy();
    else await this.connection.close();
  }

  private onPush(payload: Buffer): void {
    if (!this.subscribed || this.closed) return;
    this.pushedSinceTick = true;
    const entry = parsePush(payload);
    if (entry === undefined) {
      // Not a relay push: take it as a gap (the stream is read), never as nothing.
      this.miss();
      return;
    }
    // Kept while not live too, from a confirmed subscription on: the reads bring these as well, and
    // the ones after the read that makes the feed live are only here.
    this.queue.push(entry);
    this.queuedBytes += payload.length;
    if (this.queue.length - this.head > this.limits.maxEntries || this.queuedBytes > this.limits.maxBytes) {
      this.miss();
      return;
    }
    this.wake(true);
  }

  private dequeue(): void {
    const entry = this.queue[this.head]!;
    this.queue[this.head] = undefined as unknown as PushedEntry;
    this.head++;
    this.queuedBytes -= entry.fields[1]!.length + entry.id.length + entry.prev.length + 3;
  }

  /** Pushes may have been missed: drop what waits, read the stream until live again. */
  private miss(): void {
    this.live = false;
    this.queue = [];
    this.head = 0;
    this.queuedBytes = 0;
    this.generation++;
    this.wake(true);
  }

  private wake(pushed: boolean): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.(pushed);
  }
}

/** `<id> <prev> <field><value>` (lua/lib.lua relay_append) → the entry; undefined if it is not one. */
export function parsePush(payload: Buffer): PushedEntry | undefined {
  const first = payload.indexOf(SPACE);
  if (first <= 0) return undefined;
  const second = payload.indexOf(SPACE, first + 1);
  if (second < 0 || second + 1 >= payload.length) return undefined;
  const fieldByte = payload[second + 1]!;
  let field = FIELD_NAMES.get(fieldByte);
  if (field === undefined) {
    field = Buffer.from([fieldByte]);
    FIELD_NAMES.set(fieldByte, field);
  }
  return {
    id: payload.toString('latin1', 0, first),
    prev: payload.toString('latin1', first + 1, second),
    fields: [field, payload.subarray(second + 2)],
  };
}

/** Orders two stream ids (`<ms>-<seq>`, or `<ms>`): negative, zero or positive. */
export function compareStreamIds(a: string, b: string): number {
  const da = a.indexOf('-');
  const db = b.indexOf('-');
  const byMs = compareDecimal(da < 0 ? a : a.slice(0, da), db < 0 ? b : b.slice(0, db));
  if (byMs !== 0) return byMs;
  return compareDecimal(da < 0 ? '0' : a.slice(da + 1), db < 0 ? '0' : b.slice(db + 1));
}

/** Orders two unsigned decimal integers without leading zeros, of any length. */
function compareDecimal(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/*
 * RECIPIENT_POLICY=known: a message for a user destination is accepted only
 * for a known user (identity/known-users.ts), else ERR_UNKNOWN_USER, so that
 * nobody can fill inboxes of made-up names. A positive answer is remembered
 * for a few seconds per node: a known user stays known for the inbox TTL
 * (days), and a conversation must not cost a Redis round trip per message.
 */
import type { KnownUsers } from '../identity/known-users.js';
import type { Logger } from '../log.js';
import { BrokerError } from '../core/errors.js';

const CONFIRMED_MS = 10_000;
const CONFIRMED_MAX = 10_000;

export class RecipientPolicy {
  private readonly confirmed = new Map<string, number>();

  constructor(
    private readonly known: KnownUsers,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Resolves when `user` may receive; ERR_UNKNOWN_USER otherwise. */
  async check(user: string): Promise<void> {
    const until = this.confirmed.get(user);
    if (until !== undefined && until > this.now()) return;
    if (!(await this.known.isKnown(user))) {
      throw new BrokerError('ERR_UNKNOWN_USER', `no user "${user.slice(0, 64)}" logged in within the inbox TTL (RECIPIENT_POLICY=known)`);
    }
    if (this.confirmed.size >= CONFIRMED_MAX) this.confirmed.clear();
    this.confirmed.set(user, this.now() + CONFIRMED_MS);
  }

  /** Records a login; a failure is logged, never fatal to the session. */
  async loggedIn(user: string): Promise<void> {
    await this.known.loggedIn(user).catch((error: unknown) => this.log.warn({ err: error, user }, 'could not record a login for RECIPIENT_POLICY=known'));
  }

  close(): Promise<void> {
    return this.known.close();
  }
}

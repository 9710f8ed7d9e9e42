/*
 * Login sessions without server-side state: the `sb_session` cookie holds
 * `<payload>.<mac>`, the payload a base64url JSON `{u, e, c?}` (user, expiry in
 * seconds since the epoch, and in jwt mode the claims of the login's JWT that
 * the permissions read, so that a cookie session is allowed what the token
 * was) and the mac an HMAC-SHA256 over it with
 * SESSION_SECRET. Any node with the same secret accepts it, so a browser may
 * land on any node behind the load balancer.
 *
 * Two dot-separated parts, where a JWT has three: the two kinds of bearer
 * token are told apart by shape.
 *
 * Stateless means a logout clears the cookie but cannot revoke a copy of it;
 * keep SESSION_TTL_SECONDS short where that matters.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { validUserName } from '../broker/auth.js';
import { BrokerError } from '../core/errors.js';

export interface SessionClaims {
  user: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
  /** jwt mode: the JWT claims the login kept (PERMISSIONS_CLAIM, claims named by rules). */
  claims?: Readonly<Record<string, unknown>>;
}

/** Longest token `verify` accepts, and so `issue` writes: what a browser keeps in one cookie. */
export const MAX_SESSION_TOKEN_LENGTH = 4096;

const DOMAIN = 'sb1.';

export class SessionTokens {
  constructor(
    private readonly secret: Buffer,
    /** Lifetime of a new session, seconds. */
    readonly ttlSeconds: number,
  ) {
    if (secret.length === 0) throw new Error('the session secret must not be empty');
  }

  /**
   * A token for `user`, expiring after the TTL or at `notAfter` (ms), whichever is first, carrying
   * `claims` when given. Throws ERR_BAD_REQUEST when the claims make it too long for a cookie.
   */
  issue(user: string, notAfter?: number, claims?: Readonly<Record<string, unknown>>): { token: string; expiresAt: number } {
    let expiresAt = Date.now() + this.ttlSeconds * 1000;
    if (notAfter !== undefined) expiresAt = Math.min(expiresAt, notAfter);
    const exp = Math.floor(expiresAt / 1000);
    const payload = Buffer.from(JSON.stringify(claims === undefined ? { u: user, e: exp } : { u: user, e: exp, c: claims })).toString('base64url');
    const token = `${payload}.${this.mac(payload)}`;
    if (token.length > MAX_SESSION_TOKEN_LENGTH) {
      throw new BrokerError('ERR_BAD_REQUEST', `the token's permission claims do not fit a session cookie (${MAX_SESSION_TOKEN_LENGTH} bytes); connect with the token itself`);
    }
    return { token, expiresAt: exp * 1000 };
  }

  /** The claims of a valid, unexpired token; undefined for anything else. */
  verify(token: string): SessionClaims | undefined {
    const dot = token.indexOf('.');
    if (dot <= 0 || dot !== token.lastIndexOf('.') || token.length > MAX_SESSION_TOKEN_LENGTH) return undefined;
    const payload = token.slice(0, dot);
    const given = Buffer.from(token.slice(dot + 1), 'base64url');
    const expected = Buffer.from(this.mac(payload), 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    let claims: unknown;
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
    if (typeof claims !== 'object' || claims === null) return undefined;
    const { u, e, c } = claims as { u?: unknown; e?: unknown; c?: unknown };
    if (typeof u !== 'string' || !validUserName(u) || typeof e !== 'number') return undefined;
    if (e * 1000 <= Date.now()) return undefined;
    if (c === undefined) return { user: u, expiresAt: e * 1000 };
    if (typeof c !== 'object' || c === null || Array.isArray(c)) return undefined;
    return { user: u, expiresAt: e * 1000, claims: c as Record<string, unknown> };
  }

  /** A session token has two dot-separated parts (a JWT has three). */
  static looksLikeSessionToken(token: string): boolean {
    return token.split('.').length === 2;
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.secret).update(DOMAIN).update(payload).digest('base64url');
  }
}

/*
 * Who is making a request, from what the request carries:
 *   1. `Authorization: Bearer <token>` (HTTP API, Node WebSocket clients);
 *   2. `access_token=<token>` on the URL (WebSocket and SockJS only: browsers
 *      cannot set headers on a WebSocket handshake);
 *   3. the `sb_session` cookie (browser pages after POST /api/login).
 * A token is a session token (what the cookie holds, two parts) or, in jwt
 * mode, a JWT (three parts). A presented but invalid bearer token or
 * access_token is refused (ERR_AUTH_FAILED) rather than ignored; a stale
 * cookie is ignored, so a page with an old cookie can still log in again.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { BrokerError } from '../core/errors.js';
import type { JwtVerifier } from '../broker/jwt-authenticator.js';
import { readCookie, SESSION_COOKIE } from './cookies.js';
import { SessionTokens } from './session-token.js';

export type IdentitySource = 'cookie' | 'bearer' | 'query';

export interface Identity {
  user: string;
  via: IdentitySource;
  /** Milliseconds since the epoch. */
  expiresAt: number;
  /** jwt mode: a JWT's claims, or those its login kept in the session token (permissions read them). */
  claims?: Readonly<Record<string, unknown>>;
}

export interface ResolveOptions {
  /** Accept `access_token` on the URL (WebSocket, SockJS; not the HTTP API, where URLs end up in logs and Referer). */
  query?: boolean;
}

export class IdentityResolver {
  constructor(
    readonly tokens: SessionTokens,
    /** Set in jwt mode: JWTs are then accepted as bearer tokens too. */
    readonly jwt: JwtVerifier | undefined,
  ) {}

  /** A bearer token's user: a session token, or a JWT in jwt mode. */
  async verifyToken(token: string): Promise<{ user: string; expiresAt: number; claims?: Readonly<Record<string, unknown>> }> {
    if (SessionTokens.looksLikeSessionToken(token)) {
      const claims = this.tokens.verify(token);
      if (!claims) throw new BrokerError('ERR_AUTH_FAILED', 'invalid or expired session token');
      return claims;
    }
    if (this.jwt) return this.jwt.verify(token);
    throw new BrokerError('ERR_AUTH_FAILED', 'invalid token');
  }

  /** The identity a request carries, undefined when it carries none; ERR_AUTH_FAILED for a bad token. */
  async resolve(headers: IncomingHttpHeaders, url: string | undefined, options: ResolveOptions = {}): Promise<Identity | undefined> {
    const authorization = headers.authorization;
    if (authorization !== undefined && authorization !== '') {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      if (!match) throw new BrokerError('ERR_AUTH_FAILED', 'the Authorization header must be "Bearer <token>"');
      return { ...(await this.verifyToken(match[1]!)), via: 'bearer' };
    }
    if (options.query && url !== undefined) {
      const token = accessToken(url);
      if (token !== undefined) return { ...(await this.verifyToken(token)), via: 'query' };
    }
    return this.fromCookie(headers.cookie);
  }

  fromCookie(cookieHeader: string | undefined): Identity | undefined {
    const value = readCookie(cookieHeader, SESSION_COOKIE);
    if (value === undefined || value === '') return undefined;
    const claims = this.tokens.verify(value);
    return claims ? { ...claims, via: 'cookie' } : undefined;
  }
}

function accessToken(url: string): string | undefined {
  const q = url.indexOf('?');
  if (q < 0) return undefined;
  const value = new URLSearchParams(url.slice(q + 1)).get('access_token');
  return value === null ? undefined : value;
}

/*
 * Identity and cross-site protection for the API routes.
 *
 * A request is authenticated by a bearer token (not ambient: a foreign page
 * cannot make the browser attach it) or by the `sb_session` cookie (ambient:
 * the browser attaches it to any page's request). Cookie-authenticated
 * requests, and login/logout which set the cookie, are therefore guarded:
 * - a refused Origin (see OriginPolicy) → 403;
 * - a state-changing method without an Origin header must carry a JSON body
 *   (a cross-site HTML form cannot send one, and a script can only with a
 *   CORS preflight we do not grant) or `Sec-Fetch-Site: same-origin`.
 * Origins listed in ALLOWED_ORIGINS get CORS headers with credentials.
 */
import type { Context, Middleware } from 'koa';
import { BrokerError } from '../core/errors.js';
import type { Identity, IdentityResolver } from '../identity/identity.js';
import type { OriginPolicy } from '../identity/origin-policy.js';

export interface ApiState {
  identity?: Identity;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function authMiddleware(identity: IdentityResolver, origins: OriginPolicy): Middleware {
  return async (ctx, next) => {
    const verdict = origins.check(ctx.headers);
    if (verdict === 'allowed') {
      ctx.set('Access-Control-Allow-Origin', ctx.get('Origin'));
      ctx.set('Access-Control-Allow-Credentials', 'true');
      ctx.vary('Origin');
      if (ctx.method === 'OPTIONS' && ctx.get('Access-Control-Request-Method')) {
        ctx.set('Access-Control-Allow-Methods', 'GET, POST');
        ctx.set('Access-Control-Allow-Headers', 'Content-Type, Authorization');
        ctx.set('Access-Control-Max-Age', '600');
        ctx.status = 204;
        return;
      }
    }
    const found = await identity.resolve(ctx.headers, ctx.url, { query: false });
    (ctx.state as ApiState).identity = found;
    if (found?.via === 'cookie') guardAmbient(ctx, origins);
    await next();
  };
}

/**
 * Refuses a cross-site use of the cookie session (see the file comment).
 * `originOnly`: only a refused Origin counts (login/logout, which act on
 * no existing session: a browser always sends Origin on a cross-site POST).
 */
export function guardAmbient(ctx: Context, origins: OriginPolicy, originOnly = false): void {
  const verdict = origins.check(ctx.headers);
  if (verdict === 'refused') throw new BrokerError('ERR_FORBIDDEN', 'cross-site request refused: origin not allowed');
  if (verdict === 'absent' && !originOnly && !SAFE_METHODS.has(ctx.method)) {
    const json = (ctx.get('Content-Type').split(';')[0] ?? '').trim().toLowerCase() === 'application/json';
    const sameOrigin = ctx.get('Sec-Fetch-Site') === 'same-origin';
    if (!json && !sameOrigin) {
      throw new BrokerError('ERR_FORBIDDEN', 'a cookie-authenticated request without an Origin header must have a JSON body (CSRF protection)');
    }
  }
}

/** The authenticated user, or ERR_AUTH_REQUIRED (401). */
export function requireUser(ctx: Context): string {
  const found = (ctx.state as ApiState).identity;
  if (!found) throw new BrokerError('ERR_AUTH_REQUIRED', 'log in first (POST /api/login) or send "Authorization: Bearer <token>"');
  return found.user;
}

export function identityOf(ctx: Context): Identity | undefined {
  return (ctx.state as ApiState).identity;
}

/*
 * Login sessions: POST /api/login sets the `sb_session` cookie, POST
 * /api/logout clears it, GET /api/me tells who the caller is.
 *
 * Login body: `{user, password?}` (or `username`, Spring Security's field) in open/static mode, `{token}` (a JWT) in
 * jwt mode — whatever the configured Authenticator accepts, checked by it.
 * The response carries the session token too, for clients that are not
 * browsers (CLI, scripts): they send it as `Authorization: Bearer`.
 */
import type { RouterInstance } from '@koa/router';
import type { Broker } from '../../broker/broker.js';
import { JwtAuthenticator } from '../../broker/jwt-authenticator.js';
import { clearedSessionCookie, sessionCookie } from '../../identity/cookies.js';
import type { IdentityResolver } from '../../identity/identity.js';
import type { OriginPolicy } from '../../identity/origin-policy.js';
import { guardAmbient, identityOf, requireUser } from '../auth.js';
import { optionalString, readFields } from '../body.js';

export interface SessionRouteDeps {
  broker: Broker;
  identity: IdentityResolver;
  origins: OriginPolicy;
  /** Mark the cookie Secure even on plain HTTP (TLS at a proxy). */
  cookieSecure: boolean;
}

/**
 * The claims of a login's JWT that the session cookie keeps: those the permissions read, so that
 * a page's session is allowed what the token was (the rest would only grow the cookie).
 */
function keptClaims(claims: Readonly<Record<string, unknown>>, names: readonly string[]): Record<string, unknown> | undefined {
  const kept = Object.fromEntries(names.filter((name) => Object.hasOwn(claims, name)).map((name) => [name, claims[name]]));
  return Object.keys(kept).length === 0 ? undefined : kept;
}

export function registerSessionRoutes(router: RouterInstance, deps: SessionRouteDeps): void {
  router.post('/api/login', async (ctx) => {
    // Login CSRF: a foreign page must not log the victim in as someone else.
    guardAmbient(ctx, deps.origins, true);
    const fields = readFields(ctx, ['json', 'form']);
    // `username` is Spring Security's form field: its login pages post here unchanged.
    const user = optionalString(fields, 'user', 128) ?? optionalString(fields, 'username', 128);
    const password = optionalString(fields, 'password', 1024);
    const token = optionalString(fields, 'token', 16 * 1024);
    const auth = deps.broker.auth;
    let name: string;
    let notAfter: number | undefined;
    let claims: Record<string, unknown> | undefined;
    if (auth instanceof JwtAuthenticator) {
      const verified = await auth.verifier.verify(token ?? password ?? '');
      name = verified.user;
      notAfter = verified.expiresAt;
      claims = keptClaims(verified.claims, deps.broker.permissions?.claimNames() ?? []);
    } else {
      name = await auth.authenticate({ login: user, passcode: password });
    }
    const issued = deps.identity.tokens.issue(name, notAfter, claims);
    ctx.append(
      'Set-Cookie',
      sessionCookie(issued.token, { maxAgeSeconds: (issued.expiresAt - Date.now()) / 1000, secure: deps.cookieSecure || ctx.secure }),
    );
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { user: name, expiresAt: issued.expiresAt, token: issued.token };
  });

  router.post('/api/logout', (ctx) => {
    guardAmbient(ctx, deps.origins, true);
    ctx.append('Set-Cookie', clearedSessionCookie(deps.cookieSecure || ctx.secure));
    ctx.body = { user: null };
  });

  router.get('/api/me', (ctx) => {
    const user = requireUser(ctx);
    const found = identityOf(ctx)!;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { user, via: found.via, expiresAt: found.expiresAt, authMode: deps.broker.auth.mode };
  });
}

/*
 * The koa app: health and metrics, the API (identity-checked), the seed's
 * /wsTemplate routes, and the static pages in public/.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import Koa from 'koa';
import serve from 'koa-static';
import type { Broker } from '../broker/broker.js';
import { IdentityResolver } from '../identity/identity.js';
import { OriginPolicy } from '../identity/origin-policy.js';
import { SessionTokens } from '../identity/session-token.js';
import type { Logger } from '../log.js';
import { authMiddleware } from './auth.js';
import { errorMiddleware } from './errors.js';
import { vendorMiddleware } from './vendor.js';
import type { NodeMetrics } from './metrics.js';
import { registerInboxClaimRoutes } from './routes/inbox-claims.js';
import { openApiDocument } from './openapi.js';
import { registerMessageRoutes } from './routes/messages.js';
import { registerPresenceRoutes } from './routes/presence.js';
import { registerSessionRoutes } from './routes/session.js';
import { registerWsTemplateRoutes } from './routes/ws-template.js';

export interface AppOptions {
  broker: Broker;
  log: Logger;
  publicDir?: string;
  /** Who the caller is; absent (e.g. specs of health routes), a random session secret and no JWTs. */
  identity?: IdentityResolver;
  /** Which origins may use the cookie session; absent, same origin only. */
  origins?: OriginPolicy;
  metrics?: NodeMetrics;
}

/** public/ at the project root, whether running from lib/ (tsx) or dist/lib/ (built). */
export const DEFAULT_PUBLIC_DIR = ['../../public', '../../../public']
  .map((relative) => fileURLToPath(new URL(relative, import.meta.url)))
  .find((dir) => existsSync(dir)) ?? fileURLToPath(new URL('../../public', import.meta.url));

/** Request body bound: a base64 body of MAX_BODY_SIZE bytes (4/3) plus room for the other fields. */
export function requestBodyLimit(maxBodySize: number): number {
  return Math.ceil((maxBodySize * 4) / 3) + 64 * 1024;
}

export function createApp(options: AppOptions): Koa {
  const { broker, log } = options;
  const app = new Koa();
  app.proxy = false;
  app.silent = true;
  const identity = options.identity ?? new IdentityResolver(new SessionTokens(randomSecret(), broker.config.sessionTtlSeconds), undefined);
  const origins = options.origins ?? new OriginPolicy(undefined);
  const router = createRouter({ ...options, identity, origins });

  const limit = requestBodyLimit(broker.config.maxBodySize);
  app.use(errorMiddleware(log));
  const guard = authMiddleware(identity, origins);
  app.use((ctx, next) => (isApiPath(ctx.path) ? guard(ctx, next) : next()));
  app.use(bodyParser({ enableTypes: ['json', 'form'], jsonLimit: limit, formLimit: limit, jsonStrict: true }));
  app.use(router.routes());
  app.use(router.allowedMethods({ throw: true }));
  app.use(vendorMiddleware());
  app.use(serve(options.publicDir ?? DEFAULT_PUBLIC_DIR));
  return app;
}

/** Every HTTP route; what GET /api/openapi.json documents (spec/http/openapi.spec.ts holds them together). */
export function createRouter(options: AppOptions & { identity: IdentityResolver; origins: OriginPolicy }): Router {
  const { broker, log, identity, origins } = options;
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok', node: broker.nodeId };
  });
  router.get('/readyz', async (ctx) => {
    const ready = await broker.storeReachable();
    ctx.status = ready && broker.accepting ? 200 : 503;
    ctx.body = { status: ctx.status === 200 ? 'ready' : 'unavailable', node: broker.nodeId };
  });
  const metrics = options.metrics;
  if (metrics) {
    router.get('/metrics', async (ctx) => {
      const { contentType, body } = await metrics.text();
      ctx.type = contentType;
      ctx.body = body;
    });
  }
  const openapi = openApiDocument(broker.config);
  router.get('/api/openapi.json', (ctx) => {
    ctx.body = openapi;
  });

  registerSessionRoutes(router, { broker, identity, origins, cookieSecure: broker.config.sessionCookieSecure });
  registerMessageRoutes(router, broker);
  registerInboxClaimRoutes(router, broker);
  registerPresenceRoutes(router, broker);
  registerWsTemplateRoutes(router, broker, log);
  return router;
}

/** Routes that act for a user (identity, origin and CSRF checks apply). */
function isApiPath(path: string): boolean {
  return path.startsWith('/api/') || path.startsWith('/wsTemplate/');
}

function randomSecret(): Buffer {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32)));
}

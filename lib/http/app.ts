/*
 * The koa app: health routes, the API and the static pages in public/.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Koa from 'koa';
import Router from '@koa/router';
import serve from 'koa-static';
import type { Broker } from '../broker/broker.js';
import type { Logger } from '../log.js';
import { errorMiddleware } from './errors.js';
import { vendorMiddleware } from './vendor.js';

export interface AppOptions {
  broker: Broker;
  log: Logger;
  publicDir?: string;
}

/** public/ at the project root, whether running from lib/ (tsx) or dist/lib/ (built). */
export const DEFAULT_PUBLIC_DIR = ['../../public', '../../../public']
  .map((relative) => fileURLToPath(new URL(relative, import.meta.url)))
  .find((dir) => existsSync(dir)) ?? fileURLToPath(new URL('../../public', import.meta.url));

export function createApp(options: AppOptions): Koa {
  const app = new Koa();
  app.proxy = false;
  app.silent = true;
  const router = new Router();

  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok', node: options.broker.nodeId };
  });
  router.get('/readyz', async (ctx) => {
    const ready = await options.broker.storeReachable();
    ctx.status = ready && options.broker.accepting ? 200 : 503;
    ctx.body = { status: ctx.status === 200 ? 'ready' : 'unavailable', node: options.broker.nodeId };
  });

  app.use(errorMiddleware(options.log));
  app.use(router.routes());
  app.use(router.allowedMethods());
  app.use(vendorMiddleware());
  app.use(serve(options.publicDir ?? DEFAULT_PUBLIC_DIR));
  return app;
}

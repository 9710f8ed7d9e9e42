/*
 * Client libraries for the pages in public/, served from node_modules through
 * the app (no CDN: a node may have no internet, and the page must use the very
 * versions the broker is tested with). Only the files in VENDOR_FILES are
 * reachable; nothing else under node_modules is exposed.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Middleware } from 'koa';

/** URL path under the mount prefix → package and file inside it. */
export const VENDOR_FILES: Readonly<Record<string, { pkg: string; file: string }>> = {
  // @stomp/stompjs (global `StompJs`), the maintained STOMP client.
  'stompjs/stomp.umd.min.js': { pkg: '@stomp/stompjs', file: 'bundles/stomp.umd.min.js' },
  'stompjs/stomp.umd.js': { pkg: '@stomp/stompjs', file: 'bundles/stomp.umd.js' },
  'stompjs/stomp.umd.js.map': { pkg: '@stomp/stompjs', file: 'bundles/stomp.umd.js.map' },
  // sockjs-client (global `SockJS`).
  'sockjs-client/sockjs.min.js': { pkg: 'sockjs-client', file: 'dist/sockjs.min.js' },
  'sockjs-client/sockjs.min.js.map': { pkg: 'sockjs-client', file: 'dist/sockjs.min.js.map' },
  'sockjs-client/sockjs.js': { pkg: 'sockjs-client', file: 'dist/sockjs.js' },
  // The legacy stomp.js 2.3.x (global `Stomp`) that the seed's page was written against.
  'stompjs-legacy/stomp.min.js': { pkg: 'stompjs', file: 'lib/stomp.min.js' },
  'stompjs-legacy/stomp.js': { pkg: 'stompjs', file: 'lib/stomp.js' },
};

export interface VendorOptions {
  /** URL prefix. @default /vendor/ */
  prefix?: string;
  /** Directory lookups start from (Node's resolution walks up to each node_modules). @default this module's directory */
  from?: string;
}

interface CachedFile {
  body: Buffer;
  etag: string;
  type: string;
}

/** The package's directory, found the way Node resolves a bare name (without honouring `exports`). */
export function findPackageDir(pkg: string, from: string): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = join(dir, 'node_modules', pkg);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

export function vendorMiddleware(options: VendorOptions = {}): Middleware {
  const prefix = options.prefix ?? '/vendor/';
  const from = options.from ?? dirname(fileURLToPath(import.meta.url));
  const cache = new Map<string, Promise<CachedFile | undefined>>();

  const load = (name: string): Promise<CachedFile | undefined> => {
    let entry = cache.get(name);
    if (!entry) {
      const spec = VENDOR_FILES[name]!;
      entry = (async () => {
        const dir = findPackageDir(spec.pkg, from);
        if (!dir) return undefined;
        const body = await readFile(join(dir, spec.file)).catch(() => undefined);
        if (!body) return undefined;
        const etag = `"${createHash('sha1').update(body).digest('base64url')}"`;
        const type = name.endsWith('.map') ? 'application/json; charset=utf-8' : 'text/javascript; charset=utf-8';
        return { body, etag, type };
      })();
      cache.set(name, entry);
    }
    return entry;
  };

  return async (ctx, next) => {
    if (!ctx.path.startsWith(prefix) || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next();
    const name = ctx.path.slice(prefix.length);
    if (!Object.hasOwn(VENDOR_FILES, name)) return next();
    const file = await load(name);
    if (!file) return next();
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.set('ETag', file.etag);
    if (ctx.get('If-None-Match') === file.etag) {
      ctx.status = 304;
      return;
    }
    ctx.type = file.type;
    ctx.body = file.body;
  };
}

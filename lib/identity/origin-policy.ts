/*
 * Which web origins may use the cookie session. A browser attaches the
 * `sb_session` cookie to requests that a page of any other site makes (a
 * WebSocket, a form POST); the `Origin` header it sends with them is what
 * tells such requests apart.
 *
 * - No ALLOWED_ORIGINS: same origin only — the Origin's host (host:port)
 *   equals the request's Host header. The scheme is not compared, so a
 *   proxy terminating TLS in front of plain-HTTP nodes works (it must pass
 *   Host through: nginx `proxy_set_header Host $host`).
 * - ALLOWED_ORIGINS=a,b: those origins, plus the same origin. `*`: any.
 * - No Origin header: not a cross-site browser request (curl, Node and
 *   Java clients, or a same-origin GET), allowed — unless the browser's
 *   `Sec-Fetch-Site` says the request is cross-site.
 */

export type OriginVerdict = 'same-origin' | 'allowed' | 'absent' | 'refused';

export class OriginPolicy {
  private readonly origins = new Set<string>();
  private readonly any: boolean;

  constructor(allowed: string | undefined) {
    const entries = (allowed ?? '')
      .split(',')
      .map((entry) => entry.trim())
      .filter((entry) => entry.length > 0);
    this.any = entries.includes('*');
    for (const entry of entries) {
      if (entry === '*') continue;
      const normalised = normaliseOrigin(entry);
      if (normalised === undefined) throw new Error(`ALLOWED_ORIGINS: "${entry}" is not an origin such as https://app.example.com`);
      this.origins.add(normalised);
    }
  }

  /** Judges a request from its Origin, Host and Sec-Fetch-Site headers. */
  check(headers: { origin?: string | string[]; host?: string | string[]; 'sec-fetch-site'?: string | string[] }): OriginVerdict {
    const origin = single(headers.origin);
    if (origin === undefined) {
      const site = single(headers['sec-fetch-site']);
      return site === 'cross-site' || site === 'same-site' ? 'refused' : 'absent';
    }
    const normalised = normaliseOrigin(origin);
    if (normalised === undefined) return this.any ? 'allowed' : 'refused'; // "null" (sandboxed pages, file://)
    const host = single(headers.host);
    if (host !== undefined && sameHost(normalised, host)) return 'same-origin';
    if (this.any || this.origins.has(normalised)) return 'allowed';
    return 'refused';
  }

  allows(headers: Parameters<OriginPolicy['check']>[0]): boolean {
    return this.check(headers) !== 'refused';
  }
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** `scheme://host[:port]`, lower case, default port dropped; undefined when not an http(s) origin. */
function normaliseOrigin(origin: string): string | undefined {
  try {
    const url = new URL(origin);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
    return `${url.protocol}//${url.host}`;
  } catch {
    return undefined;
  }
}

function sameHost(origin: string, host: string): boolean {
  const originHost = new URL(origin).host;
  for (const scheme of ['http:', 'https:']) {
    try {
      // Parsing through URL drops a default port the Host header may carry (`a:80`).
      if (new URL(`${scheme}//${host}`).host === originHost) return true;
    } catch {
      return false;
    }
  }
  return false;
}

/*
 * Options every subcommand takes, and where the broker is. Each has an
 * environment fallback (STOMPBOX_URL, STOMPBOX_USER, ...); the flag wins.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './errors.js';

export const DEFAULT_URL = 'http://127.0.0.1:8080';
/** @default /stomp, the broker's WS_PATH default */
export const DEFAULT_WS_PATH = '/stomp';
export const DEFAULT_TIMEOUT_MS = 10_000;

export const COMMON_OPTIONS = {
  url: { type: 'string' },
  user: { type: 'string', short: 'u' },
  password: { type: 'string', short: 'p' },
  token: { type: 'string' },
  'ws-path': { type: 'string' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export const COMMON_HELP = `common options:
  --url URL          the broker's HTTP address (default ${DEFAULT_URL}, env STOMPBOX_URL);
                     the STOMP WebSocket URL is derived from it (http→ws, https→wss, + --ws-path);
                     a ws:// or wss:// URL is used as the STOMP URL as given
  --user, -u NAME    who you are (env STOMPBOX_USER): STOMP login / POST /api/login
  --password, -p PW  password for static auth mode (env STOMPBOX_PASSWORD)
  --token JWT        bearer token for jwt auth mode (env STOMPBOX_TOKEN)
  --ws-path PATH     STOMP WebSocket path (default ${DEFAULT_WS_PATH})
  --timeout MS       bound on connecting and on each confirmation (default ${DEFAULT_TIMEOUT_MS})
  --help, -h         this help`;

export interface Target {
  /** `http://host:port` without a trailing slash. */
  httpUrl: string;
  /** `ws://host:port/stomp` */
  wsUrl: string;
  user: string | undefined;
  password: string | undefined;
  token: string | undefined;
  timeoutMs: number;
}

export type CommonValues = {
  url?: string;
  user?: string;
  password?: string;
  token?: string;
  'ws-path'?: string;
  timeout?: string;
};

export function resolveTarget(values: CommonValues, env: NodeJS.ProcessEnv): Target {
  const raw = values.url ?? env.STOMPBOX_URL ?? DEFAULT_URL;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--url: not a URL: "${raw}"`);
  }
  const wsPath = values['ws-path'] ?? DEFAULT_WS_PATH;
  let httpUrl: string;
  let wsUrl: string;
  if (url.protocol === 'http:' || url.protocol === 'https:') {
    httpUrl = url.origin + url.pathname.replace(/\/+$/, '');
    wsUrl = `${url.protocol === 'https:' ? 'wss:' : 'ws:'}//${url.host}${url.pathname.replace(/\/+$/, '')}${wsPath}`;
  } else if (url.protocol === 'ws:' || url.protocol === 'wss:') {
    wsUrl = url.href;
    httpUrl = `${url.protocol === 'wss:' ? 'https:' : 'http:'}//${url.host}`;
  } else {
    throw new UsageError(`--url must be http(s):// or ws(s)://, got "${raw}"`);
  }
  const timeoutText = values.timeout ?? String(DEFAULT_TIMEOUT_MS);
  if (!/^\d+$/.test(timeoutText) || Number(timeoutText) === 0) throw new UsageError(`--timeout must be a positive number of ms, got "${timeoutText}"`);
  const user = values.user ?? env.STOMPBOX_USER;
  const password = values.password ?? env.STOMPBOX_PASSWORD;
  const token = values.token ?? env.STOMPBOX_TOKEN;
  return { httpUrl, wsUrl, user: user || undefined, password, token: token || undefined, timeoutMs: Number(timeoutText) };
}

/** parseArgs with the common options, turning its errors into one-line usage errors. */
export function parse<T extends NonNullable<ParseArgsConfig['options']>>(command: string, argv: readonly string[], options: T) {
  try {
    return parseArgs({ args: [...argv], options: { ...COMMON_OPTIONS, ...options }, allowPositionals: true, strict: true });
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0]! : String(error);
    throw new UsageError(`${command}: ${message.replace(/\. To specify a positional argument.*$/, '')} (see stompbox ${command} --help)`);
  }
}

/** `--header name:value`, repeatable. */
export function parseHeaders(list: readonly string[] | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const entry of list ?? []) {
    const colon = entry.indexOf(':');
    if (colon <= 0) throw new UsageError(`--header must be name:value, got "${entry}"`);
    headers[entry.slice(0, colon).trim()] = entry.slice(colon + 1);
  }
  return headers;
}

export function positiveInt(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) === 0) throw new UsageError(`${name} must be a positive integer, got "${text}"`);
  return Number(text);
}

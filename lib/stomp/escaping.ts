import { StompCodecError } from './errors.js';
import type { StompVersion } from './frame.js';

/*
 * Header escaping (STOMP 1.2 "Value Encoding"; 1.1 has the same minus `\r`;
 * 1.0 has none). Escaping is per version, never applied to CONNECT/CONNECTED.
 */

const NEEDS_ESCAPE_12 = /[\\\r\n:]/;
const NEEDS_ESCAPE_11 = /[\\\n:]/;

export function escapeHeader(value: string, version: StompVersion): string {
  if (version === '1.0') return value;
  if (version === '1.2') {
    if (!NEEDS_ESCAPE_12.test(value)) return value;
    return value.replace(/[\\\r\n:]/g, escapeChar);
  }
  if (!NEEDS_ESCAPE_11.test(value)) return value;
  return value.replace(/[\\\n:]/g, escapeChar);
}

function escapeChar(ch: string): string {
  switch (ch) {
    case '\\':
      return '\\\\';
    case '\r':
      return '\\r';
    case '\n':
      return '\\n';
    default:
      return '\\c';
  }
}

/**
 * Decodes an escaped header name or value. An undefined escape sequence is a
 * fatal protocol error (STOMP 1.2 "Value Encoding": "MUST be treated as a
 * fatal protocol error").
 */
export function unescapeHeader(raw: string, version: StompVersion): string {
  if (version === '1.0' || raw.indexOf('\\') === -1) return raw;
  let out = '';
  let from = 0;
  for (let i = raw.indexOf('\\'); i !== -1; i = raw.indexOf('\\', from)) {
    out += raw.slice(from, i);
    const next = raw.charCodeAt(i + 1);
    if (next === 0x5c /* \ */) out += '\\';
    else if (next === 0x6e /* n */) out += '\n';
    else if (next === 0x63 /* c */) out += ':';
    else if (next === 0x72 /* r */ && version === '1.2') out += '\r';
    else {
      throw new StompCodecError(
        'ERR_STOMP_INVALID_ESCAPE',
        `invalid escape sequence "\\${raw.charAt(i + 1)}" in header "${raw.slice(0, 64)}"`,
      );
    }
    from = i + 2;
  }
  return out + raw.slice(from);
}

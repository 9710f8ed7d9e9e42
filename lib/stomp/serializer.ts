/*
 * Frame → bytes. One allocation per frame: the header block is written as a
 * string into a buffer sized exactly, then the body is copied after it.
 * Server frames with a body always carry `content-length` (STOMP 1.2
 * "Header content-length": frames SHOULD include it), so bodies may hold NUL.
 */
import { escapeHeader } from './escaping.js';
import { isUnescapedCommand, type StompVersion } from './frame.js';

export type OutgoingHeaders = Record<string, string | number | undefined>;

export interface OutgoingFrame {
  command: string;
  headers?: OutgoingHeaders;
  body?: Buffer | string;
}

export const HEARTBEAT_EOL = Buffer.from('\n');

export function serializeFrame(frame: OutgoingFrame, version: StompVersion = '1.2'): Buffer {
  const body = frame.body === undefined ? undefined : typeof frame.body === 'string' ? Buffer.from(frame.body, 'utf8') : frame.body;
  const escape = !isUnescapedCommand(frame.command);
  let head = frame.command + '\n';
  const headers = frame.headers;
  if (headers) {
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined || name === 'content-length') continue;
      const text = typeof value === 'number' ? String(value) : value;
      head += escape ? escapeHeader(name, version) + ':' + escapeHeader(text, version) + '\n' : name + ':' + text + '\n';
    }
  }
  if (body !== undefined) head += 'content-length:' + body.length + '\n';
  head += '\n';
  const headLength = Buffer.byteLength(head, 'utf8');
  const bodyLength = body?.length ?? 0;
  const out = Buffer.allocUnsafe(headLength + bodyLength + 1);
  out.write(head, 0, 'utf8');
  if (body !== undefined && bodyLength > 0) body.copy(out, headLength);
  out[headLength + bodyLength] = 0;
  return out;
}

/*
 * MESSAGE frames (STOMP 1.2 "MESSAGE"), built from two parts:
 * - the head, per delivery: destination (as the client subscribed),
 *   message-id, subscription, and ack when the subscription needs one;
 * - the tail, per message: sender, application headers and content-length
 *   — serialised once and kept while the same message is delivered again,
 *   so a fan-out to N subscribers (which delivers one message to all of
 *   them in a row) escapes the headers and scans the body for UTF-8 once,
 *   not N times. One entry, not a map: point-to-point messages are
 *   delivered once and need no cache.
 */
import { isUtf8 } from 'node:buffer';
import { escapeHeader, type StompVersion } from '../stomp/index.js';
import type { BrokerMessage } from '../core/message.js';

interface Tail {
  version: StompVersion;
  /** Application headers, sender, content-length and the blank line. */
  text: string;
  textLength: number;
  /** The body is not UTF-8: the frame must travel as a binary WebSocket message. */
  binary: boolean;
  /** The body as this version's readers get it (see `legacyBody`). */
  body: Buffer;
}

const REPLACEMENT = Buffer.from('\ufffd', 'utf8');

/**
 * A body for a STOMP 1.0/1.1 session: each NUL replaced by U+FFFD. stomp.js
 * 2.3 (the 1.1 client of the seed page) cuts its input at every NUL before it
 * reads content-length, so a NUL in a body would end the MESSAGE early and let
 * the rest be read as a frame of the sender's choosing (a MESSAGE "from"
 * anyone). 1.2 clients (stompjs 7) read content-length and get the bytes as sent.
 */
function legacyBody(body: Buffer): Buffer {
  let at = body.indexOf(0);
  if (at === -1) return body;
  const parts: Buffer[] = [];
  let start = 0;
  for (; at !== -1; at = body.indexOf(0, start)) {
    parts.push(body.subarray(start, at), REPLACEMENT);
    start = at + 1;
  }
  parts.push(body.subarray(start));
  return Buffer.concat(parts);
}

let lastMessage: BrokerMessage | undefined;
let lastTail: Tail | undefined;

function tailOf(message: BrokerMessage, version: StompVersion): Tail {
  if (lastMessage === message && lastTail!.version === version) return lastTail!;
  let text = '';
  // The broker's `sender` ahead of the application headers: stompjs 7 and stomp.js 2.3 both keep
  // the first of two equal names (header-policy.ts keeps a second one from being sent at all).
  if (message.sender !== undefined) text += 'sender:' + escapeHeader(message.sender, version) + '\n';
  const headers = message.headers;
  for (const name in headers) text += escapeHeader(name, version) + ':' + escapeHeader(headers[name]!, version) + '\n';
  const body = version === '1.2' ? message.body : legacyBody(message.body);
  text += 'content-length:' + body.length + '\n\n';
  const tail: Tail = { version, text, textLength: Buffer.byteLength(text, 'utf8'), binary: body.length > 0 && !isUtf8(body), body };
  lastMessage = message;
  lastTail = tail;
  return tail;
}

/** One allocation per delivery: head, tail text, body, NUL. */
export function messageFrame(
  message: BrokerMessage,
  version: StompVersion,
  destination: string,
  subscriptionId: string,
  ack: string | undefined,
): { data: Buffer; binary: boolean } {
  const tail = tailOf(message, version);
  let head =
    'MESSAGE\ndestination:' +
    escapeHeader(destination, version) +
    '\nmessage-id:' +
    escapeHeader(message.id, version) +
    '\nsubscription:' +
    escapeHeader(subscriptionId, version) +
    '\n';
  if (ack !== undefined) head += 'ack:' + ack + '\n';
  head += tail.text;
  const headLength = Buffer.byteLength(head, 'utf8');
  const body = tail.body;
  const data = Buffer.allocUnsafe(headLength + body.length + 1);
  data.write(head, 0, 'utf8');
  body.copy(data, headLength);
  data[data.length - 1] = 0;
  return { data, binary: tail.binary };
}

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
import type { BrokerMessage } from './message.js';

interface Tail {
  version: StompVersion;
  /** Application headers, sender, content-length and the blank line. */
  text: string;
  textLength: number;
  /** The body is not UTF-8: the frame must travel as a binary WebSocket message. */
  binary: boolean;
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
  const body = message.body;
  text += 'content-length:' + body.length + '\n\n';
  const tail: Tail = { version, text, textLength: Buffer.byteLength(text, 'utf8'), binary: body.length > 0 && !isUtf8(body) };
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
  const body = message.body;
  const data = Buffer.allocUnsafe(headLength + body.length + 1);
  data.write(head, 0, 'utf8');
  body.copy(data, headLength);
  data[data.length - 1] = 0;
  return { data, binary: tail.binary };
}

/*
 * MESSAGE frames (STOMP 1.2 "MESSAGE"), built from two parts:
 * - the head, per delivery: destination (as the client subscribed),
 *   message-id, subscription, and ack when the subscription needs one;
 * - the tail, per message: application headers, sender, content-length,
 *   the body and the NUL — serialised once and cached, so a fan-out to N
 *   subscribers escapes the headers and scans the body for UTF-8 once, not
 *   N times.
 */
import { isUtf8 } from 'node:buffer';
import { escapeHeader, type StompVersion } from '../stomp/index.js';
import type { BrokerMessage } from './message.js';

interface Tail {
  version: StompVersion;
  bytes: Buffer;
  /** The body is not UTF-8: the frame must travel as a binary WebSocket message. */
  binary: boolean;
}

const tails = new WeakMap<BrokerMessage, Tail>();

function tailOf(message: BrokerMessage, version: StompVersion): Tail {
  const cached = tails.get(message);
  if (cached !== undefined && cached.version === version) return cached;
  let text = '';
  const headers = message.headers;
  for (const name in headers) text += escapeHeader(name, version) + ':' + escapeHeader(headers[name]!, version) + '\n';
  if (message.sender !== undefined) text += 'sender:' + escapeHeader(message.sender, version) + '\n';
  const body = message.body;
  text += 'content-length:' + body.length + '\n\n';
  const textLength = Buffer.byteLength(text, 'utf8');
  const bytes = Buffer.allocUnsafe(textLength + body.length + 1);
  bytes.write(text, 0, 'utf8');
  body.copy(bytes, textLength);
  bytes[bytes.length - 1] = 0;
  const tail: Tail = { version, bytes, binary: body.length > 0 && !isUtf8(body) };
  tails.set(message, tail);
  return tail;
}

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
  const headLength = Buffer.byteLength(head, 'utf8');
  const data = Buffer.allocUnsafe(headLength + tail.bytes.length);
  data.write(head, 0, 'utf8');
  tail.bytes.copy(data, headLength);
  return { data, binary: tail.binary };
}

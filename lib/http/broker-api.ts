/*
 * What the HTTP routes ask of the broker, written against its public
 * members only (route, inbox, presence, destinations, stats).
 */
import type { Broker } from '../broker/broker.js';
import { validUserName } from '../broker/auth.js';
import { BrokerError } from '../core/errors.js';
import { headerValueInvalid, isReservedHeader } from '../broker/header-policy.js';
import { createMessageId, type BrokerMessage } from '../core/message.js';
import { optionalString } from './body.js';

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/;
const MAX_HEADER_VALUE = 4096;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function checkUserName(name: string, field: string): string {
  if (!validUserName(name)) throw new BrokerError('ERR_BAD_REQUEST', `field "${field}" is not a valid user name`);
  return name;
}

/**
 * `destination` of a message for user `to`: a broker target such as
 * `/queue/reply` or `/topic/reply` (the user part is `to`). Returns the
 * target and the user destination as a STOMP SEND would name it.
 */
export function userTarget(broker: Broker, to: string, destination: string): { target: string; destination: string } {
  const prefix = broker.config.userPrefix;
  if (!destination.startsWith('/')) throw new BrokerError('ERR_BAD_REQUEST', 'field "destination" must start with "/", e.g. /queue/reply');
  if (destination.startsWith(prefix)) {
    throw new BrokerError('ERR_UNKNOWN_DESTINATION', `"destination" is the target within the user's destinations, e.g. /queue/reply, not ${destination.slice(0, 64)}`);
  }
  const full = `${prefix}${encodeURIComponent(to)}${destination}`;
  const parsed = broker.destinations.forSend(full);
  if (parsed.kind !== 'user') throw new BrokerError('ERR_UNKNOWN_DESTINATION', `unknown destination ${destination.slice(0, 64)}`);
  return { target: parsed.target, destination: full };
}

/**
 * The caller's own inbox target from what a page names it: the target
 * (`/queue/reply`, as the seed's page does), the subscribe form
 * (`/user/queue/reply`) or the explicit form of the caller's own name.
 * Another user's explicit form is ERR_FORBIDDEN.
 */
export function ownTarget(broker: Broker, user: string, destination: string): string {
  if (destination.startsWith(broker.config.userPrefix)) {
    const parsed = broker.destinations.forSubscribe(destination, user);
    if (parsed.kind !== 'user') throw new BrokerError('ERR_UNKNOWN_DESTINATION', `unknown destination ${destination.slice(0, 64)}`);
    return parsed.target;
  }
  return userTarget(broker, user, destination).target;
}

export function checkHeaders(value: unknown): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new BrokerError('ERR_BAD_REQUEST', 'field "headers" must be an object of strings');
  const headers: Record<string, string> = {};
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > 32) throw new BrokerError('ERR_BAD_REQUEST', 'field "headers" has more than 32 entries');
  for (const [name, text] of entries) {
    if (!HEADER_NAME.test(name)) throw new BrokerError('ERR_BAD_REQUEST', `header name "${name.slice(0, 64)}" is not a token`);
    if (isReservedHeader(name)) throw new BrokerError('ERR_BAD_REQUEST', `header "${name}" is set by the broker`);
    if (typeof text !== 'string') throw new BrokerError('ERR_BAD_REQUEST', `header "${name}" must be a string`);
    if (text.length > MAX_HEADER_VALUE || headerValueInvalid(text)) throw new BrokerError('ERR_BAD_REQUEST', `header "${name}" has an invalid value`);
    headers[name] = text;
  }
  return headers;
}

export interface SendToUser {
  sender: string;
  /** jwt mode: the caller's claims (a JWT's, or those its cookie session kept). */
  claims?: Readonly<Record<string, unknown>>;
  to: string;
  target: string;
  destination: string;
  body: Buffer;
  headers: Record<string, string>;
}

/** Resolves once the message is delivered, relayed to the receiver's nodes, or stored in its inbox. */
export async function sendToUser(broker: Broker, send: SendToUser): Promise<string> {
  if (send.body.length > broker.config.maxBodySize) {
    throw new BrokerError('ERR_PAYLOAD_TOO_LARGE', `the body is larger than ${broker.config.maxBodySize} bytes (MAX_BODY_SIZE)`);
  }
  if (!broker.accepting) throw new BrokerError('ERR_SHUTTING_DOWN', 'the node is shutting down');
  broker.authorizeSend(send.sender, send.destination, send.claims);
  const message: BrokerMessage = {
    id: createMessageId(broker.nodeId),
    destination: send.destination,
    headers: send.headers,
    body: send.body,
    sender: send.sender,
    timestamp: Date.now(),
  };
  await broker.route(message, { kind: 'user', user: send.to, target: send.target });
  return message.id;
}

/** A JSON message body: `body` as UTF-8 text, or base64 with `encoding: "base64"`; at most `maxBodySize` bytes. */
export function readBody(fields: Record<string, unknown>, maxBodySize: number): Buffer {
  const body = fields.body;
  if (body === undefined || body === null) throw new BrokerError('ERR_BAD_REQUEST', 'missing field "body"');
  if (typeof body !== 'string') throw new BrokerError('ERR_BAD_REQUEST', 'field "body" must be a string');
  const encoding = optionalString(fields, 'encoding', 16);
  let bytes: Buffer;
  if (encoding === undefined || encoding === 'utf8' || encoding === 'utf-8') {
    bytes = Buffer.from(body, 'utf8');
  } else if (encoding === 'base64') {
    if (body.length % 4 !== 0 || !BASE64.test(body)) throw new BrokerError('ERR_BAD_REQUEST', 'field "body" is not valid base64');
    bytes = Buffer.from(body, 'base64');
  } else {
    throw new BrokerError('ERR_BAD_REQUEST', 'field "encoding" must be "utf8" or "base64"');
  }
  if (bytes.length > maxBodySize) throw new BrokerError('ERR_PAYLOAD_TOO_LARGE', `the body is larger than ${maxBodySize} bytes (MAX_BODY_SIZE)`);
  return bytes;
}

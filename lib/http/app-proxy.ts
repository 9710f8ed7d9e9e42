/*
 * Application destinations (APP_PREFIX: `/app/` by default, `/message/` in
 * seed 002): what Spring's @MessageMapping does inside its broker, done here
 * by a separate application reached over HTTP (APP_PROXY_URL), so that a
 * page can talk to its application through the broker.
 *
 * The contract (README "Application destinations"):
 *
 *   POST APP_PROXY_URL   content-type: application/json
 *   { "user": "alice", "destination": "/app/chat", "path": "/chat",
 *     "id": "<message-id>", "headers": {...}, "body": "...",
 *     "encoding": "base64" (only when the body is not UTF-8), "timestamp": ms }
 *
 *   2xx, with no body or JSON { "messages": [ { "destination", "body",
 *     "encoding"?, "headers"? }, ... ] }
 *
 * Each message of the answer is routed, in order, as a SEND from that user
 * (sender header, the same delivery guarantees): `/user/queue/x` is the
 * user's own (as @SendToUser), anything else names a destination as a SEND
 * would. Only once all are accepted does the SEND get its RECEIPT. A
 * connection failure, the timeout, a non-2xx status or an answer that breaks
 * the contract becomes an ERROR frame with a stable code (errors.ts).
 */
import type { ApplicationHandler, Broker } from '../broker/broker.js';
import { BrokerError } from '../core/errors.js';
import { createMessageId, type BrokerMessage } from '../core/message.js';
import { requestBodyLimit } from './app.js';
import { checkHeaders, readBody } from './broker-api.js';
import { messageToJson } from './message-json.js';

export interface AppProxyOptions {
  /** Where SENDs to the application prefix are POSTed. */
  url: string;
  /** Bound on one call, connection to last byte, ms. @default 5000 */
  timeoutMs: number;
}

/** Most reply messages one answer may carry. */
const MAX_REPLIES = 100;

export function createAppProxy(broker: Broker, options: AppProxyOptions): ApplicationHandler {
  const prefix = broker.config.appPrefix;
  return async (message, sender) => {
    const request = {
      user: sender,
      path: '/' + message.destination.slice(prefix.length),
      ...messageToJson(message),
    };
    const answer = await call(options, JSON.stringify(request), message.destination, requestBodyLimit(broker.config.maxBodySize));
    for (const reply of parseReplies(answer, broker.config.maxBodySize)) await routeReply(broker, sender, reply);
  };
}

/** Bound on an answer: what the HTTP API accepts as one request body (one base64 body of MAX_BODY_SIZE and room). */
async function call(options: AppProxyOptions, body: string, destination: string, maxAnswerBytes: number): Promise<string> {
  let response: Response;
  let text: string;
  try {
    response = await fetch(options.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body,
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    text = await readBounded(response, maxAnswerBytes);
  } catch (error) {
    if (error instanceof BrokerError) throw error;
    if (error instanceof DOMException && error.name === 'TimeoutError') {
      throw new BrokerError('ERR_APP_TIMEOUT', `the application did not answer ${destination} within ${options.timeoutMs} ms (APP_PROXY_TIMEOUT_MS)`);
    }
    throw new BrokerError('ERR_APP_UNAVAILABLE', `the application for ${destination} is unreachable`);
  }
  if (response.status < 200 || response.status > 299) {
    throw new BrokerError('ERR_APP_REJECTED', `the application answered ${destination} with HTTP ${response.status}${detail(text)}`);
  }
  return text;
}

async function readBounded(response: Response, max: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (response.body) {
    for await (const chunk of response.body) {
      total += chunk.byteLength;
      // Leaving the loop cancels the rest of the body.
      if (total > max) throw badResponse(`it is larger than ${max} bytes`);
      chunks.push(chunk);
    }
  }
  return Buffer.concat(chunks, total).toString('utf8');
}

/** The application's own error message, when it sent one as `{error: ...}`. */
function detail(text: string): string {
  try {
    const json = JSON.parse(text) as { error?: unknown };
    const error = json.error;
    const message = typeof error === 'string' ? error : typeof error === 'object' && error !== null ? (error as { message?: unknown }).message : undefined;
    return typeof message === 'string' ? `: ${message.slice(0, 120)}` : '';
  } catch {
    return '';
  }
}

interface Reply {
  destination: string;
  body: Buffer;
  headers: Record<string, string>;
}

function parseReplies(text: string, maxBodySize: number): Reply[] {
  if (text.trim() === '') return [];
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw badResponse('it is not JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw badResponse('it is not a JSON object');
  const messages = (json as { messages?: unknown }).messages;
  if (messages === undefined || messages === null) return [];
  if (!Array.isArray(messages) || messages.length > MAX_REPLIES) throw badResponse(`"messages" must be an array of at most ${MAX_REPLIES}`);
  return messages.map((entry: unknown, i) => {
    if (typeof entry !== 'object' || entry === null) throw badResponse(`messages[${i}] is not an object`);
    const fields = entry as Record<string, unknown>;
    if (typeof fields.destination !== 'string') throw badResponse(`messages[${i}].destination must be a string`);
    try {
      return { destination: fields.destination, body: readBody(fields, maxBodySize), headers: checkHeaders(fields.headers) };
    } catch (error) {
      throw error instanceof BrokerError ? badResponse(`messages[${i}]: ${error.message}`) : error;
    }
  });
}

/** A reply goes out as a SEND from `user` would: same checks, same routing, same guarantees. */
async function routeReply(broker: Broker, user: string, reply: Reply): Promise<void> {
  let destination;
  try {
    destination = broker.destinations.forReply(reply.destination, user);
    if (destination.kind === 'app') throw badResponse(`a reply may not go to the application prefix (${reply.destination.slice(0, 64)})`);
    if (destination.kind !== 'user' || destination.user !== user) broker.authorizeSend(user, reply.destination);
  } catch (error) {
    throw error instanceof BrokerError && error.code !== 'ERR_APP_BAD_RESPONSE'
      ? badResponse(`reply destination: ${error.message}`)
      : error;
  }
  const message: BrokerMessage = {
    id: createMessageId(broker.nodeId),
    destination: reply.destination,
    headers: reply.headers,
    body: reply.body,
    sender: user,
    timestamp: Date.now(),
  };
  await broker.route(message, destination);
}

function badResponse(why: string): BrokerError {
  return new BrokerError('ERR_APP_BAD_RESPONSE', `the application's answer breaks the contract: ${why}`);
}

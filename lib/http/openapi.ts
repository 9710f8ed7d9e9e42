/*
 * The HTTP API as an OpenAPI 3.1 document, served at GET /api/openapi.json.
 * spec/http/openapi.spec.ts compares its paths with the koa router's routes
 * both ways, so a route cannot be added or removed without this document.
 * STOMP itself (WebSocket at WS_PATH, SockJS at SOCKJS_PATH, TCP/TLS) is
 * described in `info.description`: OpenAPI has no words for it.
 */
import type { Config } from '../config.js';
import { ERROR_DISPOSITIONS } from '../core/errors.js';

type Json = Record<string, unknown>;

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const str = (description?: string): Json => ({ type: 'string', ...(description ? { description } : {}) });
const obj = (properties: Record<string, Json>, required: string[] = []): Json => ({ type: 'object', properties, required });

function json(schema: Json, description = 'OK'): Json {
  return { description, content: { 'application/json': { schema } } };
}

/** Every route answers failures as `{error: {code, message}}` (lib/http/errors.ts). */
const ERRORS: Json = { '4XX': { $ref: '#/components/responses/Error' }, '5XX': { $ref: '#/components/responses/Error' } };

interface Operation {
  summary: string;
  /** Needs an identity: the session cookie or `Authorization: Bearer`. */
  auth?: boolean;
  parameters?: Json[];
  body?: Json;
  /** `form` too, besides JSON. */
  form?: boolean;
  status?: string;
  response: Json;
}

function operation(op: Operation): Json {
  const out: Json = {
    summary: op.summary,
    responses: { [op.status ?? '200']: op.response, ...ERRORS },
  };
  if (op.auth) out.security = [{ cookie: [] }, { bearer: [] }];
  if (op.parameters) out.parameters = op.parameters;
  if (op.body) {
    const content: Json = { 'application/json': { schema: op.body } };
    if (op.form) content['application/x-www-form-urlencoded'] = { schema: op.body };
    out.requestBody = { required: true, content };
  }
  return out;
}

const query = (name: string, description: string, schema: Json = { type: 'string' }): Json => ({ name, in: 'query', required: false, description, schema });

export function openApiDocument(config: Config): Json {
  const inboxTarget = str('the caller\'s own inbox: /queue/reply, /user/queue/reply');
  const messagesOf = obj({ user: str(), destination: str(), messages: { type: 'array', items: ref('Message') } });
  return {
    openapi: '3.1.0',
    info: {
      title: 'stompbox',
      version: '0.1.0',
      description:
        `STOMP 1.0–1.2 broker. STOMP over WebSocket at ${config.wsPath}, over SockJS at ${config.sockjsPath}, ` +
        'over TCP at STOMP_TCP_PORT and TLS at STOMP_TLS_PORT (when set). This document covers the HTTP API.',
    },
    paths: {
      '/healthz': { get: operation({ summary: 'Liveness', response: json(obj({ status: str(), node: str() })) }) },
      '/readyz': { get: operation({ summary: 'Readiness: the cluster store answers and the node accepts', response: json(obj({ status: str(), node: str() })) }) },
      '/metrics': { get: operation({ summary: 'Prometheus metrics', response: { description: 'OK', content: { 'text/plain': { schema: { type: 'string' } } } } }) },
      '/api/openapi.json': { get: operation({ summary: 'This document', response: json({ type: 'object' }) }) },
      '/api/login': {
        post: operation({
          summary: 'Log in: sets the sb_session cookie and returns the token (for Authorization: Bearer)',
          form: true,
          body: obj({ user: str(), username: str("Spring Security's field, for user"), password: str(), token: str('a JWT (jwt mode)') }),
          response: json(obj({ user: str(), expiresAt: { type: 'integer' }, token: str() }, ['user', 'expiresAt', 'token'])),
        }),
      },
      '/api/logout': { post: operation({ summary: 'Clears the session cookie', response: json(obj({ user: { type: 'null' } })) }) },
      '/api/me': {
        get: operation({ summary: 'Who the caller is', auth: true, response: json(obj({ user: str(), via: str(), expiresAt: { type: 'integer' }, authMode: str() })) }),
      },
      '/api/messages': {
        post: operation({
          summary: "Send to a user's destination; 202 once delivered, relayed or stored (as a SEND's RECEIPT)",
          auth: true,
          body: obj({ to: str(), destination: str('target within the user destinations, e.g. /queue/reply'), body: str(), encoding: { enum: ['utf8', 'base64'] }, headers: { type: 'object', additionalProperties: { type: 'string' } } }, ['to', 'destination', 'body']),
          status: '202',
          response: json(obj({ id: str() }), 'Accepted'),
        }),
      },
      '/api/inbox': {
        get: operation({
          summary: "Peek at the caller's inbox: its destinations, or the messages of one",
          auth: true,
          parameters: [query('destination', 'one inbox, e.g. /queue/reply'), query('limit', 'most messages', { type: 'integer', maximum: 1000 })],
          response: json({ oneOf: [obj({ user: str(), destinations: { type: 'array', items: { type: 'object' } } }), messagesOf] }),
        }),
      },
      '/api/inbox/pull': {
        post: operation({ summary: "Take the caller's stored messages of one destination, atomically, in order", auth: true, body: obj({ destination: inboxTarget, max: { type: 'integer' } }, ['destination']), response: json(messagesOf) }),
      },
      '/api/inbox/claim': {
        post: operation({
          summary: "Claim the caller's stored messages of one destination: deleted only when acked, back in the inbox after the visibility timeout",
          auth: true,
          body: obj({ destination: inboxTarget, max: { type: 'integer', maximum: 1000 }, visibilityTimeoutMs: { type: 'integer' } }, ['destination']),
          response: json(obj({ user: str(), destination: str(), claimId: { type: ['string', 'null'] }, messages: { type: 'array', items: ref('Message') }, expiresAt: { type: ['integer', 'null'] } })),
        }),
      },
      '/api/inbox/ack': {
        post: operation({
          summary: 'Acknowledge claimed messages (all of the claim when ids is omitted); after the timeout it acks nothing',
          auth: true,
          body: obj({ claimId: str(), ids: { type: 'array', items: str(), maxItems: 1000 } }, ['claimId']),
          response: json(obj({ claimId: str(), acked: { type: 'integer' }, left: { type: 'integer' }, expired: { type: 'boolean' } })),
        }),
      },
      '/api/presence': {
        get: operation({ summary: 'Who is online', auth: true, parameters: [query('limit', 'most users listed', { type: 'integer', maximum: 1000 })], response: json(obj({ online: { type: 'integer' }, users: { type: 'array', items: str() } })) }),
      },
      '/api/presence/{user}': {
        get: operation({
          summary: 'Whether a user is online, and on which nodes',
          auth: true,
          parameters: [{ name: 'user', in: 'path', required: true, schema: { type: 'string' } }],
          response: json(obj({ user: str(), online: { type: 'boolean' }, nodes: { type: 'array', items: str() } })),
        }),
      },
      '/api/cluster': { get: operation({ summary: "The cluster's nodes and this node's counters (the admin page)", auth: true, response: json({ type: 'object' }) }) },
      '/wsTemplate/sendToUser': {
        post: operation({ summary: "Seed 002's route: {\"content\":\"<sender> say: <msg>\"} to the receiver's /user/topic/reply", auth: true, form: true, body: obj({ receiver: str(), msg: str() }, ['receiver', 'msg']), response: json(obj({ code: str(), msg: str(), id: str() })) }),
      },
      '/wsTemplate/pullUnreadMessage': {
        post: operation({ summary: "Seed 002's route: take the caller's stored bodies of one destination", auth: true, form: true, body: obj({ destination: inboxTarget }, ['destination']), response: json(obj({ code: str(), result: { type: 'array', items: str() }, msg: str() })) }),
      },
    },
    components: {
      securitySchemes: {
        cookie: { type: 'apiKey', in: 'cookie', name: 'sb_session' },
        bearer: { type: 'http', scheme: 'bearer' },
      },
      schemas: {
        Message: obj(
          { id: str(), destination: str(), headers: { type: 'object', additionalProperties: { type: 'string' } }, body: str(), encoding: { enum: ['base64'] }, sender: { type: ['string', 'null'] }, timestamp: { type: 'integer' } },
          ['id', 'destination', 'headers', 'body', 'sender', 'timestamp'],
        ),
        Error: obj({ error: obj({ code: { enum: Object.keys(ERROR_DISPOSITIONS) }, message: str() }, ['code', 'message']) }, ['error']),
      },
      responses: { Error: json(ref('Error'), 'An error with a stable code (lib/core/errors.ts)') },
    },
  };
}

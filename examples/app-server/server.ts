/*
 * An application behind stompbox's application destinations: what a
 * Spring @MessageMapping controller would be, as a plain node:http server.
 * Run it, then start a node with APP_PROXY_URL pointing at it:
 *
 *   PORT=3000 npx tsx examples/app-server/server.ts
 *   APP_PROXY_URL=http://127.0.0.1:3000/stomp npm start
 *
 * A page SENDs to /app/<path>; stompbox POSTs it here as JSON
 * ({user, destination, path, headers, body, ...}, README "Application
 * destinations") and routes the messages of the answer as SENDs from that
 * user. The paths it knows:
 *
 *   /app/echo       → "echo: <body>" back to the sender, on /user/queue/echo
 *   /app/chat       body {"to": "bob", "text": "hi"} → bob's /user/queue/chat
 *                   gets {"from": <sender>, "text"}; the sender a copy on
 *                   /user/queue/chat-sent (the app decides; the broker routes)
 *   /app/broadcast  → "<user>: <body>" to every subscriber of /topic/broadcast
 *   /app/fail       → HTTP 500 (the sender gets ERROR ERR_APP_REJECTED)
 *   /app/slow       → never answers (the sender gets ERROR ERR_APP_TIMEOUT)
 *
 * It prints one JSON line once listening: {"listening": "http://127.0.0.1:<port>"}.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

interface AppRequest {
  user: string;
  destination: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  encoding?: 'base64';
}

interface AppMessage {
  destination: string;
  body: string;
  headers?: Record<string, string>;
}

type Handler = (request: AppRequest, response: ServerResponse) => AppMessage[] | undefined;

const handlers: Record<string, Handler> = {
  '/echo': (request) => [{ destination: '/user/queue/echo', body: `echo: ${request.body}` }],
  '/chat': (request) => {
    const { to, text } = JSON.parse(request.body) as { to?: unknown; text?: unknown };
    if (typeof to !== 'string' || typeof text !== 'string') throw new Error('expected {"to": "<user>", "text": "..."}');
    const body = JSON.stringify({ from: request.user, text });
    const headers = { 'content-type': 'application/json' };
    return [
      { destination: `/user/${encodeURIComponent(to)}/queue/chat`, body, headers },
      { destination: '/user/queue/chat-sent', body, headers },
    ];
  },
  '/broadcast': (request) => [{ destination: '/topic/broadcast', body: `${request.user}: ${request.body}` }],
  '/fail': (_request, response) => {
    answer(response, 500, { error: 'failing on purpose' });
    return undefined;
  },
  // Holds the request until stompbox gives up on it (APP_PROXY_TIMEOUT_MS).
  '/slow': () => undefined,
};

function answer(response: ServerResponse, status: number, json: unknown): void {
  const text = JSON.stringify(json);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

async function readJson(request: IncomingMessage): Promise<AppRequest> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as AppRequest;
}

const server = createServer((request, response) => {
  if (request.method !== 'POST') return answer(response, 405, { error: 'POST only' });
  readJson(request).then(
    (message) => {
      const handler = Object.hasOwn(handlers, message.path) ? handlers[message.path] : undefined;
      if (!handler) return answer(response, 404, { error: `no handler for ${message.path}` });
      let messages: AppMessage[] | undefined;
      try {
        messages = handler(message, response);
      } catch {
        return answer(response, 400, { error: `the body does not suit ${message.path}` });
      }
      if (messages) answer(response, 200, { messages });
    },
    () => answer(response, 400, { error: 'the request is not JSON' }),
  );
});

server.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1', () => {
  const { address, port } = server.address() as AddressInfo;
  process.stdout.write(JSON.stringify({ listening: `http://${address}:${port}` }) + '\n');
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});

/*
 * A minimal socket.io relay, the "what users would otherwise deploy" peer
 * for Node: rooms are destinations, and with --redis the nodes share rooms
 * through @socket.io/redis-adapter (Redis pub/sub; every node receives every
 * broadcast and drops what it does not hold: the broadcast design).
 *
 * Protocol (see lib/socketio-connection.ts):
 *   'subscribe' (destination, ack)  join the room; ack(null) once joined
 *   'send'      (destination, body) io.to(destination).emit('message', destination, body)
 *
 * Usage: npx tsx scripts/bench/peers/socketio-server.ts --port 0 [--redis redis://127.0.0.1:PORT]
 * Binds 127.0.0.1 only. Stops on SIGTERM/SIGINT.
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';

interface ClientToServer {
  subscribe: (destination: string, ack: (error: string | null) => void) => void;
  send: (destination: string, body: Buffer) => void;
}

interface ServerToClient {
  message: (destination: string, body: Buffer) => void;
}

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    redis: { type: 'string' },
  },
});

const port = Number(values.port ?? process.env['PORT'] ?? '0');
const http = createServer();
const io = new Server<ClientToServer, ServerToClient>(http, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  // A 1 MiB body plus the packet around it.
  maxHttpBufferSize: 2 * 1024 * 1024,
});

const redisClients: Redis[] = [];
if (values.redis !== undefined) {
  const pub = new Redis(values.redis, { lazyConnect: false, maxRetriesPerRequest: 3 });
  const sub = pub.duplicate();
  for (const client of [pub, sub]) client.on('error', (error: Error) => console.error(`socketio-server redis: ${error.message}`));
  redisClients.push(pub, sub);
  io.adapter(createAdapter(pub, sub));
}

io.on('connection', (socket) => {
  socket.on('subscribe', (destination, ack) => {
    void Promise.resolve(socket.join(destination)).then(
      () => ack(null),
      (error: unknown) => ack(error instanceof Error ? error.message : String(error)),
    );
  });
  socket.on('send', (destination, body) => {
    io.to(destination).emit('message', destination, body);
  });
});

http.listen(port, '127.0.0.1', () => {
  const address = http.address();
  console.log(`socketio-server listening on 127.0.0.1:${typeof address === 'object' && address !== null ? address.port : port}${values.redis ? ` (redis ${values.redis})` : ''}`);
});

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(1), 5000).unref();
  io.close(() => {
    for (const client of redisClients) client.disconnect();
    process.exit(0);
  });
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

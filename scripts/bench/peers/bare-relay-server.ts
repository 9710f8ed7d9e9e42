/*
 * The bare ceiling of stompbox's two-node design, for the benchmark: plain
 * `ws` clients, no STOMP, and node A relaying to node B through a Redis
 * stream per node, as stompbox does (XADD to the target node's stream, the
 * target reading it with XREAD BLOCK). Nothing else: no presence beats, no
 * receipts, no inbox, no de-duplication, no trimming by the reader (XADD's
 * approximate MAXLEN bounds the stream), no checks of the input.
 *
 * A stream, not pub/sub: pub/sub would be cheaper (Redis pushes, the reader
 * issues no request per wake-up), but it is not the design being measured —
 * stompbox reads a stream so that a node that is paused or reconnecting
 * loses nothing. The fair ceiling keeps that cost: one XADD per tick per
 * target node on the sending side, one XREAD round trip per wake-up on the
 * receiving side.
 *
 * Deliveries written to one client in one turn of the event loop leave in
 * one socket write (the socket corked until setImmediate; each is still its
 * own WebSocket message): stompbox coalesces its MESSAGE frames per turn, and
 * a ceiling that paid a syscall per delivery was not one (session 12: on one
 * machine that alone halved the bare relay's saturation figure).
 *
 * Protocol (text WebSocket messages; scripts/bench/lib/raw-connection.ts):
 *   client → server  `S<dest>`           subscribe; the server answers `A<dest>` once the route is in Redis
 *   client → server  `P<dest>\n<body>`   publish to whoever subscribed `dest`
 *   server → client  `M<dest>\n<body>`   a delivery
 * Routes: `HSET <prefix>route <dest> <node>` on subscribe; a sending node
 * reads a destination's node once (HGET) and caches it — the bench never
 * moves a subscription.
 *
 * Modes (`--mode`), to price the parts of the design one at a time:
 *   xread   (default) XADD, and the target reads with XREAD BLOCK: the design's floor
 *   script  the XADD made by a Lua script (EVALSHA), as stompbox's decision makes it
 *   push    the script also PUBLISHes each delivery, and the target takes it from
 *           its subscription instead of issuing XREAD per wake-up — what a
 *           push-fed reader (a stream kept, a pub/sub doorbell) would save;
 *           nothing here re-reads the stream after a lost push
 *
 * Usage: npx tsx scripts/bench/peers/bare-relay-server.ts --port P --redis redis://127.0.0.1:R --node-id a [--mode xread|script|push]
 * Binds 127.0.0.1 only. Stops on SIGTERM/SIGINT.
 */
import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { Redis, type Result } from 'ioredis';
import { WebSocketServer, type WebSocket } from 'ws';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    redis: { type: 'string' },
    'node-id': { type: 'string' },
    prefix: { type: 'string' },
    mode: { type: 'string' },
  },
});
if (values.redis === undefined || values['node-id'] === undefined) {
  console.error('usage: bare-relay-server.ts --port P --redis URL --node-id ID [--prefix bare:]');
  process.exit(2);
}
const nodeId = values['node-id'];
const prefix = values.prefix ?? 'bare:';
const streamOf = (node: string): string => `${prefix}stream:${node}`;
const ROUTES = `${prefix}route`;
/** Stream length bound (approximate, cheap): the reader keeps up, this only caps memory. */
const MAX_STREAM_LENGTH = 100_000;
const READ_COUNT = 1000;
const MODES = ['xread', 'script', 'push'] as const;
type Mode = (typeof MODES)[number];
const mode = (values.mode ?? 'xread') as Mode;
if (!MODES.includes(mode)) {
  console.error(`--mode: one of ${MODES.join(', ')}`);
  process.exit(2);
}
const channelOf = (node: string): string => `${prefix}push:${node}`;
/** KEYS stream [channel]; ARGV max length, then field/value pairs. With a channel, each pair is published as `<field>\n<value>`. */
const RELAY_LUA = `redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 2))
if KEYS[2] then for i = 2, #ARGV, 2 do redis.call('PUBLISH', KEYS[2], ARGV[i] .. '\\n' .. ARGV[i + 1]) end end
return 1`;

const command = new Redis(values.redis, { maxRetriesPerRequest: 3 });
const reader = command.duplicate();
command.defineCommand('bareRelay', { lua: RELAY_LUA });
declare module 'ioredis' {
  interface RedisCommander<Context> {
    bareRelay(numberOfKeys: number, ...keysThenArgs: Array<string | number | Buffer>): Result<number, Context>;
  }
}
for (const client of [command, reader]) client.on('error', (error: Error) => console.error(`bare-relay ${nodeId} redis: ${error.message}`));

/** Local subscribers by destination. */
const subscribers = new Map<string, Set<WebSocket>>();
/** Destination → node holding its subscriber (read once from Redis). */
const routes = new Map<string, string>();
/** Deliveries for other nodes gathered in this tick: node → [dest, body, dest, body, ...]. */
let outgoing = new Map<string, Buffer[]>();
let flushScheduled = false;

/** Client sockets corked in this turn, uncorked (written, one writev each) on setImmediate. */
const corked: Socket[] = [];

function uncorkAll(): void {
  for (const socket of corked.splice(0)) socket.uncork();
}

function deliverLocal(destination: string, frame: Buffer): void {
  const sockets = subscribers.get(destination);
  if (sockets === undefined) return;
  for (const socket of sockets) {
    // ws keeps its net.Socket private; cork() nests with ws' own cork/uncork around a frame.
    const raw = (socket as unknown as { _socket: Socket })._socket;
    if (raw.writableCorked === 0) {
      raw.cork();
      if (corked.push(raw) === 1) setImmediate(uncorkAll);
    }
    socket.send(frame, { binary: false });
  }
}

function deliveryFrame(destination: Buffer, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from('M'), destination, Buffer.from('\n'), body]);
}

function flush(): void {
  flushScheduled = false;
  const batches = outgoing;
  outgoing = new Map();
  // One stream entry per target node per tick, as stompbox packs a script call's envelopes.
  for (const [node, fields] of batches) {
    const written =
      mode === 'xread'
        ? command.xadd(streamOf(node), 'MAXLEN', '~', MAX_STREAM_LENGTH, '*', ...fields)
        : mode === 'script'
          ? command.bareRelay(1, streamOf(node), MAX_STREAM_LENGTH, ...fields)
          : command.bareRelay(2, streamOf(node), channelOf(node), MAX_STREAM_LENGTH, ...fields);
    written.catch((error: unknown) => {
      console.error(`bare-relay ${nodeId}: XADD failed: ${error instanceof Error ? error.message : String(error)}`);
    });
  }
}

/** Messages waiting for their destination's route lookup, in arrival order (a later one must not overtake them). */
const awaitingRoute = new Map<string, Buffer[]>();

function publish(destination: string, body: Buffer): void {
  const known = routes.get(destination);
  if (known !== undefined) {
    relay(destination, known, body);
    return;
  }
  const waiting = awaitingRoute.get(destination);
  if (waiting !== undefined) {
    waiting.push(body);
    return;
  }
  awaitingRoute.set(destination, [body]);
  command.hget(ROUTES, destination).then(
    (node) => {
      if (node !== null) routes.set(destination, node);
      const bodies = awaitingRoute.get(destination) ?? [];
      awaitingRoute.delete(destination);
      if (node !== null) for (const waited of bodies) relay(destination, node, waited);
    },
    (error: unknown) => {
      awaitingRoute.delete(destination);
      console.error(`bare-relay ${nodeId}: HGET failed: ${String(error)}`);
    },
  );
}

function relay(destination: string, node: string, body: Buffer): void {
  if (node === nodeId) {
    deliverLocal(destination, deliveryFrame(Buffer.from(destination), body));
    return;
  }
  let fields = outgoing.get(node);
  if (fields === undefined) outgoing.set(node, (fields = []));
  fields.push(Buffer.from(destination), body);
  if (!flushScheduled) {
    flushScheduled = true;
    process.nextTick(flush);
  }
}

async function readLoop(): Promise<void> {
  if (mode === 'push') {
    reader.on('messageBuffer', (_channel: Buffer, message: Buffer) => {
      const newline = message.indexOf(0x0a);
      if (newline >= 0) deliverLocal(message.toString('utf8', 0, newline), deliveryFrame(message.subarray(0, newline), message.subarray(newline + 1)));
    });
    await reader.subscribe(channelOf(nodeId));
    return;
  }
  let lastId = '$';
  for (;;) {
    const reply = await reader.xreadBuffer('COUNT', READ_COUNT, 'BLOCK', 0, 'STREAMS', streamOf(nodeId), lastId);
    if (reply === null) continue;
    for (const [, entries] of reply) {
      for (const [id, fields] of entries) {
        lastId = id.toString();
        for (let i = 0; i + 1 < fields.length; i += 2) deliverLocal(fields[i]!.toString(), deliveryFrame(fields[i]!, fields[i + 1]!));
      }
    }
  }
}

const http = createServer();
const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
wss.on('connection', (socket) => {
  const mine = new Set<string>();
  socket.on('message', (data: Buffer, isBinary: boolean) => {
    void isBinary;
    const kind = data[0];
    if (kind === 0x50 /* P */) {
      const newline = data.indexOf(0x0a);
      if (newline < 0) return;
      publish(data.toString('latin1', 1, newline), data.subarray(newline + 1));
    } else if (kind === 0x53 /* S */) {
      const destination = data.toString('utf8', 1);
      mine.add(destination);
      let sockets = subscribers.get(destination);
      if (sockets === undefined) subscribers.set(destination, (sockets = new Set()));
      sockets.add(socket);
      command.hset(ROUTES, destination, nodeId).then(
        () => socket.send(`A${destination}`),
        (error: unknown) => socket.close(1011, `route not stored: ${String(error)}`.slice(0, 120)),
      );
    }
  });
  socket.on('close', () => {
    for (const destination of mine) subscribers.get(destination)?.delete(socket);
  });
  socket.on('error', () => socket.terminate());
});

http.listen(Number(values.port ?? '0'), '127.0.0.1', () => {
  const address = http.address();
  console.log(`bare-relay ${nodeId} listening on 127.0.0.1:${typeof address === 'object' && address !== null ? address.port : values.port}`);
});
readLoop().catch((error: unknown) => {
  console.error(`bare-relay ${nodeId}: reader stopped: ${String(error)}`);
  process.exit(1);
});

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(1), 3000).unref();
  wss.close();
  http.close(() => {
    reader.disconnect();
    command.disconnect();
    process.exit(0);
  });
  for (const client of wss.clients) client.terminate();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

/*
 * A TCP proxy in front of a Redis whose replies can be held back and let
 * through one at a time: for specs of what a client does when a reply comes
 * later than the calls made after it were sent (Redis answers one connection
 * in order, so only the wire can hold a reply back). Commands always pass at
 * once; while `hold()` is on, each complete reply the server sends is
 * kept, counted, and passed on by `release(n)` or `open()`.
 */
import { createServer, connect as connectTcp, type AddressInfo, type Socket } from 'node:net';

export interface ReplyGate {
  /** Where to point the client: `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** Replies held so far (all connections), not yet let through. */
  readonly held: number;
  /** From now on, keep every reply. */
  hold(): void;
  /** Resolves once at least `count` replies are held. */
  waitHeld(count: number, timeoutMs?: number): Promise<void>;
  /** Lets the oldest `count` held replies through, in order. */
  release(count: number): void;
  /** Lets every held reply through and stops holding. */
  open(): void;
  close(): Promise<void>;
}

interface Held {
  client: Socket;
  bytes: Buffer;
}

/** The end of the RESP reply (RESP2, or RESP3 after HELLO 3) starting at `at` in `buf`, or -1 if it is not all there. */
function replyEnd(buf: Buffer, at: number): number {
  const line = buf.indexOf('\r\n', at);
  if (line < 0) return -1;
  const type = String.fromCharCode(buf[at]!);
  // simple string, error, integer; RESP3 null, boolean, double, big number
  if ('+-:_#,('.includes(type)) return line + 2;
  const n = Number(buf.toString('latin1', at + 1, line));
  if ('$=!'.includes(type)) {
    // a bulk string (verbatim, blob error) of n bytes and CRLF; nil: -1
    if (n < 0) return line + 2;
    const end = line + 2 + n + 2;
    return end <= buf.length ? end : -1;
  }
  if ('*~>%|'.includes(type)) {
    // n replies (a map or an attribute: n pairs); nil: -1. An attribute comes before the reply it is about.
    let end = line + 2;
    for (let i = 0; i < (type === '%' || type === '|' ? 2 * n : n); i++) {
      end = replyEnd(buf, end);
      if (end < 0) return -1;
    }
    return type === '|' ? replyEnd(buf, end) : end;
  }
  throw new Error(`reply gate: unexpected RESP type byte ${buf[at]}`);
}

export async function startReplyGate(redisPort: number): Promise<ReplyGate> {
  const sockets = new Set<Socket>();
  const queue: Held[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  let holding = false;
  const release = (count: number): void => {
    for (const { client, bytes } of queue.splice(0, count)) client.write(bytes);
  };
  const wake = (): void => {
    for (const waiter of [...waiters]) {
      if (queue.length >= waiter.count) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  };
  const server = createServer((client) => {
    const upstream = connectTcp({ host: '127.0.0.1', port: redisPort });
    sockets.add(client).add(upstream);
    let pending: Buffer = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    upstream.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let start = 0;
      for (let end = replyEnd(pending, 0); end > 0; end = start < pending.length ? replyEnd(pending, start) : -1) {
        const bytes = pending.subarray(start, end);
        // Replies of a connection stay in order: behind what it has held, a reply waits too.
        if (holding || queue.some((h) => h.client === client)) queue.push({ client, bytes: Buffer.from(bytes) });
        else client.write(bytes);
        start = end;
      }
      pending = pending.subarray(start);
      wake();
    });
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const socket of [client, upstream]) {
      socket.on('error', end);
      socket.on('close', end);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `redis://127.0.0.1:${port}`,
    get held() {
      return queue.length;
    },
    hold() {
      holding = true;
    },
    waitHeld(count, timeoutMs = 5000) {
      if (queue.length >= count) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`reply gate: ${count} replies held expected, ${queue.length} within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
    release,
    open() {
      holding = false;
      release(queue.length);
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

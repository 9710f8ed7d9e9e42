/*
 * The attacks of issue 10, each bounded in count and time, each resolving
 * with what the node answered (an ERROR code), or "NOT ANSWERED".
 */
import { serializeFrame } from '../../lib/stomp/index.js';
import { HostileClient } from './client.js';

export interface Target {
  /** `ws://host:port/stomp` */
  wsUrl: string;
  /** `ws://host:port/chat-websocket` */
  sockjsUrl: string;
}

export interface Attack {
  name: string;
  /** What the node should answer. */
  expected: string;
  run(target: Target): Promise<string>;
}

const MiB = 1024 * 1024;
const MAX_MS = 20_000;

async function attacker(target: Target, login = 'mallory'): Promise<HostileClient> {
  const client = await HostileClient.open(target.wsUrl);
  const reply = await client.connect(login);
  if (reply.command !== 'CONNECTED') throw new Error(`CONNECT refused: ${reply.headers.code ?? '?'}`);
  return client;
}

/**
 * Writes frames made by `frame(i)`, at most `max` and for at most MAX_MS, until the node answers ERROR or closes;
 * with `intervalMs`, at most one frame per interval (to stay under a send rate and meet the bound behind it).
 */
async function flood(client: HostileClient, frame: (i: number) => Parameters<HostileClient['write']>[0], max: number, intervalMs = 0): Promise<string> {
  const start = Date.now();
  const until = start + MAX_MS;
  for (let i = 0; i < max && client.open && client.errorCode() === undefined && Date.now() < until; i++) {
    await client.write(frame(i));
    const due = start + (i + 1) * intervalMs;
    if (due > Date.now()) await new Promise<void>((resolve) => setTimeout(resolve, due - Date.now()));
    // Small writes complete at once: let the answer be read.
    else if (i % 16 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return answer(client);
}

async function answer(client: HostileClient): Promise<string> {
  const error = await client.next((f) => f.command === 'ERROR', 5000).catch(() => undefined);
  client.close();
  return error?.headers.code ?? 'NOT ANSWERED';
}

/** One frame; the node's ERROR code, or RECEIPT when it accepted it. */
async function single(target: Target, frame: Parameters<HostileClient['write']>[0], login?: string): Promise<string> {
  const client = await attacker(target, login);
  await client.write(frame);
  const reply = await client.next((f) => f.command === 'ERROR' || f.command === 'RECEIPT', 5000).catch(() => undefined);
  client.close();
  if (!reply) return 'NOT ANSWERED';
  return reply.command === 'RECEIPT' ? 'RECEIPT (accepted)' : (reply.headers.code ?? '?');
}

const body = Buffer.alloc(MiB, 'x');

export const ATTACKS: Attack[] = [
  {
    name: "forged sender ('sender ' header)",
    expected: 'ERR_INVALID_HEADER',
    run: (t) => single(t, { command: 'SEND', headers: { destination: '/user/bob/queue/chat', 'sender ': 'alice', receipt: 'r' }, body: 'from alice?' }),
  },
  {
    name: 'frame injection (NUL in a header value)',
    expected: 'ERR_INVALID_HEADER',
    run: (t) => single(t, { command: 'SEND', headers: { destination: '/user/bob/queue/chat', 'x-note': 'a\u0000\nERROR\nmessage:forged\n\n', receipt: 'r' }, body: 'x' }),
  },
  {
    name: '1000 × 1 MiB SENDs in one transaction',
    expected: 'ERR_TRANSACTION_TOO_LARGE',
    run: async (t) => {
      const client = await attacker(t);
      await client.write({ command: 'BEGIN', headers: { transaction: 't' } });
      return flood(client, () => ({ command: 'SEND', headers: { destination: '/topic/void', transaction: 't' }, body }), 1000);
    },
  },
  {
    name: '100 open transactions',
    expected: 'ERR_TOO_MANY_TRANSACTIONS',
    run: async (t) => flood(await attacker(t), (i) => ({ command: 'BEGIN', headers: { transaction: `t${i}` } }), 100),
  },
  {
    name: 'client-ack topic subscription that never ACKs (5000 messages)',
    expected: 'ERR_TOO_MANY_UNACKED',
    run: async (t) => {
      const hoarder = await attacker(t);
      await hoarder.write({ command: 'SUBSCRIBE', headers: { destination: '/topic/hoard', id: 'h', ack: 'client-individual', receipt: 'r' } });
      await hoarder.next((f) => f.command === 'RECEIPT');
      const producer = await attacker(t, 'producer');
      await flood(producer, () => ({ command: 'SEND', headers: { destination: '/topic/hoard' }, body: 'm' }), 5000).catch(() => '');
      return answer(hoarder);
    },
  },
  {
    name: 'SockJS input flood (one message of 20 000 SENDs)',
    expected: 'ERR_INPUT_OVERFLOW',
    run: async (t) => {
      const client = await HostileClient.openSockJs(t.sockjsUrl);
      const reply = await client.connect('mallory');
      if (reply.command !== 'CONNECTED') return `CONNECT refused: ${reply.headers.code ?? '?'}`;
      await client.write(serializeFrame({ command: 'SEND', headers: { destination: '/topic/void' }, body: 'x' }).toString('utf8').repeat(20_000));
      return answer(client);
    },
  },
  {
    name: 'send flood, bytes (up to 1000 × 1 MiB)',
    expected: 'ERR_RATE_LIMITED',
    run: async (t) => flood(await attacker(t), () => ({ command: 'SEND', headers: { destination: '/topic/void' }, body }), 1000),
  },
  {
    name: 'send flood, messages (up to 400 000, 1000 per WebSocket message)',
    expected: 'ERR_RATE_LIMITED',
    run: async (t) => {
      const batch = serializeFrame({ command: 'SEND', headers: { destination: '/topic/void' }, body: 'x' }).toString('utf8').repeat(1000);
      return flood(await attacker(t), () => batch, 400);
    },
  },
  {
    name: '200 connections of one user',
    expected: 'ERR_TOO_MANY_CONNECTIONS',
    run: async (t) => {
      const held: HostileClient[] = [];
      try {
        for (let i = 0; i < 200; i++) {
          const client = await HostileClient.open(t.wsUrl);
          held.push(client);
          const reply = await client.connect('mallory');
          if (reply.command === 'ERROR') return reply.headers.code ?? '?';
        }
        return 'NOT ANSWERED';
      } finally {
        for (const client of held) client.close();
      }
    },
  },
  {
    name: '800 × 1 MiB to made-up users',
    expected: 'ERR_UNKNOWN_USER',
    run: async (t) => {
      const client = await attacker(t);
      return flood(client, (i) => ({ command: 'SEND', headers: { destination: `/user/nobody-${i}/queue/in` }, body }), 800);
    },
  },
  {
    name: "1 MiB messages to one real user's inboxes (a new destination each, up to 100)",
    expected: 'ERR_INBOX_FULL',
    run: async (t) => {
      // carol logs in once and leaves: known, away, and her inboxes fill.
      (await attacker(t, 'carol')).close();
      const client = await attacker(t);
      // 25 MiB/s: under the hostile node's send rate (32 MiB/s), so the inbox bound (16 MiB) answers.
      return flood(client, (i) => ({ command: 'SEND', headers: { destination: `/user/carol/queue/in-${i}` }, body }), 100, 40);
    },
  },
  {
    name: '1 MiB messages to a queue nobody consumes (up to 200)',
    expected: 'ERR_QUEUE_FULL',
    run: async (t) => flood(await attacker(t), () => ({ command: 'SEND', headers: { destination: '/queue/hoard' }, body }), 200, 40),
  },
  {
    name: "user name with ':' (%3A)",
    expected: 'ERR_UNKNOWN_DESTINATION',
    run: (t) => single(t, { command: 'SEND', headers: { destination: '/user/a%3Ab/queue/in', receipt: 'r' }, body: 'x' }),
  },
  {
    name: 'SUBSCRIBE to a queue the rules do not grant',
    expected: 'ERR_FORBIDDEN',
    run: (t) => single(t, { command: 'SUBSCRIBE', headers: { destination: '/queue/jobs', id: 's', receipt: 'r' } }),
  },
];

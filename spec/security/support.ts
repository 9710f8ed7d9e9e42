/*
 * What the attack specs share: a good pair (alice → bob over @stomp/stompjs 7,
 * every SEND acknowledged by a RECEIPT) that keeps exchanging messages while
 * an attack runs; and the stomp.js 2.3 client (spec/helpers/legacy-stomp.ts).
 */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import WebSocket from 'ws';
import { serializeFrame, type OutgoingFrame } from '../../lib/stomp/index.js';
import type { TestNode } from '../helpers/node.js';
import { StompJsClient, type RawStompClient, type Inbox, type ReceivedFrame } from '../helpers/stomp-client.js';
export { LegacyStompClient } from '../helpers/legacy-stomp.js';

/** alice sends numbered messages to bob's /user/queue/good; `check()` asserts bob got every one, in order. */
export class GoodPair {
  sent = 0;
  private constructor(
    private readonly alice: StompJsClient,
    private readonly inbox: Inbox,
  ) {}

  static async open(url: string, logins: { alice?: string; bob?: string; passcode?: string } = {}): Promise<GoodPair> {
    const passcode = logins.passcode !== undefined ? { passcode: logins.passcode } : {};
    const [alice, bob] = await Promise.all([
      StompJsClient.connect(url, { login: logins.alice ?? 'alice', ...passcode }),
      StompJsClient.connect(url, { login: logins.bob ?? 'bob', ...passcode }),
    ]);
    const inbox = await bob.subscribe('/user/queue/good');
    return new GoodPair(alice, inbox);
  }

  /** Sends `count` messages, each awaited to its RECEIPT (accepted by the broker). */
  async exchange(count: number, to = 'bob'): Promise<void> {
    for (let i = 0; i < count; i++) await this.alice.publish(`/user/${to}/queue/good`, `good-${++this.sent}`);
  }

  /** Every message sent so far reached bob, in order: the attack cost the pair nothing. */
  async check(): Promise<{ delivered: number; lost: number }> {
    for (let i = 1; i <= this.sent; i++) expect((await this.inbox.next()).body).to.equal(`good-${i}`);
    return { delivered: this.sent, lost: 0 };
  }
}


/**
 * Sends `frames` one by one (each written to the socket before the next)
 * until the broker answers with ERROR or closes, at most `max` of them; resolves
 * with the ERROR frame and how many frames were written.
 */
export async function floodUntilAnswered(
  client: RawStompClient,
  frame: (i: number) => OutgoingFrame,
  max: number,
): Promise<{ error: ReceivedFrame; written: number }> {
  let answered = false;
  const error = client.nextFrame((f) => f.command === 'ERROR', 60_000).finally(() => (answered = true));
  let written = 0;
  while (written < max && !answered && client.ws.readyState === WebSocket.OPEN) {
    const data = serializeFrame(frame(written), client.version);
    await new Promise<void>((resolve) => client.ws.send(data, () => resolve()));
    written++;
    // Small writes complete at once: yield to I/O so that the answer can be read.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return { error: await error, written };
}

/** Resident and peak resident set size of a process, bytes (Linux /proc). */
export function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

export const MiB = 1024 * 1024;

/**
 * Resolves once the node has released every session of `user` (returned what
 * they held to the inbox). Nothing signals it, so it is re-checked on each
 * turn of the event loop, for at most `timeoutMs`.
 */
export async function releasedAll(node: TestNode, user: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (node.broker.userSessions.has(user)) {
    if (Date.now() > deadline) throw new Error(`the sessions of ${user} were not released within ${timeoutMs} ms`);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

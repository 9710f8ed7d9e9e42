/*
 * An offline receiver that pulls its inbox over HTTP with claim + ack:
 *   POST /api/inbox/claim {destination, max?, visibilityTimeoutMs?} → {claimId, messages, expiresAt}
 *   POST /api/inbox/ack   {claimId, ids?}
 * alternating between the nodes. Some claims are abandoned on purpose, as a
 * client whose connection dropped would: their messages must come back
 * after the visibility timeout. Messages of an abandoned claim are not
 * counted as received (the client never got to handle them).
 *
 * Written against the contract of issue 9; on a tree without the API the
 * puller stops with `apiMissing` set, and the run reports it.
 */
import { call, type Answer } from '../../spec/http/helpers.js';
import { CHAOS_DESTINATION, sleep } from './load.js';
import type { PairTally } from './tally.js';

export type PullMode = 'pull-ack' | 'pull-ack-ids' | 'pull-drop';
export const PULL_MODES: readonly PullMode[] = ['pull-ack', 'pull-ack-ids', 'pull-drop'];

const CLAIM_MAX = 50;
export const VISIBILITY_TIMEOUT_MS = 2000;
const IDLE_POLL_MS = 100;

interface PullBehaviour {
  /** Every n-th claim is read, then never acknowledged (0: never). */
  abandonEvery: number;
  /** Every n-th claim's connection is cut before the answer's body is read (0: never). */
  dropEvery: number;
  /** Acknowledge by listing the ids (else the whole claim). */
  ackIds: boolean;
}

const BEHAVIOURS: Readonly<Record<PullMode, PullBehaviour>> = {
  'pull-ack': { abandonEvery: 0, dropEvery: 0, ackIds: false },
  'pull-ack-ids': { abandonEvery: 4, dropEvery: 0, ackIds: true },
  'pull-drop': { abandonEvery: 5, dropEvery: 3, ackIds: false },
};

interface ClaimedMessage {
  id: string;
  body: string;
}

/** The claim answer, checked field by field: the API is new, its shape is part of what is tested. */
function parseClaim(json: unknown): { claimId: string; messages: ClaimedMessage[] } | string {
  if (typeof json !== 'object' || json === null) return 'claim answer is not a JSON object';
  const { claimId, messages } = json as { claimId?: unknown; messages?: unknown };
  if (!Array.isArray(messages)) return 'claim answer has no "messages" array';
  const parsed: ClaimedMessage[] = [];
  for (const message of messages as unknown[]) {
    const { id, body } = (message ?? {}) as { id?: unknown; body?: unknown };
    if (typeof id !== 'string' || typeof body !== 'string') return 'a claimed message lacks a string "id" or "body"';
    parsed.push({ id, body });
  }
  if (messages.length > 0 && typeof claimId !== 'string') return 'claim answer has messages but no string "claimId"';
  return { claimId: typeof claimId === 'string' ? claimId : '', messages: parsed };
}

/** 404 "no route for …" (or 405) is a missing route; a 404 from the route itself (an unknown claim) is not. */
function routeMissing(answer: Answer): boolean {
  const message: unknown = (answer.json as { error?: { message?: unknown } } | undefined)?.error?.message;
  return answer.status === 405 || (answer.status === 404 && typeof message === 'string' && message.startsWith('no route for'));
}

export interface PullerOptions {
  pair: string;
  login: string;
  mode: PullMode;
  /** HTTP base URLs of the nodes. */
  urls: () => string[];
  tally: PairTally;
}

export class Puller {
  apiMissing: string | undefined;
  claims = 0;
  abandoned = 0;
  dropped = 0;
  /** Non-2xx answers by status and code (a node down, Redis down...). */
  readonly failures = new Map<string, number>();
  private stopped = false;
  private loop: Promise<void> | undefined;
  private token: string | undefined;

  constructor(private readonly options: PullerOptions) {}

  get mode(): PullMode {
    return this.options.mode;
  }

  start(): void {
    this.stopped = false;
    this.loop ??= this.run().finally(() => (this.loop = undefined));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  private note(what: string): void {
    this.failures.set(what, (this.failures.get(what) ?? 0) + 1);
  }

  private async run(): Promise<void> {
    const behaviour = BEHAVIOURS[this.options.mode];
    let turn = 0;
    while (!this.stopped && this.apiMissing === undefined) {
      const urls = this.options.urls();
      const base = urls[turn++ % urls.length]!;
      try {
        const got = await this.claimOnce(base, behaviour);
        if (got === 0) await sleep(IDLE_POLL_MS);
      } catch (error) {
        // A node down or restarting: the next turn tries the other one.
        this.note(error instanceof Error ? error.message.slice(0, 60) : 'error');
        await sleep(IDLE_POLL_MS);
      }
    }
  }

  /** One claim (and its ack, unless abandoned); the number of messages it held. */
  private async claimOnce(base: string, behaviour: PullBehaviour): Promise<number> {
    this.token ??= await this.login(base);
    const claimNo = this.claims + 1;
    const request = { destination: `/user${CHAOS_DESTINATION}`, max: CLAIM_MAX, visibilityTimeoutMs: VISIBILITY_TIMEOUT_MS };
    if (behaviour.dropEvery > 0 && claimNo % behaviour.dropEvery === 0) {
      const cut = await this.claimAndDrop(base, request);
      if (cut) {
        this.claims++;
        this.dropped++;
      }
      return 0;
    }
    const answer = await call(base, 'POST', '/api/inbox/claim', { token: this.token, json: request });
    if (routeMissing(answer)) {
      this.apiMissing = `API missing: POST /api/inbox/claim → ${answer.status}`;
      return 0;
    }
    if (answer.status !== 200) {
      this.note(`claim ${answer.status} ${(answer.json as { error?: { code?: string } } | undefined)?.error?.code ?? ''}`);
      return 0;
    }
    const claim = parseClaim(answer.json);
    if (typeof claim === 'string') {
      this.apiMissing = `API not as agreed: ${claim}`;
      return 0;
    }
    if (claim.messages.length === 0) return 0;
    this.claims++;
    if (behaviour.abandonEvery > 0 && this.claims % behaviour.abandonEvery === 0) {
      this.abandoned++;
      return claim.messages.length;
    }
    for (const message of claim.messages) this.options.tally.onDelivery(message.body, message.id);
    const ack = await call(base, 'POST', '/api/inbox/ack', {
      token: this.token,
      json: behaviour.ackIds ? { claimId: claim.claimId, ids: claim.messages.map((m) => m.id) } : { claimId: claim.claimId },
    });
    if (routeMissing(ack)) this.apiMissing = `API missing: POST /api/inbox/ack → ${ack.status}`;
    else if (ack.status < 200 || ack.status > 299) this.note(`ack ${ack.status} ${(ack.json as { error?: { code?: string } } | undefined)?.error?.code ?? ''}`);
    return claim.messages.length;
  }

  /** A claim whose connection is cut once the answer's headers are in: the claim happened, its body never arrived. */
  private async claimAndDrop(base: string, request: object): Promise<boolean> {
    const controller = new AbortController();
    const response = await fetch(`${base}/api/inbox/claim`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${this.token}` },
      body: JSON.stringify(request),
      signal: controller.signal,
    });
    controller.abort();
    return response.status === 200;
  }

  private async login(base: string): Promise<string> {
    const answer = await call(base, 'POST', '/api/login', { json: { user: this.options.login } });
    const token: unknown = (answer.json as { token?: unknown } | undefined)?.token;
    if (answer.status !== 200 || typeof token !== 'string') throw new Error(`login ${answer.status}`);
    return token;
  }
}

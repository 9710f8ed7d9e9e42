/*
 * Helpers for the HTTP, SockJS and security specs (not a spec file itself):
 * - `call()`: one HTTP request with `fetch`, its JSON answer and cookies;
 * - `login()`: POST /api/login, returning the cookie and the token;
 * - `StompChannel`: STOMP frames over any text/binary transport (a `ws`
 *   WebSocket with chosen headers, sockjs-client, or the hand-made SockJS
 *   xhr-polling client below), parsed with the project's own codec;
 * - `upgradeAnswer()`: the HTTP answer to a WebSocket upgrade that is refused.
 * Every wait is for an event, bounded by a timeout.
 */
import SockJS from 'sockjs-client';
import WebSocket from 'ws';
import { serializeFrame, StompParser, type OutgoingFrame, type StompFrame } from '../../lib/stomp/index.js';
import { onCleanup, type TestNode } from '../helpers/node.js';
import { AsyncQueue, DEFAULT_TIMEOUT_MS } from '../helpers/stomp-client.js';

// ---- HTTP -------------------------------------------------------------------------

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: any; // specs read fields of many different answers
}

export interface CallOptions {
  /** Sent as JSON (`application/json`) unless `raw` or `form` is given. */
  json?: unknown;
  /** Sent as application/x-www-form-urlencoded. */
  form?: Record<string, string>;
  /** A raw body, with `headers` saying its content type. */
  raw?: string;
  headers?: Record<string, string>;
  cookie?: string;
  token?: string;
}

export async function call(base: string | TestNode, method: string, path: string, options: CallOptions = {}): Promise<Answer> {
  const url = (typeof base === 'string' ? base : base.url) + path;
  const headers: Record<string, string> = { ...options.headers };
  let body: string | undefined;
  if (options.json !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = JSON.stringify(options.json);
  } else if (options.form !== undefined) {
    headers['content-type'] ??= 'application/x-www-form-urlencoded';
    body = new URLSearchParams(options.form).toString();
  } else if (options.raw !== undefined) {
    body = options.raw;
  }
  if (options.cookie) headers.cookie = options.cookie;
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const response = await fetch(url, { method, headers, body, redirect: 'manual' });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

export interface LoggedIn {
  user: string;
  /** `sb_session=<token>`, ready for a Cookie header. */
  cookie: string;
  token: string;
  setCookie: string;
}

/** POST /api/login with `fields` (default `{user}`); fails unless 200. */
export async function login(node: string | TestNode, user: string, fields: Record<string, unknown> = { user }): Promise<LoggedIn> {
  const answer = await call(node, 'POST', '/api/login', { json: fields });
  if (answer.status !== 200) throw new Error(`login as ${user} failed: ${answer.status} ${answer.text}`);
  const setCookie = answer.headers.get('set-cookie') ?? '';
  return { user: answer.json.user, cookie: setCookie.split(';')[0]!, token: answer.json.token, setCookie };
}

/** The error code of a JSON error answer. */
export function errorCode(answer: Answer): string | undefined {
  return answer.json?.error?.code;
}

// ---- STOMP over a text transport ------------------------------------------------------

let receipts = 0;

export class StompChannel {
  readonly frames = new AsyncQueue<StompFrame>((f) => `${f.command}${f.headers.code ? ' ' + f.headers.code : ''}`);
  private readonly parser = new StompParser({
    onFrame: (frame) => this.frames.push(frame),
    onError: (error) => this.frames.end(error),
  });

  constructor(
    private readonly write: (data: string) => void,
    readonly close: () => void,
  ) {
    onCleanup(() => this.close());
  }

  /** Bytes or text the transport received. */
  feed(data: string | Buffer): void {
    this.parser.push(data);
  }

  ended(reason: string): void {
    this.frames.end(new Error(reason));
  }

  sendFrame(frame: OutgoingFrame): void {
    this.write(serializeFrame(frame).toString('utf8'));
  }

  /** Sends text as it is: one transport message, which may hold several frames. */
  sendRaw(text: string): void {
    this.write(text);
  }

  next(predicate?: (frame: StompFrame) => boolean, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<StompFrame> {
    return this.frames.take(predicate, timeoutMs, predicate ? 'a matching frame' : 'a frame');
  }

  /** CONNECT (STOMP 1.2); resolves with the answer: CONNECTED or ERROR. */
  connect(headers: Record<string, string> = {}): Promise<StompFrame> {
    this.sendFrame({ command: 'CONNECT', headers: { 'accept-version': '1.2', host: 'localhost', 'heart-beat': '0,0', ...headers } });
    return this.next();
  }

  /** Sends `frame` with a receipt; resolves with the RECEIPT, or the ERROR that came instead. */
  async request(frame: OutgoingFrame): Promise<StompFrame> {
    const receipt = `r-${++receipts}`;
    this.sendFrame({ ...frame, headers: { ...frame.headers, receipt } });
    return this.next((f) => f.command === 'ERROR' || (f.command === 'RECEIPT' && f.headers['receipt-id'] === receipt));
  }

  async subscribe(destination: string, id = destination): Promise<StompFrame> {
    return this.request({ command: 'SUBSCRIBE', headers: { destination, id } });
  }

  async send(destination: string, body: string, headers: Record<string, string> = {}): Promise<StompFrame> {
    return this.request({ command: 'SEND', headers: { destination, 'content-type': 'text/plain', ...headers }, body });
  }

  nextMessage(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<StompFrame> {
    return this.next((f) => f.command === 'MESSAGE' || f.command === 'ERROR', timeoutMs);
  }
}

/** A `ws` WebSocket (with headers a browser would send, e.g. Cookie, Origin) carrying STOMP. */
export function openWs(url: string, headers: Record<string, string> = {}): Promise<StompChannel> {
  const ws = new WebSocket(url, ['v12.stomp'], { headers });
  const channel = new StompChannel(
    (data) => ws.send(data),
    () => ws.terminate(),
  );
  ws.on('message', (data: Buffer) => channel.feed(data));
  ws.on('close', () => channel.ended('socket closed'));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(channel));
    ws.once('unexpected-response', (_req, res) => {
      reject(new Error(`upgrade refused with HTTP ${res.statusCode ?? '?'}`));
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

/** What the server answered to a WebSocket upgrade it refused. */
export function upgradeAnswer(url: string, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['v12.stomp'], { headers });
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('the upgrade was accepted'));
    });
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = text;
        }
        resolve({ status: res.statusCode ?? 0, json });
        ws.terminate();
      });
    });
    ws.once('error', reject);
  });
}

export interface SockJsOpenOptions {
  transports: string[];
  /** Options per transport name, e.g. `{websocket: {headers: {Cookie: ...}}}` (faye-websocket in Node). */
  transportOptions?: Record<string, unknown>;
}

export interface SockJsChannel extends StompChannel {
  /** The transport sockjs-client settled on. */
  readonly transport: string;
}

/** sockjs-client in Node (as a browser page would use it), carrying STOMP. */
export function openSockJs(url: string, options: SockJsOpenOptions): Promise<SockJsChannel> {
  const sock = new SockJS(url, undefined, { transports: options.transports, transportOptions: options.transportOptions } as SockJS.Options);
  const channel = new StompChannel(
    (data) => sock.send(data),
    () => sock.close(),
  );
  sock.onmessage = (event) => channel.feed(String(event.data));
  return new Promise((resolve, reject) => {
    sock.onopen = () => {
      const transport = (sock as unknown as { transport: string }).transport;
      resolve(Object.assign(channel, { transport }));
    };
    sock.onclose = (event) => {
      channel.ended(`SockJS closed (${event.code} ${event.reason})`);
      reject(new Error(`SockJS closed before open (${event.code} ${event.reason})`));
    };
  });
}

// ---- a hand-made SockJS xhr-polling client ------------------------------------------------

/**
 * The SockJS xhr-polling protocol with `fetch`, so that a spec can send the
 * headers a browser would (Cookie) on every request, which sockjs-client in
 * Node cannot. Polls until closed; frames: `o` open, `h` heart-beat,
 * `a[...]` messages, `c[code,reason]` close.
 */
export class XhrPollingClient {
  readonly channel: StompChannel;
  readonly opened: Promise<void>;
  private closed = false;

  constructor(
    readonly sessionUrl: string,
    private readonly headers: Record<string, string>,
  ) {
    this.channel = new StompChannel(
      (data) => void this.sendRaw(JSON.stringify([data])),
      () => {
        this.closed = true;
      },
    );
    this.opened = this.poll(true);
  }

  static sessionUrl(base: string, sessionId = Math.random().toString(36).slice(2, 10)): string {
    return `${base}/000/${sessionId}`;
  }

  /** POST <session>/xhr_send; resolves with the HTTP status. */
  async sendRaw(payload: string, headers: Record<string, string> = this.headers): Promise<number> {
    const response = await fetch(`${this.sessionUrl}/xhr_send`, { method: 'POST', headers: { ...headers, 'content-type': 'text/plain' }, body: payload });
    await response.arrayBuffer();
    return response.status;
  }

  private async poll(first: boolean): Promise<void> {
    const response = await fetch(`${this.sessionUrl}/xhr`, { method: 'POST', headers: this.headers });
    const text = await response.text();
    if (response.status !== 200) {
      this.channel.ended(`poll answered ${response.status}: ${text}`);
      throw new Error(`poll answered ${response.status}: ${text}`);
    }
    for (const line of text.split('\n')) this.onFrame(line);
    if (first && !text.startsWith('o')) throw new Error(`expected an open frame, got ${text}`);
    if (!this.closed) void this.poll(false).catch(() => {});
  }

  private onFrame(frame: string): void {
    if (frame === '' || frame === 'o' || frame === 'h') return;
    if (frame.startsWith('a')) {
      for (const message of JSON.parse(frame.slice(1)) as string[]) this.channel.feed(message);
    } else if (frame.startsWith('c')) {
      this.closed = true;
      this.channel.ended(`SockJS close ${frame.slice(1)}`);
    }
  }
}

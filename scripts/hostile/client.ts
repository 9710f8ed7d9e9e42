/*
 * The smallest STOMP client the hostile run needs: a WebSocket (or a raw
 * SockJS WebSocket) carrying frames made and read by the project's own codec,
 * with no checks of its own, so that it can send what a well-behaved client
 * would not.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { serializeFrame, StompParser, type OutgoingFrame, type StompFrame } from '../../lib/stomp/index.js';

const BIG = 64 * 1024 * 1024;

export class HostileClient {
  readonly frames: StompFrame[] = [];
  readonly closed: Promise<void>;
  private readonly waiters = new Set<() => void>();
  private readonly parser = new StompParser(
    { onFrame: (frame) => this.arrived(frame), onError: () => this.ws.terminate() },
    { maxFrameSize: BIG, maxBodySize: BIG, maxHeaders: 1000, maxHeaderLineLength: BIG },
  );

  private constructor(
    readonly ws: WebSocket,
    private readonly sockjs: boolean,
  ) {
    ws.on('error', () => {});
    ws.on('message', (data: Buffer) => (sockjs ? this.sockjsMessage(data.toString('utf8')) : this.parser.push(data)));
    this.closed = new Promise((resolve) => ws.once('close', () => resolve()));
    void this.closed.then(() => this.wake());
  }

  /** STOMP over a plain WebSocket (`ws://host:port/stomp`). */
  static open(url: string): Promise<HostileClient> {
    return HostileClient.opened(new WebSocket(url, ['v12.stomp']), false);
  }

  /** STOMP over SockJS's raw WebSocket transport (`/chat-websocket/<server>/<session>/websocket`). */
  static openSockJs(base: string): Promise<HostileClient> {
    return HostileClient.opened(new WebSocket(`${base}/000/${randomUUID().slice(0, 8)}/websocket`), true);
  }

  private static opened(ws: WebSocket, sockjs: boolean): Promise<HostileClient> {
    const client = new HostileClient(ws, sockjs);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
    });
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** Writes text or a frame; resolves once it is handed to the socket. */
  write(what: OutgoingFrame | string): Promise<void> {
    let data: string | Buffer = typeof what === 'string' ? what : serializeFrame(what);
    if (this.sockjs) data = JSON.stringify([data.toString('utf8')]);
    return new Promise((resolve) => this.ws.send(data, () => resolve()));
  }

  async connect(login: string, extra: Record<string, string> = {}): Promise<StompFrame> {
    await this.write({ command: 'CONNECT', headers: { 'accept-version': '1.2', host: 'localhost', 'heart-beat': '0,0', login, ...extra } });
    return this.next((f) => f.command === 'CONNECTED' || f.command === 'ERROR');
  }

  /** The first frame (taken off the list) matching, within `timeoutMs`; undefined if none came or the socket closed. */
  async next(match: (frame: StompFrame) => boolean, timeoutMs = 10_000): Promise<StompFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.frames.findIndex(match);
      if (index !== -1) return this.frames.splice(index, 1)[0]!;
      if (!this.open) throw new Error('closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        const waiter = (): void => done();
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.waiters.add(waiter);
        void timer;
      });
    }
  }

  /** The ERROR's code if one came, else undefined. */
  errorCode(): string | undefined {
    return this.frames.find((f) => f.command === 'ERROR')?.headers.code;
  }

  close(): void {
    this.ws.terminate();
  }

  private arrived(frame: StompFrame): void {
    this.frames.push(frame);
    this.wake();
  }

  private wake(): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const waiter of waiters) waiter();
  }

  /** SockJS frames: `o` open, `h` heart-beat, `a[...]` messages, `c[...]` close. */
  private sockjsMessage(text: string): void {
    if (text.startsWith('a')) for (const message of JSON.parse(text.slice(1)) as string[]) this.parser.push(message);
    else if (text.startsWith('c')) this.ws.close();
  }
}

/*
 * One STOMP 1.2 connection over a `ws` WebSocket, framed with the project's
 * codec (lib/stomp). Raw frames rather than a client library, because the
 * chaos counters need every RECEIPT and ERROR matched to the SEND that asked
 * for it, and every MESSAGE's headers.
 *
 * It behaves like a real client on a bad network: heart-beats both ways (as
 * @stomp/stompjs's defaults), and a server silent for twice the negotiated
 * interval counts as dead (a frozen node keeps its TCP connections open).
 * Reconnecting is the caller's job (load.ts).
 */
import WebSocket from 'ws';
import { HEARTBEAT_EOL, StompParser, serializeFrame, type OutgoingFrame, type StompFrame } from '../../lib/stomp/index.js';

/** What stompjs offers by default: beats every 10 s both ways. */
const HEARTBEAT_MS = 10_000;
const CONNECT_TIMEOUT_MS = 3000;

export interface LinkHandlers {
  onFrame(frame: StompFrame): void;
  /** Once, whatever ended it (server close, ERROR, silence, our own close). */
  onClose(reason: string): void;
}

export class StompLink {
  private readonly parser: StompParser;
  private beatTimer: NodeJS.Timeout | undefined;
  private lastReceivedAt = Date.now();
  private lastSentAt = Date.now();
  private closed = false;

  private constructor(
    private readonly ws: WebSocket,
    private handlers: LinkHandlers,
  ) {
    this.parser = new StompParser({
      onFrame: (frame) => this.handlers.onFrame(frame),
      onError: (error) => this.terminate(`parse error: ${error.message}`),
    });
  }

  /** Opens, sends CONNECT and resolves on CONNECTED; rejects on ERROR, close or timeout. */
  static connect(url: string, login: string, handlers: LinkHandlers): Promise<StompLink> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, ['v12.stomp'], { handshakeTimeout: CONNECT_TIMEOUT_MS, perMessageDeflate: false });
      let settled = false;
      const fail = (reason: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        ws.terminate();
        reject(new Error(reason));
      };
      const timer = setTimeout(() => fail(`no CONNECTED from ${url} in ${CONNECT_TIMEOUT_MS} ms`), CONNECT_TIMEOUT_MS);
      const link = new StompLink(ws, {
        onFrame: (frame) => {
          if (settled) return handlers.onFrame(frame);
          if (frame.command !== 'CONNECTED') return fail(`CONNECT answered ${frame.command} ${frame.headers.code ?? ''} ${frame.headers.message ?? ''}`);
          settled = true;
          clearTimeout(timer);
          link.startBeats(frame.headers['heart-beat']);
          resolve(link);
        },
        onClose: (reason) => (settled ? handlers.onClose(reason) : fail(reason)),
      });
      ws.on('open', () => link.send({ command: 'CONNECT', headers: { 'accept-version': '1.2', host: '/', login, 'heart-beat': `${HEARTBEAT_MS},${HEARTBEAT_MS}` } }));
      ws.on('message', (data: Buffer) => {
        link.lastReceivedAt = Date.now();
        link.parser.push(data);
      });
      ws.on('error', () => {}); // 'close' follows and says it
      ws.on('close', (code: number, reason: Buffer) => link.ended(`closed (${code}${reason.length > 0 ? ` ${reason.toString()}` : ''})`));
    });
  }

  get open(): boolean {
    return !this.closed && this.ws.readyState === WebSocket.OPEN;
  }

  send(frame: OutgoingFrame): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.lastSentAt = Date.now();
    this.ws.send(serializeFrame(frame));
  }

  /** An abrupt drop, as a lost network: no DISCONNECT, no close handshake. */
  terminate(reason = 'terminated by the client'): void {
    this.ws.terminate();
    this.ended(reason);
  }

  /** DISCONNECT with a receipt, then close; bounded. */
  async disconnect(timeoutMs = 2000): Promise<void> {
    if (!this.open) return this.terminate('closed by the client');
    const done = new Promise<void>((resolve) => {
      const previous = this.handlers;
      const timer = setTimeout(resolve, timeoutMs);
      this.handlers = {
        onFrame: (frame) => {
          if (frame.command === 'RECEIPT' && frame.headers['receipt-id'] === 'chaos-bye') {
            clearTimeout(timer);
            resolve();
          } else previous.onFrame(frame);
        },
        onClose: (reason) => {
          clearTimeout(timer);
          resolve();
          previous.onClose(reason);
        },
      };
    });
    this.send({ command: 'DISCONNECT', headers: { receipt: 'chaos-bye' } });
    await done;
    this.ws.close(1000);
    this.terminate('closed by the client');
  }

  private startBeats(header: string | undefined): void {
    const [sx, sy] = (header ?? '0,0').split(',').map(Number);
    const sendEvery = sy ? Math.max(HEARTBEAT_MS, sy) : 0;
    const expectEvery = sx ? Math.max(HEARTBEAT_MS, sx) : 0;
    if (sendEvery === 0 && expectEvery === 0) return;
    this.beatTimer = setInterval(() => {
      const now = Date.now();
      if (expectEvery > 0 && now - this.lastReceivedAt > 2 * expectEvery) return this.terminate(`server silent for ${now - this.lastReceivedAt} ms`);
      if (sendEvery > 0 && now - this.lastSentAt >= sendEvery && this.ws.readyState === WebSocket.OPEN) {
        this.lastSentAt = now;
        this.ws.send(HEARTBEAT_EOL);
      }
    }, 500);
  }

  private ended(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.beatTimer);
    this.handlers.onClose(reason);
  }
}

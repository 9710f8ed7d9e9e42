/*
 * @stomp/stompjs over STOMP's TCP port (61613) instead of a WebSocket.
 *
 * stompjs talks to anything shaped like a WebSocket: its `webSocketFactory`
 * option returns an `IStompSocket`. This is that shape over a net (or tls)
 * socket: each chunk read goes to stompjs as an ArrayBuffer (its parser
 * works on bytes and reassembles frames that TCP splits or merges), and what
 * stompjs sends is written as it is. Heart-beats, receipts, reconnects:
 * all stompjs's own.
 *
 *   new Client({ webSocketFactory: () => new TcpStompSocket({ host: '127.0.0.1', port: 61613 }), ... })
 */
import { connect as connectNet, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';
import type { IStompSocket } from '@stomp/stompjs';

export interface TcpStompSocketOptions {
  host: string;
  port: number;
  /** TLS (STOMP_TLS_PORT) with these options, e.g. `{ ca }` for a private CA. */
  tls?: ConnectionOptions;
}

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

export class TcpStompSocket implements IStompSocket {
  readonly url: string;
  binaryType = 'arraybuffer';
  readyState = CONNECTING;
  onopen: ((ev?: unknown) => void) | null = null;
  onmessage: ((ev: { data: ArrayBuffer }) => void) | null = null;
  onclose: ((ev?: { code: number; reason: string; wasClean: boolean }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  private readonly socket: Socket;

  constructor(options: TcpStompSocketOptions) {
    this.url = `${options.tls ? 'stomp+ssl' : 'stomp'}://${options.host}:${options.port}`;
    const onConnect = (): void => {
      this.readyState = OPEN;
      this.onopen?.();
    };
    this.socket = options.tls
      ? connectTls({ host: options.host, port: options.port, ...options.tls }, onConnect)
      : connectNet({ host: options.host, port: options.port }, onConnect);
    this.socket.on('data', (chunk: Buffer) => {
      const data = chunk.buffer.slice(chunk.byteOffset, chunk.byteOffset + chunk.length) as ArrayBuffer;
      this.onmessage?.({ data });
    });
    this.socket.on('error', (error) => this.onerror?.(error));
    this.socket.on('close', (hadError: boolean) => {
      this.readyState = CLOSED;
      // TCP has no close codes: 1000 for an orderly end, 1006 (abnormal) otherwise, as a WebSocket would say.
      this.onclose?.({ code: hadError ? 1006 : 1000, reason: '', wasClean: !hadError });
    });
  }

  send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
    if (typeof data === 'string') this.socket.write(data);
    else if (ArrayBuffer.isView(data)) this.socket.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    else if (data instanceof ArrayBuffer) this.socket.write(Buffer.from(data));
    else throw new TypeError('TcpStompSocket sends strings and byte arrays');
  }

  close(): void {
    if (this.readyState >= CLOSING) return;
    this.readyState = CLOSING;
    this.socket.end();
  }

  terminate(): void {
    this.socket.destroy();
  }
}

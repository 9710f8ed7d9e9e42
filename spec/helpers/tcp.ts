/*
 * STOMP over TCP and TLS for specs: a raw channel (the project's codec over
 * a net.Socket) and an adapter that lets @stomp/stompjs run over TCP.
 *
 * stompjs talks to anything shaped like a WebSocket (its `webSocketFactory`,
 * typed `IStompSocket`). `TcpStompSocket` is that shape over a net/tls
 * socket: every chunk read is handed over as an ArrayBuffer (stompjs's
 * parser reads bytes and reassembles frames split across chunks, so TCP's
 * arbitrary cuts are fine), and what stompjs sends is written as it is.
 */
import { readFileSync } from 'node:fs';
import { connect as connectNet, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import type { IStompSocket } from '@stomp/stompjs';
import { StompChannel } from '../http/helpers.js';

/** A self-signed certificate for 127.0.0.1 and localhost, for the TLS listener in specs only. */
export const TLS_CERT = readFileSync(new URL('../fixtures/tls-cert.pem', import.meta.url), 'utf8');
export const TLS_KEY = readFileSync(new URL('../fixtures/tls-key.pem', import.meta.url), 'utf8');

export interface TcpOptions {
  /** TLS, trusting the spec certificate. */
  tls?: boolean;
}

/** A connected socket to 127.0.0.1:`port` (TLS handshake done, when asked). */
export function connectTcp(port: number, options: TcpOptions = {}): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = options.tls
      ? connectTls({ host: '127.0.0.1', port, ca: TLS_CERT }, () => resolve(socket))
      : connectNet({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.once('error', reject);
  });
}

export interface TcpChannel extends StompChannel {
  /** Resolves when the server closed the connection. */
  readonly closed: Promise<void>;
  readonly socket: Socket;
}

/** STOMP frames over a TCP (or TLS) connection, parsed with the project's codec. */
export async function openTcpChannel(port: number, options: TcpOptions = {}): Promise<TcpChannel> {
  const socket = await connectTcp(port, options);
  const channel = new StompChannel(
    (data) => socket.write(data),
    () => socket.destroy(),
  );
  socket.on('data', (chunk: Buffer) => channel.feed(chunk));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      channel.ended('socket closed');
      resolve();
    }),
  );
  return Object.assign(channel, { closed, socket });
}

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

/** A TCP socket as the part of the WebSocket API stompjs uses. */
export class TcpStompSocket implements IStompSocket {
  readonly url: string;
  binaryType = 'arraybuffer';
  readyState = CONNECTING;
  onopen: ((ev?: unknown) => void) | null = null;
  onmessage: ((ev: { data: ArrayBuffer }) => void) | null = null;
  onclose: ((ev?: { code: number; reason: string; wasClean: boolean }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  private readonly socket: Socket;

  constructor(port: number, options: TcpOptions = {}) {
    this.url = `${options.tls ? 'stomp+ssl' : 'stomp'}://127.0.0.1:${port}`;
    const onConnect = (): void => {
      this.readyState = OPEN;
      this.onopen?.();
    };
    this.socket = options.tls
      ? connectTls({ host: '127.0.0.1', port, ca: TLS_CERT }, onConnect)
      : connectNet({ host: '127.0.0.1', port }, onConnect);
    this.socket.on('data', (chunk: Buffer) => {
      const data = chunk.buffer.slice(chunk.byteOffset, chunk.byteOffset + chunk.length) as ArrayBuffer;
      this.onmessage?.({ data });
    });
    this.socket.on('error', (error) => this.onerror?.(error));
    this.socket.on('close', (hadError: boolean) => {
      this.readyState = CLOSED;
      // No close codes over TCP: 1000 for an orderly end, 1006 (abnormal) otherwise, as a WebSocket would say.
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

/*
 * STOMP over TCP and TLS for specs: a raw channel (the project's codec over
 * a net.Socket), and @stomp/stompjs over TCP through the adapter the README
 * shows backends (examples/node-backend/tcp-stomp-socket.ts).
 */
import { readFileSync } from 'node:fs';
import { connect as connectNet, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { TcpStompSocket as TcpSocket } from '../../examples/node-backend/tcp-stomp-socket.js';
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

/** The example's adapter on 127.0.0.1, trusting the spec certificate for TLS. */
export class TcpStompSocket extends TcpSocket {
  constructor(port: number, options: TcpOptions = {}) {
    super({ host: '127.0.0.1', port, tls: options.tls ? { ca: TLS_CERT } : undefined });
  }
}

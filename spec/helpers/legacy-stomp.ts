/*
 * stomp.js 2.3.3, the library the seed page loads from /vendor/, driven from
 * Node over a ws WebSocket: to read what the broker emits the way it does.
 */
import { createRequire } from 'node:module';
import WebSocket from 'ws';
import { onCleanup } from './node.js';
import { AsyncQueue } from './stomp-client.js';

/** A frame as stomp.js 2.3 parsed it. */
export interface LegacyFrame {
  command: string;
  headers: Record<string, string>;
  body: string;
}

/** The parts of the legacy stomp.js 2.3.3 client (global `Stomp` in the seed's page) the specs use. */
export interface LegacyClient {
  heartbeat: { outgoing: number; incoming: number };
  debug: ((message: string) => void) | null;
  connect(headers: Record<string, string>, onConnect: (frame: LegacyFrame) => void, onError: (error: LegacyFrame | string) => void): void;
  subscribe(destination: string, callback: (message: LegacyFrame) => void, headers?: Record<string, string>): { id: string };
  onreceipt: ((frame: LegacyFrame) => void) | null;
  disconnect(callback?: () => void): void;
}

export interface LegacyStomp {
  over(socket: unknown): LegacyClient;
}

export const legacyStomp = (createRequire(import.meta.url)('stompjs/lib/stomp.js') as { Stomp: LegacyStomp }).Stomp;

/** stomp.js 2.3 over a ws WebSocket: MESSAGE frames it handed to the subscription, and ERROR frames it reported. */
export class LegacyStompClient {
  readonly messages = new AsyncQueue<LegacyFrame>((f) => `MESSAGE ${f.body.slice(0, 40)}`);
  readonly errors: Array<LegacyFrame | string> = [];

  private readonly receipts = new AsyncQueue<string>();

  private constructor(private readonly client: LegacyClient) {
    client.onreceipt = (frame) => this.receipts.push(frame.headers['receipt-id'] ?? '');
  }

  static connect(url: string, login: string, passcode = ''): Promise<LegacyStompClient> {
    const ws = new WebSocket(url, ['v11.stomp', 'v10.stomp']);
    ws.on('error', () => {});
    onCleanup(() => ws.terminate());
    const client = legacyStomp.over(ws);
    client.heartbeat = { outgoing: 0, incoming: 0 };
    client.debug = null;
    const legacy = new LegacyStompClient(client);
    return new Promise((resolve, reject) => {
      let connected = false;
      client.connect(
        { login, passcode },
        () => {
          connected = true;
          resolve(legacy);
        },
        (error) => {
          legacy.errors.push(error);
          if (!connected) reject(new Error(`stomp.js 2.3 could not connect: ${typeof error === 'string' ? error : error.headers.message}`));
        },
      );
    });
  }

  /** Subscribes, with the RECEIPT awaited (stomp.js 2.3 hands it to `onreceipt`). */
  async subscribe(destination: string): Promise<void> {
    const receipt = `legacy-${destination}`;
    this.client.subscribe(destination, (frame) => this.messages.push(frame), { receipt });
    await this.receipts.take((id) => id === receipt);
  }
}

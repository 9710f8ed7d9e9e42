/*
 * A STOMP client for multi-node specs: @stomp/stompjs in Node over `ws`,
 * with promise helpers for receipts, errors and collected messages.
 */
import { Client, type IFrame, type IMessage, type StompHeaders } from '@stomp/stompjs';
import WebSocket from 'ws';

let receiptCounter = 0;
/** Woken by a message to any client: a predicate may look at several clients. */
const waiters = new Set<() => void>();
function wakeAll(): void {
  for (const wake of [...waiters]) wake();
}

export class ClusterClient {
  readonly messages: IMessage[] = [];
  readonly errors: IFrame[] = [];
  private readonly receipts = new Map<string, { resolve: () => void; reject: (error: Error) => void }>();
  readonly closed: Promise<void>;

  private constructor(
    readonly client: Client,
    closed: Promise<void>,
  ) {
    this.closed = closed;
  }

  static async connect(wsUrl: string, login: string, timeoutMs = 10_000): Promise<ClusterClient> {
    let onClosed!: () => void;
    const closed = new Promise<void>((resolve) => (onClosed = resolve));
    const client = new Client({
      webSocketFactory: () => new WebSocket(wsUrl, ['v12.stomp']),
      connectHeaders: { login },
      reconnectDelay: 0,
      heartbeatIncoming: 0,
      heartbeatOutgoing: 0,
    });
    const wrapper = new ClusterClient(client, closed);
    client.onWebSocketClose = () => {
      wrapper.failReceipts(new Error('connection closed'));
      onClosed();
    };
    client.onStompError = (frame) => {
      wrapper.errors.push(frame);
      const id = frame.headers['receipt-id'];
      const waiter = id ? wrapper.receipts.get(id) : undefined;
      if (id && waiter) {
        wrapper.receipts.delete(id);
        waiter.reject(new Error(`ERROR ${frame.headers.code ?? ''}: ${frame.headers.message ?? ''}`));
      }
    };
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no CONNECTED from ${wsUrl} in ${timeoutMs} ms`)), timeoutMs);
      client.onConnect = () => {
        clearTimeout(timer);
        resolve();
      };
      client.onWebSocketError = () => {
        clearTimeout(timer);
        reject(new Error(`cannot connect to ${wsUrl}`));
      };
      client.activate();
    });
    return wrapper;
  }

  /**
   * Subscribes and resolves on the RECEIPT: the subscription is in place cluster-wide.
   * `ackEach`: with a client ack mode, ACK every message as it arrives, as an application would.
   */
  async subscribe(destination: string, headers: StompHeaders = {}, ackEach = false): Promise<string> {
    const receipt = `sub-${++receiptCounter}`;
    const done = this.expectReceipt(receipt);
    const sub = this.client.subscribe(
      destination,
      (message) => {
        this.messages.push(message);
        if (ackEach) message.ack();
        wakeAll();
      },
      { ...headers, receipt },
    );
    await done;
    return sub.id;
  }

  /** Sends with a receipt; resolves on RECEIPT, rejects on an ERROR for it or a closed connection. */
  send(destination: string, body: string, headers: StompHeaders = {}): Promise<void> {
    const receipt = `send-${++receiptCounter}`;
    const done = this.expectReceipt(receipt);
    this.client.publish({ destination, body, headers: { ...headers, receipt } });
    return done;
  }

  /** Resolves once `predicate` holds over the collected messages. */
  async waitUntil(predicate: (messages: IMessage[]) => boolean, timeoutMs = 15_000, what = 'messages'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.messages)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; have ${this.messages.length}`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        waiters.add(wake);
      });
    }
  }

  async close(): Promise<void> {
    await this.client.deactivate();
  }

  private expectReceipt(id: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.receipts.set(id, { resolve, reject });
      this.client.watchForReceipt(id, () => {
        this.receipts.delete(id);
        resolve();
      });
    });
  }

  private failReceipts(error: Error): void {
    for (const [id, waiter] of this.receipts) {
      this.receipts.delete(id);
      waiter.reject(error);
    }
  }
}

export function bodies(messages: IMessage[]): string[] {
  return messages.map((m) => m.body);
}

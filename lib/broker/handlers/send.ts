import type { StompFrame } from '../../stomp/index.js';
import { createMessageId, type BrokerMessage } from '../message.js';
import type { Session } from '../session.js';
import { transactionOf } from './index.js';

/** Headers the broker owns; a client's values are dropped (never forwarded). */
const RESERVED = new Set(['destination', 'receipt', 'transaction', 'content-length', 'message-id', 'subscription', 'ack', 'sender']);

/**
 * SEND (STOMP 1.2 "SEND"). The RECEIPT goes out only once the message is
 * accepted: delivered, relayed to the nodes holding its receivers, queued or
 * stored in an inbox. Inside a transaction it waits for COMMIT.
 */
export async function handleSend(session: Session, frame: StompFrame): Promise<void> {
  const broker = session.broker;
  const destination = broker.authorizeSend(session.user!, frame.headers.destination);
  const tx = transactionOf(session, frame);
  const headers: Record<string, string> = {};
  for (const name in frame.headers) {
    if (!RESERVED.has(name)) headers[name] = frame.headers[name]!;
  }
  const message: BrokerMessage = {
    id: createMessageId(broker.nodeId),
    destination: frame.headers.destination!,
    headers,
    body: frame.body,
    sender: session.user,
    timestamp: Date.now(),
  };
  if (tx !== undefined) {
    session.transactions.get(tx)!.push({ kind: 'send', message });
  } else {
    await broker.route(message, destination);
  }
  session.sendReceipt(frame);
}

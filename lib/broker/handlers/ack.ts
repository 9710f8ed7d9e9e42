import type { StompFrame } from '../../stomp/index.js';
import type { Session } from '../session.js';
import { transactionOf } from './index.js';

/**
 * ACK / NACK (STOMP 1.2 "ACK", "NACK"): `id` matches the MESSAGE's `ack`
 * header (1.2), or `message-id` + `subscription` (1.1). In `client` mode they
 * are cumulative. In a transaction they take effect at COMMIT.
 */
export async function handleAck(session: Session, frame: StompFrame): Promise<void> {
  await settle(session, frame, 'ack');
}

export async function handleNack(session: Session, frame: StompFrame): Promise<void> {
  await settle(session, frame, 'nack');
}

async function settle(session: Session, frame: StompFrame, kind: 'ack' | 'nack'): Promise<void> {
  const tx = transactionOf(session, frame);
  const pending = session.findPending(frame);
  if (tx !== undefined) {
    session.transactions.get(tx)!.add({ kind, pending });
  } else {
    session.settle(pending);
    await (kind === 'ack' ? session.broker.acknowledge(session, pending) : session.broker.reject(session, pending));
  }
  session.sendReceipt(frame);
}

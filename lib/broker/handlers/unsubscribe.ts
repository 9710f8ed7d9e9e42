import type { StompFrame } from '../../stomp/index.js';
import { BrokerError } from '../../core/errors.js';
import type { Session } from '../session.js';

/** UNSUBSCRIBE (STOMP 1.2 "UNSUBSCRIBE"): by subscription `id`. */
export async function handleUnsubscribe(session: Session, frame: StompFrame): Promise<void> {
  const id = frame.headers.id ?? (session.version === '1.0' ? frame.headers.destination : undefined);
  if (id === undefined) throw new BrokerError('ERR_MISSING_HEADER', 'UNSUBSCRIBE requires an "id" header');
  const subscription = session.subscriptions.get(id);
  if (!subscription) throw new BrokerError('ERR_UNKNOWN_SUBSCRIPTION', `no subscription with id "${id.slice(0, 64)}"`);
  session.subscriptions.delete(id);
  await session.broker.unsubscribe(subscription);
  session.sendReceipt(frame);
}

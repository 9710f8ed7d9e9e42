import type { StompFrame } from '../../stomp/index.js';
import { BrokerError } from '../../core/errors.js';
import type { Session } from '../session.js';
import { ACK_MODES, type AckMode, type Subscription } from '../subscription.js';

const DEFAULT_PREFETCH = 100;

/**
 * SUBSCRIBE (STOMP 1.2 "SUBSCRIBE"): `id` required, `ack` auto | client |
 * client-individual. A RECEIPT means the subscription is in place across
 * the cluster: a message sent after it will reach this subscriber.
 */
export async function handleSubscribe(session: Session, frame: StompFrame): Promise<void> {
  const broker = session.broker;
  const h = frame.headers;
  // STOMP 1.0 made `id` optional; the destination then names the subscription.
  const id = h.id ?? (session.version === '1.0' ? h.destination : undefined);
  if (id === undefined) throw new BrokerError('ERR_MISSING_HEADER', 'SUBSCRIBE requires an "id" header');
  if (session.subscriptions.has(id)) throw new BrokerError('ERR_DUPLICATE_SUBSCRIPTION', `subscription id "${id.slice(0, 64)}" is in use`);
  if (session.subscriptions.size >= broker.config.maxSubscriptions) {
    throw new BrokerError('ERR_TOO_MANY_SUBSCRIPTIONS', `at most ${broker.config.maxSubscriptions} subscriptions per session (limit maxSubscriptions)`);
  }
  const ackMode = (h.ack ?? 'auto') as AckMode;
  if (!ACK_MODES.includes(ackMode)) throw new BrokerError('ERR_INVALID_HEADER', `invalid ack mode "${String(h.ack).slice(0, 32)}"`);
  const prefetchHeader = h['prefetch-count'];
  const asked = prefetchHeader !== undefined && /^\d{1,6}$/.test(prefetchHeader) && Number(prefetchHeader) > 0 ? Number(prefetchHeader) : DEFAULT_PREFETCH;
  // A queue consumer never holds more than maxUnacked: the queue waits for its ACKs instead.
  const prefetch = Math.min(asked, broker.config.maxUnacked);

  const target = broker.authorizeSubscribe(session.user!, h.destination, session.claims);
  const subscription: Subscription = {
    id,
    session,
    destination: h.destination!,
    ackMode,
    target,
    prefetch,
    unacked: 0,
    unackedDrained: 0,
    backlog: null,
  };
  session.subscriptions.set(id, subscription);
  await broker.subscribe(subscription, () => session.sendReceipt(frame));
}

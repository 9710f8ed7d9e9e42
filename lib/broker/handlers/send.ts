import type { StompFrame } from '../../stomp/index.js';
import { applicationHeaders } from '../header-policy.js';
import { createMessageId, type BrokerMessage } from '../../core/message.js';
import type { Session } from '../session.js';
import { transactionOf } from './index.js';


/**
 * SEND (STOMP 1.2 "SEND"). The RECEIPT goes out only once the message is
 * accepted: delivered, relayed to the nodes holding its receivers, queued or
 * stored in an inbox. Inside a transaction it waits for COMMIT. Routing is
 * pipelined (Session.sendTicket): the next SEND need not wait for this one's
 * round trip to the cluster store; receipts still come in frame order.
 */
export function handleSend(session: Session, frame: StompFrame): void {
  const broker = session.broker;
  // A sender usually repeats one destination: reuse its parse (Destination values are immutable).
  const name = frame.headers.destination;
  const last = session.lastSendDestination;
  let destination = name !== undefined && last !== undefined && last.name === name ? last.destination : undefined;
  if (destination === undefined) {
    destination = broker.authorizeSend(session.user!, name, session.claims);
    session.lastSendDestination = { name: name!, destination };
  }
  const tx = transactionOf(session, frame);
  session.chargeSend(frame.body.length);
  // Broker-owned names (header-policy.ts) are dropped: the broker stamps its own.
  const headers = applicationHeaders(frame.headers);
  const message: BrokerMessage = {
    id: createMessageId(broker.nodeId),
    destination: frame.headers.destination!,
    headers,
    body: frame.body,
    sender: session.user,
    timestamp: Date.now(),
  };
  if (tx !== undefined) {
    // Added first: a transaction past its bounds throws, and no ticket is left waiting.
    session.transactions.get(tx)!.add({ kind: 'send', message });
    session.sendTicket(frame).accepted();
  } else {
    broker.routeTo(message, destination, session.sendTicket(frame));
  }
}

import type { StompFrame } from '../../stomp/index.js';
import { BrokerError } from '../../core/errors.js';
import type { Session } from '../session.js';
import { Transaction } from '../transaction.js';

function transactionId(frame: StompFrame): string {
  const tx = frame.headers.transaction;
  if (tx === undefined) throw new BrokerError('ERR_MISSING_HEADER', `${frame.command} requires a "transaction" header`);
  return tx;
}

/** BEGIN (STOMP 1.2 "BEGIN"). */
export function handleBegin(session: Session, frame: StompFrame): void {
  const tx = transactionId(frame);
  if (session.transactions.has(tx)) throw new BrokerError('ERR_DUPLICATE_TRANSACTION', `transaction "${tx.slice(0, 64)}" is already open`);
  const { maxTransactions } = session.broker.config;
  if (session.transactions.size >= maxTransactions) {
    throw new BrokerError('ERR_TOO_MANY_TRANSACTIONS', `at most ${maxTransactions} open transactions per session (limit maxTransactions)`);
  }
  session.openTransaction(new Transaction(tx, session.broker.config));
  session.sendReceipt(frame);
}

/**
 * COMMIT (STOMP 1.2 "COMMIT"): the transaction's sends and acks take effect
 * now, in the order they were given.
 */
export async function handleCommit(session: Session, frame: StompFrame): Promise<void> {
  const tx = transactionId(frame);
  const ops = session.transactions.get(tx)?.ops;
  if (!ops) throw new BrokerError('ERR_UNKNOWN_TRANSACTION', `unknown transaction "${tx.slice(0, 64)}"`);
  session.closeTransaction(tx);
  const broker = session.broker;
  for (const op of ops) {
    if (op.kind === 'send') {
      await broker.route(op.message, broker.authorizeSend(session.user!, op.message.destination, session.claims));
    } else {
      const live = op.pending.filter((entry) => session.pending.has(entry.key));
      session.settle(live);
      await (op.kind === 'ack' ? broker.acknowledge(session, live) : broker.reject(session, live));
    }
  }
  session.sendReceipt(frame);
}

/** ABORT (STOMP 1.2 "ABORT"): drop what the transaction held. */
export function handleAbort(session: Session, frame: StompFrame): void {
  const tx = transactionId(frame);
  if (!session.closeTransaction(tx)) throw new BrokerError('ERR_UNKNOWN_TRANSACTION', `unknown transaction "${tx.slice(0, 64)}"`);
  session.sendReceipt(frame);
}

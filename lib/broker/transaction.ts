/*
 * One open transaction of a session (STOMP 1.2 "BEGIN"): the SENDs, ACKs and
 * NACKs it holds until COMMIT, bounded in frames and body bytes so that an
 * open transaction cannot grow a node without limit.
 */
import { BrokerError } from '../core/errors.js';
import type { BrokerMessage } from '../core/message.js';
import type { PendingAck } from './session.js';

/** A SEND, ACK or NACK held until its transaction commits. */
export type TransactionOp = { kind: 'send'; message: BrokerMessage } | { kind: 'ack' | 'nack'; pending: PendingAck[] };

export interface TransactionLimits {
  maxTransactionFrames: number;
  maxTransactionBytes: number;
}

export class Transaction {
  readonly ops: TransactionOp[] = [];
  private bytes = 0;

  constructor(
    readonly id: string,
    private readonly limits: TransactionLimits,
  ) {}

  /** Holds `op`; past a bound, ERR_TRANSACTION_TOO_LARGE (the session ends and the transaction with it). */
  add(op: TransactionOp): void {
    const { maxTransactionFrames, maxTransactionBytes } = this.limits;
    if (this.ops.length >= maxTransactionFrames) {
      throw new BrokerError('ERR_TRANSACTION_TOO_LARGE', `transaction "${this.id.slice(0, 64)}" holds ${maxTransactionFrames} frames (limit maxTransactionFrames)`);
    }
    const size = op.kind === 'send' ? op.message.body.length : 0;
    if (this.bytes + size > maxTransactionBytes) {
      throw new BrokerError('ERR_TRANSACTION_TOO_LARGE', `transaction "${this.id.slice(0, 64)}" would hold more than ${maxTransactionBytes} body bytes (limit maxTransactionBytes)`);
    }
    this.bytes += size;
    this.ops.push(op);
  }
}

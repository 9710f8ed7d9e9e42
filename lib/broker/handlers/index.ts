/*
 * Client frames dispatched by a table, one handler per command
 * (STOMP 1.2 "Client Frames"). A handler may return a promise; the session
 * waits for it before the next frame, which keeps a client's frames in order.
 */
import type { StompFrame } from '../../stomp/index.js';
import { BrokerError } from '../../core/errors.js';
import { checkClientHeaders } from '../header-policy.js';
import type { Session } from '../session.js';
import { handleAck, handleNack } from './ack.js';
import { handleConnect } from './connect.js';
import { handleDisconnect } from './disconnect.js';
import { handleSend } from './send.js';
import { handleSubscribe } from './subscribe.js';
import { handleAbort, handleBegin, handleCommit } from './transaction.js';
import { handleUnsubscribe } from './unsubscribe.js';

export type CommandHandler = (session: Session, frame: StompFrame) => void | Promise<void>;

const HANDLERS: Readonly<Record<string, CommandHandler>> = {
  CONNECT: handleConnect,
  STOMP: handleConnect,
  SEND: handleSend,
  SUBSCRIBE: handleSubscribe,
  UNSUBSCRIBE: handleUnsubscribe,
  ACK: handleAck,
  NACK: handleNack,
  BEGIN: handleBegin,
  COMMIT: handleCommit,
  ABORT: handleAbort,
  DISCONNECT: handleDisconnect,
};

export function dispatchFrame(session: Session, frame: StompFrame): void | Promise<void> {
  const handler = Object.hasOwn(HANDLERS, frame.command) ? HANDLERS[frame.command] : undefined;
  if (!handler) throw new BrokerError('ERR_UNKNOWN_COMMAND', `unknown command "${frame.command.slice(0, 32)}"`);
  if (session.state !== 'connected' && handler !== handleConnect) {
    throw new BrokerError('ERR_NOT_CONNECTED', `${frame.command} before CONNECT`);
  }
  if (session.state === 'connected' && handler === handleConnect) {
    throw new BrokerError('ERR_ALREADY_CONNECTED', 'the session is already connected');
  }
  // Every client frame: a name or value a client could misread is refused (header-policy.ts).
  checkClientHeaders(frame.headers);
  return handler(session, frame);
}

/** The transaction a frame belongs to, checked to be open (STOMP 1.2 "Header transaction"). */
export function transactionOf(session: Session, frame: StompFrame): string | undefined {
  const tx = frame.headers.transaction;
  if (tx === undefined) return undefined;
  if (!session.transactions.has(tx)) throw new BrokerError('ERR_UNKNOWN_TRANSACTION', `unknown transaction "${tx.slice(0, 64)}"`);
  return tx;
}

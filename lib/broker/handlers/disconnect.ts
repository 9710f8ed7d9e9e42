import type { StompFrame } from '../../stomp/index.js';
import type { Session } from '../session.js';

/**
 * DISCONNECT (STOMP 1.2 "DISCONNECT"): RECEIPT first when asked, so the
 * client knows everything before it was received; then close.
 */
export function handleDisconnect(session: Session, frame: StompFrame): void {
  session.sendReceipt(frame);
  session.close(1000, 'DISCONNECT');
}

/*
 * A client socket held corked for the rest of the event-loop turn, so that the
 * frames one turn writes (in the unlimited mode, one per message received)
 * leave in one syscall. Shared by every client of the project's generator, so
 * that none costs more a message than another for how it writes.
 */
import type { Socket } from 'node:net';

export class TurnCork {
  private corked = false;

  /** Corks `socket` unless already corked this turn; a nextTick uncorks it. */
  hold(socket: Socket | null): void {
    if (socket === null || this.corked) return;
    this.corked = true;
    socket.cork();
    process.nextTick(() => {
      this.corked = false;
      socket.uncork();
    });
  }
}

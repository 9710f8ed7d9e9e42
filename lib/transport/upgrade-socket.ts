/*
 * The raw socket of an HTTP upgrade, before a transport takes it over.
 */
import type { Duplex } from 'node:stream';

function destroySelf(this: Duplex): void {
  this.destroy();
}

/**
 * An upgrade socket's 'error' is answered by destroying it (no unhandled
 * 'error'). The listener is a module-level function on purpose: a closure
 * written inside the upgrade handler shares that handler's scope, which
 * holds the request, and would keep the whole IncomingMessage (headers,
 * raw headers, stream state) alive as long as the socket — ~1.3 KiB per
 * idle WebSocket (heap snapshot, 2 000 idle connections).
 */
export function destroyOnError(socket: Duplex): void {
  socket.on('error', destroySelf);
}

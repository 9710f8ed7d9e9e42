/*
 * Closing a client WebSocket of the load generator: a close handshake,
 * bounded (a broker that does not answer is terminated after 2 s).
 */
import WebSocket from 'ws';

const CLOSE_TIMEOUT_MS = 2000;

export function closeWebSocket(ws: WebSocket | null): Promise<void> {
  if (ws === null || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      ws.terminate();
      resolve();
    }, CLOSE_TIMEOUT_MS);
    ws.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
    else ws.close(1000);
  });
}

/*
 * A Node backend that notifies a user through stompbox over TCP:
 *
 *   STOMP_TCP_PORT=61613 npm start                   # the broker, with its TCP listener
 *   npx tsx examples/node-backend/notify.ts bob "your report is ready"
 *
 * Every session of bob subscribed to /user/queue/notifications gets it (or
 * his inbox keeps it until he subscribes). The RECEIPT means the broker
 * accepted it: delivered, relayed to bob's node, or stored.
 * Environment: STOMP_HOST (127.0.0.1), STOMP_PORT (61613), STOMP_LOGIN
 * (notifier), STOMP_PASSCODE (static mode: the password; jwt mode: a JWT).
 */
import { Client } from '@stomp/stompjs';
import { TcpStompSocket } from './tcp-stomp-socket.js';

const [to, text] = process.argv.slice(2);
if (!to || text === undefined) {
  process.stderr.write('usage: notify.ts <user> <text>\n');
  process.exit(2);
}

const client = new Client({
  webSocketFactory: () => new TcpStompSocket({ host: process.env.STOMP_HOST ?? '127.0.0.1', port: Number(process.env.STOMP_PORT ?? 61613) }),
  connectHeaders: { login: process.env.STOMP_LOGIN ?? 'notifier', passcode: process.env.STOMP_PASSCODE ?? '' },
  heartbeatIncoming: 10000,
  heartbeatOutgoing: 10000,
  reconnectDelay: 0,
  onConnect: () => {
    client.watchForReceipt('sent', () => {
      process.stdout.write(`accepted for ${to}\n`);
      void client.deactivate();
    });
    client.publish({
      destination: `/user/${encodeURIComponent(to)}/queue/notifications`,
      body: JSON.stringify({ text }),
      headers: { 'content-type': 'application/json', receipt: 'sent' },
    });
  },
  onStompError: (frame) => {
    process.stderr.write(`ERROR ${frame.headers.code ?? ''}: ${frame.headers.message ?? ''}\n`);
    process.exitCode = 1;
    void client.deactivate();
  },
});
client.activate();

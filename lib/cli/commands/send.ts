/*
 * stompbox send: one message, confirmed. Over STOMP (default) the command
 * returns once the broker's RECEIPT for the SEND arrived; over the HTTP API
 * (`--http`) once POST /api/messages answered 202. Either way the broker has
 * then delivered, relayed or stored it.
 */
import { ApiClient } from '../api-client.js';
import { UsageError } from '../errors.js';
import { readAll, writeOut, type CliIo } from '../io.js';
import { COMMON_HELP, parse, parseHeaders, resolveTarget } from '../options.js';
import { StompClient } from '../stomp-client.js';

export const SEND_HELP = `usage: stompbox send [options] --destination DEST [BODY]

Sends one message and waits until the broker confirms it (STOMP RECEIPT, or
HTTP 202 with --http). BODY is the message text; without it (or with -), the
body is read from standard input.

  --to USER            send to that user's DEST (a /queue/... or /topic/...):
                       the STOMP destination becomes /user/USER/DEST
  --destination, -d D  destination: /queue/x, /topic/x, /user/NAME/queue/x,
                       or with --to the user's own /queue/x
  --header, -H N:V     extra message header (repeatable)
  --content-type TYPE  content-type header (default text/plain)
  --http               send through POST /api/messages instead of STOMP
                       (needs --to); prints the message id

${COMMON_HELP}

examples:
  stompbox send --user alice --to bob --destination /queue/reply "hello"
  echo '{"n":1}' | stompbox send -u alice -d /topic/news --content-type application/json
  stompbox send -u alice --to bob -d /queue/reply --http "hi over HTTP"`;

export async function sendCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse('send', argv, {
    to: { type: 'string' },
    destination: { type: 'string', short: 'd' },
    header: { type: 'string', short: 'H', multiple: true },
    'content-type': { type: 'string' },
    http: { type: 'boolean' },
  });
  if (values.help) {
    await writeOut(io.stdout, SEND_HELP + '\n');
    return 0;
  }
  const target = resolveTarget(values, io.env);
  const destination = values.destination;
  if (!destination) throw new UsageError('send: --destination is required (see stompbox send --help)');
  if (!destination.startsWith('/')) throw new UsageError(`send: --destination must start with /, got "${destination}"`);
  if (positionals.length > 1) throw new UsageError(`send: one BODY argument expected, got ${positionals.length} (quote the message)`);
  const to = values.to;
  if (to !== undefined && (to === '' || destination.startsWith('/user/'))) {
    throw new UsageError('send: with --to, --destination is the user\'s own destination, e.g. /queue/reply (not /user/...)');
  }
  const headers = parseHeaders(values.header);
  headers['content-type'] = values['content-type'] ?? headers['content-type'] ?? 'text/plain';

  let body: Buffer;
  if (positionals.length === 1 && positionals[0] !== '-') body = Buffer.from(positionals[0]!, 'utf8');
  else if (io.stdin.isTTY) throw new UsageError('send: give the message as BODY, or pipe it on standard input');
  else body = await readAll(io.stdin);

  if (values.http) {
    if (to === undefined) throw new UsageError('send: --http sends to a user: --to is required');
    const api = new ApiClient(target.httpUrl, target, target.timeoutMs);
    const answer = await api.call<{ id?: string }>('POST', '/api/messages', { to, destination, body: body.toString('utf8'), headers });
    await writeOut(io.stdout, `${answer?.id ?? ''}\n`);
    return 0;
  }

  if (target.user === undefined && target.token === undefined) throw new UsageError('send: --user (or --token) is required');
  const stompDestination = to === undefined ? destination : `/user/${encodeURIComponent(to)}${destination}`;
  const client = await StompClient.connect({ url: target.wsUrl, login: target.user, passcode: target.password, token: target.token, timeoutMs: target.timeoutMs });
  try {
    await client.send(stompDestination, body, headers);
  } finally {
    await client.disconnect();
  }
  return 0;
}

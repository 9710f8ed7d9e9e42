/*
 * stompbox tail: subscribes and prints each message as it arrives, one per
 * line, until Ctrl-C (or --count N messages). A message is acknowledged only
 * after its line was written (ack client-individual), so what the command did
 * not print (--count reached, Ctrl-C) stays with the broker: a user message
 * goes back to the inbox, a queue message to the queue.
 */
import { CliError, UsageError } from '../errors.js';
import { bodyLine, writeOut, type CliIo } from '../io.js';
import { COMMON_HELP, parse, positiveInt, resolveTarget } from '../options.js';
import { StompClient, type ReceivedMessage } from '../stomp-client.js';

export const TAIL_HELP = `usage: stompbox tail [options] DESTINATION

Subscribes to DESTINATION and prints each message as it arrives, one per
line, until Ctrl-C. For your own user destination use /user/queue/NAME: the
messages stored while you were away come first, in order.

  --count, -n N     exit after N messages
  --json            print each message as one JSON object
                    {destination,messageId,sender,headers,body}
  --with-sender     print "SENDER: BODY" instead of the body alone
  --heartbeat MS    STOMP heart-beat interval (default 10000; 0 for none)
  --quiet, -q       no "subscribed" status line on standard error

Bodies are printed with newlines escaped as \\n; --json keeps them exact.

${COMMON_HELP}

examples:
  stompbox tail --user bob /user/queue/reply
  stompbox tail -u ops --count 1 --json /topic/alerts`;

export async function tailCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse('tail', argv, {
    count: { type: 'string', short: 'n' },
    json: { type: 'boolean' },
    'with-sender': { type: 'boolean' },
    heartbeat: { type: 'string' },
    quiet: { type: 'boolean', short: 'q' },
  });
  if (values.help) {
    await writeOut(io.stdout, TAIL_HELP + '\n');
    return 0;
  }
  const target = resolveTarget(values, io.env);
  if (positionals.length !== 1) throw new UsageError('tail: one DESTINATION expected (see stompbox tail --help)');
  const destination = positionals[0]!;
  if (!destination.startsWith('/')) throw new UsageError(`tail: DESTINATION must start with /, got "${destination}"`);
  const count = positiveInt('--count', values.count);
  const heartbeatText = values.heartbeat ?? '10000';
  if (!/^\d+$/.test(heartbeatText)) throw new UsageError(`--heartbeat must be a number of ms, got "${heartbeatText}"`);
  if (target.user === undefined && target.token === undefined) throw new UsageError('tail: --user (or --token) is required');
  if (io.signal.aborted) return 0;

  const client = await StompClient.connect({
    url: target.wsUrl,
    login: target.user,
    passcode: target.password,
    token: target.token,
    timeoutMs: target.timeoutMs,
    heartbeatMs: Number(heartbeatText),
  });

  let printed = 0;
  let finish!: (outcome: CliError | undefined) => void;
  const done = new Promise<CliError | undefined>((resolve) => (finish = resolve));
  // Messages are written strictly in arrival order, each acknowledged after its line.
  let writing = Promise.resolve();
  const onMessage = (message: ReceivedMessage) => {
    writing = writing.then(async () => {
      if (count !== undefined && printed >= count) return; // left unacked: the broker keeps it
      await writeOut(io.stdout, formatMessage(message, values) + '\n');
      printed++;
      client.ack(message);
      if (count !== undefined && printed >= count) finish(undefined);
    });
  };
  const onAbort = () => finish(undefined);
  io.signal.addEventListener('abort', onAbort, { once: true });
  void client.closed().then((error) => finish(error));
  try {
    await client.subscribe(destination, 'client-individual', onMessage);
    if (!values.quiet) await writeOut(io.stderr, `stompbox: subscribed to ${destination} at ${target.wsUrl} as ${client.user ?? target.user}\n`);
    const failure = await done;
    await writing;
    if (failure) throw failure;
  } finally {
    io.signal.removeEventListener('abort', onAbort);
    await client.disconnect();
  }
  return 0;
}

function formatMessage(message: ReceivedMessage, options: { json?: boolean; 'with-sender'?: boolean }): string {
  const body = message.body.toString('utf8');
  if (options.json) {
    return JSON.stringify({ destination: message.destination, messageId: message.messageId, sender: message.sender, headers: message.headers, body });
  }
  return options['with-sender'] ? `${message.sender ?? '?'}: ${bodyLine(body)}` : bodyLine(body);
}

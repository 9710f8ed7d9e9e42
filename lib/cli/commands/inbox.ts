/*
 * stompbox inbox: what the broker keeps for a user who was away, through the
 * HTTP API as that user (nobody reads another user's inbox): GET /api/inbox
 * looks; --pull takes the messages out with claim + ack — claimed, printed,
 * and only then acked (deleted), so a pull that fails half-way loses nothing:
 * the claim returns to the inbox after its visibility timeout.
 */
import { ApiClient } from '../api-client.js';
import { CliError, UsageError } from '../errors.js';
import { bodyLine, writeOut, type CliIo } from '../io.js';
import { COMMON_HELP, parse, resolveTarget } from '../options.js';

export const INBOX_HELP = `usage: stompbox inbox [options] [USER]

Shows the messages stored for USER (who must be the one logged in: USER is
the same as --user, and either may be given) while USER was not connected.
With --destination, the messages of that destination, oldest first, one per
line; without it, the destinations that hold messages, with their counts.

  --destination, -d D  the user destination, e.g. /queue/reply
  --pull               take the messages out instead of looking (needs
                       --destination): each batch is claimed (POST
                       /api/inbox/claim), printed, then acked (POST
                       /api/inbox/ack); what was claimed but not printed
                       returns to the inbox after the visibility timeout
  --json               print each message as one JSON object
  --with-sender        print "SENDER: BODY" instead of the body alone

${COMMON_HELP}

examples:
  stompbox inbox bob -d /queue/reply
  stompbox inbox --user bob --pull -d /queue/chat --json`;

interface StoredMessage {
  id?: string;
  destination?: string;
  headers?: Record<string, string>;
  body?: string;
  sender?: string;
  timestamp?: number;
}

export async function inboxCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse('inbox', argv, {
    destination: { type: 'string', short: 'd' },
    pull: { type: 'boolean' },
    json: { type: 'boolean' },
    'with-sender': { type: 'boolean' },
  });
  if (values.help) {
    await writeOut(io.stdout, INBOX_HELP + '\n');
    return 0;
  }
  if (positionals.length > 1) throw new UsageError('inbox: at most one USER expected (see stompbox inbox --help)');
  const target = resolveTarget(values, io.env);
  const user = positionals[0];
  if (user !== undefined && target.user !== undefined && user !== target.user) {
    throw new UsageError(`inbox: you read your own inbox only: USER "${user}" is not --user "${target.user}"`);
  }
  if (user !== undefined) target.user = user;
  if (target.user === undefined && target.token === undefined) throw new UsageError('inbox: say whose inbox: USER or --user (or --token)');
  const destination = values.destination;
  if (values.pull && destination === undefined) throw new UsageError('inbox: --pull needs --destination');
  if (destination !== undefined && !destination.startsWith('/')) throw new UsageError(`inbox: --destination must start with /, got "${destination}"`);

  const api = new ApiClient(target.httpUrl, target, target.timeoutMs);
  const format = (messages: readonly StoredMessage[]): string =>
    messages.map((message) => (values.json ? JSON.stringify(message) : formatLine(message, values['with-sender'] === true)) + '\n').join('');
  if (values.pull) {
    await pull(api, destination!, format, io);
    return 0;
  }
  const answer = await api.call<unknown>('GET', destination === undefined ? '/api/inbox' : `/api/inbox?destination=${encodeURIComponent(destination)}`);

  const { messages, destinations } = readAnswer(answer);
  let out = '';
  if (messages) {
    out = format(messages);
  } else if (destinations) {
    for (const entry of destinations) out += values.json ? JSON.stringify(entry) + '\n' : `${entry.destination}\t${entry.depth}\n`;
  }
  await writeOut(io.stdout, out);
  return 0;
}

/** Claims batches until the inbox is empty; each is acked only once written out. */
async function pull(api: ApiClient, destination: string, format: (messages: readonly StoredMessage[]) => string, io: CliIo): Promise<void> {
  for (;;) {
    const claim = await api.call<unknown>('POST', '/api/inbox/claim', { destination });
    const { messages } = readAnswer(claim);
    const claimId = (claim as { claimId?: unknown }).claimId;
    if (typeof claimId !== 'string' || !messages || messages.length === 0) return;
    await writeOut(io.stdout, format(messages));
    const ack = await api.call<{ acked?: unknown; expired?: unknown }>('POST', '/api/inbox/ack', { claimId });
    // Too late: the claim went back to the inbox, and what was printed will be handed out again.
    if (ack.expired === true) throw new CliError('inbox: the claim expired before its ack; its messages went back to the inbox (and were printed)');
  }
}

function formatLine(message: StoredMessage, withSender: boolean): string {
  const body = bodyLine(String(message.body ?? ''));
  return withSender ? `${message.sender ?? '?'}: ${body}` : body;
}

/** `{messages:[...]}`, or `{destinations:[{destination,depth}]}` / `{inbox:[...]}` for the overview. */
function readAnswer(answer: unknown): { messages?: StoredMessage[]; destinations?: Array<{ destination: string; depth: number }> } {
  if (answer && typeof answer === 'object') {
    const record = answer as Record<string, unknown>;
    if (Array.isArray(record.messages)) return { messages: record.messages as StoredMessage[] };
    for (const key of ['destinations', 'inbox']) {
      if (Array.isArray(record[key])) return { destinations: record[key] as Array<{ destination: string; depth: number }> };
    }
  }
  throw new CliError('unexpected answer from the inbox API');
}

/*
 * Which client headers the broker accepts and which it forwards.
 *
 * A MESSAGE carries the sender's application headers next to the ones the
 * broker stamps (`sender`, `message-id`, ...). Clients do not read headers
 * the way STOMP 1.2 writes them: @stomp/stompjs 7 and stomp.js 2.3 trim
 * header names and values (JavaScript `\s`, which includes U+00A0 and U+FEFF),
 * stompjs 7 keeps the first of two equal names and stomp.js 2.3 the last,
 * and stomp.js 2.3 splits its input at every NUL before it reads
 * `content-length`. So a header named `sender ` becomes a second `sender`
 * for them, and a NUL in a value ends the frame early and lets the rest be
 * read as a frame of the attacker's choosing. Hence:
 * - a header name with whitespace at either end, a control character or a
 *   ':' is refused (ERR_INVALID_HEADER);
 * - a control character other than TAB in a value is refused (the 1.2
 *   escapes `\n`, `\r` would reach a 1.0 subscriber raw);
 * - a name the broker owns, compared lower-cased (as a client reading
 *   case-insensitively would), is dropped, never forwarded.
 */
import { BrokerError } from '../core/errors.js';
import { createHeaders, type StompHeaders } from '../stomp/index.js';

/** Headers the broker sets on a MESSAGE itself; a client's values never pass through. */
export const RESERVED_HEADERS: ReadonlySet<string> = new Set([
  'destination',
  'receipt',
  'receipt-id',
  'transaction',
  'content-length',
  'message-id',
  'subscription',
  'ack',
  'sender',
]);

const EDGE_WHITESPACE = /^\s|\s$/;
/** C0 controls and DEL: refused in names. */
const NAME_CONTROL = /[\u0000-\u001f\u007f:]/;
/** C0 controls but TAB, and DEL: refused in values. */
const VALUE_CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/** A header name a client could read as another one (or as two); undefined when it is fine. */
export function headerNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (EDGE_WHITESPACE.test(name)) return 'has whitespace at its start or end';
  if (NAME_CONTROL.test(name)) return "contains a control character or ':'";
  return undefined;
}

export function headerValueInvalid(value: string): boolean {
  return VALUE_CONTROL.test(value);
}

export function isReservedHeader(name: string): boolean {
  return RESERVED_HEADERS.has(name.trim().toLowerCase());
}

/** What the policy says of one header name. */
interface NameVerdict {
  problem: string | undefined;
  reserved: boolean;
}

/**
 * Verdicts on the names seen, so that a name every frame repeats is checked
 * once, not by two regular expressions and a lower-cased copy per frame (the
 * sending node's profile at saturation: these checks ~5 % of its samples).
 * Bounded in count and name length; emptied when full.
 */
const verdicts = new Map<string, NameVerdict>();
const MAX_VERDICTS = 512;
const MAX_REMEMBERED_NAME = 64;

function verdictOf(name: string): NameVerdict {
  let verdict = verdicts.get(name);
  if (verdict === undefined) {
    verdict = { problem: headerNameProblem(name), reserved: isReservedHeader(name) };
    if (name.length <= MAX_REMEMBERED_NAME) {
      if (verdicts.size >= MAX_VERDICTS) verdicts.clear();
      verdicts.set(name, verdict);
    }
  }
  return verdict;
}

/** Every header of a client frame, checked; throws ERR_INVALID_HEADER naming the first bad one. */
export function checkClientHeaders(headers: StompHeaders): void {
  for (const name in headers) {
    const problem = verdictOf(name).problem;
    if (problem !== undefined) throw new BrokerError('ERR_INVALID_HEADER', `header name ${JSON.stringify(name.slice(0, 64))} ${problem}`);
    if (headerValueInvalid(headers[name]!)) {
      throw new BrokerError('ERR_INVALID_HEADER', `header "${name.slice(0, 64)}" has a control character in its value`);
    }
  }
}

/** The application headers of a SEND: everything but what the broker owns. */
export function applicationHeaders(headers: StompHeaders): StompHeaders {
  const kept = createHeaders();
  for (const name in headers) {
    if (!verdictOf(name).reserved) kept[name] = headers[name]!;
  }
  return kept;
}

/**
 * Failures the CLI reports as one line on stderr. `exitCode` 2 is a usage
 * mistake (bad flag, missing argument), 1 everything else (connection
 * refused, STOMP ERROR frame, HTTP 4xx/5xx, timeout).
 */
export class CliError extends Error {
  override readonly name: string = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export class UsageError extends CliError {
  override readonly name = 'UsageError';
  constructor(message: string) {
    super(message, 2);
  }
}

/** One line, whatever the cause: `connect ECONNREFUSED 127.0.0.1:1` rather than a stack. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as Error & { cause?: unknown }).cause;
    const detail = cause instanceof Error && cause.message && !error.message.includes(cause.message) ? `: ${cause.message}` : '';
    return oneLine(error.message + detail);
  }
  return oneLine(String(error));
}

export function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

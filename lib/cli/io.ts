import type { Readable, Writable } from 'node:stream';

/** What a command touches of the process, so it can be driven in-process too. */
export interface CliIo {
  stdout: Writable;
  stderr: Writable;
  stdin: Readable & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  /** Aborted on Ctrl-C (SIGINT) or SIGTERM: a long-running command ends cleanly. */
  signal: AbortSignal;
}

/** Resolves once `text` is handed to the stream (so output is not lost when the process exits). */
export function writeOut(stream: Writable, text: string): Promise<void> {
  return new Promise((resolve) => {
    if (!stream.write(text)) stream.once('drain', resolve);
    else resolve();
  });
}

/** A body on one line: newlines and carriage returns escaped, as `\n` and `\r`. */
export function bodyLine(body: string): string {
  return body.replace(/\r/g, '\\r').replace(/\n/g, '\\n');
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

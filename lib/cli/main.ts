/*
 * The `stompbox` command line: send, tail and inbox against a running
 * broker. Errors end the process with one line on stderr and a non-zero
 * status (2: usage, 1: anything else).
 */
import { inboxCommand, INBOX_HELP } from './commands/inbox.js';
import { sendCommand, SEND_HELP } from './commands/send.js';
import { tailCommand, TAIL_HELP } from './commands/tail.js';
import { CliError, describeError, UsageError } from './errors.js';
import { writeOut, type CliIo } from './io.js';

export const MAIN_HELP = `usage: stompbox <command> [options]

commands:
  send    send one message over STOMP (or --http) and wait for the broker's confirmation
  tail    print the messages of a destination as they arrive, until Ctrl-C
  inbox   show (or --pull) the messages stored for a user while away

Run "stompbox <command> --help" for a command's options.`;

const COMMANDS: Record<string, { run: (argv: readonly string[], io: CliIo) => Promise<number>; help: string }> = {
  send: { run: sendCommand, help: SEND_HELP },
  tail: { run: tailCommand, help: TAIL_HELP },
  inbox: { run: inboxCommand, help: INBOX_HELP },
};

/** Runs one command line; resolves with the exit status. Never rejects. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const [name, ...rest] = argv;
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      const topic = name === 'help' ? rest[0] : undefined;
      if (topic !== undefined && !Object.hasOwn(COMMANDS, topic)) throw new UsageError(`unknown command "${topic}" (try stompbox --help)`);
      await writeOut(name === undefined ? io.stderr : io.stdout, (topic ? COMMANDS[topic]!.help : MAIN_HELP) + '\n');
      return name === undefined ? 2 : 0;
    }
    if (!Object.hasOwn(COMMANDS, name)) throw new UsageError(`unknown command "${name}" (try stompbox --help)`);
    return await COMMANDS[name]!.run(rest, io);
  } catch (error) {
    const code = error instanceof CliError ? error.exitCode : 1;
    await writeOut(io.stderr, `stompbox: ${describeError(error)}\n`);
    return code;
  }
}

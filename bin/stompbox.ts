/*
 * The `stompbox` CLI's entry: wires the process (argv, streams, signals) to
 * lib/cli. bin/stompbox.js launches it.
 */
import { runCli } from '../lib/cli/main.js';

const controller = new AbortController();
let interrupted = 0;
const onSignal = () => {
  // First Ctrl-C ends a tail cleanly (DISCONNECT); a second one does not wait.
  if (++interrupted > 1) process.exit(130);
  controller.abort();
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

const status = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  signal: controller.signal,
});
process.exitCode = status;
// Output is flushed; do not let a lingering socket keep the process alive.
setTimeout(() => process.exit(status), 200).unref();
process.removeListener('SIGINT', onSignal);
process.removeListener('SIGTERM', onSignal);

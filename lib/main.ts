/*
 * `npm start` / `stompbox-server`: reads configuration from the environment
 * and flags, starts a node, and stops it gracefully on SIGTERM/SIGINT within
 * SHUTDOWN_TIMEOUT_MS.
 */
import { ConfigError, loadConfig } from './config.js';
import { startNode } from './node.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env, process.argv.slice(2));
  } catch (error) {
    const message = error instanceof ConfigError || error instanceof TypeError ? error.message : String(error);
    process.stderr.write(`stompbox: ${message}\n`);
    process.exit(2);
  }
  const node = await startNode(config);
  let signalled = false;
  const stop = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    node.log.info({ signal }, 'shutting down');
    const hardStop = setTimeout(() => process.exit(1), config.shutdownTimeoutMs + 2000);
    hardStop.unref();
    node.stop(`the node is shutting down (${signal})`).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`stompbox: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

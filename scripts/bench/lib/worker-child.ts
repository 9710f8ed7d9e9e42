/*
 * Entry point of a forked load-worker process (see worker-ipc.ts). It holds
 * one LoadWorker and answers the parent's calls; it exits after `close`,
 * when the parent goes away, or when its lifetime bound expires.
 */
import { LoadWorker } from './load-worker.js';
import type { CallMessage, InitMessage, ReplyMessage } from './worker-ipc.js';

let worker: LoadWorker | null = null;

function reply(message: ReplyMessage, then?: () => void): void {
  process.send?.(message, undefined, undefined, () => then?.());
}

async function handle(message: CallMessage): Promise<void> {
  const current = worker;
  if (current === null) {
    reply({ kind: 'reply', id: message.id, ok: false, error: 'worker not initialised' });
    return;
  }
  try {
    let value: unknown;
    switch (message.method) {
      case 'setup':
        value = await current.setup();
        break;
      case 'startPublishing':
        value = await current.startPublishing();
        break;
      case 'beginMeasure':
        value = await current.beginMeasure();
        break;
      case 'endMeasure':
        value = await current.endMeasure();
        break;
      case 'drain':
        value = await current.drain(message.args[0] as Array<[number, number]>, message.args[1] as number);
        break;
      case 'result':
        value = await current.result();
        break;
      case 'close':
        value = await current.close();
        break;
    }
    reply({ kind: 'reply', id: message.id, ok: true, value }, () => {
      if (message.method === 'close') process.disconnect?.();
    });
  } catch (error) {
    reply({ kind: 'reply', id: message.id, ok: false, error: error instanceof Error ? error.message : String(error) });
  }
}

process.on('message', (message: InitMessage | CallMessage) => {
  if (message.kind === 'init') {
    worker = new LoadWorker(message.options, message.plan);
    setTimeout(() => {
      console.error(`load worker ${message.plan.worker}: lifetime of ${message.lifetimeMs} ms reached, exiting`);
      process.exit(3);
    }, message.lifetimeMs).unref();
    return;
  }
  void handle(message);
});

// The parent is gone: nothing will ever call close.
process.on('disconnect', () => {
  setTimeout(() => process.exit(0), 100).unref();
  void worker?.close().finally(() => process.exit(0));
});

/*
 * The example application (examples/app-server/server.ts) as a real
 * process on a free port, for the application-destination specs. Ready when
 * it prints its `listening` line (an event, not a delay).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ExampleApp {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  stop(): Promise<void>;
}

export async function startExampleApp(): Promise<ExampleApp> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/app-server/server.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const record = JSON.parse(line) as { listening?: string };
        if (record.listening) resolve(record.listening);
      } catch {
        // not the line we wait for
      }
    });
    void exited.then(() => reject(new Error(`the example app exited before listening: ${stderr}`)));
  });
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

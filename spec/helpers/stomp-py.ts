/*
 * stomp.py (Debian's python3-stomp) as a real client process, driven
 * through spec/interop/stomp_py_client.py: commands as JSON lines on its
 * stdin, its listener's events as JSON lines on its stdout. Installed with
 * apt-get when missing (as root), like Chromium for the browser specs.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ensureDebianPackages } from './apt.js';
import { onCleanup } from './node.js';
import { AsyncQueue, DEFAULT_TIMEOUT_MS } from './stomp-client.js';

const SCRIPT = fileURLToPath(new URL('../interop/stomp_py_client.py', import.meta.url));
/** Debian's interpreter, where python3-stomp installs (a python3 earlier on PATH, e.g. pyenv's, would not see it). */
export const PYTHON = '/usr/bin/python3';

export interface StompPyEvent {
  event: 'connected' | 'message' | 'receipt' | 'error' | 'disconnected';
  headers?: Record<string, string>;
  body?: string;
}

export interface StompPyOptions {
  /** `tcp://127.0.0.1:<port>` or `ws://127.0.0.1:<port>/stomp`. */
  url: string;
  login: string;
  passcode?: string;
  /** @default 1.2 */
  version?: '1.1' | '1.2';
  /** What the client asks for, `cx,cy`. @default 0,0 */
  heartbeat?: string;
}

/** python3 with stomp.py and websocket-client importable; installs them when missing (root only). */
export function ensureStompPy(): Promise<void> {
  const present = () => spawnSync(PYTHON, ['-c', 'import stomp, websocket'], { stdio: 'ignore' }).status === 0;
  return ensureDebianPackages(['python3-stomp', 'python3-websocket'], present, 'the stomp.py specs');
}

let receipts = 0;

export class StompPyClient {
  readonly events = new AsyncQueue<StompPyEvent>((e) => `${e.event} ${e.headers?.destination ?? e.headers?.message ?? ''}`);
  connected!: StompPyEvent;
  private stderr = '';

  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => this.events.push(JSON.parse(line) as StompPyEvent));
    child.stderr!.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-2000)));
    child.once('exit', () => this.events.end(new Error(`stomp.py exited: ${this.stderr.trim().split('\n').pop() ?? ''}`)));
    onCleanup(() => this.kill());
  }

  /** Starts the client; resolves once it is connected (CONNECTED received). */
  static async connect(options: StompPyOptions): Promise<StompPyClient> {
    const args = [SCRIPT, options.url, options.login, options.passcode ?? '', options.version ?? '1.2', options.heartbeat ?? '0,0'];
    const client = new StompPyClient(spawn(PYTHON, args, { stdio: ['pipe', 'pipe', 'pipe'] }));
    client.connected = await client.next('connected', 15_000);
    return client;
  }

  /** The next event of this kind (others stay queued). */
  next(event: StompPyEvent['event'], timeoutMs = DEFAULT_TIMEOUT_MS): Promise<StompPyEvent> {
    return this.events.take((e) => e.event === event || e.event === 'error', timeoutMs, `stomp.py ${event}`).then((e) => {
      if (e.event === 'error' && event !== 'error') throw new Error(`stomp.py got ERROR ${e.headers?.code ?? ''}: ${e.headers?.message ?? ''}`);
      return e;
    });
  }

  private command(op: Record<string, unknown>): void {
    this.child.stdin!.write(JSON.stringify(op) + '\n');
  }

  /** Runs `op` with a receipt and waits for it. */
  private async withReceipt(op: Record<string, unknown>): Promise<void> {
    const receipt = `py-${++receipts}`;
    this.command({ ...op, receipt });
    await this.events.take((e) => e.event === 'error' || (e.event === 'receipt' && e.headers?.['receipt-id'] === receipt), DEFAULT_TIMEOUT_MS, `RECEIPT ${receipt}`).then((e) => {
      if (e.event === 'error') throw new Error(`stomp.py got ERROR ${e.headers?.code ?? ''}: ${e.headers?.message ?? ''}`);
    });
  }

  subscribe(destination: string, id = destination, ack = 'auto'): Promise<void> {
    return this.withReceipt({ op: 'subscribe', destination, id, ack });
  }

  send(destination: string, body: string, headers: Record<string, string> = {}): Promise<void> {
    return this.withReceipt({ op: 'send', destination, body, headers });
  }

  ack(messageId: string, subscription: string): Promise<void> {
    return this.withReceipt({ op: 'ack', message_id: messageId, subscription });
  }

  async disconnect(): Promise<void> {
    this.command({ op: 'disconnect' });
    await new Promise<void>((resolve) => (this.child.exitCode !== null ? resolve() : this.child.once('exit', () => resolve())));
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

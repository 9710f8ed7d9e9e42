/*
 * Runs LoadWorkers in child processes (child_process.fork under tsx) and
 * drives them over IPC with the same WorkerApi as an in-process worker, for
 * runs that need more than one core or more than one process's file
 * descriptors on the client side.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { WorkerApi, SetupReport, StopReport, WorkerResult } from './load-worker.js';
import type { LoadOptions, WorkerPlan } from './options.js';

export type WorkerMethod = 'setup' | 'startPublishing' | 'beginMeasure' | 'endMeasure' | 'drain' | 'result' | 'close';

export interface InitMessage {
  kind: 'init';
  options: LoadOptions;
  plan: WorkerPlan;
  /** The child exits by itself after this long, whatever happens to the parent. */
  lifetimeMs: number;
}

export interface CallMessage {
  kind: 'call';
  id: number;
  method: WorkerMethod;
  args: unknown[];
}

export type ReplyMessage = { kind: 'reply'; id: number; ok: true; value: unknown } | { kind: 'reply'; id: number; ok: false; error: string };

const CHILD_ENTRY = fileURLToPath(new URL('./worker-child.ts', import.meta.url));

/** tsx's loader flags when this process runs under tsx; otherwise register it with --import. */
function childExecArgv(): string[] {
  return process.execArgv.some((arg) => arg.includes('tsx')) ? process.execArgv : ['--import', 'tsx'];
}

export class RemoteWorker implements WorkerApi {
  private readonly child: ChildProcess;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  private exited = false;

  constructor(options: LoadOptions, plan: WorkerPlan, lifetimeMs: number) {
    this.child = fork(CHILD_ENTRY, [], { execArgv: childExecArgv(), serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (message: ReplyMessage) => {
      const pending = this.pending.get(message.id);
      if (pending === undefined) return;
      this.pending.delete(message.id);
      if (message.ok) pending.resolve(message.value);
      else pending.reject(new Error(message.error));
    });
    this.child.on('exit', (code, signal) => {
      this.exited = true;
      const error = new Error(`load worker ${plan.worker} exited (code ${code}, signal ${signal})`);
      for (const pending of this.pending.values()) pending.reject(error);
      this.pending.clear();
    });
    const init: InitMessage = { kind: 'init', options, plan, lifetimeMs };
    this.child.send(init);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private call<T>(method: WorkerMethod, ...args: unknown[]): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`load worker exited before ${method}`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: (value) => resolve(value as T), reject });
      const message: CallMessage = { kind: 'call', id, method, args };
      this.child.send(message);
    });
  }

  setup(): Promise<SetupReport> {
    return this.call('setup');
  }
  startPublishing(): Promise<void> {
    return this.call('startPublishing');
  }
  beginMeasure(): Promise<void> {
    return this.call('beginMeasure');
  }
  endMeasure(): Promise<StopReport> {
    return this.call('endMeasure');
  }
  drain(sentByStream: Array<[number, number]>, timeoutMs: number): Promise<void> {
    return this.call('drain', sentByStream, timeoutMs);
  }
  result(): Promise<WorkerResult> {
    return this.call('result');
  }
  async close(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    try {
      await this.call('close');
    } catch {
      // already gone
    }
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

import { expect } from 'chai';
import { BrokerError } from '../../lib/core/errors.js';
/* Shared helpers for the cluster, inbox and queue specs (not a spec file itself). */
import type { ClusterLogger } from '../../lib/cluster/redis-connection.js';

export interface LogRecord {
  level: 'info' | 'warn' | 'error';
  msg: string;
  obj: object;
}

/** A logger that keeps what it is told, so specs stay quiet and can count log lines. */
export function recordingLogger(): ClusterLogger & { records: LogRecord[] } {
  const records: LogRecord[] = [];
  return {
    records,
    info: (obj, msg) => void records.push({ level: 'info', msg, obj }),
    warn: (obj, msg) => void records.push({ level: 'warn', msg, obj }),
    error: (obj, msg) => void records.push({ level: 'error', msg, obj }),
  };
}

/**
 * Retries `check` until it stops throwing, at most `timeoutMs`; for
 * conditions that have no event to await (a key expiring, a peer's beat).
 */
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 3000, intervalMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() >= deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** A promise resolved by the first call of the returned callback, with a bound. */
export function deferred<T = void>(timeoutMs = 5000, what = 'event'): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((res, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not happen within ${timeoutMs} ms`)), timeoutMs);
    resolve = (value: T) => {
      clearTimeout(timer);
      res(value);
    };
  });
  return { promise, resolve };
}

/** Each call rejects with ERR_CLUSTER_UNAVAILABLE (Redis is down): never resolves, never another error. */
export async function expectEachUnavailable(calls: ReadonlyArray<() => Promise<unknown>>): Promise<void> {
  for (const call of calls) {
    try {
      await call();
      expect.fail('resolved while Redis is down');
    } catch (error) {
      expect(error).to.be.instanceOf(BrokerError);
      expect((error as BrokerError).code).to.equal('ERR_CLUSTER_UNAVAILABLE');
    }
  }
}

/** `call` rejects with a BrokerError of `code`; returns it for further checks. */
export async function expectBrokerError(call: () => Promise<unknown>, code: string): Promise<BrokerError> {
  let failure: unknown;
  try {
    await call();
  } catch (error) {
    failure = error;
  }
  expect(failure).to.be.instanceOf(BrokerError);
  expect((failure as BrokerError).code).to.equal(code);
  return failure as BrokerError;
}

/*
 * The sockets a transport holds open, and the wait of a graceful shutdown:
 * until every one has closed, or a bound has passed (then the transport cuts
 * what is left).
 */
export class OpenSockets<T> implements Iterable<T> {
  private readonly sockets = new Set<T>();
  private onEmpty: (() => void) | undefined;

  get size(): number {
    return this.sockets.size;
  }

  add(socket: T): void {
    this.sockets.add(socket);
  }

  delete(socket: T): void {
    this.sockets.delete(socket);
    if (this.sockets.size === 0) this.onEmpty?.();
  }

  [Symbol.iterator](): Iterator<T> {
    return this.sockets.values();
  }

  /** Resolves once none is open, or after `timeoutMs`. */
  async drained(timeoutMs: number): Promise<void> {
    if (this.sockets.size === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.onEmpty = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

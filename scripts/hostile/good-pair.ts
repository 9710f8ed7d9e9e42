/**
 * alice sends to bob (each SEND with a RECEIPT) while an attack runs; once it
 * is over, every message alice had accepted must reach bob.
 */
import { HostileClient } from './client.js';

const MAX_MESSAGES = 5000;

export class GoodPair {
  private constructor(
    private readonly alice: HostileClient,
    private readonly bob: HostileClient,
  ) {}

  static async open(wsUrl: string): Promise<GoodPair> {
    const alice = await HostileClient.open(wsUrl);
    const bob = await HostileClient.open(wsUrl);
    await alice.connect('alice');
    await bob.connect('bob');
    await bob.write({ command: 'SUBSCRIBE', headers: { destination: '/user/queue/good', id: 'g', receipt: 'ready' } });
    await bob.next((f) => f.command === 'RECEIPT');
    return new GoodPair(alice, bob);
  }

  /** Keeps sending until `attack` settles (at most MAX_MESSAGES); then counts what bob got. */
  async during<T>(attack: Promise<T>): Promise<{ result: T; delivered: number; lost: number }> {
    let over = false;
    const settled = attack.finally(() => (over = true));
    let sent = 0;
    do {
      const receipt = `g${sent}`;
      await this.alice.write({ command: 'SEND', headers: { destination: '/user/bob/queue/good', receipt }, body: `good-${sent}` });
      await this.alice.next((f) => f.command === 'RECEIPT' && f.headers['receipt-id'] === receipt);
      sent++;
    } while (!over && sent < MAX_MESSAGES);
    const result = await settled;
    let delivered = 0;
    while (delivered < sent) {
      const message = await this.bob.next((f) => f.command === 'MESSAGE').catch(() => undefined);
      if (!message) break;
      delivered++;
    }
    return { result, delivered, lost: sent - delivered };
  }

  close(): void {
    this.alice.close();
    this.bob.close();
  }
}

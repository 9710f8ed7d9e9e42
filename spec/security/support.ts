/*
 * What the attack specs share: a good pair (alice → bob over @stomp/stompjs 7,
 * every SEND acknowledged by a RECEIPT) that keeps exchanging messages while
 * an attack runs; and the stomp.js 2.3 client (spec/helpers/legacy-stomp.ts).
 */
import { expect } from 'chai';
import { StompJsClient, type Inbox } from '../helpers/stomp-client.js';
export { LegacyStompClient } from '../helpers/legacy-stomp.js';

/** alice sends numbered messages to bob's /user/queue/good; `check()` asserts bob got every one, in order. */
export class GoodPair {
  sent = 0;
  private constructor(
    private readonly alice: StompJsClient,
    private readonly inbox: Inbox,
  ) {}

  static async open(url: string, logins: { alice?: string; bob?: string; passcode?: string } = {}): Promise<GoodPair> {
    const passcode = logins.passcode !== undefined ? { passcode: logins.passcode } : {};
    const [alice, bob] = await Promise.all([
      StompJsClient.connect(url, { login: logins.alice ?? 'alice', ...passcode }),
      StompJsClient.connect(url, { login: logins.bob ?? 'bob', ...passcode }),
    ]);
    const inbox = await bob.subscribe('/user/queue/good');
    return new GoodPair(alice, inbox);
  }

  /** Sends `count` messages, each awaited to its RECEIPT (accepted by the broker). */
  async exchange(count: number, to = 'bob'): Promise<void> {
    for (let i = 0; i < count; i++) await this.alice.publish(`/user/${to}/queue/good`, `good-${++this.sent}`);
  }

  /** Every message sent so far reached bob, in order: the attack cost the pair nothing. */
  async check(): Promise<{ delivered: number; lost: number }> {
    for (let i = 1; i <= this.sent; i++) expect((await this.inbox.next()).body).to.equal(`good-${i}`);
    return { delivered: this.sent, lost: 0 };
  }
}


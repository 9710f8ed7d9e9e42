/*
 * The pages in a real browser: Debian's Chromium driven by playwright-core.
 * Two browser contexts are two people (separate cookies), alice and bob.
 * Every wait is on something the page shows (status "online", a message in
 * the list, a name in the online list), never a fixed delay.
 *
 * Screenshots: written to docs/screenshots/ with STOMPBOX_SCREENSHOTS=1,
 * else to a temp dir.
 */
import { expect } from 'chai';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { loadConfig } from '../../lib/config.js';
import { startNode, type RunningNode } from '../../lib/node.js';
import { killAllNodes, spawnNode, type NodeProcess } from '../helpers/node-process.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { launchBrowser, screenshotDir, INSTALL_TIMEOUT_MS } from './browser.js';
import { logIn, newPage, openPerson, sendTo, waitForIncoming, waitOnline, WAIT_MS, type Person, type Transport } from './chat-page.js';

/** What the seed's page has on `window`: stomp.js 2.3 (`Stomp`) and sockjs-client (`SockJS`). */
interface SeedWindow {
  Stomp: { over(socket: unknown): LegacyStompClient };
  SockJS: new (url: string) => unknown;
  received: string[];
}
interface LegacyStompClient {
  debug: unknown;
  connect(headers: Record<string, string>, onConnect: () => void, onError: (error: unknown) => void): void;
  subscribe(destination: string, onMessage: (message: { body: string }) => void): void;
}

/** alice and bob log in (each at their own node's URL) and write to each other. */
async function conversation(urls: { alice: string; bob: string }, alice: Person, bob: Person, aliceTransport: Transport, bobTransport: Transport): Promise<void> {
  await logIn(alice.page, urls.alice, 'alice', aliceTransport);
  await logIn(bob.page, urls.bob, 'bob', bobTransport);
  await waitOnline(alice.page, 'bob', true);
  await waitOnline(bob.page, 'alice', true);

  // alice picks bob in the online list and writes.
  await alice.page.click('#online-list li[data-user="bob"]');
  expect(await alice.page.inputValue('#to-name')).to.equal('bob');
  await alice.page.fill('#message-input', 'Hi Bob! Lunch at noon?');
  await alice.page.click('#send-button');
  await waitForIncoming(bob.page, 'alice', ['Hi Bob! Lunch at noon?']);

  await sendTo(bob.page, 'alice', 'Sure, see you at the usual place.');
  await waitForIncoming(alice.page, 'bob', ['Sure, see you at the usual place.']);
  await sendTo(alice.page, 'bob', 'Great!');
  await waitForIncoming(bob.page, 'alice', ['Hi Bob! Lunch at noon?', 'Great!']);
  // Live messages are not unread.
  expect(await bob.page.locator('#messages .message.unread').count()).to.equal(0);
}

/** bob closes his browser; alice writes twice; bob logs in again and finds both, unread, in order. */
async function offlineAndBack(browser: Browser, base: string, alice: Person, bob: Person, bobTransport: Transport): Promise<Person> {
  await bob.context.close();
  await waitOnline(alice.page, 'bob', false);
  await sendTo(alice.page, 'bob', 'Are you still there?');
  await sendTo(alice.page, 'bob', 'Call me when you are back.');

  const again = await openPerson(browser);
  await logIn(again.page, base, 'bob', bobTransport);
  const unread = again.page.locator('#messages .message.unread');
  expect(await unread.locator('.body').allTextContents()).to.deep.equal(['Are you still there?', 'Call me when you are back.']);
  expect(await unread.evaluateAll((items) => items.map((item) => (item as HTMLElement).dataset.sender))).to.deep.equal(['alice', 'alice']);
  expect(await again.page.textContent('#unread-summary')).to.equal('2 unread');
  // Claimed, shown, then acked (before the page went online): nothing is left in the inbox.
  const left = await again.page.evaluate(async () => (await (await fetch('/api/inbox?destination=/queue/chat')).json()) as { depth: number });
  expect(left.depth).to.equal(0);
  await waitOnline(alice.page, 'bob', true);
  return again;
}

describe('chat and admin pages in Chromium (one node)', function () {
  this.timeout(60_000);
  let browser: Browser;
  let node: RunningNode;
  let base: string;
  const people: Person[] = [];

  before(async function () {
    this.timeout(INSTALL_TIMEOUT_MS + 60_000);
    browser = await launchBrowser();
    node = await startNode(loadConfig({}, [], { port: 0, logLevel: 'silent' }));
    base = node.url;
  });

  after(async () => {
    await browser?.close();
    await node?.stop();
  });

  afterEach(() => {
    const errors = people.flatMap((p) => p.errors);
    expect(errors, 'uncaught errors in the pages').to.deep.equal([]);
  });

  it('alice (WebSocket) and bob (SockJS) exchange messages both ways; offline, bob finds his unread messages in order', async () => {
    const alice = await openPerson(browser);
    const bob = await openPerson(browser);
    people.push(alice, bob);
    await conversation({ alice: base, bob: base }, alice, bob, 'websocket', 'sockjs');

    const bobAgain = await offlineAndBack(browser, base, alice, bob, 'sockjs');
    people.push(bobAgain);
    await sendTo(bobAgain.page, 'alice', 'Back now, calling you!');
    await waitForIncoming(alice.page, 'bob', ['Sure, see you at the usual place.', 'Back now, calling you!']);
    await bobAgain.page.screenshot({ path: join(screenshotDir(), 'chat-unread.png') });
    await alice.page.screenshot({ path: join(screenshotDir(), 'chat.png') });

    // Reading marks them read.
    await bobAgain.page.click('#mark-read');
    expect(await bobAgain.page.locator('#messages .message.unread').count()).to.equal(0);
  });

  it('topics: what one member sends, every member receives', async () => {
    const alice = await openPerson(browser);
    const bob = await openPerson(browser);
    people.push(alice, bob);
    await logIn(alice.page, base, 'alice', 'sockjs');
    await logIn(bob.page, base, 'bob', 'websocket');
    await alice.page.selectOption('#to-kind', 'topic');
    await alice.page.fill('#to-name', 'lobby');
    await alice.page.fill('#message-input', 'Hello, lobby');
    await alice.page.click('#send-button');
    await waitForIncoming(bob.page, 'alice', ['Hello, lobby']);
    expect(await bob.page.locator('#messages .message.in .to').last().textContent()).to.equal('→ #lobby');
  });

  it("the seed's page code (stomp.js 2.3 over SockJS, /wsTemplate routes) works with its script URLs pointed at /vendor/", async () => {
    const alice = await openPerson(browser);
    const seed = await openPerson(browser);
    people.push(alice, seed);
    await logIn(alice.page, base, 'alice', 'websocket');
    // While "carol" is away, alice writes to her through the seed's route (a form POST, as the seed's jQuery does).
    const sent = await alice.page.evaluate(() =>
      fetch('/wsTemplate/sendToUser', { method: 'POST', body: new URLSearchParams({ receiver: 'carol', msg: 'while you were out' }) }).then((r) => r.json()),
    );
    expect(sent).to.include({ code: '200' });

    // The seed's page: log in, then connect(), pullUnreadMessage('/topic/reply'), subscribe('/user/topic/reply').
    await seed.page.goto(`${base}/healthz`);
    expect(await seed.page.evaluate(() => fetch('/api/login', { method: 'POST', body: new URLSearchParams({ user: 'carol' }) }).then((r) => r.status))).to.equal(200);
    await seed.page.addScriptTag({ url: '/vendor/sockjs-client/sockjs.min.js' });
    await seed.page.addScriptTag({ url: '/vendor/stompjs-legacy/stomp.min.js' });
    const unread = await seed.page.evaluate(
      () =>
        new Promise<unknown>((resolve, reject) => {
          const w = window as unknown as SeedWindow;
          const stompClient = w.Stomp.over(new w.SockJS('/chat-websocket'));
          stompClient.debug = null;
          w.received = [];
          stompClient.connect(
            {},
            () => {
              fetch('/wsTemplate/pullUnreadMessage', { method: 'POST', body: new URLSearchParams({ destination: '/topic/reply' }) })
                .then((r) => r.json())
                .then((data) => {
                  stompClient.subscribe('/user/topic/reply', (response) => w.received.push((JSON.parse(response.body) as { content: string }).content));
                  resolve(data);
                }, reject);
            },
            (error) => reject(new Error(String(error))),
          );
        }),
    );
    expect(unread).to.deep.equal({ code: '200', result: [JSON.stringify({ content: 'alice say: while you were out' })] });

    // Live both ways: the chat page shows what the seed's route sends, and the seed's page what the chat page sends.
    await waitOnline(alice.page, 'carol', true);
    await seed.page.evaluate(() =>
      fetch('/wsTemplate/sendToUser', { method: 'POST', body: new URLSearchParams({ receiver: 'alice', msg: 'thanks!' }) }).then((r) => r.status),
    );
    await waitForIncoming(alice.page, 'carol', ['carol say: thanks!']);
    await alice.page.evaluate(() =>
      fetch('/wsTemplate/sendToUser', { method: 'POST', body: new URLSearchParams({ receiver: 'carol', msg: 'you are welcome' }) }).then((r) => r.status),
    );
    await seed.page.waitForFunction(() => ((window as unknown as { received: string[] }).received ?? []).includes('alice say: you are welcome'));
  });

  it('the admin page shows the node, its connections, the online users and message rates, live', async () => {
    const alice = await openPerson(browser);
    const bob = await openPerson(browser);
    people.push(alice, bob);
    await logIn(alice.page, base, 'alice', 'websocket');
    await logIn(bob.page, base, 'bob', 'sockjs');
    // Something waits in alice's inbox: her page does not subscribe to /user/queue/later.
    for (const text of ['later 1', 'later 2']) {
      const status = await bob.page.evaluate(
        (body) =>
          fetch('/api/messages', {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ to: 'alice', destination: '/queue/later', body }),
          }).then((r) => r.status),
        text,
      );
      expect(status).to.equal(202);
    }
    const admin = await newPage(alice);
    await admin.goto(`${base}/admin.html`);
    await admin.locator('#inboxes tr[data-destination="/queue/later"]').waitFor();
    expect(await admin.locator('#inboxes tr[data-destination="/queue/later"] td.num').textContent()).to.equal('2');
    await admin.locator(`#nodes tbody tr[data-node="${node.broker.nodeId}"]`).waitFor();
    await admin.locator('#online-users li[data-user="alice"]').waitFor();
    await admin.locator('#online-users li[data-user="bob"]').waitFor();
    expect(await admin.textContent('#t-nodes')).to.equal('1');
    expect(Number(await admin.textContent('#t-connections'))).to.be.at.least(2);

    // Traffic while the page polls: rates are computed from successive samples.
    let sending = true;
    const traffic = (async () => {
      let n = 0;
      while (sending) {
        await bob.page.evaluate(
          (i) =>
            fetch('/api/messages', {
              method: 'POST',
              headers: { 'Content-Type': 'application/json' },
              body: JSON.stringify({ to: 'alice', destination: '/queue/chat', body: `ping ${i}` }),
            }).then((r) => r.status),
          n++,
        );
      }
    })();
    try {
      // A few samples with traffic, so the rate chart has a line to show.
      await admin.waitForFunction(
        () => Number(document.getElementById('spark')?.dataset.samples) >= 5 && Number(document.getElementById('t-delivered')?.textContent) > 0,
        undefined,
        { timeout: WAIT_MS },
      );
      await admin.screenshot({ path: join(screenshotDir(), 'admin.png'), fullPage: true });
    } finally {
      sending = false;
      await traffic;
    }
    expect(await admin.getAttribute('#status', 'data-state')).to.equal('live');
  });
});

/*
 * The same conversation with alice and bob on two different nodes of a
 * cluster (one private redis-server, two node processes with REDIS_URL).
 */
describe('chat pages across two cluster nodes (Redis)', function () {
  this.timeout(90_000);
  let browser: Browser;
  let redis: RedisServer;
  let nodes: NodeProcess[];
  const people: Person[] = [];

  before(async function () {
    this.timeout(INSTALL_TIMEOUT_MS + 60_000);
    browser = await launchBrowser();
    redis = await startRedisServer();
    nodes = await Promise.all(['node-a', 'node-b'].map((id) => spawnNode({ id, redisUrl: redis.url })));
  });

  after(async () => {
    await browser?.close();
    await killAllNodes();
    await redis?.stop();
  });

  afterEach(() => {
    expect(people.flatMap((p) => p.errors), 'uncaught errors in the pages').to.deep.equal([]);
  });

  it('alice on node-a and bob on node-b talk both ways; bob, offline, finds his unread messages on node-b; the admin page shows both nodes', async () => {
    const [a, b] = nodes as [NodeProcess, NodeProcess];
    const alice = await openPerson(browser);
    const bob = await openPerson(browser);
    people.push(alice, bob);
    // Both nodes listen on 127.0.0.1; each person is a separate context, so their cookies do not mix.
    await conversation({ alice: a.url, bob: b.url }, alice, bob, 'websocket', 'sockjs');
    expect(await alice.page.getAttribute('#where', 'data-node')).to.equal('node-a');
    expect(await bob.page.getAttribute('#where', 'data-node')).to.equal('node-b');

    const bobAgain = await offlineAndBack(browser, b.url, alice, bob, 'sockjs');
    people.push(bobAgain);
    expect(await bobAgain.page.getAttribute('#where', 'data-node')).to.equal('node-b');
    await sendTo(bobAgain.page, 'alice', 'Back now, calling you!');
    await waitForIncoming(alice.page, 'bob', ['Sure, see you at the usual place.', 'Back now, calling you!']);

    const admin = await newPage(alice);
    await admin.goto(`${a.url}/admin.html`);
    await admin.locator('#nodes tbody tr[data-node="node-a"]').waitFor();
    await admin.locator('#nodes tbody tr[data-node="node-b"]').waitFor();
    await admin.locator('#online-users li[data-user="alice"]').waitFor();
    await admin.locator('#online-users li[data-user="bob"]').waitFor();
    // Two nodes' connections, and rates from a few samples.
    expect(await admin.textContent('#t-nodes')).to.equal('2');
    await admin.waitForFunction(() => Number(document.getElementById('spark')?.dataset.samples) >= 3);
    await admin.screenshot({ path: join(screenshotDir(), 'admin-cluster.png'), fullPage: true });
  });
});

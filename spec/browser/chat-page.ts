/*
 * Driving the chat page (public/chat.js) in Chromium: what a person does and
 * waits for. Every wait is on something the page shows, never a fixed delay.
 */
import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';

export type Transport = 'sockjs' | 'websocket';

export const WAIT_MS = 15_000;

export interface Person {
  context: BrowserContext;
  page: Page;
  errors: string[];
}

export async function openPerson(browser: Browser): Promise<Person> {
  const context = await browser.newContext({ viewport: { width: 1180, height: 720 }, deviceScaleFactor: 1 });
  const person: Person = { context, page: await context.newPage(), errors: [] };
  watch(person, person.page);
  return person;
}

/** Uncaught page errors fail the spec at the end (a broken page must not pass by luck). */
export function watch(person: Person, page: Page): void {
  page.setDefaultTimeout(WAIT_MS);
  page.on('pageerror', (error) => person.errors.push(error.message));
}

export async function newPage(person: Person): Promise<Page> {
  const page = await person.context.newPage();
  watch(person, page);
  person.page = page;
  return page;
}

/** Logs in through the form and waits until the page says "online" (connected, inbox pulled, subscribed). */
export async function logIn(page: Page, base: string, user: string, transport: Transport): Promise<void> {
  await page.goto(`${base}/`);
  await page.fill('#login-name', user);
  await page.check(`input[name="transport"][value="${transport}"]`);
  await page.click('#login-button');
  await page.locator('#status[data-state="online"]').waitFor();
  expect(await page.textContent('#me')).to.equal(user);
}

export async function sendTo(page: Page, user: string, text: string): Promise<void> {
  await page.selectOption('#to-kind', 'user');
  await page.fill('#to-name', user);
  await page.fill('#message-input', text);
  await page.click('#send-button');
  // ✓: the broker's RECEIPT came back (delivered, or stored in the inbox).
  await page.locator('#messages .message.out[data-state="sent"]').filter({ hasText: text }).last().waitFor();
}

/** Waits until the incoming messages from `sender` end with `texts`, and returns them all. */
export async function waitForIncoming(page: Page, sender: string, texts: string[]): Promise<string[]> {
  await page.waitForFunction(
    ({ sender, texts }) => {
      const bodies = [...document.querySelectorAll(`#messages .message.in[data-sender="${sender}"] .body`)].map((el) => el.textContent);
      return bodies.length >= texts.length && texts.every((text, i) => bodies[bodies.length - texts.length + i] === text);
    },
    { sender, texts },
    { timeout: WAIT_MS },
  );
  return page.locator(`#messages .message.in[data-sender="${sender}"] .body`).allTextContents();
}

export async function waitOnline(page: Page, user: string, online: boolean): Promise<void> {
  await page.locator(`#online-list li[data-user="${user}"]`).waitFor({ state: online ? 'visible' : 'detached' });
}


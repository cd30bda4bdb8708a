/**
 * A real browser for end-to-end tests: Debian's Chromium driven by playwright-core (never a
 * downloaded browser), a fresh profile per context, plus the approval flow's shared steps.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { TestTwin } from './twin.js';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const HAS_CHROMIUM = existsSync(CHROMIUM_PATH);
export const NO_CHROMIUM_MESSAGE = `skipped: no Chromium at ${CHROMIUM_PATH} (apt-get install -y chromium, or set CHROMIUM_PATH)`;

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  readonly context: BrowserContext;
  readonly page: Page;
  close(): Promise<void>;
}

/** A browser with a fresh user-data-dir: no cookies or sign-ins carried over between scenarios. */
export async function openBrowser(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'warden-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ARGS,
    viewport: { width: 1100, height: 900 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** The review link the twin's outbox captured for `requestId` (polls: notifying is asynchronous). */
export async function reviewLinkFromOutbox(
  twin: TestTwin,
  requestId: string,
  timeoutMs = 20_000,
): Promise<string> {
  // Request ids are base64url: one may end in '-', after which \b needs a word character, so the
  // end of the id is "not followed by another id character" (a \b here missed 1 id in 64).
  const pattern = new RegExp(`https?://[^"\\s<>]+/approve/${requestId}(?![A-Za-z0-9_-])`);
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const res = await twin.api('GET', '/dev/outbox');
    last = res.body;
    const found = res.status === 200 ? pattern.exec(JSON.stringify(res.body)) : null;
    if (found) return found[0];
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(
    `no review link for ${requestId} in GET /dev/outbox: ${JSON.stringify(last).slice(0, 500)}`,
  );
}

/** Polls the requester's view until the status is one of `statuses`. */
export async function waitForStatus(
  twin: TestTwin,
  token: string,
  requestId: string,
  statuses: readonly string[],
  timeoutMs = 30_000,
): Promise<Record<string, any>> {
  const deadline = Date.now() + timeoutMs;
  let body: Record<string, any> = {};
  while (Date.now() < deadline) {
    const res = await twin.api('GET', `/v1/requests/${requestId}`, { token });
    body = res.body;
    if (res.status === 200 && statuses.includes(body.status)) return body;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`request ${requestId} stayed ${body.status}; expected ${statuses.join(' or ')}`);
}

/** Opens the review link; the page sends the browser to the IdP, where `user` signs in. */
export async function signInAt(page: Page, link: string, user: string): Promise<void> {
  await page.goto(link);
  await page.locator('input[name="login"]').fill(user);
  await Promise.all([page.waitForURL(link), page.locator('button[type="submit"]').click()]);
}

/** Saves a full-page screenshot under test-results/ (gitignored) and logs where. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const dir = resolve('test-results');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot: ${path}`);
  return path;
}

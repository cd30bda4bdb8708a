/**
 * Expiry in a real browser: a twin whose approval window is 10 s. The review page opened in time
 * shows Approve / Deny; once the window has passed a click decides nothing and the page says so.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HAS_CHROMIUM,
  NO_CHROMIUM_MESSAGE,
  openBrowser,
  reviewLinkFromOutbox,
  screenshot,
  signInAt,
  waitForStatus,
} from '../support/browser.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';

if (!HAS_CHROMIUM) console.warn(`approval-browser-expiry: ${NO_CHROMIUM_MESSAGE}`);

describe.skipIf(!HAS_CHROMIUM)('approval expiry in a browser', () => {
  let twin: TestTwin;
  let alice: string;

  beforeAll(async () => {
    twin = await startTestTwin({ approvalWindowSeconds: 10 });
    alice = await twin.token('alice');
  }, 120_000);

  afterAll(async () => {
    await twin?.close();
  });

  async function pendingWrite(sql: string, justification: string) {
    const res = await twin.api('POST', '/v1/targets/demo/sql', {
      token: alice,
      body: { sql, justification },
    });
    expect(res.status).toBe(202);
    return { id: res.body.requestId as string, expiresAt: Date.parse(res.body.expiresAt as string) };
  }

  it('shows an expired request as expired, and its buttons decide nothing', async () => {
    const browser = await openBrowser();
    try {
      const { page } = browser;
      // Sign in first (through any review link), so the 10 s window is spent on the page, not
      // on starting a browser and an IdP round trip.
      const warmup = await pendingWrite("UPDATE customers SET name = 'Warm Up' WHERE id = 10", 'sign-in');
      await signInAt(page, await reviewLinkFromOutbox(twin, warmup.id), 'bob');

      const sql = "UPDATE customers SET name = 'Too Late' WHERE id = 9";
      const { id, expiresAt } = await pendingWrite(sql, 'late night fix');
      const link = await reviewLinkFromOutbox(twin, id);
      await page.goto(link);
      expect(await page.locator('#statement').textContent()).toBe(sql);
      expect(await page.locator('button[value="approve"]').count()).toBe(1);

      // Let the window pass with the page open, as an approver who came back too late would.
      await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now()) + 1500));
      await Promise.all([page.waitForLoadState('load'), page.locator('button[value="approve"]').click()]);
      await expect.poll(() => page.locator('[role="status"]').textContent()).toMatch(/expired/i);
      expect(await page.locator('form').count()).toBe(0);
      expect(await page.locator('[data-status]').textContent()).toBe('Expired');
      await screenshot(page, 'approval-expired-page');

      // Opened afresh (a reload would re-submit the POST), the page offers nothing to click.
      await page.goto(link);
      expect(await page.locator('form').count()).toBe(0);
      expect(await page.locator('#cannot-vote').textContent()).toMatch(/expired/);

      const done = await waitForStatus(twin, alice, id, ['expired']);
      expect(done.votes ?? []).toEqual([]);
      expect(done.result).toBeUndefined();
      expect(twin.statementLog.some((s) => s.sql.includes('Too Late'))).toBe(false);
    } finally {
      await browser.close();
    }
  }, 90_000);
});

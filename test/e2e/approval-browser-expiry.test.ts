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

  it('shows an expired request as expired, and its buttons decide nothing', async () => {
    const sql = "UPDATE customers SET name = 'Too Late' WHERE id = 9";
    const res = await twin.api('POST', '/v1/targets/demo/sql', {
      token: alice,
      body: { sql, justification: 'late night fix' },
    });
    expect(res.status).toBe(202);
    const id = res.body.requestId as string;
    const expiresAt = Date.parse(res.body.expiresAt as string);
    const link = await reviewLinkFromOutbox(twin, id);

    const browser = await openBrowser();
    try {
      const { page } = browser;
      await signInAt(page, link, 'bob');
      expect(await page.locator('#statement').textContent()).toBe(sql);
      expect(await page.locator('button[value="approve"]').count()).toBe(1);

      // Let the window pass with the page open, as an approver who came back too late would.
      await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now()) + 1500));
      await Promise.all([page.waitForLoadState('load'), page.locator('button[value="approve"]').click()]);
      await expect.poll(() => page.locator('[role="status"]').textContent()).toMatch(/expired/i);
      expect(await page.locator('form').count()).toBe(0);
      expect(await page.locator('[data-status]').textContent()).toBe('Expired');
      await screenshot(page, 'approval-expired-page');

      await page.reload();
      expect(await page.locator('form').count()).toBe(0);
      expect(await page.locator('#cannot-vote').textContent()).toMatch(/expired/);
    } finally {
      await browser.close();
    }

    const done = await waitForStatus(twin, alice, id, ['expired']);
    expect(done.votes ?? []).toEqual([]);
    expect(done.result).toBeUndefined();
    expect(twin.statementLog.some((s) => s.sql.includes('Too Late'))).toBe(false);
  }, 90_000);
});

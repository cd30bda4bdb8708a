/**
 * The approval flow in a real browser against a local twin: alice's write waits, the review link
 * from the outbox opens, bob signs in at the IdP, reads the statement and decides; alice follows
 * along through the API. Expiry lives in approval-browser-expiry.test.ts (it needs a twin with a
 * short window, and one twin per process).
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

if (!HAS_CHROMIUM) console.warn(`approval-browser: ${NO_CHROMIUM_MESSAGE}`);

describe.skipIf(!HAS_CHROMIUM)('approval in a browser', () => {
  let twin: TestTwin;
  let alice: string;

  beforeAll(async () => {
    twin = await startTestTwin();
    alice = await twin.token('alice');
  }, 120_000);

  afterAll(async () => {
    await twin?.close();
  });

  async function pendingWrite(sql: string, justification: string): Promise<string> {
    const res = await twin.api('POST', '/v1/targets/demo/sql', {
      token: alice,
      body: { sql, justification },
    });
    expect(res.status).toBe(202);
    expect(res.body.status).toBe('pending_approval');
    return res.body.requestId as string;
  }

  async function nameOf(id: number): Promise<string> {
    const out = await twin.db.query<{ name: string }>('SELECT name FROM customers WHERE id = $1', [id]);
    return out.rows[0].name;
  }

  it("bob approves alice's write from the review link, and it runs with its result", async () => {
    const sql = "UPDATE customers SET name = 'Ada Lovelace' WHERE id = 7";
    const id = await pendingWrite(sql, 'ticket 42: fix the customer name');
    const link = await reviewLinkFromOutbox(twin, id);
    expect(new URL(link).pathname).toBe(`/approve/${id}`);

    const browser = await openBrowser();
    try {
      const { page } = browser;
      await signInAt(page, link, 'bob');
      await expect.poll(() => page.locator('header .who').textContent()).toContain('bob');
      expect(await page.locator('#statement').textContent()).toBe(sql);
      expect(await page.locator('main').textContent()).toContain('ticket 42: fix the customer name');
      expect(await page.locator('[data-status]').getAttribute('data-status')).toBe('pending_approval');
      await screenshot(page, 'approval-review-page');

      await page.locator('textarea[name="comment"]').fill('checked with the customer');
      await Promise.all([page.waitForLoadState('load'), page.locator('button[value="approve"]').click()]);
      await expect.poll(() => page.locator('[role="status"]').textContent()).toContain('You approved');
      expect(await page.locator('form').count()).toBe(0);
    } finally {
      await browser.close();
    }

    const done = await waitForStatus(twin, alice, id, ['executed', 'failed']);
    expect(done.status).toBe('executed');
    expect(done.decidedBy).toBe('bob');
    expect(done.votes).toMatchObject([
      { byName: 'bob', decision: 'approve', comment: 'checked with the customer' },
    ]);
    expect(done.result.rowCount).toBe(1);
    expect(await nameOf(7)).toBe('Ada Lovelace');
  });

  it("bob denies alice's write, and it never runs", async () => {
    const before = await nameOf(8);
    const sql = "UPDATE customers SET name = 'Mallory' WHERE id = 8";
    const id = await pendingWrite(sql, 'please');
    const link = await reviewLinkFromOutbox(twin, id);

    const browser = await openBrowser();
    try {
      const { page } = browser;
      await signInAt(page, link, 'bob');
      expect(await page.locator('#statement').textContent()).toBe(sql);
      await page.locator('textarea[name="comment"]').fill('no justification');
      await Promise.all([page.waitForLoadState('load'), page.locator('button[value="deny"]').click()]);
      await expect.poll(() => page.locator('[role="status"]').textContent()).toContain('You denied');
      expect(await page.locator('[data-status]').getAttribute('data-status')).toBe('denied');
    } finally {
      await browser.close();
    }

    const done = await waitForStatus(twin, alice, id, ['denied']);
    expect(done.decidedBy).toBe('bob');
    expect(done.result).toBeUndefined();
    expect(await nameOf(8)).toBe(before);
    expect(twin.statementLog.some((s) => s.sql.includes('Mallory'))).toBe(false);
  });
});

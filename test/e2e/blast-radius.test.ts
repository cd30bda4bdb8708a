/**
 * The blast radius approvers see before they decide: PostgreSQL's own estimate (EXPLAIN without
 * ANALYZE of a derived read, as the read-only user) for `DELETE FROM orders` (the whole table) and
 * `… WHERE id = 7` (one row), in the API, the CLI's list, the notification and the approval page in
 * Chromium; and the estimate never runs a write, however the statement tries.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HAS_CHROMIUM,
  NO_CHROMIUM_MESSAGE,
  openBrowser,
  reviewLinkFromOutbox,
  screenshot,
  signInAt,
} from '../support/browser.js';
import { DEMO_MASKED_READ_ROLE } from '../../lib/local/demo-data.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';

if (!HAS_CHROMIUM) console.warn(`blast-radius: ${NO_CHROMIUM_MESSAGE}`);

let twin: TestTwin;
let alice: string;
let bob: string;

beforeAll(async () => {
  twin = await startTestTwin();
  alice = await twin.token('alice');
  bob = await twin.token('bob');
}, 120_000);

afterAll(async () => {
  await twin?.close();
});

async function count(sql: string): Promise<number> {
  const out = await twin.db.query<{ n: number | string }>(sql);
  return Number(out.rows[0].n);
}

async function pending(sql: string, parameters?: unknown[]): Promise<string> {
  const res = await twin.api('POST', '/v1/targets/demo/sql', {
    token: alice,
    body: { sql, ...(parameters ? { parameters } : {}), justification: 'cleanup' },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.requestId as string;
}

async function approvalOf(id: string): Promise<Record<string, any>> {
  const res = await twin.api('GET', `/v1/approvals/${id}`, { token: bob });
  expect(res.status).toBe(200);
  return res.body;
}

describe('the estimate', () => {
  let whole: string;
  let one: string;
  let orders: number;

  beforeAll(async () => {
    orders = await count('SELECT count(*) AS n FROM orders');
    whole = await pending('DELETE FROM orders');
    one = await pending('DELETE FROM orders WHERE id = 7');
  });

  it('plans a masked requester’s estimate as the masked reader, over the masking views only', async () => {
    // alice has no view_unmasked: not even the planner's statistics of a raw column answer for her.
    const before = twin.statementLog.length;
    await pending("DELETE FROM customers WHERE ssn < '5'");
    const plans = twin.statementLog.slice(before).filter((s) => s.sql.startsWith('EXPLAIN'));
    expect(plans.length).toBeGreaterThan(0);
    for (const p of plans) expect(p.role, p.sql).toBe(DEMO_MASKED_READ_ROLE);
  });

  it('marks DELETE without WHERE as the whole table, high risk, with its row estimate', async () => {
    const view = await approvalOf(whole);
    expect(view.risk).toBe('high');
    const b = view.blastRadius;
    expect(b).toMatchObject({
      kind: 'sql',
      tables: ['public.orders'],
      noWhere: true,
      wholeTable: true,
      high: true,
      highReason: 'whole table',
    });
    // PostgreSQL's estimate of a table nobody analysed is close to, not equal to, the real count.
    expect(b.estimatedRows).toBeGreaterThan(orders / 2);
    expect(b.estimatedRows).toBeLessThan(orders * 2);
  });

  it('estimates one row for a primary-key predicate, medium risk', async () => {
    const view = await approvalOf(one);
    expect(view.risk).toBe('medium');
    expect(view.blastRadius).toMatchObject({
      kind: 'sql',
      tables: ['public.orders'],
      noWhere: false,
      wholeTable: false,
      high: false,
      estimatedRows: 1,
    });
  });

  it('marks a write reaching nearly the whole table high risk, saying why', async () => {
    const customers = await count('SELECT count(*) AS n FROM customers');
    const view = await approvalOf(await pending('DELETE FROM customers WHERE id <> 7'));
    const b = view.blastRadius;
    // Below the 1000-row threshold, not the whole table, but ≥ 90% of the planner's estimate of it.
    expect(b).toMatchObject({ kind: 'sql', tables: ['public.customers'], noWhere: false, wholeTable: false });
    expect(b.estimatedRows).toBeLessThan(b.threshold);
    expect(b.estimatedRows).toBeGreaterThanOrEqual(0.9 * b.statements[0].tableRows);
    expect(b.statements[0].nearlyWholeTable).toBe(true);
    expect(b.high).toBe(true);
    expect(b.highReason).toBe(
      `estimated ${b.estimatedRows} of ~${b.statements[0].tableRows} rows of public.customers`,
    );
    expect(view.risk).toBe('high');
    await reviewLinkFromOutbox(twin, view.requestId);
    const outbox = JSON.stringify((await twin.api('GET', '/dev/outbox')).body);
    expect(outbox).toContain(`high risk: estimated ${b.estimatedRows} of ~${b.statements[0].tableRows} rows`);
    expect(await count('SELECT count(*) AS n FROM customers')).toBe(customers);
  });

  it('leaves a one-row write on the same table at the usual risk', async () => {
    const view = await approvalOf(await pending('DELETE FROM customers WHERE id = 7'));
    expect(view.blastRadius).toMatchObject({ estimatedRows: 1, wholeTable: false, high: false });
    expect(view.blastRadius.statements[0].nearlyWholeTable).toBeUndefined();
    expect(view.blastRadius.highReason).toBeUndefined();
    expect(view.risk).toBe('medium');
  });

  it('ran nothing: every order is still there', async () => {
    expect(await count('SELECT count(*) AS n FROM orders')).toBe(orders);
  });

  it('keeps named parameters of the WHERE and drops those of SET', async () => {
    const id = await pending('UPDATE orders SET status = :s WHERE id = :id RETURNING id', [
      { name: 's', value: 'shipped' },
      { name: 'id', value: 7 },
    ]);
    expect((await approvalOf(id)).blastRadius).toMatchObject({ estimatedRows: 1, high: false });
  });

  it('treats a WHERE that PostgreSQL sees matches everything as the whole table', async () => {
    const id = await pending('UPDATE orders SET status = status WHERE 1 = 1 OR id = 7');
    const b = (await approvalOf(id)).blastRadius;
    expect(b.noWhere).toBe(false);
    expect(b.wholeTable).toBe(true);
    expect(b.high).toBe(true);
  });

  it('never runs a data-modifying CTE or a volatile function to estimate; the reach is unknown and high', async () => {
    const customers = await count('SELECT count(*) AS n FROM customers');
    const cte = await pending(
      'WITH gone AS (DELETE FROM customers RETURNING id) DELETE FROM orders WHERE customer_id IN (SELECT id FROM gone)',
    );
    const b = (await approvalOf(cte)).blastRadius;
    expect(b.high).toBe(true);
    expect(b.estimatedRows).toBeUndefined();
    expect((await approvalOf(cte)).risk).toBe('high');
    expect(await count('SELECT count(*) AS n FROM customers')).toBe(customers);

    await twin.db.query('CREATE SEQUENCE IF NOT EXISTS blast_probe');
    const before = await count('SELECT last_value AS n FROM blast_probe');
    const fn = await pending("DELETE FROM orders WHERE id = nextval('blast_probe')");
    expect((await approvalOf(fn)).blastRadius.estimatedRows).toBeUndefined();
    expect(await count('SELECT last_value AS n FROM blast_probe')).toBe(before);
  });

  it('is in the approvers list and in the notification, with a link to the session replay', async () => {
    const list = await twin.api('GET', '/v1/approvals', { token: bob });
    const entry = list.body.approvals.find((a: any) => a.requestId === whole);
    expect(entry.blastRadius.wholeTable).toBe(true);
    expect(entry.links.replay).toBe(`/replay/${encodeURIComponent(entry.sessionId)}?request=${whole}`);

    await reviewLinkFromOutbox(twin, whole);
    const outbox = JSON.stringify((await twin.api('GET', '/dev/outbox')).body);
    expect(outbox).toMatch(/Blast radius[^"]*WHOLE TABLE, no WHERE: DELETE ~\d+ rows of public\.orders/);
    expect(outbox).toContain(`/replay/${entry.sessionId}`);
  });

  it.skipIf(!HAS_CHROMIUM)('shows both on the approval page in Chromium', async () => {
    const browser = await openBrowser();
    try {
      const { page } = browser;
      await signInAt(page, await reviewLinkFromOutbox(twin, whole), 'bob');
      await expect.poll(() => page.locator('#blast-radius').textContent()).toMatch(/WHOLE TABLE, no WHERE/);
      expect(await page.locator('#blast-radius').getAttribute('data-high')).toBe('true');
      expect(await page.locator('#risk').textContent()).toBe('high');
      expect(await page.locator('#replay').getAttribute('href')).toMatch(/^\/replay\//);
      await screenshot(page, 'blast-radius-whole-table');

      await page.goto(await reviewLinkFromOutbox(twin, one));
      await expect
        .poll(() => page.locator('#blast-radius').textContent())
        .toMatch(/DELETE ~1 row of public\.orders/);
      expect(await page.locator('#blast-radius').textContent()).not.toMatch(/WHOLE TABLE/);
      expect(await page.locator('#blast-radius').getAttribute('data-high')).toBe('false');
      expect(await page.locator('#risk').textContent()).toBe('medium');
      await screenshot(page, 'blast-radius-one-row');
    } finally {
      await browser.close();
    }
  });
});

describe.skipIf(!HAS_CHROMIUM)('the approvals page', () => {
  it('lists what bob may decide, newest first, with risk, reach and expiry, each linking to its page', async () => {
    const older = await pending('DELETE FROM orders WHERE id = 11');
    const newer = await pending('DELETE FROM orders');
    const browser = await openBrowser();
    try {
      const { page } = browser;
      const res = await page.goto(`${twin.url}/approvals`);
      // Not signed in: off to the IdP first, nothing listed.
      expect(new URL(page.url()).pathname).not.toBe('/approvals');
      expect(res?.status()).toBeLessThan(400);
      await signInAt(page, `${twin.url}/approvals`, 'bob');
      const ids = await page
        .locator('#approvals > li')
        .evaluateAll((els) => els.map((e) => e.getAttribute('data-request')));
      expect(ids.indexOf(newer)).toBeGreaterThanOrEqual(0);
      expect(ids.indexOf(newer)).toBeLessThan(ids.indexOf(older));
      const item = page.locator(`li[data-request="${newer}"]`);
      expect(await item.getAttribute('data-risk')).toBe('high');
      expect(await item.textContent()).toMatch(/WHOLE TABLE, no WHERE/);
      expect(await item.textContent()).toMatch(/expires in \d+ min/);
      await screenshot(page, 'approvals-page');
      await item.locator(`a[href="/approve/${newer}"]`).click();
      await expect.poll(() => page.locator('#statement').textContent()).toBe('DELETE FROM orders');
    } finally {
      await browser.close();
    }
  });

  it('shows alice none of her own requests, and carol (no approve permission) nothing', async () => {
    for (const user of ['alice', 'carol']) {
      const browser = await openBrowser();
      try {
        const { page } = browser;
        await signInAt(page, `${twin.url}/approvals`, user);
        await expect.poll(() => page.locator('header .who').textContent()).toContain(user);
        expect(await page.locator('#approvals > li').count()).toBe(0);
        expect(await page.locator('#none').textContent()).toMatch(/Nothing is waiting for you/);
      } finally {
        await browser.close();
      }
    }
  });

  it('refuses a forged session cookie: back to sign-in, nothing listed', async () => {
    const res = await fetch(`${twin.url}/approvals`, {
      headers: { cookie: 'warden_session=eyJleHAiOjk5OTk5OTk5OTksIm5hbWUiOiJib2IifQ.forged' },
      redirect: 'manual',
    });
    expect(res.status).toBe(303);
    expect(await res.text()).not.toContain('asks to run');
  });
});

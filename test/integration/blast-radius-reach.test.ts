/**
 * The rest of the blast radius approvers see (issue 17 item 4), without a browser: an AWS call's
 * IAM action and exact resources, and the per-target row threshold (blastRadiusRows, 1000 on the
 * twin) that marks a write high risk although it is not the whole table; in the API, the approval
 * page (signed in over plain HTTP), the email and Slack messages, and `warden approvals` (with the replay link).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalsText } from '../../bin/cli-format.js';
import { PageSession } from '../support/page-session.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';
import { waitFor } from '../support/wait.js';

let twin: TestTwin;
let alice: string;
let bob: string;
let bobPage: PageSession;

beforeAll(async () => {
  twin = await startTestTwin();
  [alice, bob] = await Promise.all([twin.token('alice'), twin.token('bob')]);
  bobPage = new PageSession(twin.url);
}, 120_000);

afterAll(async () => {
  await twin?.close();
});

async function submit(path: string, body: Record<string, unknown>): Promise<string> {
  const res = await twin.api('POST', path, { token: alice, body });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.requestId as string;
}

async function view(id: string): Promise<Record<string, any>> {
  const res = await twin.api('GET', `/v1/approvals/${id}`, { token: bob });
  expect(res.status).toBe(200);
  return res.body;
}

async function page(id: string): Promise<string> {
  const out = bobPage.jar.size
    ? await bobPage.follow(`/approve/${id}`)
    : await bobPage.signIn(`/approve/${id}`, 'bob');
  expect(out.res.status).toBe(200);
  return /<dd\s+id="blast-radius"[^>]*>([\s\S]*?)<\/dd>/.exec(out.text)?.[1]?.trim() ?? '';
}

async function message(id: string) {
  return waitFor(async () => twin.outbox.find((m) => m.requestId === id), 20_000);
}

describe('an AWS write', () => {
  const TABLE_ARN = 'arn:aws:dynamodb:us-east-1:123456789012:table/warden-demo-orders';
  let id: string;

  beforeAll(async () => {
    id = await submit('/v1/targets/demo-aws/aws', {
      service: 'dynamodb',
      action: 'DeleteItem',
      input: { TableName: 'warden-demo-orders', Key: { id: { S: 'o-1' } } },
      justification: 'remove a test order',
    });
  });

  it('shows the IAM action and the exact resource in the API and the CLI list', async () => {
    const v = await view(id);
    expect(v.blastRadius).toEqual({ kind: 'aws', action: 'dynamodb:DeleteItem', resources: [TABLE_ARN] });
    const list = await twin.api('GET', '/v1/approvals', { token: bob });
    const mine = list.body.approvals.filter((a: any) => a.requestId === id);
    const text = approvalsText({ approvals: mine }, twin.url);
    expect(text).toContain(`reach: dynamodb:DeleteItem on ${TABLE_ARN}`);
    // …with the review page and the requester's session so far, as the page and messages link them.
    expect(text).toContain(`review: ${twin.url}/approve/${id}`);
    // A listing that stopped with a cursor never reads as "nothing awaits".
    expect(approvalsText({ approvals: [], cursor: 'abc' })).toMatch(/^more are waiting than listed/);
    expect(approvalsText({ approvals: [] })).toBe('nothing awaits your approval');
    expect(text).toContain(
      `session so far: ${twin.url}/replay/${encodeURIComponent(v.sessionId)}?request=${id}`,
    );
  });

  it('shows them on the approval page, in the email and in Slack', async () => {
    expect(await page(id)).toBe(`dynamodb:DeleteItem on ${TABLE_ARN}`);
    const m = await message(id);
    expect(m.text).toContain(`dynamodb:DeleteItem on ${TABLE_ARN}`);
    expect(m.html).toContain(`dynamodb:DeleteItem on ${TABLE_ARN}`);
    expect(JSON.stringify(m.slack)).toContain(`dynamodb:DeleteItem on ${TABLE_ARN}`);
  });

  it('names only the table the call touches, not a wildcard', async () => {
    const other = await submit('/v1/targets/demo-aws/aws', {
      service: 'dynamodb',
      action: 'PutItem',
      input: { TableName: 'warden-demo-customers', Item: { id: { S: 'c-9' } } },
    });
    const { blastRadius } = await view(other);
    expect(blastRadius.resources).toEqual([TABLE_ARN.replace('orders', 'customers')]);
    expect(JSON.stringify(blastRadius)).not.toContain('*');
  });
});

describe('the per-target row threshold', () => {
  const insert = (n: number) =>
    submit('/v1/targets/demo/sql', {
      sql: `INSERT INTO orders (customer_id, status) SELECT 1, 'new' FROM generate_series(1, ${n})`,
    });

  it('marks a write over blastRadiusRows high although it is not the whole table', async () => {
    // PostgreSQL plans generate_series(1, n) at exactly n rows; the twin's threshold is 1000.
    const over = await view(await insert(5000));
    expect(over.blastRadius).toMatchObject({
      kind: 'sql',
      estimatedRows: 5000,
      wholeTable: false,
      threshold: 1000,
      high: true,
    });
    expect(over.risk).toBe('high');
    expect(await page(over.requestId)).toMatch(
      /INSERT ~5000 rows of public\.orders · high risk: more than 1000 rows/,
    );
    expect((await message(over.requestId)).text).toMatch(/high risk: more than 1000 rows/);
  });

  it('leaves a write under it at the usual risk', async () => {
    const under = await view(await insert(10));
    expect(under.blastRadius).toMatchObject({ estimatedRows: 10, wholeTable: false, high: false });
    expect(under.risk).not.toBe('high');
    expect(await page(under.requestId)).not.toMatch(/high risk/);
  });
});

describe('the /approvals page over plain HTTP (the Chromium test skips without a browser)', () => {
  it('lists what bob may decide, newest first, with risk and reach, each linking to its page', async () => {
    const older = await submit('/v1/targets/demo/sql', { sql: 'DELETE FROM orders WHERE id = 21' });
    const newer = await submit('/v1/targets/demo/sql', { sql: 'DELETE FROM orders' });
    const listed = bobPage.jar.size
      ? await bobPage.follow('/approvals')
      : await bobPage.signIn('/approvals', 'bob');
    expect(listed.res.status).toBe(200);
    expect(listed.res.headers.get('content-security-policy')).toContain("default-src 'none'");
    const ids = [...listed.text.matchAll(/<li data-request="([^"]+)" data-risk="([^"]+)"/g)];
    const order = ids.map((m) => m[1]);
    expect(order.indexOf(newer)).toBeGreaterThanOrEqual(0);
    expect(order.indexOf(newer)).toBeLessThan(order.indexOf(older));
    expect(ids.find((m) => m[1] === newer)![2]).toBe('high');
    expect(listed.text).toContain(`href="/approve/${newer}"`);
    expect(listed.text).toMatch(/WHOLE TABLE, no WHERE/);

    const alicePage = new PageSession(twin.url);
    const hers = await alicePage.signIn('/approvals', 'alice');
    expect(hers.text).not.toContain(newer);
    expect(hers.text).toContain('id="none"');
  });
});

/**
 * Masking enforced by the database, end to end on the twin: carol (support, masked) runs as the
 * masked profile's users, whose privileges reach only the masking views; bob (dba,
 * view_unmasked) runs as the unmasked reader. Written as a prompt-injected agent would try it.
 */
import { RDSDataClient } from '@aws-sdk/client-rds-data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDbCheck } from '../../lambdas/adapters/db-masking.js';
import { demoSqlTarget } from '../../lib/local/demo-data.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';
import { waitFor } from '../support/wait.js';

let twin: TestTwin;
let carol: string;
let bob: string;
let alice: string;
/** Every raw sensitive value in the demo database, and reversible forms of it. */
let secrets: string[];
let raw: { id: number; ssn: string; card_number: string | null; iban: string | null; email: string }[];

beforeAll(async () => {
  twin = await startTestTwin();
  [carol, bob, alice] = await Promise.all(['carol', 'bob', 'alice'].map((u) => twin.token(u)));
  raw = (
    await twin.db.query<(typeof raw)[number]>(
      'SELECT id, ssn, card_number, iban, email FROM public.customers ORDER BY id',
    )
  ).rows;
  const forms = (v: string) => {
    const compact = v.replace(/[\s-]/g, '');
    return [v, compact, [...v].reverse().join(''), [...compact].reverse().join(''), v.toLowerCase()];
  };
  secrets = raw.flatMap((r) => [
    ...forms(r.ssn),
    ...(r.card_number ? forms(r.card_number) : []),
    ...(r.iban ? forms(r.iban).map((f) => f.slice(4)) : []),
    ...forms(r.email),
  ]);
}, 120_000);

afterAll(async () => {
  await twin?.close();
});

const sql = (token: string, text: string) =>
  twin.api('POST', '/v1/targets/demo/sql', { token, body: { sql: text } });

function leaked(value: unknown): string[] {
  const text = JSON.stringify(value);
  return secrets.filter((s) => s.length >= 6 && text.includes(s));
}

async function requestRecord(token: string, id: string) {
  return (await twin.api('GET', `/v1/requests/${id}`, { token })).body;
}

describe('profiles chosen by view_unmasked', () => {
  it('shows bob the clear values, run as the unmasked reader', async () => {
    const text = 'SELECT id, ssn, card_number, email FROM customers ORDER BY id LIMIT 5';
    const res = await sql(bob, text);
    expect(res.status).toBe(200);
    expect(res.body.result.rows[0].ssn).toBe(raw[0].ssn);
    expect(res.body.result.rows[0].email).toBe(raw[0].email);
    expect(twin.statementLog.filter((s) => s.sql.includes(text)).map((s) => s.role)).toEqual(['warden_ro']);
  });

  it("shows carol a card's last four, an IBAN's country and last four, and [SSN], run as the masked reader", async () => {
    const text = 'SELECT id, ssn, card_number, iban, email, phone FROM customers ORDER BY id LIMIT 40';
    const res = await sql(carol, text);
    expect(res.status).toBe(200);
    expect(twin.statementLog.filter((s) => s.sql.includes(text)).map((s) => s.role)).toEqual([
      'warden_masked_ro',
    ]);
    let cards = 0;
    for (const row of res.body.result.rows) {
      const clear = raw.find((r) => r.id === row.id)!;
      expect(row.ssn).toBe('[SSN]');
      expect(row.email).toMatch(/^hmac:[0-9a-f]{64}$/);
      if (clear.card_number) {
        cards++;
        expect(row.card_number).toMatch(/^\*{4}[- ]\*{4}[- ]\*{4}[- ]\d{4}$/);
        expect(row.card_number.slice(-4)).toBe(clear.card_number.slice(-4));
      } else expect(row.card_number).toBeNull();
      if (clear.iban) {
        expect(row.iban.slice(0, 2)).toBe(clear.iban.slice(0, 2));
        expect(row.iban.slice(-4)).toBe(clear.iban.slice(-4));
        expect(row.iban.replace(/[\s*]/g, '')).toHaveLength(6);
      }
    }
    expect(cards).toBeGreaterThan(10);
    expect(leaked(res.body)).toEqual([]);
    expect(res.body.result.masking.byType).toMatchObject({ SSN: 40, EMAIL: 40 });
    expect(res.body.result.masking.byType.CARD).toBe(cards);
  });

  it('keeps hashed emails joinable: equal values hash equally, distinct ones stay distinct', async () => {
    const res = await sql(
      carol,
      'SELECT count(DISTINCT email) AS d, count(*) AS n, count(DISTINCT lower(email)) AS l FROM customers',
    );
    expect(res.status).toBe(200);
    const distinct = new Set(raw.map((r) => r.email.toLowerCase())).size;
    expect(Number(res.body.result.rows[0].d)).toBe(distinct);
    const self = await sql(
      carol,
      'SELECT count(*) AS n FROM customers a JOIN customers b ON a.email = b.email WHERE a.id = b.id',
    );
    expect(Number(self.body.result.rows[0].n)).toBe(raw.length);
  });
});

describe('a masked principal cannot get a raw value out', () => {
  it.each([
    'SELECT reverse(ssn) AS x FROM customers',
    "SELECT translate(card_number, '0123456789', 'abcdefghij') AS x FROM customers",
    "SELECT encode(convert_to(email, 'UTF8'), 'base64') AS x FROM customers",
    "SELECT replace(ssn, '-', '') AS x, concat(ssn, 'x') AS y, split_part(card_number, '-', 4) AS z FROM customers",
    "SELECT lower(iban) AS x, regexp_replace(ssn, '(.)', '\\1 ', 'g') AS y FROM customers",
    "SELECT string_agg(to_hex(ascii(substr(ssn, i, 1))), '') AS x FROM customers, generate_series(1, 11) i GROUP BY id",
    "SELECT md5(ssn) AS a, sha256(convert_to(ssn, 'UTF8')) AS b, md5(email) AS c FROM customers",
    "SELECT replace(card_number, '-', '')::numeric + 1 AS x FROM customers WHERE card_number ~ '^[0-9-]+$'",
    "SELECT format('%s|%s', ssn, iban) AS x, json_build_object('s', ssn) AS j, ARRAY[ssn, email] AS a FROM customers",
    'SELECT c AS whole, c::text AS t, to_json(c) AS j, row_to_json(c) AS r FROM customers c',
    'SELECT (SELECT ssn FROM customers ORDER BY id LIMIT 1) AS x',
    'WITH s AS (SELECT ssn, email FROM customers) SELECT * FROM s',
    'SELECT l.x FROM customers c, LATERAL (SELECT c.ssn || c.card_number AS x) l',
    'SELECT ssn FROM customers UNION SELECT email FROM customers',
    'SELECT ssn, lag(email) OVER (ORDER BY id) AS prev FROM customers',
    'SELECT ssn, count(*) FROM customers GROUP BY ssn',
    'SELECT xmlelement(name x, ssn) AS x, to_jsonb(c.*) AS j FROM customers c',
  ])('%s', async (text) => {
    const res = await sql(carol, text);
    expect([200, 400, 403]).toContain(res.status);
    expect(leaked(res.body)).toEqual([]);
    if (res.body.requestId) expect(leaked(await requestRecord(bob, res.body.requestId))).toEqual([]);
  });

  it('(the leak check can fail: the same attack as bob shows raw values)', async () => {
    const res = await sql(bob, 'SELECT reverse(ssn) AS x, md5(ssn) AS y FROM customers');
    expect(res.status).toBe(200);
    expect(leaked(res.body).length).toBeGreaterThan(100);
  });

  it('answers a blind predicate on a prefix of an SSN the same for every prefix', async () => {
    const prefix = raw[0].ssn.slice(0, 3);
    const right = await sql(
      carol,
      `SELECT count(*) AS n FROM customers WHERE id = 1 AND substr(ssn, 1, 3) = '${prefix}'`,
    );
    const wrong = await sql(
      carol,
      `SELECT count(*) AS n FROM customers WHERE id = 1 AND substr(ssn, 1, 3) = '000'`,
    );
    expect(right.status).toBe(200);
    expect(right.body.result.rows[0].n).toBe(0);
    expect(wrong.body.result.rows[0].n).toBe(0);
    const star = await sql(carol, "SELECT count(*) AS n FROM customers WHERE id = 1 AND ssn = '[SSN]'");
    expect(star.body.result.rows[0].n).toBe(1);
  });

  it('gives no error oracle: a division by zero on a guessed digit answers alike for every digit', async () => {
    // The attacker's loop: a statement that fails only if the guess about the raw value is right.
    const answers = [];
    for (let digit = 0; digit <= 9; digit++) {
      const res = await sql(
        carol,
        `SELECT CASE WHEN substr(ssn, 1, 1) = '${digit}' THEN 1 / (id - id) ELSE 0 END AS x FROM customers WHERE id = 1`,
      );
      answers.push([res.status, res.body.result?.rows]);
    }
    expect(new Set(answers.map((a) => JSON.stringify(a))).size).toBe(1);
    expect(answers[0]).toEqual([200, [{ x: 0 }]]);
    // (the oracle works where the raw value is read: bob's answers differ on the right digit)
    const digit = raw[0].ssn[0];
    const hit = await sql(
      bob,
      `SELECT CASE WHEN substr(ssn, 1, 1) = '${digit}' THEN 1 / (id - id) ELSE 0 END AS x FROM customers WHERE id = ${raw[0].id}`,
    );
    expect(hit.status).toBe(400);
  });

  it('sorts and aggregates on masked values: ORDER BY, min/max and DISTINCT reveal no order or count of raw values', async () => {
    const byId = await sql(carol, 'SELECT id FROM customers ORDER BY id LIMIT 50');
    const bySsn = await sql(carol, 'SELECT id FROM customers ORDER BY ssn, id LIMIT 50');
    expect(bySsn.body.result.rows).toEqual(byId.body.result.rows);
    const agg = await sql(
      carol,
      'SELECT min(ssn) AS lo, max(ssn) AS hi, count(DISTINCT ssn) AS n FROM customers',
    );
    expect(agg.body.result.rows).toEqual([{ lo: '[SSN]', hi: '[SSN]', n: 1 }]);
    expect(leaked(agg.body)).toEqual([]);
    // (bob's raw order is not the id order, so the first comparison can fail)
    const bobs = await sql(bob, 'SELECT id FROM customers ORDER BY ssn, id LIMIT 50');
    expect(bobs.body.result.rows).not.toEqual(byId.body.result.rows);
  });

  it.each([
    "SELECT ('{' || replace(ssn, '-', ''))::json FROM customers",
    "SELECT replace(ssn, '-', 'x')::regclass FROM customers",
    'SELECT lower(iban)::regrole FROM customers WHERE iban IS NOT NULL',
    "SELECT timezone(replace(ssn, '-', '/'), now()) FROM customers",
    'SELECT ssn::int FROM customers',
    "SELECT replace(card_number, '-', '')::int FROM customers WHERE card_number IS NOT NULL",
  ])('error messages carry only masked forms: %s', async (text) => {
    const res = await sql(carol, text);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(leaked(res.body)).toEqual([]);
    if (res.body.error?.requestId) {
      expect(leaked(await requestRecord(bob, res.body.error.requestId))).toEqual([]);
    }
  });

  it.each([
    'SELECT ssn FROM public.customers',
    'SELECT count(*) FROM "public"."customers" WHERE ssn LIKE \'1%\'',
    'SELECT o.id FROM orders o JOIN PUBLIC.customers c ON c.id = o.customer_id',
    'SELECT * FROM warden_private.hash_key',
  ])('refuses a raw table named with its schema with 403 before running: %s', async (text) => {
    const res = await sql(carol, text);
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('raw_table_reference');
    expect(res.body.error.message).toMatch(/masking views/);
    expect(twin.statementLog.filter((s) => s.sql.includes(text))).toHaveLength(0);
    // Warden's private schema has no view to write instead: the answer does not suggest one.
    if (text.includes('warden_private')) {
      expect(res.body.error.message).toMatch(/Warden's private schema/);
      expect(res.body.error.message).not.toMatch(/without its schema/);
    }
  });

  it('gets permission denied (403, no data) where the name is hidden from the gateway', async () => {
    const text = "SELECT * FROM query_to_xml('select ssn from public.customers', true, false, '')";
    const res = await sql(carol, text);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(leaked(res.body)).toEqual([]);
  });

  it('lets bob name public.customers (his profile reads the raw tables)', async () => {
    const res = await sql(bob, 'SELECT ssn FROM public.customers ORDER BY id LIMIT 1');
    expect(res.status).toBe(200);
    expect(res.body.result.rows[0].ssn).toBe(raw[0].ssn);
  });
});

describe('ordinary work keeps working for carol', () => {
  it('answers counts, sums by status, joins on keys and date filters exactly as over the raw tables', async () => {
    const queries = [
      'SELECT count(*) AS n FROM customers',
      'SELECT status, sum(amount) AS total FROM orders GROUP BY status ORDER BY status',
      'SELECT c.id, count(o.id) AS n FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.id ORDER BY c.id LIMIT 20',
      "SELECT count(*) AS n FROM orders WHERE created_at >= '2024-01-01' AND created_at < '2024-07-01'",
      'SELECT right(card_number, 4) AS last4 FROM customers WHERE id = 2',
    ];
    for (const text of queries) {
      const masked = await sql(carol, text);
      const clear = await sql(bob, text);
      expect(masked.status, text).toBe(200);
      expect(masked.body.result.rows, text).toEqual(clear.body.result.rows);
    }
  });
});

describe('writes by a masked principal', () => {
  it('cannot copy a sensitive column into a column it may read, even once approved', async () => {
    const before = (await twin.db.query<{ status: string }>('SELECT status FROM public.orders WHERE id = 5'))
      .rows[0];
    const text = 'UPDATE orders SET status = (SELECT ssn FROM customers ORDER BY id LIMIT 1) WHERE id = 5';
    const res = await twin.api('POST', '/v1/targets/demo/sql', {
      token: alice,
      body: { sql: text, justification: 'attacker: copy an SSN' },
    });
    expect(res.status).toBe(202);
    const id = res.body.requestId as string;
    await waitFor(async () => twin.outbox.find((m) => m.requestId === id), 60_000);
    const decided = await twin.api('POST', `/v1/approvals/${id}/decision`, {
      token: bob,
      body: { decision: 'approve' },
    });
    expect(decided.status).toBeLessThan(300);
    const done = await waitFor(async () => {
      const r = await requestRecord(alice, id);
      return ['executed', 'failed'].includes(r.status) ? r : undefined;
    }, 30_000);
    expect(done.status).toBe('failed');
    expect(JSON.stringify(done)).toMatch(/permission denied/);
    expect(twin.statementLog.filter((s) => s.sql.includes(text)).map((s) => s.role)).toEqual([
      'warden_masked_rw',
    ]);
    const after = (await twin.db.query<{ status: string }>('SELECT status FROM public.orders WHERE id = 5'))
      .rows[0];
    expect(after).toEqual(before);
  });
});

describe('warden db check on the twin', () => {
  it('proves every Warden user is pinned and each masked user is refused every raw sensitive column', async () => {
    const client = new RDSDataClient({
      endpoint: twin.dataApiUrl,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local-twin', secretAccessKey: 'local-twin' },
      maxAttempts: 1,
    });
    const report = await runDbCheck(client, 'demo', demoSqlTarget());
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.passed).toContain('warden_masked_ro cannot read public.customers.ssn');
    expect(report.passed).toContain('warden_masked_rw cannot read public.customers.email');
    expect(report.passed.filter((p) => p.includes('standard_conforming_strings'))).toHaveLength(4);
  });
});

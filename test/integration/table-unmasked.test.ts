/**
 * `view_unmasked` granted per table (`Table::"demo/public.orders"`), attacked: carol may see the
 * orders table in the clear, and nothing else. A statement runs as the unmasked reader only when
 * every table it names is one she may see unmasked, so every way of reaching `customers` from a
 * statement about `orders` must either name customers (and run masked) or be refused. If the
 * classifier ever missed a table, this is where raw SSNs would come out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTwin, type TestTwin } from '../support/twin.js';

const POLICY = `
@id("support-sees-orders-clear")
permit (principal in Group::"support", action == Action::"view_unmasked", resource == Table::"demo/public.orders");
`;

let twin: TestTwin;
let carol: string;
let secrets: string[];

beforeAll(async () => {
  twin = await startTestTwin({ extraPolicies: [{ source: 'orders-clear.cedar', text: POLICY }] });
  carol = await twin.token('carol');
  const raw = (
    await twin.db.query<{ ssn: string; email: string; card_number: string | null }>(
      'SELECT ssn, email, card_number FROM public.customers',
    )
  ).rows;
  secrets = raw.flatMap((r) => [r.ssn, r.email, ...(r.card_number ? [r.card_number] : [])]).filter(Boolean);
  expect(secrets.length).toBeGreaterThan(100);
}, 120_000);

afterAll(async () => {
  await twin?.close();
});

const sql = (text: string) => twin.api('POST', '/v1/targets/demo/sql', { token: carol, body: { sql: text } });
const leaked = (body: unknown) => {
  const text = JSON.stringify(body);
  return secrets.filter((s) => text.includes(s));
};
const roleOf = (text: string) => twin.statementLog.filter((s) => s.sql.includes(text)).map((s) => s.role);

describe('view_unmasked on one table', () => {
  it('runs a statement naming only that table as the unmasked reader', async () => {
    const text = 'SELECT id, status, amount FROM orders ORDER BY id LIMIT 3';
    const res = await sql(text);
    expect(res.status).toBe(200);
    expect(res.body.result.masking.unmasked).toBe(true);
    expect(roleOf(text)).toEqual(['warden_ro']);
    for (const spelling of ['public.orders', '"public"."orders"', 'PUBLIC.ORDERS']) {
      const q = `SELECT count(*) FROM ${spelling}`;
      const r = await sql(q);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.result.masking.unmasked, q).toBe(true);
    }
  });

  it.each([
    'SELECT o.id, (SELECT c.ssn FROM customers c WHERE c.id = o.customer_id) AS s FROM orders o',
    'WITH x AS (SELECT ssn, email FROM customers) SELECT o.id, x.* FROM orders o, x LIMIT 50',
    'WITH orders AS (SELECT ssn AS status, email FROM customers) SELECT * FROM orders',
    'SELECT o.id, c.ssn FROM orders o JOIN LATERAL (SELECT ssn FROM customers WHERE id = o.customer_id) c ON true',
    'SELECT status FROM orders UNION ALL SELECT ssn FROM customers',
    'SELECT o.id FROM orders o WHERE o.customer_id IN (TABLE customers)',
    'SELECT * FROM orders o, customers c WHERE c.id = o.customer_id',
    'SELECT o.*, c FROM orders o JOIN customers c ON c.id = o.customer_id',
    'SELECT * FROM orders NATURAL JOIN (SELECT id AS customer_id, ssn FROM customers) c',
    'SELECT * FROM ONLY orders, ONLY customers',
    'SELECT * FROM orders, customers * WHERE false OR true LIMIT 20',
    'SELECT * FROM orders WHERE EXISTS (SELECT 1 FROM customers WHERE ssn IS NOT NULL) LIMIT 1',
    "SELECT (SELECT string_agg(ssn, ',') FROM customers) AS all_ssns FROM orders LIMIT 1",
    'SELECT * FROM orders, ROWS FROM (generate_series(1, 1)) g, LATERAL (SELECT email FROM customers LIMIT 5) e',
    "SELECT query_to_xml('select ssn from customers', true, false, '') FROM orders LIMIT 1",
    "SELECT table_to_xml('customers', true, false, '') FROM orders LIMIT 1",
    "SELECT * FROM orders, xmltable('/r' PASSING (SELECT xmlagg(xmlelement(name r, ssn)) FROM customers) COLUMNS v text PATH '.') t",
    'SELECT o.id, s.ssn FROM orders o, (SELECT ssn FROM public.customers) s LIMIT 5',
    'SELECT * FROM orders o WHERE o.id = 1; SELECT ssn FROM customers',
  ])('gives no raw value for %s', async (text) => {
    const res = await sql(text);
    expect([200, 400, 403, 422], JSON.stringify(res.body)).toContain(res.status);
    expect(leaked(res.body)).toEqual([]);
    // Whatever ran, ran masked: the unmasked reader never saw this statement.
    const ran = roleOf(text.split(';')[0]);
    expect(ran.filter((r) => r !== 'warden_masked_ro')).toEqual([]);
    if (res.status === 200) expect(ran).toEqual(['warden_masked_ro']);
  });

  it('(the leak check can fail: customers named alone is masked, and bob reads it raw)', async () => {
    const bob = await twin.token('bob');
    const res = await twin.api('POST', '/v1/targets/demo/sql', {
      token: bob,
      body: { sql: 'SELECT ssn FROM customers LIMIT 5' },
    });
    expect(leaked(res.body).length).toBeGreaterThan(0);
  });
});

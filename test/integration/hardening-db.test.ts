/**
 * Issue 13, the database path, black-box over HTTP and MCP against the local twin:
 * - item 8: a read runs once, bounded; never re-run smaller;
 * - item 11: values that cannot be recorded or sent as given are a 400 naming them, not an outage,
 *   and nothing runs;
 * - item 13: a 5xx carries a fixed message and the request id, never a dependency's text (ARNs).
 */
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localDynamoClient } from '../../lib/local/dynamodb.js';
import { captureLogs, submittedSql, type LogCapture } from '../../lib/local/invariants.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';

let twin: TestTwin;
let alice: string;
let logs: LogCapture;
const clients: Client[] = [];

beforeAll(async () => {
  logs = captureLogs({ passThrough: false });
  twin = await startTestTwin({ faults: { rules: [] } });
  alice = await twin.token('alice');
}, 180_000);

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await twin?.close();
  logs?.restore();
});

let seq = 0;
/** A marker no other request carries, so the statement log and the store map back to one call. */
const marker = () => `hd-${++seq}-${Date.now()}`;

const runs = (text: string) => twin.statementLog.filter((s) => submittedSql(s.sql) === text);
const ranContaining = (fragment: string) => twin.statementLog.filter((s) => s.sql.includes(fragment));

async function recordsContaining(fragment: string): Promise<Record<string, any>[]> {
  const out = await localDynamoClient(twin.dynamoEndpoint).send(
    new ScanCommand({ TableName: twin.tableNames.Requests, ConsistentRead: true }),
  );
  return (out.Items ?? [])
    .map((i) => unmarshall(i))
    .filter((r) => JSON.stringify(r.operation ?? {}).includes(fragment));
}

/** POSTs a raw JSON text, so numbers reach the gateway exactly as written (`-0`, `1e300`). */
function rawSql(text: string) {
  return twin.api('POST', '/v1/targets/demo/sql', {
    token: alice,
    raw: text,
    headers: { 'content-type': 'application/json' },
  });
}

async function mcp(): Promise<Client> {
  const client = new Client({ name: 'warden-hardening-test', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${twin.url}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${alice}` } },
    }),
  );
  clients.push(client);
  return client;
}

const text = (r: CallToolResult) =>
  r.content.map((c) => (c.type === 'text' ? c.text : JSON.stringify(c))).join('\n');

describe('item 8: one bounded run per read', () => {
  it('runs a read with more rows than the target returns once, bounded at maxRows + 1, and says truncated', async () => {
    const tag = marker();
    const sql = `SELECT g, '${tag}' AS tag FROM generate_series(1, 5000) AS g`;
    const res = await twin.api('POST', '/v1/targets/demo/sql', { token: alice, body: { sql } });
    expect(res.status).toBe(200);
    expect(res.body.result.truncated).toBe(true);
    expect(res.body.result.rows).toHaveLength(1000);
    const ran = runs(sql);
    expect(ran).toHaveLength(1);
    expect(ran[0].sql).toMatch(/\) AS warden_bounded LIMIT 1001$/);
    expect(ran[0].role).toMatch(/_ro$/);
  });

  it('answers a read too large for the Data API with 422 after exactly one run, never smaller re-runs', async () => {
    const tag = marker();
    const sql = `SELECT g, repeat('x', 2048) AS pad, '${tag}' AS tag FROM generate_series(1, 1100) AS g`;
    const res = await twin.api('POST', '/v1/targets/demo/sql', { token: alice, body: { sql } });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('result_too_large');
    expect(res.body.error.message).toMatch(/LIMIT/);
    expect(ranContaining(tag)).toHaveLength(1);
  });

  it('bounds a read that ends in a semicolon and a comment, and leaves a read it cannot wrap alone', async () => {
    const tag = marker();
    const sql = `SELECT id, '${tag}' AS tag FROM customers ORDER BY id; -- the first ones`;
    const res = await twin.api('POST', '/v1/targets/demo/sql', { token: alice, body: { sql } });
    expect(res.status).toBe(200);
    expect(res.body.result.truncated).toBe(false);
    expect(res.body.result.rows).toHaveLength(300);
    const ran = ranContaining(tag);
    expect(ran).toHaveLength(1);
    expect(ran[0].sql).toMatch(/ORDER BY id\n\) AS warden_bounded LIMIT 1001$/);

    const explain = `EXPLAIN SELECT id FROM customers WHERE name = '${marker()}'`;
    const plan = await twin.api('POST', '/v1/targets/demo/sql', { token: alice, body: { sql: explain } });
    expect(plan.status).toBe(200);
    expect(twin.statementLog.filter((s) => s.sql === explain)).toHaveLength(1);
  });
});

describe('item 11: input that cannot be recorded or sent as given is a 400, and nothing runs', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['an integer beyond exact JSON numbers', '12345678901234567890', /parameter v is an integer beyond/],
    ['a number beyond DynamoDB’s range', '1e300', /parameter v is outside the number range/],
    ['a number below DynamoDB’s range', '1e-300', /parameter v is outside the number range/],
    ['negative zero', '-0', /parameter v is -0/],
    ['"NaN" as a DECIMAL', '"NaN"', /parameter v has typeHint DECIMAL but is not a decimal/],
    ['"Infinity" as a DECIMAL', '"-Infinity"', /parameter v has typeHint DECIMAL but is not a decimal/],
    ['a NUL byte in a string value', '"a\\u0000b"', /parameter v contains a NUL byte/],
  ];

  it.each(cases)('refuses %s with 400 naming the parameter', async (_what, value, message) => {
    const tag = marker();
    const sql = `SELECT :v AS v, '${tag}' AS tag`;
    const hint = value.includes('NaN') || value.includes('Infinity') ? ', "typeHint": "DECIMAL"' : '';
    const res = await rawSql(
      `{"sql": ${JSON.stringify(sql)}, "parameters": [{"name": "v", "value": ${value}${hint}}]}`,
    );
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('bad_request');
    expect(res.body.error.message).toMatch(message);
    expect(ranContaining(tag)).toHaveLength(0);
    expect((await recordsContaining(tag)).filter((r) => r.status !== 'failed')).toEqual([]);
  });

  it('still runs the numbers that can be recorded exactly', async () => {
    const tag = marker();
    const res = await twin.api('POST', '/v1/targets/demo/sql', {
      token: alice,
      body: {
        sql: `SELECT :a::bigint AS a, :b::float8 AS b, :c::numeric AS c, '${tag}' AS tag`,
        parameters: [
          { name: 'a', value: Number.MAX_SAFE_INTEGER },
          { name: 'b', value: 1.5e-7 },
          { name: 'c', value: '12345678901234567890', typeHint: 'DECIMAL' },
        ],
      },
    });
    expect(res.status).toBe(200);
    expect(res.body.result.rows[0]).toMatchObject({ a: Number.MAX_SAFE_INTEGER, b: 1.5e-7 });
    expect(String(res.body.result.rows[0].c)).toBe('12345678901234567890');
  });

  it('refuses a NUL byte in the SQL (the parser would stop at it, PostgreSQL would not) and runs nothing', async () => {
    const tag = marker();
    const sql = `SELECT '${tag}' AS tag\u0000; DELETE FROM orders`;
    const before = await twin.api('POST', '/v1/targets/demo/sql', {
      token: alice,
      body: { sql: 'SELECT count(*)::int AS n FROM orders' },
    });
    const res = await twin.api('POST', '/v1/targets/demo/sql', { token: alice, body: { sql } });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/NUL byte \(U\+0000\) at character \d+/);
    expect(ranContaining(tag)).toHaveLength(0);
    expect((await recordsContaining(tag)).filter((r) => r.status !== 'failed')).toEqual([]);
    const after = await twin.api('POST', '/v1/targets/demo/sql', {
      token: alice,
      body: { sql: 'SELECT count(*)::int AS n FROM orders' },
    });
    expect(after.body.result.rows).toEqual(before.body.result.rows);
  });

  it('refuses an unpaired surrogate in the SQL (no UTF-8 form) and an explain of a NUL', async () => {
    const tag = marker();
    const res = await rawSql(
      JSON.stringify({ sql: `SELECT '${tag}' AS tag, 'x` }).replace(/'x"/, `'\\ud800'"`),
    );
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/unpaired UTF-16 surrogate/);
    const explained = await twin.api('POST', '/v1/targets/demo/explain', {
      token: alice,
      body: { sql: `SELECT 1\u0000; DROP TABLE orders` },
    });
    expect(explained.status).toBe(400);
    expect(ranContaining(tag)).toHaveLength(0);
  });

  it('refuses the same through MCP: run_sql answers a tool error naming the parameter, and nothing runs', async () => {
    const client = await mcp();
    const tag = marker();
    const big = (await client.callTool({
      name: 'run_sql',
      arguments: {
        target: 'demo',
        sql: `SELECT :v AS v, '${tag}' AS tag`,
        parameters: [{ name: 'v', value: 1e300 }],
      },
    })) as CallToolResult;
    expect(big.isError).toBe(true);
    expect(text(big)).toMatch(/parameter v is outside the number range/);
    const unsafe = (await client.callTool({
      name: 'run_sql',
      arguments: {
        target: 'demo',
        sql: `SELECT :v AS v, '${tag}' AS tag`,
        parameters: [{ name: 'v', value: 2 ** 60 }],
      },
    })) as CallToolResult;
    expect(unsafe.isError).toBe(true);
    expect(text(unsafe)).toMatch(/parameter v is an integer beyond/);
    const nul = (await client.callTool({
      name: 'run_sql',
      arguments: { target: 'demo', sql: `SELECT '${tag}'\u0000; DELETE FROM orders` },
    })) as CallToolResult;
    expect(nul.isError).toBe(true);
    expect(text(nul)).toMatch(/NUL byte/);
    expect(ranContaining(tag)).toHaveLength(0);
    expect((await recordsContaining(tag)).filter((r) => r.status !== 'failed')).toEqual([]);
  });
});

describe('item 13: a 5xx answers a fixed message and the request id; the details go to the log', () => {
  const ARN = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:demo/read-AbCdEf';
  const SERVICE_TEXT = `User: arn:aws:sts::111122223333:assumed-role/warden-api/fn is not authorized to perform: secretsmanager:GetSecretValue on resource: ${ARN}`;
  const LEAKS = [/arn:aws/, /111122223333/, /secret:demo/, /not authorized to perform/, /injected fault/];

  function fault(errorType: string, status: number): void {
    twin.faults!.configure({
      rules: [
        {
          service: 'rds-data',
          operation: 'ExecuteStatement',
          fault: 'error',
          errorType,
          status,
          message: SERVICE_TEXT,
          probability: 1,
        },
      ],
    });
  }

  afterAll(() => twin.faults?.configure({ rules: [] }));

  it.each([
    ['ForbiddenException', 403],
    ['SecretsErrorException', 400],
  ])(
    '%s from the Data API is 502 target_misconfigured without the service’s text (REST)',
    async (type, status) => {
      fault(type, status);
      const res = await twin.api('POST', '/v1/targets/demo/sql', {
        token: alice,
        body: { sql: `SELECT '${marker()}' AS tag` },
      });
      twin.faults!.configure({ rules: [] });
      expect(res.status).toBe(502);
      expect(res.body.error.code).toBe('target_misconfigured');
      const body = JSON.stringify(res.body);
      for (const leak of LEAKS) expect(body).not.toMatch(leak);
      const gatewayRequestId = res.headers.get('x-request-id');
      expect(gatewayRequestId).toBeTruthy();
      expect(res.body.error.message).toContain(`(request ${gatewayRequestId})`);
      expect(res.body.error.requestId).toMatch(/^r_/);
      // What was recorded about it is as bare as the answer.
      const view = await twin.api('GET', `/v1/requests/${res.body.error.requestId}`, { token: alice });
      expect(view.body.status).toBe('failed');
      for (const leak of LEAKS) expect(JSON.stringify(view.body)).not.toMatch(leak);
      // The operator finds the service's words in the log line under the same request id.
      const line = logs.lines.find(
        (l) => l.includes(gatewayRequestId!) && l.includes('target_misconfigured'),
      );
      expect(line).toBeDefined();
      expect(line).toMatch(/not authorized to perform|ForbiddenException|SecretsErrorException/);
    },
  );

  it('a failing audit store is a 503 with the fixed message, not the store’s text (REST)', async () => {
    twin.faults!.configure({
      rules: [
        {
          service: 'dynamodb',
          operation: 'TransactWriteItems',
          fault: 'error',
          errorType: 'ValidationException',
          status: 400,
          probability: 1,
        },
      ],
    });
    const res = await twin.api('POST', '/v1/targets/demo/sql', {
      token: alice,
      body: { sql: `SELECT '${marker()}' AS tag` },
    });
    twin.faults!.configure({ rules: [] });
    expect(res.status).toBe(503);
    expect(res.body.error.message).toMatch(/^a service Warden depends on is unavailable; nothing was run/);
    expect(res.body.error.message).not.toMatch(/audit store|ValidationException|Internal server error/);
  });

  it('the same Data API fault through MCP is a tool error without the service’s text', async () => {
    const client = await mcp();
    fault('ForbiddenException', 403);
    const res = (await client.callTool({
      name: 'run_sql',
      arguments: { target: 'demo', sql: `SELECT '${marker()}' AS tag` },
    })) as CallToolResult;
    twin.faults!.configure({ rules: [] });
    expect(res.isError).toBe(true);
    expect(text(res)).toMatch(/^target misconfigured \(request r_[\w-]+, recorded\): /);
    for (const leak of LEAKS) expect(JSON.stringify(res)).not.toMatch(leak);
  });
});

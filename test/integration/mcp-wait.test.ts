/**
 * Waiting for approval inside the call: `wait_seconds` on run_sql and call_aws through the MCP SDK
 * client, and `?wait=N` on the REST API, on the twin with its real approval workflow (the Step
 * Functions twin, the notify and execute handlers) and bob approving or denying on the approvers'
 * API while the call is held.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult, Progress } from '@modelcontextprotocol/sdk/types.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_AWS_TABLE_NAME } from '../../lib/local/aws-enforcer.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';
import { waitFor } from '../support/wait.js';

let twin: TestTwin;
let alice: string;
let bob: string;
let carol: string;
let agent: string;
const clients: Client[] = [];

beforeAll(async () => {
  twin = await startTestTwin();
  [alice, bob, carol, agent] = await Promise.all(
    ['alice', 'bob', 'carol', 'agent-demo'].map((u) => twin.token(u)),
  );
}, 180_000);

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await twin?.close();
});

async function connect(token: string): Promise<Client> {
  const client = new Client({ name: 'warden-wait-test', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${twin.url}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  // Listing makes the client check every result against the tool's output schema.
  await client.listTools();
  clients.push(client);
  return client;
}

const text = (r: CallToolResult) => r.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
const ran = (sql: string) => twin.statementLog.filter((s) => s.sql === sql).length;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let n = 100;
const uniqueWrite = () => `UPDATE orders SET status = 'shipped' WHERE id = ${++n} RETURNING id, status`;

/** The request the notify step announced for a statement (the test learns the id from the outbox). */
async function announced(fragment: string): Promise<string> {
  const message = await waitFor(
    async () => twin.outbox.find((m) => String(m.text).includes(fragment)),
    30_000,
  );
  return message.requestId as string;
}

/** bob decides on the request announced for `fragment`, about `afterMs` after it was announced. */
async function bobDecides(fragment: string, decision: 'approve' | 'deny', afterMs = 2000): Promise<string> {
  const id = await announced(fragment);
  await sleep(afterMs);
  const res = await twin.api('POST', `/v1/approvals/${id}/decision`, { token: bob, body: { decision } });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return id;
}

describe('wait_seconds on run_sql', () => {
  it('a write approved by bob after ~2 s answers the executed result in the one call', async () => {
    const sql = uniqueWrite();
    const client = await connect(alice);
    const held = client.callTool({
      name: 'run_sql',
      arguments: { target: 'demo', sql, justification: 'ship it', wait_seconds: 20 },
    }) as Promise<CallToolResult>;
    const [res, id] = await Promise.all([held, bobDecides(sql, 'approve')]);
    expect(res.isError, text(res)).toBeFalsy();
    expect(res.structuredContent).toMatchObject({
      requestId: id,
      status: 'executed',
      decidedBy: 'bob',
      decision: { outcome: 'approval_required', action: 'sql:write' },
      result: { rowCount: 1, rows: [{ id: n, status: 'shipped' }], masking: { byType: {} } },
    });
    expect(text(res)).toMatch(/^Approved by bob and executed/);
    expect(ran(sql)).toBe(1);
  }, 60_000);

  it('the executed result is the masked one', async () => {
    const sql =
      "UPDATE orders SET status = status WHERE id = 5 RETURNING id, 'reach jane.roe@example.org' AS note";
    const client = await connect(alice);
    const held = client.callTool({
      name: 'run_sql',
      arguments: { target: 'demo', sql, wait_seconds: 20 },
    }) as Promise<CallToolResult>;
    const [res] = await Promise.all([held, bobDecides('WHERE id = 5 RETURNING id', 'approve', 200)]);
    expect(res.structuredContent, text(res)).toMatchObject({ status: 'executed' });
    const row = (res.structuredContent as any).result.rows[0];
    expect(row.note).not.toContain('jane.roe@example.org');
    expect((res.structuredContent as any).result.masking.byType).toMatchObject({ EMAIL: 1 });
  }, 60_000);

  it('not approved in time: the usual pending answer, and nothing ran', async () => {
    const sql = uniqueWrite();
    const client = await connect(alice);
    const res = (await client.callTool({
      name: 'run_sql',
      arguments: { target: 'demo', sql, wait_seconds: 2 },
    })) as CallToolResult;
    expect(res.isError).toBe(true);
    expect(text(res)).toMatch(
      /^approval required: request r_[\w-]+ is waiting for the dba group \(nobody decided within the 2 s waited\)/,
    );
    expect(text(res)).toMatch(/call get_request with this id/);
    expect(res.structuredContent).toMatchObject({ status: 'pending_approval' });
    expect(ran(sql)).toBe(0);
  }, 60_000);

  it('denied while waiting: the denial, and nothing ran', async () => {
    const sql = uniqueWrite();
    const client = await connect(alice);
    const held = client.callTool({
      name: 'run_sql',
      arguments: { target: 'demo', sql, wait_seconds: 20 },
    }) as Promise<CallToolResult>;
    const [res, id] = await Promise.all([held, bobDecides(sql, 'deny', 200)]);
    expect(res.isError).toBe(true);
    expect(res.structuredContent).toMatchObject({ requestId: id, status: 'denied', decidedBy: 'bob' });
    expect(text(res)).toMatch(/^denied by bob .*will not run/);
    expect(ran(sql)).toBe(0);
  }, 60_000);

  it('sends progress notifications while it holds when the client asked for them', async () => {
    const sql = uniqueWrite();
    const client = await connect(alice);
    const progress: Progress[] = [];
    const res = (await client.callTool(
      { name: 'run_sql', arguments: { target: 'demo', sql, wait_seconds: 2 } },
      CallToolResultSchema,
      { onprogress: (p) => progress.push(p) },
    )) as CallToolResult;
    expect(res.structuredContent).toMatchObject({ status: 'pending_approval' });
    expect(progress.length).toBeGreaterThan(0);
    for (const p of progress) {
      expect(p.total).toBe(2);
      expect(p.message).toMatch(/^request r_[\w-]+: pending approval$/);
    }
    // Progress only goes forward.
    expect(progress.map((p) => p.progress)).toEqual(
      [...progress.map((p) => p.progress)].sort((a, b) => a - b),
    );
  }, 60_000);

  it('refuses a wait beyond the bound (and a negative or fractional one) before recording anything', async () => {
    const client = await connect(alice);
    for (const wait of [26, 600, -1, 1.5]) {
      const sql = uniqueWrite();
      const res = (await client.callTool({
        name: 'run_sql',
        arguments: { target: 'demo', sql, wait_seconds: wait },
      })) as CallToolResult;
      expect(res.isError, String(wait)).toBe(true);
      expect(text(res)).toMatch(/wait_seconds/);
      expect(twin.outbox.some((m) => String(m.text).includes(sql))).toBe(false);
    }
    const { tools } = await client.listTools();
    const schema = tools.find((t) => t.name === 'run_sql')!.inputSchema.properties!.wait_seconds as any;
    expect(schema).toMatchObject({ type: 'integer', minimum: 0, maximum: 25 });
  });

  it('a read allowed outright does not wait', async () => {
    const client = await connect(carol);
    const res = (await client.callTool({
      name: 'run_sql',
      arguments: { target: 'demo', sql: 'SELECT 1 AS one', wait_seconds: 20 },
    })) as CallToolResult;
    expect(res.structuredContent).toMatchObject({ status: 'executed', result: { rows: [{ one: 1 }] } });
  });
});

describe('wait_seconds on call_aws', () => {
  it('a PutItem approved in time answers the executed call', async () => {
    const sku = `WAIT-${Date.now()}`;
    const client = await connect(agent);
    const held = client.callTool({
      name: 'call_aws',
      arguments: {
        target: 'demo-aws',
        service: 'dynamodb',
        action: 'PutItem',
        input: { TableName: DEMO_AWS_TABLE_NAME, Item: { sku: { S: sku }, name: { S: 'Gadget' } } },
        wait_seconds: 20,
      },
    }) as Promise<CallToolResult>;
    const [res] = await Promise.all([held, bobDecides(sku, 'approve', 200)]);
    expect(res.isError, text(res)).toBeFalsy();
    expect(res.structuredContent).toMatchObject({
      status: 'executed',
      decidedBy: 'bob',
      result: { service: 'dynamodb', action: 'PutItem' },
    });
  }, 60_000);
});

describe('?wait=N on the REST API', () => {
  it('POST …/sql?wait=20 approved in time answers the executed request', async () => {
    const sql = uniqueWrite();
    const submit = twin.api('POST', '/v1/targets/demo/sql?wait=20', { token: alice, body: { sql } });
    const [res, id] = await Promise.all([submit, bobDecides(sql, 'approve', 500)]);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ requestId: id, status: 'executed', decidedBy: 'bob', rowCount: 1 });
    expect(ran(sql)).toBe(1);
  }, 60_000);

  it('POST …/sql?wait=1 not decided in time is the usual 202', async () => {
    const sql = uniqueWrite();
    const res = await twin.api('POST', '/v1/targets/demo/sql?wait=1', { token: alice, body: { sql } });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({
      status: 'pending_approval',
      links: { self: expect.stringContaining('/v1/requests/') },
    });
  });

  it('GET /v1/requests/{id}?wait=20 holds until bob decides', async () => {
    const sql = uniqueWrite();
    const submitted = await twin.api('POST', '/v1/targets/demo/sql', { token: alice, body: { sql } });
    expect(submitted.status).toBe(202);
    const id = submitted.body.requestId as string;
    const get = twin.api('GET', `/v1/requests/${id}?wait=20`, { token: alice });
    const [res] = await Promise.all([get, bobDecides(sql, 'approve', 500)]);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ requestId: id, status: 'executed' });
  }, 60_000);

  it('refuses a bad wait with 400 naming it, before anything is recorded', async () => {
    for (const wait of ['26', 'abc', '-1', '1.5', '1e1']) {
      const sql = uniqueWrite();
      const res = await twin.api('POST', `/v1/targets/demo/sql?wait=${wait}`, {
        token: alice,
        body: { sql },
      });
      expect(res.status, wait).toBe(400);
      expect(res.body.error.message).toMatch(/^wait must be a whole number of seconds from 0 to 25/);
      expect(twin.outbox.some((m) => String(m.text).includes(sql))).toBe(false);
    }
    const submitted = await twin.api('POST', '/v1/targets/demo/sql', {
      token: alice,
      body: { sql: uniqueWrite() },
    });
    const bad = await twin.api('GET', `/v1/requests/${submitted.body.requestId}?wait=99`, { token: alice });
    expect(bad.status).toBe(400);
  });

  it('nobody can wait on a request they may not see: 404 at once, as without wait', async () => {
    const submitted = await twin.api('POST', '/v1/targets/demo/sql', {
      token: alice,
      body: { sql: uniqueWrite() },
    });
    const res = await twin.api('GET', `/v1/requests/${submitted.body.requestId}?wait=20`, { token: carol });
    expect(res.status).toBe(404);
  });
});

/**
 * Every Warden MCP tool, in every outcome it has (executed, pending approval, denied, error), called
 * through the MCP TypeScript SDK's own client — the client Claude Code, VS Code and the Inspector
 * build on. The client validates each result's `structuredContent` against the tool's advertised
 * `outputSchema` (JSON Schema, `additionalProperties: false`) and throws on any mismatch, so a
 * single field the schema does not allow fails this file. Upstream tools (`everything__*`) are
 * called too: their results must pass the same client.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_AWS_TABLE_NAME } from '../../lib/local/aws-enforcer.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';
import { waitFor } from '../support/wait.js';

let twin: TestTwin;
const tokens: Record<string, string> = {};
const clients: Client[] = [];
let tools: Tool[] = [];
/** Every (tool, outcome) this file saw, checked for coverage at the end. */
const seen = new Set<string>();

/** A client that has listed the tools: from then on it checks every result against its schema. */
async function client(user: string): Promise<Client> {
  const c = new Client({ name: 'warden-schema-test', version: '1.0.0' });
  await c.connect(
    new StreamableHTTPClientTransport(new URL(`${twin.url}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${tokens[user]}` } },
    }),
  );
  clients.push(c);
  tools = (await c.listTools()).tools;
  return c;
}

type Outcome = 'executed' | 'pending' | 'denied' | 'error';

/** Calls a tool; the SDK client throws if the structured content breaks the output schema. */
async function callAs(
  user: string,
  name: string,
  args: Record<string, unknown>,
  outcome: Outcome,
): Promise<CallToolResult> {
  const c = await client(user);
  const result = (await c.callTool({ name, arguments: args })) as CallToolResult;
  const text = result.content.map((p) => (p.type === 'text' ? p.text : '')).join('\n');
  if (outcome === 'executed') expect(result.isError, `${name}: ${text}`).toBeFalsy();
  else expect(result.isError, `${name}: ${text}`).toBe(true);
  if (outcome === 'pending') expect(text).toMatch(/approval required|waiting for/);
  if (outcome === 'denied') expect(text).toMatch(/^denied/);
  const tool = tools.find((t) => t.name === name);
  if (tool?.outputSchema && result.structuredContent === undefined) {
    // Only an error may come without structured content.
    expect(result.isError, name).toBe(true);
  }
  seen.add(`${name}:${outcome}`);
  return result;
}

const decide = (id: string, decision: 'approve' | 'deny') =>
  twin.api('POST', `/v1/approvals/${id}/decision`, { token: tokens.bob, body: { decision } });

async function settled(id: string): Promise<Record<string, any>> {
  return waitFor(async () => {
    const r = await twin.api('GET', `/v1/requests/${id}`, { token: tokens.alice });
    return ['executed', 'failed', 'denied', 'expired'].includes(r.body.status) ? r.body : undefined;
  }, 30_000);
}

beforeAll(async () => {
  twin = await startTestTwin({ upstreamMcp: 'everything' });
  for (const u of ['alice', 'bob', 'carol', 'dave', 'agent-demo']) tokens[u] = await twin.token(u);
}, 180_000);

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await twin?.close();
});

describe('output schemas', () => {
  it('every Warden tool advertises a closed output schema the SDK client will enforce', async () => {
    await client('alice');
    const own = tools.filter((t) => !t.name.includes('__'));
    expect(own.map((t) => t.name).sort()).toEqual(
      [
        'call_aws',
        'describe_target',
        'explain',
        'get_request',
        'list_targets',
        'request_access',
        'run_sql',
      ].sort(),
    );
    for (const t of own) {
      expect(t.outputSchema, t.name).toMatchObject({ type: 'object', additionalProperties: false });
    }
    // The upstream's tools are listed too, without an output schema Warden could not keep.
    expect(tools.some((t) => t.name === 'everything__echo')).toBe(true);
  });

  it('list_targets: with targets and with none', async () => {
    const some = await callAs('alice', 'list_targets', {}, 'executed');
    expect((some.structuredContent as any).targets.map((t: any) => t.name)).toEqual(
      expect.arrayContaining(['demo', 'demo-aws', 'everything']),
    );
    const none = await callAs('dave', 'list_targets', {}, 'executed');
    expect(none.structuredContent).toEqual({ targets: [] });
  });

  it('describe_target: a SQL, an AWS and an MCP target; an unknown one', async () => {
    const sql = await callAs('carol', 'describe_target', { target: 'demo' }, 'executed');
    expect((sql.structuredContent as any).tables.length).toBeGreaterThan(0);
    const aws = await callAs('alice', 'describe_target', { target: 'demo-aws' }, 'executed');
    expect((aws.structuredContent as any).services.length).toBeGreaterThan(0);
    // An upstream MCP server is described by tools/list: a tool error says so.
    const mcp = await callAs('alice', 'describe_target', { target: 'everything' }, 'error');
    expect(JSON.stringify(mcp.content)).toContain('everything__');
    await callAs('alice', 'describe_target', { target: 'nope' }, 'error');
  });

  it('run_sql: executed masked and unmasked, pending, denied, bad SQL, bad arguments', async () => {
    const sql = 'SELECT id, email, ssn, card_number FROM customers ORDER BY id LIMIT 3';
    const masked = await callAs('carol', 'run_sql', { target: 'demo', sql }, 'executed');
    expect((masked.structuredContent as any).result.masking.byType.SSN).toBe(3);
    const clear = await callAs('bob', 'run_sql', { target: 'demo', sql }, 'executed');
    expect((clear.structuredContent as any).result.masking.unmasked).toBe(true);
    const pending = await callAs(
      'alice',
      'run_sql',
      { target: 'demo', sql: "UPDATE orders SET status = 'x' WHERE id = 21", justification: 'schema test' },
      'pending',
    );
    expect(pending.structuredContent).toMatchObject({ status: 'pending_approval' });
    await callAs('alice', 'run_sql', { target: 'demo', sql: 'GRANT ALL ON customers TO PUBLIC' }, 'denied');
    await callAs('alice', 'run_sql', { target: 'demo', sql: 'SELEC 1' }, 'error');
    await callAs('alice', 'run_sql', { target: 'demo', sql: 'SELECT * FROM no_such_table' }, 'error');
    await callAs('alice', 'run_sql', { target: 'demo' }, 'error');
  });

  it('call_aws: executed, pending, denied, unknown target', async () => {
    const read = await callAs(
      'agent-demo',
      'call_aws',
      {
        target: 'demo-aws',
        service: 'dynamodb',
        action: 'DescribeTable',
        input: { TableName: DEMO_AWS_TABLE_NAME },
      },
      'executed',
    );
    expect((read.structuredContent as any).result.output.Table.TableName).toBe(DEMO_AWS_TABLE_NAME);
    await callAs(
      'agent-demo',
      'call_aws',
      {
        target: 'demo-aws',
        service: 'dynamodb',
        action: 'PutItem',
        input: { TableName: DEMO_AWS_TABLE_NAME, Item: { sku: { S: 'SCHEMA-1' }, name: { S: 'x' } } },
      },
      'pending',
    );
    await callAs(
      // carol (support) may read the AWS target but not write to it.
      'carol',
      'call_aws',
      {
        target: 'demo-aws',
        service: 'dynamodb',
        action: 'PutItem',
        input: { TableName: DEMO_AWS_TABLE_NAME, Item: { sku: { S: 'SCHEMA-2' } } },
      },
      'denied',
    );
    await callAs('alice', 'call_aws', { target: 'demo', service: 'dynamodb', action: 'ListTables' }, 'error');
  });

  it('explain: SQL allowed, needing approval and denied; an AWS call; neither', async () => {
    const read = await callAs('alice', 'explain', { target: 'demo', sql: 'SELECT 1' }, 'executed');
    expect(read.structuredContent).toMatchObject({ decision: { outcome: 'allow' }, grants: [] });
    await callAs('alice', 'explain', { target: 'demo', sql: 'DELETE FROM orders WHERE id = 1' }, 'executed');
    const denied = await callAs(
      'alice',
      'explain',
      { target: 'demo', sql: 'GRANT ALL ON t TO PUBLIC' },
      'executed',
    );
    expect(denied.structuredContent).toMatchObject({ decision: { outcome: 'deny' }, execution: null });
    const aws = await callAs(
      'alice',
      'explain',
      {
        target: 'demo-aws',
        service: 'dynamodb',
        action: 'PutItem',
        input: { TableName: DEMO_AWS_TABLE_NAME },
      },
      'executed',
    );
    expect(aws.structuredContent).toMatchObject({
      classification: { kind: 'aws', iamAction: 'dynamodb:PutItem' },
    });
    await callAs('alice', 'explain', { target: 'demo' }, 'error');
  });

  it('request_access: filed, denied', async () => {
    const filed = await callAs(
      'alice',
      'request_access',
      { target: 'demo', level: 'write', duration: '30m', justification: 'backfill' },
      'executed',
    );
    expect(filed.structuredContent).toMatchObject({
      status: 'pending_approval',
      grant: { durationSeconds: 1800 },
    });
    await callAs(
      'carol',
      'request_access',
      { target: 'demo', level: 'ddl', duration: '1h', justification: 'x' },
      'denied',
    );
  });

  it('get_request: pending, executed, denied, failed, unknown — the same request view as REST', async () => {
    const write = async (id: number) => {
      const r = await callAs(
        'alice',
        'run_sql',
        {
          target: 'demo',
          sql: `UPDATE orders SET status = 'shipped' WHERE id = ${id}`,
          justification: 'ticket',
        },
        'pending',
      );
      return (r.structuredContent as any).requestId as string;
    };
    const [toRun, toDeny] = [await write(31), await write(32)];
    // A statement that parses and is a write, but fails in the database once approved.
    const failing = (
      (
        await callAs(
          'alice',
          'run_sql',
          { target: 'demo', sql: 'UPDATE no_such_table SET x = 1', justification: 'will fail' },
          'pending',
        )
      ).structuredContent as any
    ).requestId as string;

    const pending = await callAs('alice', 'get_request', { requestId: toRun }, 'executed');
    expect(pending.structuredContent).toMatchObject({ status: 'pending_approval' });

    expect((await decide(toRun, 'approve')).status).toBe(200);
    expect((await decide(toDeny, 'deny')).status).toBe(200);
    expect((await decide(failing, 'approve')).status).toBe(200);
    expect((await settled(toRun)).status).toBe('executed');
    expect((await settled(toDeny)).status).toBe('denied');
    expect((await settled(failing)).status).toBe('failed');

    for (const id of [toRun, toDeny, failing]) {
      const got = await callAs('alice', 'get_request', { requestId: id }, 'executed');
      // Nothing the REST view has is dropped from the MCP one, and nothing is added.
      const rest = await twin.api('GET', `/v1/requests/${id}`, { token: tokens.alice });
      expect(got.structuredContent).toEqual(rest.body);
    }
    await callAs('alice', 'get_request', { requestId: 'r_doesnotexist000' }, 'error');
    await callAs('alice', 'get_request', { requestId: 'nope' }, 'error');
  });

  it('upstream tools: executed, with structured content; pending; denied', async () => {
    const echo = await callAs('alice', 'everything__echo', { message: 'hello' }, 'executed');
    expect(JSON.stringify(echo.content)).toContain('hello');
    await callAs('alice', 'everything__get-structured-content', { location: 'Chicago' }, 'executed');
    const pending = await callAs('alice', 'everything__toggle-simulated-logging', {}, 'pending');
    expect(pending.structuredContent).toMatchObject({ status: 'pending_approval' });
    // carol (support) may read but not change anything upstream.
    await callAs('carol', 'everything__toggle-simulated-logging', {}, 'denied');
  });

  it('covered every tool in every outcome it has', () => {
    const expected = [
      'list_targets:executed',
      'describe_target:executed',
      'describe_target:error',
      'run_sql:executed',
      'run_sql:pending',
      'run_sql:denied',
      'run_sql:error',
      'call_aws:executed',
      'call_aws:pending',
      'call_aws:denied',
      'call_aws:error',
      'explain:executed',
      'explain:error',
      'request_access:executed',
      'request_access:denied',
      'get_request:executed',
      'get_request:error',
    ];
    for (const key of expected) expect(seen, key).toContain(key);
  });
});

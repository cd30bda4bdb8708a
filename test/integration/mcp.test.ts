/**
 * The MCP endpoint on the local twin, driven by the MCP TypeScript SDK's own client over
 * streamable HTTP: tool listing, every tool, masking, denial, approval, the audit session, and
 * the MCP authorization flow's discovery (401 → protected-resource metadata → the IdP).
 */
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import {
  discoverAuthorizationServerMetadata,
  discoverOAuthProtectedResourceMetadata,
  extractWWWAuthenticateParams,
} from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_AWS_TABLE_NAME } from '../../lib/local/aws-enforcer.js';
import { localDynamoClient } from '../../lib/local/dynamodb.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';
import { submittedSql } from '../../lib/local/invariants.js';

let twin: TestTwin;
let alice: string;
let carol: string;
let bob: string;
let dave: string;
let agent: string;
const clients: Client[] = [];

async function connect(token: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: 'warden-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${twin.url}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  await client.connect(transport);
  clients.push(client);
  return { client, transport };
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

function text(result: CallToolResult): string {
  return result.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
}

async function storedRecords(): Promise<Record<string, any>[]> {
  const ddb = localDynamoClient(twin.dynamoEndpoint);
  const out = await ddb.send(new ScanCommand({ TableName: twin.tableNames.Requests }));
  return (out.Items ?? []).map((i) => unmarshall(i));
}

beforeAll(async () => {
  twin = await startTestTwin();
  [alice, carol, bob, dave, agent] = await Promise.all(
    ['alice', 'carol', 'bob', 'dave', 'agent-demo'].map((u) => twin.token(u)),
  );
}, 120_000);

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await twin?.close();
});

describe('mcp tools', () => {
  it('lists every tool with a title, annotations, a description and structured output schemas', async () => {
    const { client } = await connect(alice);
    const { tools } = await client.listTools();
    const byName = new Map(tools.map((t) => [t.name, t]));
    expect([...byName.keys()].sort()).toEqual(
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
    for (const t of tools) {
      expect(t.title, t.name).toBeTruthy();
      expect(t.description!.length, t.name).toBeGreaterThan(80);
      expect(t.annotations, t.name).toBeDefined();
    }
    expect(byName.get('list_targets')!.annotations).toMatchObject({
      readOnlyHint: true,
      idempotentHint: true,
    });
    expect(byName.get('describe_target')!.annotations).toMatchObject({ readOnlyHint: true });
    expect(byName.get('explain')!.annotations).toMatchObject({ readOnlyHint: true });
    expect(byName.get('get_request')!.annotations).toMatchObject({ readOnlyHint: true });
    expect(byName.get('run_sql')!.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    expect(byName.get('call_aws')!.annotations).toMatchObject({ destructiveHint: true, openWorldHint: true });
    expect(byName.get('run_sql')!.inputSchema.required).toEqual(expect.arrayContaining(['target', 'sql']));
    expect(byName.get('run_sql')!.outputSchema?.properties).toHaveProperty('requestId');
    expect(byName.get('describe_target')!.outputSchema?.properties).toHaveProperty('tables');
    // The server tells the model how Warden behaves before any call.
    expect(client.getInstructions()).toMatch(/approval/);
  });

  it('list_targets shows only the targets the caller may use', async () => {
    const asAlice = await call((await connect(alice)).client, 'list_targets', {});
    expect(asAlice.isError).toBeFalsy();
    expect(asAlice.structuredContent).toEqual({
      targets: expect.arrayContaining([{ name: 'demo', kind: 'sql', description: expect.any(String) }]),
    });
    // dave is an auditor: no permit of any kind on `demo`, so it is not revealed to him.
    const asDave = await call((await connect(dave)).client, 'list_targets', {});
    expect(asDave.structuredContent).toEqual({ targets: [] });
  });

  it('describe_target lists tables and columns and marks the columns masked for this caller', async () => {
    const asCarol = await call((await connect(carol)).client, 'describe_target', { target: 'demo' });
    expect(asCarol.isError).toBeFalsy();
    const tables = (asCarol.structuredContent as any).tables as any[];
    const customers = tables.find((t) => t.name === 'customers');
    expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(['customers', 'orders']));
    const col = (name: string) => customers.columns.find((c: any) => c.name === name);
    expect(col('ssn')).toMatchObject({ masked: true, strategy: 'redact' });
    expect(col('card_number')).toMatchObject({ masked: true, strategy: 'partial' });
    expect(col('id')).toMatchObject({ masked: false });
    expect(col('id').type).toMatch(/integer/);

    // bob (dba) may view `demo` unmasked: no column is masked for him.
    const asBob = await call((await connect(bob)).client, 'describe_target', { target: 'demo' });
    const bobCustomers = ((asBob.structuredContent as any).tables as any[]).find(
      (t) => t.name === 'customers',
    );
    expect(bobCustomers.columns.every((c: any) => c.masked === false)).toBe(true);
  });

  it('run_sql returns a masked result for carol and the clear result for bob', async () => {
    const sql = 'SELECT id, email, ssn, card_number FROM customers ORDER BY id LIMIT 2';
    const carolRes = await call((await connect(carol)).client, 'run_sql', { target: 'demo', sql });
    expect(carolRes.isError).toBeFalsy();
    const carolOut = carolRes.structuredContent as any;
    expect(carolOut.status).toBe('executed');
    expect(carolOut.requestId).toMatch(/^r_/);
    expect(carolOut.decision).toMatchObject({ outcome: 'allow', action: 'sql:read' });
    expect(carolOut.result.rows).toHaveLength(2);
    expect(carolOut.result.rows[0].ssn).toBe('[SSN]');
    expect(carolOut.result.rows[0].email).not.toMatch(/^[^*[]+@/);
    expect(carolOut.result.masking.byType).toMatchObject({ SSN: 2, CARD: 2, EMAIL: 2 });
    expect(text(carolRes)).toContain(carolOut.requestId);

    const bobRes = await call((await connect(bob)).client, 'run_sql', { target: 'demo', sql });
    const bobOut = bobRes.structuredContent as any;
    expect(bobOut.result.masking).toEqual({ byType: {}, unmasked: true });
    expect(bobOut.result.rows[0].ssn).toMatch(/^\d{3}-\d{2}-\d{4}$/);
    expect(bobOut.result.rows[0].email).toMatch(/^[^*]+@example\./);
  });

  it('run_sql takes named parameters', async () => {
    const res = await call((await connect(agent)).client, 'run_sql', {
      target: 'demo',
      sql: 'SELECT id FROM customers WHERE id = :id',
      parameters: [{ name: 'id', value: 7 }],
      justification: 'look up one customer',
    });
    expect((res.structuredContent as any).result.rows).toEqual([{ id: 7 }]);
  });

  it('a policy denial is a tool error naming the policy and the recorded request, not a protocol error', async () => {
    const sql = 'GRANT ALL ON customers TO PUBLIC';
    const before = twin.statementLog.filter((s) => submittedSql(s.sql) === sql).length;
    const res = await call((await connect(alice)).client, 'run_sql', { target: 'demo', sql });
    expect(res.isError).toBe(true);
    expect(text(res)).toMatch(
      /^denied \(request r_[\w-]+, recorded\): sql:privilege on target "demo" is forbidden by policy never-privilege-or-admin/,
    );
    expect(text(res)).toMatch(/do not retry/i);
    expect(twin.statementLog.filter((s) => submittedSql(s.sql) === sql).length).toBe(before);
  });

  it('bad SQL is a tool error telling the model to fix the statement', async () => {
    const res = await call((await connect(alice)).client, 'run_sql', {
      target: 'demo',
      sql: 'SELEC * FROM customers',
    });
    expect(res.isError).toBe(true);
    expect(text(res)).toMatch(/^sql parse error: .*Fix the statement/s);
  });

  it('an unknown target is a tool error pointing at list_targets', async () => {
    const res = await call((await connect(alice)).client, 'run_sql', { target: 'nope', sql: 'SELECT 1' });
    expect(res.isError).toBe(true);
    expect(text(res)).toMatch(/unknown target "nope".*list_targets/s);
  });

  it('explain classifies and decides without running anything', async () => {
    const sql = 'DELETE FROM orders WHERE id = 3';
    const res = await call((await connect(alice)).client, 'explain', { target: 'demo', sql });
    expect(res.isError).toBeFalsy();
    expect(res.structuredContent).toMatchObject({
      target: 'demo',
      classification: { class: 'write' },
      decision: { outcome: 'approval_required', action: 'sql:write' },
      execution: { accessLevel: 'write', secret: 'read-write database user' },
    });
    expect(text(res)).toMatch(/Nothing was run/);
    expect(twin.statementLog.some((s) => submittedSql(s.sql) === sql)).toBe(false);
    expect((await storedRecords()).some((r) => r.operation?.sql === sql)).toBe(false);
  });

  it('call_aws runs an allowed AWS read through the target role and returns its output', async () => {
    const { client } = await connect(agent);
    const res = await call(client, 'call_aws', {
      target: 'demo-aws',
      service: 'dynamodb',
      action: 'DescribeTable',
      input: { TableName: DEMO_AWS_TABLE_NAME },
      justification: 'check the inventory table',
    });
    expect(res.isError).toBeFalsy();
    expect(res.structuredContent).toMatchObject({
      status: 'executed',
      decision: { outcome: 'allow', action: 'aws:read' },
      result: { service: 'dynamodb', action: 'DescribeTable', region: 'us-east-1' },
    });
    expect((res.structuredContent as any).result.output.Table.TableName).toBe(DEMO_AWS_TABLE_NAME);
  });

  it('call_aws: a write waits for approval and an unknown target is a tool error', async () => {
    const { client } = await connect(agent);
    const put = await call(client, 'call_aws', {
      target: 'demo-aws',
      service: 'dynamodb',
      action: 'PutItem',
      input: { TableName: DEMO_AWS_TABLE_NAME, Item: { sku: { S: 'MCP-1' }, name: { S: 'Gadget' } } },
    });
    expect(put.isError).toBe(true);
    expect(text(put)).toMatch(/^approval required: request r_[\w-]+ is waiting for the dba group/);
    expect(put.structuredContent).toMatchObject({
      status: 'pending_approval',
      decision: { outcome: 'approval_required', action: 'aws:write' },
    });
    const sqlTarget = await call(client, 'call_aws', {
      target: 'demo',
      service: 'dynamodb',
      action: 'ListTables',
      input: {},
    });
    expect(sqlTarget.isError).toBe(true);
    expect(text(sqlTarget)).toMatch(/unknown target "demo"/);
  });

  it('explain takes an AWS call too, naming the IAM action and the decision', async () => {
    const res = await call((await connect(alice)).client, 'explain', {
      target: 'demo-aws',
      service: 'dynamodb',
      action: 'PutItem',
      input: { TableName: DEMO_AWS_TABLE_NAME, Item: {} },
    });
    expect(res.isError).toBeFalsy();
    expect(res.structuredContent).toMatchObject({
      target: 'demo-aws',
      classification: { iamAction: 'dynamodb:PutItem' },
      decision: { outcome: 'approval_required', action: 'aws:write' },
    });
  });

  it('request_access files a time-boxed grant request that get_request follows', async () => {
    const { client } = await connect(alice);
    const res = await call(client, 'request_access', {
      target: 'demo',
      level: 'write',
      duration: '30m',
      justification: 'backfill order statuses',
    });
    // Filing the request is what the tool was asked to do: not an error, but nothing is granted yet.
    expect(res.isError).toBeFalsy();
    expect(text(res)).toMatch(
      /^access request r_[\w-]+ for sql:write on "demo" \(1800 s\) is waiting for the dba group/,
    );
    const out = res.structuredContent as any;
    expect(out).toMatchObject({
      status: 'pending_approval',
      grant: { target: 'demo', action: 'sql:write', durationSeconds: 1800 },
      approval: { approverGroups: ['dba'] },
    });
    const got = await call(client, 'get_request', { requestId: out.requestId });
    expect(got.structuredContent).toMatchObject({
      status: 'pending_approval',
      operation: { kind: 'access', level: 'write', durationSeconds: 1800 },
    });
  });

  it('request_access beyond what policy permits is denied as a tool error', async () => {
    const res = await call((await connect(carol)).client, 'request_access', {
      target: 'demo',
      level: 'ddl',
      duration: '1h',
      justification: 'add an index',
    });
    expect(res.isError).toBe(true);
    expect(text(res)).toMatch(/^denied \(request r_[\w-]+, recorded\): request_access/);
  });

  it('arguments that break the input schema are a tool error, not a crash', async () => {
    const res = await call((await connect(alice)).client, 'get_request', { requestId: 'nope' });
    expect(res.isError).toBe(true);
    expect(text(res)).toMatch(/request id looks like r_/);
  });
});

describe('approval through mcp', () => {
  const sql = "UPDATE orders SET status = 'shipped' WHERE id = 11";
  let requestId: string;

  it('a write waits for approval: the tool error names the request, the approvers and get_request', async () => {
    const { client } = await connect(alice);
    const res = await call(client, 'run_sql', { target: 'demo', sql, justification: 'customer called' });
    expect(res.isError).toBe(true);
    expect(text(res)).toMatch(
      /^approval required: request r_[\w-]+ is waiting for the dba group.*Nothing has run yet.*call get_request with this id/s,
    );
    const out = res.structuredContent as any;
    expect(out).toMatchObject({
      status: 'pending_approval',
      decision: { outcome: 'approval_required', action: 'sql:write' },
      approval: { approverGroups: ['dba'], requiredApprovals: 1 },
    });
    expect(out.approval.review).toBe(`${twin.url}/approve/${out.requestId}`);
    requestId = out.requestId;
    expect(twin.statementLog.some((s) => submittedSql(s.sql) === sql)).toBe(false);

    const got = await call(client, 'get_request', { requestId });
    expect(got.isError).toBeFalsy();
    expect(got.structuredContent).toMatchObject({ requestId, status: 'pending_approval', target: 'demo' });
    expect(text(got)).toMatch(/still waiting for approval/);
  });

  it('get_request shows the request approved by bob and then executed', async (ctx) => {
    const decided = await twin.api('POST', `/v1/approvals/${requestId}/decision`, {
      token: bob,
      body: { decision: 'approve', comment: 'ok' },
    });
    // The approvers' API is built in another area; without it this step cannot run yet.
    if (decided.status === 404 && decided.body?.error?.message?.startsWith('no route')) ctx.skip();
    expect(decided.status).toBe(200);
    const { client } = await connect(alice);
    let view: any;
    for (let i = 0; i < 50; i++) {
      view = (await call(client, 'get_request', { requestId })).structuredContent;
      if (view.status === 'executed' || view.status === 'failed') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(view).toMatchObject({ status: 'executed', decidedBy: 'bob' });
    expect(twin.statementLog.filter((s) => submittedSql(s.sql) === sql)).toHaveLength(1);
  });
});

describe('mcp audit', () => {
  it('records every tool call like a REST call, one session per client conversation', async () => {
    const first = await connect(agent);
    const second = await connect(agent);
    // Warden hands out a session id at initialize; the SDK client sends it back on every call.
    expect(first.transport.sessionId).toMatch(/^w1\.[\w-]{22}\.[\w-]{43}$/);
    expect(second.transport.sessionId).not.toBe(first.transport.sessionId);
    const a1 = await call(first.client, 'run_sql', { target: 'demo', sql: 'SELECT 1 AS one' });
    const a2 = await call(first.client, 'run_sql', { target: 'demo', sql: 'SELECT 2 AS two' });
    const b1 = await call(second.client, 'run_sql', { target: 'demo', sql: 'SELECT 3 AS three' });
    const ids = [a1, a2, b1].map((r) => (r.structuredContent as any).requestId as string);
    const records = await storedRecords();
    const rec = (id: string) => records.find((r) => r.id === id)!;
    expect(rec(ids[0])).toMatchObject({
      status: 'executed',
      principalName: 'agent-demo',
      principalType: 'Agent',
    });
    expect(rec(ids[0]).sessionId).toMatch(/^m_[\w-]{22}$/);
    expect(rec(ids[1]).sessionId).toBe(rec(ids[0]).sessionId);
    expect(rec(ids[2]).sessionId).not.toBe(rec(ids[0]).sessionId);
  });

  it('never stores the client token', async () => {
    const records = JSON.stringify(await storedRecords());
    for (const token of [alice, carol, bob, agent]) expect(records).not.toContain(token);
  });
});

describe('mcp over http', () => {
  const post = (headers: Record<string, string>, body?: unknown) =>
    fetch(`${twin.url}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        ...headers,
      },
      body: JSON.stringify(body ?? { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    });

  it('answers 401 without a token, pointing at the metadata of exactly the resource called (RFC 9728 §3.3)', async () => {
    const called = `${twin.url}/mcp`;
    const res = await post({});
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
    // Parsed the way the SDK's client does, then checked as a strict client must: the document the
    // challenge names has to be about the URL that was called, or the client refuses it.
    const params = extractWWWAuthenticateParams(res);
    expect(params.resourceMetadataUrl?.href).toBe(`${twin.url}/.well-known/oauth-protected-resource/mcp`);
    expect(params.scope).toBe('openid warden');
    const metaRes = await fetch(params.resourceMetadataUrl!);
    expect(metaRes.status).toBe(200);
    const meta = (await metaRes.json()) as Record<string, unknown>;
    expect(meta.resource).toBe(called);
    expect(meta).toEqual({
      resource: called,
      authorization_servers: [twin.issuer],
      bearer_methods_supported: ['header'],
      scopes_supported: ['openid', 'warden'],
      resource_name: 'Warden',
      // Warden's extension: the public client `warden login` signs in with (docs/cli.md).
      warden_cli_client_id: 'warden-cli-login',
    });
    // Every scope the challenge asks for is one the resource supports.
    for (const s of params.scope!.split(' ')) expect(meta.scopes_supported).toContain(s);

    // The SDK's own discovery (path-suffixed first) lands on the same document.
    const discovered = await discoverOAuthProtectedResourceMetadata(called);
    expect(discovered.resource).toBe(called);
    const idp = await discoverAuthorizationServerMetadata(twin.issuer);
    expect(idp?.issuer).toBe(twin.issuer);
    expect(idp?.token_endpoint).toBe(`${twin.issuer}/token`);

    // The REST API's challenge names the origin's document, whose resource is the origin.
    const rest = await fetch(`${twin.url}/v1/targets`);
    expect(rest.status).toBe(401);
    const restParams = extractWWWAuthenticateParams(rest);
    expect(restParams.resourceMetadataUrl?.href).toBe(`${twin.url}/.well-known/oauth-protected-resource`);
    const root = (await (await fetch(restParams.resourceMetadataUrl!)).json()) as Record<string, unknown>;
    expect(root.resource).toBe(twin.url);
  });

  it('answers 401 invalid_token for a token that does not verify', async () => {
    const res = await post({ authorization: `Bearer ${alice.slice(0, -4)}AAAA` });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/error="invalid_token".*resource_metadata=/);
  });

  it('answers 405 to GET and DELETE: the endpoint is stateless', async () => {
    for (const method of ['GET', 'DELETE']) {
      const res = await fetch(`${twin.url}/mcp`, { method, headers: { authorization: `Bearer ${alice}` } });
      expect(res.status, method).toBe(405);
      expect(res.headers.get('allow')).toBe('POST');
    }
  });

  it('refuses a browser origin other than its own (DNS rebinding), before looking at the token', async () => {
    const evil = await post({ authorization: `Bearer ${alice}`, origin: 'https://evil.example' });
    expect(evil.status).toBe(403);
    expect(((await evil.json()) as any).error.code).toBe('forbidden');
    const own = await post({ authorization: `Bearer ${alice}`, origin: twin.url });
    expect(own.status).toBe(200);
    const body = (await own.json()) as any;
    expect(body.result.tools.length).toBe(7);
  });

  const rpc = (method: string, id = 1, params: Record<string, unknown> = {}) => ({
    jsonrpc: '2.0',
    id,
    method,
    params,
  });

  it('advertises only what a stateless server does: no tools/list_changed it could never send', async () => {
    const { client } = await connect(alice);
    expect(client.getServerCapabilities()?.tools).toEqual({ listChanged: false });
    expect(client.getServerCapabilities()).not.toHaveProperty('resources');
    expect(client.getServerCapabilities()).not.toHaveProperty('prompts');
  });

  it('refuses JSON-RPC batches for protocol versions that removed them, with a JSON-RPC error', async () => {
    const batch = [rpc('tools/list', 1), rpc('ping', 2)];
    for (const version of ['2025-06-18', '2025-11-25']) {
      const res = await post({ authorization: `Bearer ${alice}`, 'mcp-protocol-version': version }, batch);
      expect(res.status, version).toBe(400);
      const body = (await res.json()) as any;
      expect(body).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32600 } });
      expect(body.error.message).toMatch(
        /batches are not part of MCP protocol version .*removed in 2025-06-18/,
      );
    }
    // An initialize inside a batch asking for a version without batches is refused the same way.
    const init = rpc('initialize', 1, {
      protocolVersion: '2025-11-25',
      capabilities: {},
      clientInfo: { name: 'x', version: '1' },
    });
    const initBatch = await post({ authorization: `Bearer ${alice}` }, [init]);
    expect(initBatch.status).toBe(400);
    // 2025-03-26 had batches: still answered, one response per request.
    const old = await post({ authorization: `Bearer ${alice}`, 'mcp-protocol-version': '2025-03-26' }, batch);
    expect(old.status).toBe(200);
    const answers = (await old.json()) as any[];
    expect(answers.map((a) => a.id).sort()).toEqual([1, 2]);
  });

  it('answers 404 to an Mcp-Session-Id it never issued, issued to someone else, or tampered with', async () => {
    const { transport } = await connect(alice);
    const issued = transport.sessionId!;
    const withSession = (token: string, sid: string) =>
      post({ authorization: `Bearer ${token}`, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
    expect((await withSession(alice, issued)).status).toBe(200);

    const [, random, mac] = issued.split('.');
    const flipped = `${mac[0] === 'A' ? 'B' : 'A'}${mac.slice(1)}`;
    const forged = [
      'a-made-up-session',
      '00000000-0000-0000-0000-000000000000',
      `w1.${random}.${flipped}`,
      `w1.${'A'.repeat(22)}.${mac}`,
      `${issued}x`,
    ];
    for (const sid of forged) {
      const res = await withSession(alice, sid);
      expect(res.status, sid).toBe(404);
      expect(((await res.json()) as any).error.code).toBe(-32001);
    }
    // alice's id in bob's hands does not put bob's calls into alice's session.
    expect((await withSession(bob, issued)).status).toBe(404);
    // Unauthenticated is still 401 first: the session id is no credential.
    expect((await post({ 'mcp-session-id': issued })).status).toBe(401);
  });
});

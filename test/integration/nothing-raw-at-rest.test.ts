/**
 * Nothing raw at rest or in side channels, tried as a prompt-injected agent would: alice's agent
 * puts raw SSNs, card numbers and emails into SQL literals (formatted, and bare where only the
 * column says what they are), bound parameters, justifications, AWS call input and MCP tool
 * arguments; an approver's comment carries one too. Then everything Warden keeps or sends is
 * scanned for any of them: every item of every Warden table in the twin's DynamoDB, the session
 * trail and the requests as an auditor without `view_unmasked`, the approvals API and the approval
 * page, the notifications in the outbox, and every log line written meanwhile.
 *
 * And the other half: the approved statement still runs byte for byte (the Data API's own log),
 * the upstream receives the exact arguments, and the exact form reaches only the requester and
 * the eligible approvers, while the request waits.
 */
import { GetItemCommand, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { localDynamoClient } from '../../lib/local/dynamodb.js';
import { DEMO_AWS_TABLE_NAME } from '../../lib/local/aws-enforcer.js';
import { hostMcpServer, type UpstreamProcess } from '../../lib/local/upstream-mcp.js';
import { PageSession } from '../support/page-session.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';
import { waitFor } from '../support/wait.js';

const SSN = '583-05-0905';
const SSN_BARE = '583050905';
const CARD = '4111 1111 1111 1111';
const CARD_BARE = '4111111111111111';
const EMAIL = 'mallory.target@example.org';
/** Every raw value, and the forms a careless store would keep (bare digits, lower/upper case). */
const RAW = [SSN, SSN_BARE, CARD, CARD_BARE, EMAIL, 'mallory.target', EMAIL.toUpperCase()];

function rawIn(text: string): string[] {
  return RAW.filter((raw) => text.includes(raw));
}

const received: { tool: string; args: Record<string, unknown> }[] = [];

function upstreamFactory() {
  const server = new McpServer({ name: 'crm-upstream', version: '1.0.0' });
  server.registerTool(
    'search_contacts',
    {
      description: 'Search contacts',
      inputSchema: { query: z.string() },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async (args) => {
      received.push({ tool: 'search_contacts', args });
      return { content: [{ type: 'text', text: `no contact matches ${args.query}` }] };
    },
  );
  server.registerTool(
    'create_note',
    {
      description: 'Create a note on a contact',
      inputSchema: { contact: z.string(), note: z.string() },
      annotations: { readOnlyHint: false, destructiveHint: false },
    },
    async (args) => {
      received.push({ tool: 'create_note', args });
      return { content: [{ type: 'text', text: 'note created' }] };
    },
  );
  return { server };
}

const POLICY = String.raw`
@id("crm-read")
permit (principal, action == Action::"mcp:read", resource in Target::"crm")
when { principal in [Group::"engineers", Group::"agents", Group::"dba"] };

@id("crm-writes-need-approval")
permit (principal, action in [Action::"mcp:write", Action::"mcp:destructive"], resource in Target::"crm")
when { principal in [Group::"engineers", Group::"agents"] && context.approved };

@id("crm-dba-approves")
permit (principal in Group::"dba", action == Action::"approve", resource == Target::"crm");
`;

let upstream: UpstreamProcess;
let twin: TestTwin;
let alice: string;
let bob: string;
let carol: string;
let dave: string;
const logs: string[] = [];
const clients: Client[] = [];
const SESSION = 'attack-session-1';

const sql = (token: string, body: unknown) =>
  twin.api('POST', '/v1/targets/demo/sql', { token, body, headers: { 'x-warden-session': SESSION } });

const requestAs = async (token: string, id: string) =>
  (await twin.api('GET', `/v1/requests/${id}`, { token })).body as Record<string, any>;

async function settled(id: string): Promise<Record<string, any>> {
  return waitFor(async () => {
    const r = await requestAs(alice, id);
    return ['executed', 'failed', 'denied', 'expired'].includes(r.status) ? r : undefined;
  }, 30_000);
}

async function notified(id: string) {
  return waitFor(async () => twin.outbox.find((m) => m.requestId === id), 60_000);
}

async function approve(id: string, comment: string) {
  await notified(id);
  const vote = await twin.api('POST', `/v1/approvals/${id}/decision`, {
    token: bob,
    body: { decision: 'approve', comment },
  });
  expect(vote.status, JSON.stringify(vote.body)).toBe(200);
  return settled(id);
}

function text(result: CallToolResult): string {
  return result.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
}

beforeAll(async () => {
  // Every log line the handlers write in this process, as CloudWatch would receive it.
  const original = console.log.bind(console);
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    logs.push(args.map(String).join(' '));
    original(...args);
  });
  upstream = await hostMcpServer(upstreamFactory);
  twin = await startTestTwin({
    extraPolicies: [{ source: 'crm.cedar', text: POLICY }],
    upstreamMcp: {
      crm: {
        kind: 'mcp',
        description: 'CRM (test upstream)',
        url: upstream.url,
        listCacheSeconds: 0,
        approvals: { windowSeconds: 600, requiredApprovals: 1, approverGroups: ['dba'] },
      },
    },
  });
  [alice, bob, carol, dave] = await Promise.all(['alice', 'bob', 'carol', 'dave'].map((u) => twin.token(u)));
}, 180_000);

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await twin?.close();
  await upstream?.close();
  vi.restoreAllMocks();
});

/** Ids of what the attack left behind, for the scans below. */
const ids: Record<string, string> = {};
// Raw values written into a clear column: alice is masked, and the masked writer may not write
// a masked one (docs/masking.md), so an order's status carries them.
const EXACT_WRITE = `UPDATE orders SET status = 'refund for ${EMAIL}, ssn ${SSN}' WHERE id = 3`;

describe('a prompt-injected agent brings raw values in', () => {
  it('reads with raw literals (formatted, and bare against sensitive columns) and raw parameters', async () => {
    const literal = await sql(alice, {
      sql:
        `SELECT id FROM customers WHERE ssn = '${SSN_BARE}' OR email = '${EMAIL}' ` +
        `OR card_number = '${CARD}' /* for ${SSN} */`,
      justification: `customer ${EMAIL} called about card ${CARD}`,
    });
    expect(literal.status, JSON.stringify(literal.body)).toBe(200);
    ids.literal = literal.body.requestId;

    const params = await sql(alice, {
      sql: 'SELECT id FROM customers WHERE ssn = :s OR email = :e OR card_number = :c',
      parameters: [
        { name: 's', value: SSN_BARE },
        { name: 'e', value: EMAIL },
        { name: 'c', value: CARD_BARE },
      ],
      justification: `SSN ${SSN}`,
    });
    expect(params.status, JSON.stringify(params.body)).toBe(200);
    ids.params = params.body.requestId;

    // Refused and unparseable requests are kept too.
    const denied = await sql(carol, { sql: `DELETE FROM customers WHERE ssn = '${SSN_BARE}'` });
    expect(denied.status).toBe(403);
    ids.denied = denied.body.error.requestId;
    const garbled = await sql(alice, { sql: `SELEC ssn FROM customers WHERE ssn = '${SSN_BARE}'` });
    expect(garbled.status).toBe(400);
  });

  it('holds a write with raw values for approval: exact to the requester and approvers, masked to everyone else', async () => {
    const res = await sql(alice, { sql: EXACT_WRITE, justification: `fix for ${EMAIL}, card ${CARD}` });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const id = (ids.write = res.body.requestId as string);

    const mine = await requestAs(alice, id);
    expect(mine.operationForm).toBe('exact');
    expect(mine.operation.sql).toBe(EXACT_WRITE);
    expect(mine.justification).toBe(`fix for ${EMAIL}, card ${CARD}`);

    const audited = await requestAs(dave, id);
    expect(audited.operationForm).toBe('shown');
    expect(rawIn(JSON.stringify(audited))).toEqual([]);
    expect(audited.operation.sql).toContain('UPDATE orders SET status = ');

    const listed = await twin.api('GET', '/v1/approvals', { token: bob });
    const item = listed.body.approvals.find((a: { requestId: string }) => a.requestId === id);
    expect(item.form).toBe('exact');
    expect(item.statement).toBe(EXACT_WRITE);
    // carol may not approve: the request is not hers to see at all.
    expect((await twin.api('GET', '/v1/approvals', { token: carol })).body.approvals).toEqual([]);
    expect((await twin.api('GET', `/v1/requests/${id}`, { token: carol })).status).toBe(404);

    // The approval page: bob, who may approve it, reads exactly what will run.
    const page = new PageSession(twin.url);
    const signed = await page.signIn(`/approve/${id}`, 'bob');
    expect(signed.res.status).toBe(200);
    expect(signed.text).toContain('data-form="exact"');
    expect(signed.text).toContain(EMAIL);
    expect(signed.text).toContain(SSN);

    const message = await notified(id);
    expect(rawIn(JSON.stringify(message))).toEqual([]);
  });

  it('runs the approved write byte for byte, then keeps only the shown form', async () => {
    const id = ids.write;
    const before = twin.statementLog.filter((s) => s.sql === EXACT_WRITE).length;
    const done = await approve(id, `checked with ${EMAIL} on ${SSN}`);
    expect(done.status, JSON.stringify(done.error)).toBe('executed');
    expect(twin.statementLog.filter((s) => s.sql === EXACT_WRITE).length).toBe(before + 1);
    const row = await twin.db.query<{ status: string }>('SELECT status FROM orders WHERE id = 3');
    expect(row.rows[0]).toEqual({ status: `refund for ${EMAIL}, ssn ${SSN}` });

    // Decided: the sealed exact form is gone, and even the requester now sees the shown form.
    const after = await requestAs(alice, id);
    expect(after.operationForm).toBe('shown');
    expect(rawIn(JSON.stringify(after))).toEqual([]);
    const page = new PageSession(twin.url);
    const signed = await page.signIn(`/approve/${id}`, 'bob');
    expect(signed.text).toContain('data-form="shown"');
    expect(rawIn(signed.text)).toEqual([]);
  });

  it('holds an AWS write with raw input for approval and sends the exact input once approved', async () => {
    const put = {
      service: 'dynamodb',
      action: 'PutItem',
      input: {
        TableName: DEMO_AWS_TABLE_NAME,
        Item: {
          sku: { S: 'PII-1' },
          name: { S: `owner ${EMAIL}` },
          warehouse: { S: `ssn ${SSN}` },
          quantity: { N: '1' },
        },
      },
      justification: `card ${CARD}`,
    };
    const res = await twin.api('POST', '/v1/targets/demo-aws/aws', {
      token: alice,
      body: put,
      headers: { 'x-warden-session': SESSION },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    ids.aws = res.body.requestId;
    expect((await requestAs(alice, ids.aws)).operation.input).toEqual(put.input);
    expect(rawIn(JSON.stringify(await requestAs(dave, ids.aws)))).toEqual([]);
    const done = await approve(ids.aws, 'ok');
    expect(done.status, JSON.stringify(done.error)).toBe('executed');
    const stored = await localDynamoClient(twin.dynamoEndpoint).send(
      new ScanCommand({ TableName: DEMO_AWS_TABLE_NAME }),
    );
    const item = stored.Items?.map((i) => unmarshall(i)).find((i) => i.sku === 'PII-1');
    expect(item).toMatchObject({ name: `owner ${EMAIL}`, warehouse: `ssn ${SSN}` });
  });

  it('calls MCP tools with raw arguments: the record is masked, the upstream gets them exactly', async () => {
    const client = new Client({ name: 'attacker', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${twin.url}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${alice}` } },
      }),
    );
    clients.push(client);
    const read = (await client.callTool({
      name: 'crm__search_contacts',
      arguments: { query: `${EMAIL} ${SSN}` },
    })) as CallToolResult;
    expect(read.isError, text(read)).toBeFalsy();
    expect(rawIn(text(read))).toEqual([]); // the upstream echoed them: masked on the way back
    expect(received.at(-1)).toEqual({ tool: 'search_contacts', args: { query: `${EMAIL} ${SSN}` } });

    const args = { contact: EMAIL, note: `card ${CARD}, ssn ${SSN}` };
    const pending = (await client.callTool({ name: 'crm__create_note', arguments: args })) as CallToolResult;
    const id = /request (r_[A-Za-z0-9_-]+)/.exec(text(pending))?.[1];
    expect(id, text(pending)).toBeDefined();
    ids.mcp = id!;
    const mine = await requestAs(alice, ids.mcp);
    expect(mine.operationForm).toBe('exact');
    expect(JSON.parse(mine.operation.argumentsJson)).toEqual(args);
    expect(rawIn(JSON.stringify(await requestAs(dave, ids.mcp)))).toEqual([]);
    const done = await approve(ids.mcp, 'fine');
    expect(done.status, JSON.stringify(done.error)).toBe('executed');
    expect(received.at(-1)).toEqual({ tool: 'create_note', args });
  });
});

describe('the sealed exact form cannot be swapped', () => {
  it('runs nothing when the sealed statement was altered at rest, even once approved', async () => {
    const text = `UPDATE customers SET ssn = '${SSN}' WHERE id = 4`;
    const res = await sql(alice, { sql: text, justification: 'tamper probe' });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const id = res.body.requestId as string;
    await notified(id);
    // Someone with write access to the table flips a byte of the ciphertext.
    const client = localDynamoClient(twin.dynamoEndpoint);
    const table = twin.tableNames.Requests;
    const item = unmarshall(
      (await client.send(new GetItemCommand({ TableName: table, Key: marshall({ id }) }))).Item!,
    );
    expect(item.sealed).toBeDefined();
    // Sealed by KMS (the twin's), under the sealing key the functions were given.
    expect(item.sealed.keyId).toBe(process.env.SEAL_KEY_ID);
    expect(item.sealed.keyId).toMatch(/^arn:aws:kms:/);
    const data = Buffer.from(item.sealed.data, 'base64');
    data[0] ^= 1;
    item.sealed.data = data.toString('base64');
    await client.send(
      new PutItemCommand({ TableName: table, Item: marshall(item, { removeUndefinedValues: true }) }),
    );

    const done = await approve(id, 'ok');
    expect(done.status).toBe('failed');
    expect(done.error.code).toBe('sealed_statement_unreadable');
    expect(twin.statementLog.some((s) => s.sql.includes('WHERE id = 4') && s.sql.startsWith('UPDATE'))).toBe(
      false,
    );
  });
});

describe('a sealed exact form moved onto another request', () => {
  it('does not open there: its data key is bound to the request it was sealed for', async () => {
    const client = localDynamoClient(twin.dynamoEndpoint);
    const table = twin.tableNames.Requests;
    const read = async (id: string) =>
      unmarshall((await client.send(new GetItemCommand({ TableName: table, Key: marshall({ id }) }))).Item!);
    // The one an attacker wants run, and a harmless one an approver will approve; both carry a
    // value the shown form masks, so both are kept sealed.
    const wanted = await sql(alice, {
      sql: `UPDATE customers SET ssn = '${SSN}', email = 'mallory@example.com' WHERE id = 5`,
      justification: 'x',
    });
    const decoy = await sql(alice, {
      sql: `UPDATE customers SET email = 'decoy@example.com' WHERE id = 6`,
      justification: 'y',
    });
    expect(wanted.status, JSON.stringify(wanted.body)).toBe(202);
    expect(decoy.status, JSON.stringify(decoy.body)).toBe(202);
    await notified(wanted.body.requestId);
    await notified(decoy.body.requestId);
    const item = await read(decoy.body.requestId);
    expect(item.sealed).toBeDefined();
    item.sealed = (await read(wanted.body.requestId)).sealed;
    expect(item.sealed).toBeDefined();
    await client.send(
      new PutItemCommand({ TableName: table, Item: marshall(item, { removeUndefinedValues: true }) }),
    );
    const done = await approve(decoy.body.requestId, 'ok');
    expect(done.status).toBe('failed');
    expect(done.error.code).toBe('sealed_statement_unreadable');
    expect(twin.statementLog.some((s) => s.sql.includes('mallory@example.com'))).toBe(false);
    expect(twin.statementLog.some((s) => s.sql.includes('decoy@example.com'))).toBe(false);
    // The wanted one is denied, so nothing is left waiting with a sealed raw value.
    const no = await twin.api('POST', `/v1/approvals/${wanted.body.requestId}/decision`, {
      token: bob,
      body: { decision: 'deny', comment: 'no' },
    });
    expect(no.status, JSON.stringify(no.body)).toBe(200);
    expect((await settled(wanted.body.requestId)).status).toBe('denied');
  });
});

describe('then everything at rest and in side channels is scanned', () => {
  it('finds no raw value in any item of any Warden table', async () => {
    const client = localDynamoClient(twin.dynamoEndpoint);
    let items = 0;
    for (const [logical, table] of Object.entries(twin.tableNames)) {
      let start: Record<string, any> | undefined;
      do {
        const page = await client.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start }));
        for (const item of page.Items ?? []) {
          items++;
          const found = rawIn(JSON.stringify(unmarshall(item)));
          expect(found, `${logical}: ${JSON.stringify(unmarshall(item)).slice(0, 400)}`).toEqual([]);
        }
        start = page.LastEvaluatedKey;
      } while (start);
    }
    expect(items).toBeGreaterThan(10);
    // No decided request keeps a sealed exact form.
    const requests = await client.send(new ScanCommand({ TableName: twin.tableNames.Requests }));
    const sealed = (requests.Items ?? []).map((i) => unmarshall(i)).filter((r) => r.sealed);
    expect(sealed.map((r) => r.status)).toEqual([]);
  });

  it('shows an auditor without view_unmasked no raw value in the trail or any request', async () => {
    const sessions = await twin.api('GET', '/v1/sessions', { token: dave });
    expect(sessions.status).toBe(200);
    const list = (sessions.body.sessions ?? []) as { sessionId: string }[];
    // A client-named session is scoped to its principal (`c_<name>.<caller suffix>`).
    expect(list.some((s) => s.sessionId.startsWith(`c_${SESSION}.`))).toBe(true);
    for (const { sessionId } of list) {
      const events = await twin.api('GET', `/v1/sessions/${encodeURIComponent(sessionId)}`, { token: dave });
      expect(events.status).toBe(200);
      expect(rawIn(JSON.stringify(events.body)), sessionId).toEqual([]);
    }
    for (const [what, id] of Object.entries(ids)) {
      const view = await twin.api('GET', `/v1/requests/${id}`, { token: dave });
      expect(view.status, what).toBe(200);
      expect(rawIn(JSON.stringify(view.body)), what).toEqual([]);
    }
  });

  it('sends no raw value in any notification and writes none to the logs', async () => {
    expect(twin.outbox.length).toBeGreaterThan(0);
    expect(rawIn(JSON.stringify(twin.outbox))).toEqual([]);
    expect(logs.length).toBeGreaterThan(0);
    const leaking = logs.filter((l) => rawIn(l).length > 0);
    expect(leaking).toEqual([]);
  });
});

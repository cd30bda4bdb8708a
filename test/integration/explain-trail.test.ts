/**
 * Issue 13 item 3 for explain: explaining runs nothing and is not recorded, but a refused explain
 * (unparseable SQL, a body the schema refuses, a hidden or an unknown target, an unsupported AWS
 * call) leaves a `request_refused` event, over REST and over MCP, and a hidden target still answers
 * exactly like a missing one.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTwin, type TestTwin } from '../support/twin.js';

let twin: TestTwin;
let dave: string;

beforeAll(async () => {
  twin = await startTestTwin();
  dave = await twin.token('dave');
}, 120_000);

afterAll(async () => {
  await twin?.close();
});

async function sessionsOf(who: string): Promise<any[]> {
  const res = await twin.api('GET', `/v1/sessions?principal=${who}`, { token: dave });
  expect(res.status).toBe(200);
  const all: any[] = [];
  for (const s of res.body.sessions as any[]) {
    all.push(...(await twin.api('GET', `/v1/sessions/${s.sessionId}`, { token: dave })).body.events);
  }
  return all;
}

describe('explain over REST', () => {
  it('records refused explains, not allowed ones, and answers a hidden target like a missing one', async () => {
    const alice = await twin.token('alice');
    const headers = { 'x-warden-session': 'explain-probe' };
    const ask = (token: string, target: string, body: unknown) =>
      twin.api('POST', `/v1/targets/${target}/explain`, { token, headers, body });

    expect((await ask(alice, 'demo', { sql: 'SELECT 1' })).status).toBe(200);
    const parse = await ask(alice, 'demo', { sql: "SELEC email FROM customers WHERE ssn = '123-45-6789'" });
    expect(parse.status).toBe(400);
    expect((await ask(alice, 'demo', { sq: 1 })).status).toBe(400);
    // dave has no permit on demo: hidden, answered exactly like a target that does not exist.
    const hidden = await ask(dave, 'demo', { sql: 'SELECT 1' });
    const missing = await ask(dave, 'no-such-db', { sql: 'SELECT 1' });
    expect([hidden.status, missing.status]).toEqual([404, 404]);
    expect(JSON.stringify(hidden.body).replaceAll('demo', 'T')).toBe(
      JSON.stringify(missing.body).replaceAll('no-such-db', 'T'),
    );

    const mine = (await sessionsOf('alice')).filter((e) => e.detail?.asked === 'explain');
    expect(mine.map((e) => [e.type, e.target, e.detail.status, e.detail.code])).toEqual([
      ['request_refused', 'demo', 400, 'sql_parse_error'],
      ['request_refused', 'demo', 400, 'bad_request'],
    ]);
    expect(mine[0].statement).toMatch(/^SELEC email FROM customers/);
    expect(JSON.stringify(mine)).not.toContain('123-45-6789');
    const daves = (await sessionsOf('dave')).filter((e) => e.detail?.asked === 'explain');
    expect(daves.map((e) => [e.type, e.target, e.detail.status])).toEqual([
      ['request_refused', 'demo', 404],
      ['request_refused', 'no-such-db', 404],
    ]);
    // The allowed explain left nothing: no event of alice's names SELECT 1.
    expect((await sessionsOf('alice')).some((e) => e.statement === 'SELECT 1')).toBe(false);
  });
});

describe('explain over MCP', () => {
  it('records a refused explain tool call in the caller’s session', async () => {
    const erin = await twin.token('erin');
    const transport = new StreamableHTTPClientTransport(new URL(`${twin.url}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${erin}` } },
    });
    const client = new Client({ name: 'explain-trail', version: '1.0.0' });
    await client.connect(transport);
    try {
      const call = (args: Record<string, unknown>) =>
        client.callTool({ name: 'explain', arguments: args }) as Promise<CallToolResult>;
      expect((await call({ target: 'demo', sql: 'SELECT 2' })).isError).toBeFalsy();
      expect((await call({ target: 'demo', sql: 'SELEC 2' })).isError).toBe(true);
      expect((await call({ target: 'nowhere', sql: 'SELECT 2' })).isError).toBe(true);
      expect(
        (await call({ target: 'demo-aws', service: 'dynamodb', action: 'Nope', input: {} })).isError,
      ).toBe(true);
    } finally {
      await client.close();
    }
    const events = (await sessionsOf('erin')).filter((e) => e.detail?.asked === 'explain');
    expect(events.map((e) => [e.type, e.target, e.statement])).toEqual([
      ['request_refused', 'demo', 'SELEC 2'],
      ['request_refused', 'nowhere', 'SELECT 2'],
      ['request_refused', 'demo-aws', 'dynamodb:Nope'],
    ]);
  });
});

/**
 * Explaining runs nothing, and leaves a trace either way, over REST and over MCP: an answered
 * explain an `explained` event (the masked statement, the decision it revealed), written before
 * the answer (an explain whose event cannot be written is a 503 that reveals nothing); a refused
 * one (unparseable SQL, a body the schema refuses, a hidden or an unknown target, an unsupported
 * AWS call) a `request_refused` event; and a hidden target still answers exactly like a missing one.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTwin, type TestTwin } from '../support/twin.js';

let twin: TestTwin;
let dave: string;

beforeAll(async () => {
  twin = await startTestTwin({ faults: { rules: [] } });
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
  it('records answered and refused explains, and answers a hidden target like a missing one', async () => {
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
      ['explained', 'demo', undefined, undefined],
      ['request_refused', 'demo', 400, 'sql_parse_error'],
      ['request_refused', 'demo', 400, 'bad_request'],
    ]);
    expect(mine[1].statement).toMatch(/^SELEC email FROM customers/);
    expect(JSON.stringify(mine)).not.toContain('123-45-6789');
    const daves = (await sessionsOf('dave')).filter((e) => e.detail?.asked === 'explain');
    expect(daves.map((e) => [e.type, e.target, e.detail.status])).toEqual([
      ['request_refused', 'demo', 404],
      ['request_refused', 'no-such-db', 404],
    ]);
    // The answered explain: what was asked and what it revealed, and nothing ran.
    expect(mine[0]).toMatchObject({
      statement: 'SELECT 1',
      action: 'sql:read',
      outcome: 'allow',
      principal: 'User::"alice"',
    });
    expect(mine[0].requestId).toBeUndefined();
    expect(mine[0].determiningPolicies.length).toBeGreaterThan(0);
    expect(mine[0].detail.classification.class).toBe('read');
  });

  it('records each answered explain with the decision it revealed, masked, and runs nothing', async () => {
    const alice = await twin.token('alice');
    const headers = { 'x-warden-session': 'explain-sweep' };
    const ask = (sql: string) =>
      twin.api('POST', '/v1/targets/demo/explain', { token: alice, headers, body: { sql } });
    // A prompt-injected agent sweeping policy: a read that names a raw SSN, a write that needs
    // approval, a privilege change that is denied.
    const probes = [
      "SELECT name FROM customers WHERE ssn = '123-45-6789'",
      "UPDATE customers SET name = 'x' WHERE id = 1",
      'GRANT ALL ON customers TO PUBLIC',
    ];
    const ranBefore = twin.statementLog.length;
    const answers = [];
    for (const sql of probes) answers.push(await ask(sql));
    expect(answers.map((a) => [a.status, a.body.decision.outcome])).toEqual([
      [200, 'allow'],
      [200, 'approval_required'],
      [200, 'deny'],
    ]);
    expect(twin.statementLog.length).toBe(ranBefore);
    const events = (await sessionsOf('alice')).filter(
      (e) => e.type === 'explained' && e.statement !== 'SELECT 1',
    );
    expect(events.map((e) => [e.action, e.outcome])).toEqual([
      ['sql:read', 'allow'],
      ['sql:write', 'approval_required'],
      ['sql:privilege', 'deny'],
    ]);
    expect(events.map((e) => e.detail.policyVersion)).toEqual(
      answers.map((a) => a.body.decision.policyVersion),
    );
    expect(events[0].statement).toMatch(/^SELECT name FROM customers WHERE ssn = /);
    expect(JSON.stringify(events)).not.toContain('123-45-6789');
    // No request was made: nothing new for alice to list.
    const listed = await twin.api('GET', '/v1/requests', { token: alice });
    expect(
      listed.body.requests.filter((r: any) => r.target === 'demo' && r.createdAt > events[0].at),
    ).toEqual([]);
  });

  it('answers 503 and reveals nothing when the explain cannot be recorded', async () => {
    const carol = await twin.token('carol');
    twin.faults!.configure({
      rules: [
        {
          service: 'dynamodb',
          operation: 'TransactWriteItems',
          bodyIncludes: '"explained"',
          fault: 'error',
          probability: 1,
        },
      ],
    });
    let down;
    try {
      down = await twin.api('POST', '/v1/targets/demo/explain', {
        token: carol,
        body: { sql: 'DELETE FROM customers WHERE id = 7' },
      });
    } finally {
      twin.faults!.configure({ rules: [] });
    }
    expect(down.status).toBe(503);
    expect(JSON.stringify(down.body)).not.toMatch(
      /approval_required|determiningPolicies|sql:write|"allow"|"deny"/,
    );
    expect((await sessionsOf('carol')).filter((e) => e.type === 'explained')).toEqual([]);
    // Back up: the same question is answered and recorded.
    const up = await twin.api('POST', '/v1/targets/demo/explain', {
      token: carol,
      body: { sql: 'DELETE FROM customers WHERE id = 7' },
    });
    expect(up.status).toBe(200);
    expect((await sessionsOf('carol')).filter((e) => e.type === 'explained').map((e) => e.outcome)).toEqual([
      up.body.decision.outcome,
    ]);
  });
});

describe('explain over MCP', () => {
  it('records answered and refused explain tool calls in the caller’s session', async () => {
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
      ['explained', 'demo', 'SELECT 2'],
      ['request_refused', 'demo', 'SELEC 2'],
      ['request_refused', 'nowhere', 'SELECT 2'],
      ['request_refused', 'demo-aws', 'dynamodb:Nope'],
    ]);
  });
});

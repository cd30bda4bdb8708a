/**
 * Auditors' named queries (lib/audit-queries.ts) over the local twin's export of a scripted
 * session: the Audit table written in DynamoDB's export format, read by DuckDB through the columns
 * the Glue table declares (lib/audit-schema.ts). Same SQL as Athena runs.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportRequest } from '../../lambdas/handlers/export-audit.js';
import { AUDIT_QUERIES } from '../../lib/audit-queries.js';
import { exportDataFiles, openAuditLake, type AuditLake } from '../../lib/local/audit-export.js';
import { CAROL_SQL, runScriptedSession, type ScriptedSession } from '../support/trail-session.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../..');

let twin: TestTwin;
let script: ScriptedSession;
let lake: AuditLake;
let bobUnmasked: string;
let bobSession: string;
const tested = new Set<string>();

beforeAll(async () => {
  twin = await startTestTwin({ auditExportIntervalMs: 3_600_000 });
  script = await runScriptedSession(twin);
  for (const note of script.notes) console.log(`scripted session: ${note}`);
  // A dba may view unmasked data: the one unmasked read the queries must find.
  const bob = await twin.token('bob');
  const res = await twin.api('POST', '/v1/targets/demo/sql', {
    token: bob,
    headers: { 'x-warden-session': 'dba-look' },
    body: { sql: 'SELECT id, ssn FROM customers WHERE id = 1' },
  });
  expect(res.status).toBe(200);
  bobUnmasked = res.body.requestId;
  bobSession = (await twin.api('GET', `/v1/requests/${bobUnmasked}`, { token: bob })).body.sessionId;
  // An agent sweeping policy with explain: three answered questions, one of them a deny.
  const agent = await twin.token('agent-demo');
  for (const sql of ['SELECT 1', 'SELECT 2', 'GRANT ALL ON customers TO PUBLIC']) {
    const asked = await twin.api('POST', '/v1/targets/demo/explain', {
      token: agent,
      headers: { 'x-warden-session': 'policy-sweep' },
      body: { sql },
    });
    expect(asked.status).toBe(200);
  }
  // Two full exports, as two daily runs would leave in the lake: the queries must count once.
  await twin.exportAudit();
  await twin.exportAudit();
  lake = await openAuditLake(exportDataFiles(twin.auditLakeDir));
}, 300_000);

afterAll(async () => {
  lake?.close();
  await twin?.close();
});

async function named(name: string, params: string[] = []): Promise<Record<string, unknown>[]> {
  const q = AUDIT_QUERIES.find((x) => x.name === name);
  if (!q) throw new Error(`no named query ${name}`);
  // Every export the twin wrote: today's partition (and yesterday's, if the test crossed midnight).
  const dates = ['0000-01-01', '9999-12-31'];
  expect(q.parameters).toHaveLength(dates.length + params.length);
  tested.add(name);
  return (await lake.query(q.sql, [...dates, ...params])).rows;
}

describe('the local export', () => {
  it('writes DYNAMODB_JSON: gzip’d lines of {"Item": typed attributes} under dt=<date>/AWSDynamoDB/<id>/data/', () => {
    const files = exportDataFiles(twin.auditLakeDir);
    expect(files).toHaveLength(2);
    for (const f of files)
      expect(f).toMatch(/exports\/dt=\d{4}-\d{2}-\d{2}\/AWSDynamoDB\/[\w-]+\/data\/[0-9a-f]+\.json\.gz$/);
    const lines = gunzipSync(readFileSync(files[0])).toString('utf8').trim().split('\n');
    const items = lines.map((l) => JSON.parse(l) as { Item: Record<string, Record<string, unknown>> });
    const event = items.find((i) => i.Item.sessionId.S === script.sessionId && i.Item.seq.N === '1');
    expect(event?.Item).toMatchObject({
      sessionId: { S: script.sessionId },
      seq: { N: '1' },
      type: { S: 'request_received' },
      hash: { S: expect.stringMatching(/^[0-9a-f]{64}$/) },
      expiresAtEpoch: { N: expect.any(String) },
    });
    const decided = items.find(
      (i) => i.Item.requestId?.S === script.requests.aliceRead && i.Item.type.S === 'decided',
    );
    expect(decided?.Item.determiningPolicies).toEqual({ L: [{ S: 'demo-read' }] });
  });

  it('is what the scheduled Lambda asks DynamoDB for: a full DYNAMODB_JSON export, KMS-encrypted, idempotent per event', () => {
    const input = exportRequest(
      {
        tableArn: 'arn:aws:dynamodb:eu-west-1:1:table/Audit',
        bucket: 'lake',
        prefix: 'exports/',
        kmsKeyArn: 'arn:key',
      },
      { id: 'e-1/2', time: '2026-01-01T02:15:00Z' },
    );
    expect(input).toMatchObject({
      ExportFormat: 'DYNAMODB_JSON',
      ExportType: 'FULL_EXPORT',
      S3Bucket: 'lake',
      S3Prefix: 'exports/dt=2026-01-01',
      S3SseAlgorithm: 'KMS',
      S3SseKmsKeyId: 'arn:key',
      ClientToken: 'warden-audit-e-12',
      ExportTime: new Date('2026-01-01T02:15:00Z'),
    });
  });
});

describe('named audit queries on the scripted session (DuckDB, Glue schema)', () => {
  it('who-ran-what: every executed request once, with its statement and row count', async () => {
    const rows = await named('who-ran-what');
    const executed = [
      script.requests.aliceRead,
      script.requests.agentRead,
      script.requests.carolMasked,
      script.requests.markup,
      bobUnmasked,
      ...(script.approved ? [script.requests.pendingWrite] : []),
    ];
    expect(rows.map((r) => r.request_id).sort()).toEqual([...executed].sort());
    expect(rows.find((r) => r.request_id === script.requests.carolMasked)).toMatchObject({
      principal_name: 'carol',
      principal: 'User::"carol"',
      target: 'demo',
      action: 'sql:read',
      statement: CAROL_SQL,
      status: 'executed',
      row_count: '2',
      session_id: script.carolSessionId,
    });
  });

  it('blocked-or-denied: the privilege statement policy denied, and nothing else', async () => {
    const rows = await named('blocked-or-denied');
    expect(new Set(rows.map((r) => r.request_id))).toEqual(new Set([script.requests.deniedPrivilege]));
    expect(rows).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          event_type: 'decided',
          outcome: 'deny',
          action: 'sql:privilege',
          principal_name: 'alice',
        }),
      ]),
    );
  });

  it('explained-decisions: the agent’s sweep, counted once per outcome, and only that', async () => {
    const rows = await named('explained-decisions');
    expect(rows.map((r) => [r.principal_name, r.target, r.action, r.outcome, String(r.explains)])).toEqual([
      ['agent-demo', 'demo', 'sql:read', 'allow', '2'],
      ['agent-demo', 'demo', 'sql:privilege', 'deny', '1'],
    ]);
  });

  it('approvals-by-approver: the decisions approvers made', async () => {
    const rows = await named('approvals-by-approver');
    if (script.approved) {
      expect(rows).toEqual([expect.objectContaining({ approver: 'bob', decision: 'approve' })]);
    } else {
      expect(rows).toEqual([]);
    }
  });

  it('unmasked-data: only the dba’s read, not carol’s masked one', async () => {
    const rows = await named('unmasked-data');
    expect(rows.map((r) => r.request_id)).toEqual([bobUnmasked]);
    expect(rows[0]).toMatchObject({ principal_name: 'bob', row_count: '1', session_id: bobSession });
    expect(bobSession).toMatch(/^c_dba-look\./);
  });

  it('reads only the export dates it names: a date with no export finds nothing', async () => {
    const q = AUDIT_QUERIES.find((x) => x.name === 'who-ran-what')!;
    expect((await lake.query(q.sql, ['2001-01-01', '2001-12-31'])).rows).toEqual([]);
    const today = new Date().toISOString().slice(0, 10);
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    expect((await lake.query(q.sql, [yesterday, today])).rows.length).toBeGreaterThan(0);
  });

  it('session-activity: the whole scripted session in seq order, session heads left out', async () => {
    const rows = await named('session-activity', [script.sessionId]);
    const expected = script.expected.flatMap((r) => r.types.map((t) => `${r.requestId} ${t}`));
    expect(rows.map((r) => `${r.request_id} ${r.event_type}`)).toEqual(expected);
    expect(rows.map((r) => Number(r.seq))).toEqual(expected.map((_, i) => i + 1));
  });

  it('covers every named query of the stack', () => {
    expect([...tested].sort()).toEqual(AUDIT_QUERIES.map((q) => q.name).sort());
  });
});

describe('npx warden audit query', () => {
  it('runs SQL and named queries over the local export', async () => {
    const args = ['--import', 'tsx', 'bin/warden.ts', 'audit', 'query'];
    const sql = `SELECT item."type".S AS t, COUNT(*) AS n FROM audit_export WHERE item.sessionId.S = ? AND CAST(item.seq.N AS BIGINT) > 0 GROUP BY 1 ORDER BY 1`;
    const out = await run(
      process.execPath,
      [...args, sql, '--param', script.sessionId, '--lake', twin.auditLakeDir, '--json'],
      { cwd: REPO },
    );
    const rows = out.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { t: string; n: string });
    // Two exports hold every event twice; raw SQL sees both copies.
    const decided = script.expected.filter((r) => r.types.includes('decided')).length;
    expect(rows.find((r) => r.t === 'decided')?.n).toBe(String(decided * 2));

    const namedOut = await run(process.execPath, [...args, 'who-ran-what', '--lake', twin.auditLakeDir], {
      cwd: REPO,
    });
    expect(namedOut.stdout).toContain(script.requests.carolMasked);
    expect(namedOut.stdout).toMatch(/\d+ row\(s\)/);
  });
});

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_QUERIES } from '../../lib/audit-queries.js';
import { AUDIT_LAKE_TABLE, duckdbItemType } from '../../lib/audit-schema.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-audit-'));
let db: DuckDBInstance;
let conn: DuckDBConnection;

const S = (v: string) => ({ S: v });
const N = (v: number) => ({ N: String(v) });
const event = (seq: number, type: string, extra: Record<string, unknown> & { requestId: string }) => ({
  Item: {
    ...extra,
    sessionId: S('s1'),
    seq: N(seq),
    requestId: S(extra.requestId),
    type: S(type),
    at: S(`2025-01-01T00:00:0${seq}Z`),
  },
});

// Two daily full exports see the same events; a manifest line parses to no item.
const exportLines = [
  event(1, 'request_received', {
    requestId: 'r1',
    principal: S('Agent::"bot"'),
    principalName: S('bot'),
    target: S('orders'),
    action: S('sql:read'),
    statement: S('SELECT email FROM customers'),
  }),
  event(2, 'execution_finished', {
    requestId: 'r1',
    status: S('executed'),
    rowCount: N(3),
    unmasked: { BOOL: true },
    determiningPolicies: { L: [S('policy0')] },
  }),
  event(3, 'decided', {
    requestId: 'r2',
    principalName: S('bot'),
    target: S('orders'),
    action: S('sql:ddl'),
    outcome: S('deny'),
    statement: S('DROP TABLE customers'),
  }),
  event(4, 'approval_decided', { requestId: 'r3', approver: S('bob'), outcome: S('approve') }),
];

async function rows(sql: string, params: string[] = []): Promise<Record<string, unknown>[]> {
  const prepared = await conn.prepare(sql);
  params.forEach((p, i) => prepared.bindVarchar(i + 1, p));
  return (await prepared.runAndReadAll()).getRowObjectsJson() as Record<string, unknown>[];
}

const byName = (name: string) => AUDIT_QUERIES.find((q) => q.name === name)!;

/** Both daily exports: the queries read the dates named by their first two parameters. */
const ALL_DATES = ['2025-01-01', '2025-01-02'];

beforeAll(async () => {
  // Two daily exports in their dt= partitions, as the scheduled export writes them; a third day's
  // export holds an event only a query reading that day may see.
  for (const day of ALL_DATES) {
    mkdirSync(join(dir, `dt=${day}`));
    writeFileSync(
      join(dir, `dt=${day}`, 'export.json'),
      [...exportLines, { itemCount: 4 }].map((l) => JSON.stringify(l)).join('\n'),
    );
  }
  mkdirSync(join(dir, 'dt=2025-01-03'));
  writeFileSync(
    join(dir, 'dt=2025-01-03', 'export.json'),
    JSON.stringify(
      event(9, 'decided', {
        requestId: 'r9',
        outcome: S('deny'),
        target: S('orders'),
        principalName: S('eve'),
      }),
    ),
  );
  db = await DuckDBInstance.create(':memory:');
  conn = await db.connect();
  await conn.run(
    `CREATE TABLE ${AUDIT_LAKE_TABLE} AS SELECT "Item" AS item, dt FROM read_json('${dir}/dt=*/export.json', format = 'newline_delimited', columns = {Item: '${duckdbItemType()}'}, hive_partitioning = true, hive_types = {'dt': VARCHAR})`,
  );
});

afterAll(() => {
  conn?.closeSync();
  rmSync(dir, { recursive: true, force: true });
});

describe('audit lake named queries (same SQL as Athena, run in DuckDB)', () => {
  it('who ran what: executed requests with their statement, once despite two exports', async () => {
    const out = await rows(byName('who-ran-what').sql, ALL_DATES);
    expect(out).toEqual([
      expect.objectContaining({
        principal_name: 'bot',
        target: 'orders',
        statement: 'SELECT email FROM customers',
        status: 'executed',
        row_count: '3',
      }),
    ]);
  });

  it('everything blocked or denied', async () => {
    const out = await rows(byName('blocked-or-denied').sql, ALL_DATES);
    expect(out.map((r) => r.request_id)).toEqual(['r2']);
  });

  it('approvals by approver', async () => {
    const out = await rows(byName('approvals-by-approver').sql, ALL_DATES);
    expect(out).toEqual([expect.objectContaining({ approver: 'bob', decision: 'approve', decisions: '1' })]);
  });

  it('who saw unmasked data', async () => {
    const out = await rows(byName('unmasked-data').sql, ALL_DATES);
    expect(out.map((r) => r.request_id)).toEqual(['r1']);
  });

  it('everything one agent did in a session, in order', async () => {
    const q = byName('session-activity');
    expect(q.parameters).toEqual(['fromExportDate', 'toExportDate', 'sessionId']);
    const out = await rows(q.sql, [...ALL_DATES, 's1']);
    expect(out.map((r) => r.seq)).toEqual(['1', '2', '3', '4']);
  });

  it('reads only the export dates it is given (the partition filter)', async () => {
    const denied = byName('blocked-or-denied').sql;
    expect((await rows(denied, ['2025-01-03', '2025-01-03'])).map((r) => r.request_id)).toEqual(['r9']);
    expect((await rows(denied, ['2025-01-01', '2025-01-03'])).map((r) => r.request_id).sort()).toEqual([
      'r2',
      'r9',
    ]);
    expect(await rows(denied, ['2024-12-01', '2024-12-31'])).toEqual([]);
  });
});

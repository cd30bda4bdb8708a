/**
 * The nearly-whole-table rule of the blast radius: ≥ 90% of the planner's estimate of the table is
 * high risk below the row threshold, with the reason in words. PostgreSQL's plans are stood in by
 * an executor answering EXPLAIN with fixed row estimates (the real planner: test/e2e/blast-radius).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { sqlBlastRadius } from '../../lambdas/core/blast-radius.js';
import { blastRadiusText } from '../../lambdas/core/blast-radius-text.js';
import { initSqlClassifier } from '../../lambdas/core/classify/sql.js';
import type { SqlExecutor } from '../../lambdas/core/ports.js';

beforeAll(() => initSqlClassifier());

/** EXPLAIN of the whole table → `table` rows; of a derived read with a WHERE → `where` rows. */
function planner(table: number, where: number): SqlExecutor {
  return {
    execute: async (req: { sql: string; level: string }) => {
      expect(req.level).toBe('read');
      const rows = /\bWHERE\b/i.test(req.sql) ? where : table;
      return { columns: [{ name: 'QUERY PLAN' }], rows: [{ plan: [{ Plan: { 'Plan Rows': rows } }] }] };
    },
  } as unknown as SqlExecutor;
}

describe('nearly the whole table', () => {
  it('is high risk at 349 of ~350 rows, below the threshold, saying why', async () => {
    const b = await sqlBlastRadius(
      { sql: planner(350, 349) },
      'demo',
      'DELETE FROM customers WHERE id <> 7',
      undefined,
    );
    expect(b).toMatchObject({ wholeTable: false, high: true, estimatedRows: 349, threshold: 1000 });
    expect(b.statements[0]).toMatchObject({ nearlyWholeTable: true, tableRows: 350 });
    expect(b.highReason).toBe('estimated 349 of ~350 rows of public.customers');
    expect(blastRadiusText(b)).toMatch(
      /^NEARLY WHOLE TABLE: DELETE ~349 rows of public\.customers \(of ~350\) · high risk: estimated 349 of ~350 rows of public\.customers/,
    );
  });

  it('is high at exactly 90%, not below it', async () => {
    expect(
      (await sqlBlastRadius({ sql: planner(1000, 900) }, 'demo', 'DELETE FROM t WHERE a > 1', undefined))
        .high,
    ).toBe(true);
    const under = await sqlBlastRadius(
      { sql: planner(1000, 899) },
      'demo',
      'DELETE FROM t WHERE a > 1',
      undefined,
    );
    expect(under.high).toBe(false);
    expect(under.highReason).toBeUndefined();
    expect(blastRadiusText(under)).not.toMatch(/high risk|WHOLE/);
  });

  it('leaves a one-row write at the usual risk', async () => {
    const b = await sqlBlastRadius(
      { sql: planner(350, 1) },
      'demo',
      'DELETE FROM customers WHERE id = 7',
      undefined,
    );
    expect(b).toMatchObject({ high: false, wholeTable: false, estimatedRows: 1 });
    expect(b.statements[0].nearlyWholeTable).toBeUndefined();
  });

  it('whichever comes first: the threshold still applies on a big table', async () => {
    const b = await sqlBlastRadius(
      { sql: planner(100_000, 5000) },
      'demo',
      'DELETE FROM t WHERE a > 1',
      [],
      1000,
    );
    expect(b).toMatchObject({ high: true, highReason: 'more than 1000 rows' });
  });

  it('keeps "whole table" for DELETE without WHERE', async () => {
    const b = await sqlBlastRadius({ sql: planner(350, 350) }, 'demo', 'DELETE FROM orders', undefined);
    expect(b).toMatchObject({ wholeTable: true, noWhere: true, high: true, highReason: 'whole table' });
    expect(blastRadiusText(b)).toMatch(/WHOLE TABLE, no WHERE: .* · high risk: whole table/);
  });

  it('words a stored record without highReason as before', () => {
    const text = blastRadiusText({
      kind: 'sql',
      statements: [
        { type: 'INSERT', table: 'public.t', noWhere: false, wholeTable: false, estimatedRows: 5000 },
      ],
      tables: ['public.t'],
      estimatedRows: 5000,
      noWhere: false,
      wholeTable: false,
      threshold: 1000,
      high: true,
    });
    expect(text).toMatch(/high risk: more than 1000 rows/);
  });
});

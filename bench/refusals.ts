/**
 * Refusal rate of the SQL classifier over read-only queries from .sql files (for example a copy of
 * PostgreSQL's src/test/regress/sql): how many statements that are SELECTs are not classified read,
 * and for which reasons. Not part of `npm run bench`: it needs files this repository does not ship.
 *
 *   npx tsx bench/refusals.ts DIR
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSync, loadModule } from 'libpg-query';
import { classifySqlSync, initSqlClassifier } from '../lambdas/core/classify/sql.js';

export interface RefusalReport {
  readonly selects: number;
  readonly refused: number;
  readonly reasons: ReadonlyMap<string, number>;
}

/** Each top-level SELECT of each file, as its own text (statements PostgreSQL cannot parse are skipped). */
export function selectStatements(sql: string): string[] {
  let tree: { stmts?: { stmt?: Record<string, unknown>; stmt_location?: number; stmt_len?: number }[] };
  try {
    tree = parseSync(sql) as typeof tree;
  } catch {
    return [];
  }
  return (tree.stmts ?? [])
    .filter((s) => s.stmt && 'SelectStmt' in s.stmt)
    .map((s) => sql.slice(s.stmt_location ?? 0, (s.stmt_location ?? 0) + (s.stmt_len || sql.length)).trim());
}

export function refusals(statements: readonly string[]): RefusalReport {
  const reasons = new Map<string, number>();
  let refused = 0;
  for (const text of statements) {
    const c = classifySqlSync(text);
    if (c.class === 'read') continue;
    refused += 1;
    for (const r of c.reasons) {
      const key = r.replace(/^statement \d+ \(\w+\): /, '');
      reasons.set(key, (reasons.get(key) ?? 0) + 1);
    }
  }
  return { selects: statements.length, refused, reasons };
}

if (process.argv[1]?.endsWith('refusals.ts')) {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: tsx bench/refusals.ts DIR');
  await Promise.all([loadModule(), initSqlClassifier()]);
  const statements = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .flatMap((f) => selectStatements(readFileSync(join(dir, f), 'utf8')));
  const report = refusals(statements);
  const pct = report.selects ? ((100 * report.refused) / report.selects).toFixed(1) : '0';
  console.log(`${report.refused} of ${report.selects} SELECTs refused (${pct} %)`);
  for (const [reason, n] of [...report.reasons].sort((a, b) => b[1] - a[1]).slice(0, 20)) {
    console.log(`${String(n).padStart(5)}  ${reason}`);
  }
}

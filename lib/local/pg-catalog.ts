/**
 * Reads PostgreSQL's own catalogue (from the embedded PGlite, the same major version the twin runs)
 * into the function-name lists the SQL classifier ships in lambdas/core/classify/pg-catalog-functions.ts.
 *
 *   npx tsx lib/local/pg-catalog.ts > lambdas/core/classify/pg-catalog-functions.ts
 *
 * test/integration/pg-catalog.test.ts checks the shipped file still says what the catalogue says.
 */
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';

export interface PgCatalogFunctions {
  /** Names whose every overload is an immutable plain function taking and returning no `internal`. */
  readonly immutable: readonly string[];
  /** Every other built-in function, aggregate, window function or procedure name. */
  readonly other: readonly string[];
}

export async function readPgCatalogFunctions(db?: PGlite): Promise<PgCatalogFunctions> {
  const pg = db ?? (await PGlite.create());
  try {
    const { rows } = await pg.query<{ proname: string; immutable: boolean }>(
      `select proname,
              bool_and(provolatile = 'i' and prokind = 'f'
                       and prorettype <> 'internal'::regtype
                       and not ('internal'::regtype = any(proargtypes))) as immutable
         from pg_catalog.pg_proc
        where pronamespace = 'pg_catalog'::regnamespace
        group by proname
        order by proname collate "C"`,
    );
    return {
      immutable: rows.filter((r) => r.immutable).map((r) => r.proname),
      other: rows.filter((r) => !r.immutable).map((r) => r.proname),
    };
  } finally {
    if (!db) await pg.close();
  }
}

/** The source of pg-catalog-functions.ts for these lists (wrapped, so prettier leaves it alone). */
export function renderPgCatalogModule(lists: PgCatalogFunctions, version: string): string {
  const wrap = (names: readonly string[]): string => {
    const lines: string[] = [];
    let line = '';
    for (const n of names) {
      if (line.length + n.length + 1 > 96) {
        lines.push(line);
        line = '';
      }
      line += (line ? ' ' : '') + n;
    }
    if (line) lines.push(line);
    return lines.map((l) => `  '${l} ',`).join('\n');
  };
  return `/**
 * PostgreSQL's built-in function names (schema pg_catalog), generated from ${version} by
 * lib/local/pg-catalog.ts; test/integration/pg-catalog.test.ts keeps this file true.
 *
 * IMMUTABLE: every overload of the name is an immutable plain function (no aggregate, window
 * function or procedure, no \`internal\` argument or result). PostgreSQL promises such a function
 * reads no table, no setting and changes nothing; it is a computation over its arguments.
 * OTHER: every other built-in name (stable, volatile, aggregates, procedures, internal helpers).
 */
// prettier-ignore
const IMMUTABLE_TEXT = [
${wrap(lists.immutable)}
].join('');

// prettier-ignore
const OTHER_TEXT = [
${wrap(lists.other)}
].join('');

export const PG_IMMUTABLE_FUNCTIONS: ReadonlySet<string> = new Set(IMMUTABLE_TEXT.trim().split(' '));
export const PG_OTHER_FUNCTIONS: ReadonlySet<string> = new Set(OTHER_TEXT.trim().split(' '));
`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const db = await PGlite.create();
  const { rows } = await db.query<{ v: string }>(`select current_setting('server_version') as v`);
  const lists = await readPgCatalogFunctions(db);
  process.stdout.write(renderPgCatalogModule(lists, `PostgreSQL ${rows[0].v}`));
  await db.close();
}

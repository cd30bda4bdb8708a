import { readFileSync } from 'node:fs';
import { parseSync, scanSync } from 'libpg-query';
import { beforeAll, describe, expect, it } from 'vitest';
import { classifySqlSync, initSqlClassifier } from '../../lambdas/core/classify/sql.js';
import { READ_FUNCTIONS } from '../../lambdas/core/classify/sql-functions.js';
import { BadRequestError, SqlParseError } from '../../lambdas/core/errors.js';
import type { SqlClass, SqlClassification } from '../../lambdas/core/types.js';

interface HostileCase {
  readonly name: string;
  readonly sql: string;
  readonly expect: SqlClass | 'not-read' | 'parse-error' | 'bad-request';
  readonly tables?: readonly string[];
}

const corpus = JSON.parse(readFileSync(new URL('../fixtures/sql/hostile.json', import.meta.url), 'utf8')) as {
  cases: HostileCase[];
};

beforeAll(async () => {
  await initSqlClassifier();
});

/** Runs the classifier; any throw other than the two allowed ones fails the test. */
function outcome(sql: string): SqlClassification | 'parse-error' | 'bad-request' {
  try {
    return classifySqlSync(sql);
  } catch (e) {
    if (e instanceof SqlParseError) return 'parse-error';
    if (e instanceof BadRequestError) return 'bad-request';
    throw new Error(`classifier threw ${String(e)} for ${JSON.stringify(sql.slice(0, 200))}`, { cause: e });
  }
}

describe('sql classifier on hostile input', () => {
  it.each(corpus.cases)('$name', ({ sql, expect: expected, tables }) => {
    const result = outcome(sql);
    if (expected === 'parse-error' || expected === 'bad-request') {
      expect(result).toBe(expected);
      return;
    }
    if (typeof result === 'string') throw new Error(`expected a classification, got ${result}`);
    if (expected === 'not-read') expect(result.class).not.toBe('read');
    else expect(result.class).toBe(expected);
    if (expected !== 'read') expect(result.reasons.length).toBeGreaterThan(0);
    if (tables) expect(result.tables).toEqual(tables);
  });

  it('classifies a 10,000-column select as read', () => {
    const sql = `SELECT ${Array.from({ length: 10_000 }, (_, i) => `c${i}`).join(', ')} FROM wide`;
    const result = outcome(sql);
    expect(typeof result === 'object' && result.class).toBe('read');
  });

  it('classifies a long flat OR chain and a long IN list as read', () => {
    const ors = Array.from({ length: 3000 }, (_, i) => `a = ${i}`).join(' OR ');
    const list = Array.from({ length: 10_000 }, (_, i) => String(i)).join(',');
    for (const sql of [`SELECT * FROM t WHERE ${ors}`, `SELECT * FROM t WHERE a IN (${list})`]) {
      const result = outcome(sql);
      expect(typeof result === 'object' && result.class).toBe('read');
    }
  });

  it('still finds a write at the end of a very long statement', () => {
    const sql = `SELECT ${Array.from({ length: 5000 }, (_, i) => `c${i}`).join(', ')} FROM t; DELETE FROM t`;
    const result = outcome(sql);
    expect(typeof result === 'object' && result.class).toBe('write');
  });

  const deep: Record<string, string> = {
    'nested subqueries': `SELECT ${'(SELECT '.repeat(2000)}1${')'.repeat(2000)}`,
    'nested parentheses': `SELECT ${'('.repeat(2000)}1${')'.repeat(2000)}`,
    'nested function calls': `SELECT ${'f('.repeat(2000)}1${')'.repeat(2000)}`,
    'nested CASE': `SELECT ${'CASE WHEN true THEN '.repeat(2000)}1${' END'.repeat(2000)}`,
    'left-deep operator chain': `SELECT ${Array.from({ length: 20_000 }, () => 'a').join(' + ')}`,
    'long UNION chain': Array.from({ length: 5000 }, () => 'SELECT 1').join(' UNION '),
    'long JOIN chain': `SELECT * FROM t ${'JOIN t ON true '.repeat(5000)}`,
    'NOT chain': `SELECT ${'NOT '.repeat(20_000)}true`,
    'nested arrays': `SELECT ${'ARRAY['.repeat(2000)}1${']'.repeat(2000)}`,
    'nested CTEs': `${'WITH a AS ('.repeat(1000)}SELECT 1${') SELECT * FROM a'.repeat(1000)}`,
    'write under deep nesting': `SELECT ${'(SELECT '.repeat(2000)}1${')'.repeat(2000)}; DELETE FROM t`,
  };

  it.each(Object.entries(deep))('refuses %s without crashing, and keeps working afterwards', (_name, sql) => {
    // Repeated on purpose: an overflow inside the WASM parser would corrupt it after a few tries.
    for (let i = 0; i < 10; i += 1) {
      const result = outcome(sql);
      expect(['bad-request', 'parse-error']).toContain(result);
    }
    const after = outcome('SELECT a FROM t WHERE b = 1');
    expect(typeof after === 'object' && after.class).toBe('read');
  });

  it('accepts nesting just under the limit for every deep construct', () => {
    const near: string[] = [
      `SELECT ${'(SELECT '.repeat(450)}1${')'.repeat(450)}`,
      `SELECT * FROM ${'(SELECT * FROM '.repeat(450)}t${') s'.repeat(450)}`,
      `SELECT ${'f('.repeat(450)}1${')'.repeat(450)}`,
      `SELECT ${'CASE WHEN true THEN '.repeat(450)}1${' END'.repeat(450)}`,
      `SELECT ${Array.from({ length: 450 }, () => 'a').join(' + ')}`,
      Array.from({ length: 450 }, () => 'SELECT 1').join(' UNION '),
      `SELECT * FROM t ${'JOIN t ON true '.repeat(450)}`,
      `SELECT ${'ARRAY['.repeat(450)}1${']'.repeat(450)}`,
    ];
    for (const sql of near) {
      const result = outcome(sql);
      expect(typeof result, sql.slice(0, 60)).toBe('object');
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Generated mutations, judged against an independent oracle.

/** mulberry32: small, seeded, reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALLOWED_STATEMENTS = new Set(['SelectStmt', 'ExplainStmt', 'VariableShowStmt']);

/**
 * Independent oracle: searches the re-parsed tree's JSON TEXT (no tree walk shared with the
 * classifier) for anything that must make a statement not read. ExplainStmt is transparent: what
 * it wraps is in the text and judged on its own.
 */
function oracleDanger(sql: string): string[] {
  const json = JSON.stringify(parseSync(sql));
  const found: string[] = [];
  for (const m of json.matchAll(/"([A-Za-z]+Stmt)":\{/g)) {
    if (!ALLOWED_STATEMENTS.has(m[1])) found.push(m[1]);
  }
  if (/"lockingClause":\[\{/.test(json)) found.push('lockingClause');
  if (/"intoClause":\{/.test(json)) found.push('intoClause');
  for (const m of json.matchAll(/"funcname":(\[(?:\{"String":\{"sval":"(?:[^"\\]|\\.)*"\}\},?)+\])/g)) {
    const parts = (JSON.parse(m[1]) as { String: { sval: string } }[]).map((p) => p.String.sval);
    const bare =
      parts.length === 1 ? parts[0] : parts.length === 2 && parts[0] === 'pg_catalog' ? parts[1] : null;
    if (bare === null || !READ_FUNCTIONS.has(bare)) found.push(`FuncCall ${parts.join('.')}`);
  }
  return found;
}

interface Seed {
  readonly sql: string;
  /** Can stand as a CTE body or in FROM (…). */
  readonly cte?: boolean;
  readonly subquery?: boolean;
  readonly explain?: boolean;
}

const SEEDS: readonly Seed[] = [
  { sql: 'SELECT a, b FROM t WHERE a = 1', cte: true, subquery: true, explain: true },
  {
    sql: 'SELECT count(*) FROM orders o JOIN customers c ON c.id = o.cid GROUP BY c.id',
    cte: true,
    subquery: true,
    explain: true,
  },
  {
    sql: "SELECT lower(name), coalesce(x, 0) FROM s.t WHERE name LIKE 'a%'",
    cte: true,
    subquery: true,
    explain: true,
  },
  { sql: 'SELECT * FROM t FOR UPDATE', cte: true, subquery: true, explain: true },
  { sql: 'SELECT * INTO x FROM t', explain: true },
  { sql: "SELECT nextval('s')", cte: true, subquery: true, explain: true },
  { sql: "SELECT pg_read_file('/etc/passwd')", cte: true, subquery: true, explain: true },
  { sql: "SELECT set_config('role', 'admin', false)", cte: true, subquery: true, explain: true },
  { sql: 'SELECT my_func(a) FROM t', cte: true, subquery: true, explain: true },
  { sql: 'SELECT pg_catalog.pg_sleep(5)', cte: true, subquery: true, explain: true },
  { sql: 'INSERT INTO t (a) VALUES (1) RETURNING a', cte: true, explain: true },
  { sql: 'UPDATE t SET a = a + 1 WHERE id = 2 RETURNING id', cte: true, explain: true },
  { sql: 'DELETE FROM t WHERE id = 3 RETURNING *', cte: true, explain: true },
  {
    sql: 'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE RETURNING t.id',
    cte: true,
    explain: true,
  },
  { sql: 'CREATE TABLE x (id int)' },
  { sql: 'DROP TABLE t' },
  { sql: 'TRUNCATE t' },
  { sql: 'ALTER TABLE t ADD COLUMN c text' },
  { sql: 'CREATE TABLE y AS SELECT * FROM t', explain: true },
  { sql: 'GRANT SELECT ON t TO agent' },
  { sql: 'ALTER ROLE agent SUPERUSER' },
  { sql: 'SET ROLE admin' },
  { sql: 'COPY t TO STDOUT' },
  { sql: "COPY (SELECT 1) TO PROGRAM 'x'" },
  { sql: 'DO $$ BEGIN NULL; END $$' },
  { sql: 'VACUUM t' },
  { sql: 'LOCK TABLE t' },
  { sql: 'CALL p(1)' },
  { sql: 'BEGIN' },
  { sql: 'LISTEN ch' },
  { sql: 'PREPARE q AS DELETE FROM t' },
  { sql: 'EXECUTE q' },
];

const TRIVIA = [' ', '\n', '\t', '  ', '/* x */', '/* ; DELETE FROM t */', '-- c\n', '/* /* n */ */', '\r\n'];

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)];
}

/** Case changes and comments/whitespace between tokens: must not change the class at all. */
function cosmetic(sql: string, rand: () => number): string {
  const tokens = scanSync(sql).tokens;
  let out = '';
  let last = 0;
  for (const tok of tokens) {
    out += sql.slice(last, tok.start);
    if (rand() < 0.3) out += pick(rand, TRIVIA);
    let text = sql.slice(tok.start, tok.end);
    // Only keywords fold; identifiers keep their spelling so the tables stay the same.
    if (tok.keywordKind !== 0 && rand() < 0.5) {
      text = [...text].map((ch) => (rand() < 0.5 ? ch.toUpperCase() : ch.toLowerCase())).join('');
    }
    out += text;
    last = tok.end;
  }
  return out + sql.slice(last) + (rand() < 0.3 ? pick(rand, TRIVIA) : '');
}

type Mutation = (sql: string, seed: Seed, rand: () => number) => string | null;

const STRUCTURAL: readonly Mutation[] = [
  (sql, seed) => (seed.cte ? `WITH w AS (${sql}) SELECT * FROM w` : null),
  (sql, seed) => (seed.cte ? `WITH a AS (SELECT 1), w AS (${sql}) SELECT * FROM a, w` : null),
  (sql, seed) => (seed.subquery ? `SELECT * FROM (${sql}) s` : null),
  (sql, seed) => (seed.subquery ? `SELECT 1 WHERE EXISTS (${sql})` : null),
  (sql, seed) => (seed.explain ? `EXPLAIN ANALYZE ${sql}` : null),
  (sql, seed) => (seed.explain ? `EXPLAIN ${sql}` : null),
  (sql) => `SELECT 1; ${sql}`,
  (sql) => `SELECT 1;${sql};SELECT 2`,
  (sql) => `${sql}; SELECT * FROM t`,
  (sql) => `BEGIN; ${sql}; COMMIT`,
];

describe('sql classifier under generated mutations', () => {
  it('never calls read what the oracle finds dangerous, over 2,000 seeded cases', () => {
    const rand = prng(20240611);
    let checked = 0;
    let dangerous = 0;
    for (let i = 0; i < 2000; i += 1) {
      const seed = pick(rand, SEEDS);
      let sql = seed.sql;
      const steps = 1 + Math.floor(rand() * 3);
      for (let s = 0; s < steps; s += 1) {
        const next = rand() < 0.5 ? cosmetic(sql, rand) : pick(rand, STRUCTURAL)(sql, seed, rand);
        if (next !== null) sql = next;
      }
      const result = outcome(sql);
      if (typeof result === 'string') {
        // The classifier may only refuse what PostgreSQL's parser refuses.
        expect(result, sql).toBe('parse-error');
        expect(() => parseSync(sql), sql).toThrow();
        continue;
      }
      checked += 1;
      const danger = oracleDanger(sql);
      if (danger.length > 0) {
        dangerous += 1;
        expect(result.class, `${sql}\noracle: ${danger.join(', ')}`).not.toBe('read');
        expect(result.reasons.length).toBeGreaterThan(0);
      } else {
        expect(result.class, sql).toBe('read');
      }
    }
    // The run must really exercise both sides of the property.
    expect(checked).toBeGreaterThan(1800);
    expect(dangerous).toBeGreaterThan(1000);
  });

  it('gives the same class after case changes and comments between tokens', () => {
    const rand = prng(7);
    for (const seed of SEEDS) {
      const base = outcome(seed.sql);
      if (typeof base === 'string') throw new Error(`seed does not classify: ${seed.sql}`);
      for (let k = 0; k < 10; k += 1) {
        const sql = cosmetic(seed.sql, rand);
        const result = outcome(sql);
        expect(typeof result === 'object' && result.class, sql).toBe(base.class);
        expect(typeof result === 'object' && result.tables, sql).toEqual(base.tables);
      }
    }
  });
});

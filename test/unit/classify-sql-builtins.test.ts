/**
 * The read allowlist's breadth and its edges: PostgreSQL's immutable built-ins are read (a
 * computation over their arguments), attribute notation (`c.fn`, `(expr).fn`) is judged as the call
 * it is, and what must stay refused does.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { classifySql, initSqlClassifier } from '../../lambdas/core/classify/sql.js';
import { functionVerdict, isBuiltinFunction } from '../../lambdas/core/classify/sql-functions.js';
import {
  PG_IMMUTABLE_FUNCTIONS,
  PG_OTHER_FUNCTIONS,
} from '../../lambdas/core/classify/pg-catalog-functions.js';

interface Fixture {
  read: { family: string; sql: string }[];
  refused: { family: string; sql: string; class: string }[];
}

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/sql/builtin-reads.json', import.meta.url), 'utf8'),
) as Fixture;

beforeAll(async () => {
  await initSqlClassifier();
});

describe('immutable built-ins are read', () => {
  it.each(fixture.read.map((c) => [c.family, c.sql] as const))('%s: %s', async (_family, sql) => {
    const c = await classifySql(sql);
    expect(c.reasons).toEqual([]);
    expect(c.class).toBe('read');
  });
});

describe('what stays refused', () => {
  it.each(fixture.refused.map((c) => [c.family, c.sql, c.class] as const))(
    '%s: %s',
    async (_family, sql, cls) => {
      expect((await classifySql(sql)).class).toBe(cls);
    },
  );

  it('lists an attribute-notation call among the functions and says why', async () => {
    const c = await classifySql('SELECT c.pg_restore_relation_stats FROM customers c');
    expect(c.functions).toEqual(['pg_restore_relation_stats']);
    expect(c.reasons.join(' ')).toMatch(/c\.pg_restore_relation_stats is a call of function/);
  });

  it('judges every field of a chained indirection: (x).upper.nextval', async () => {
    expect((await classifySql("SELECT (('a')::text).upper.nextval")).class).toBe('write');
  });

  it('does not take a column named like an allowlisted built-in for a dangerous call', async () => {
    // Every common column name that is also a built-in is read, so plain column references stay read.
    for (const col of ['name', 'path', 'point', 'date', 'text', 'version', 'position', 'left', 'count']) {
      expect((await classifySql(`SELECT t.${col} FROM t`)).class, col).toBe('read');
    }
  });
});

describe('the allowlist follows the catalogue', () => {
  it('reads every immutable built-in as read and no stable or volatile one it has not reviewed', () => {
    for (const name of PG_IMMUTABLE_FUNCTIONS) {
      // Explicitly classed names (FUNCTION_CLASSES, ADMIN_PREFIXES) win over the catalogue.
      expect(['read', 'admin', 'privilege', 'write']).toContain(functionVerdict([name]).class);
    }
    const readOther = [...PG_OTHER_FUNCTIONS].filter((n) => functionVerdict([n]).class === 'read');
    // The hand-kept list plus the reviewed additions; nothing else from outside the immutable set.
    expect(readOther).toContain('now');
    expect(readOther).toContain('enum_range');
    for (const n of ['pg_sleep', 'nextval', 'setval', 'set_config', 'pg_read_file', 'lo_import', 'ts_stat']) {
      expect(readOther).not.toContain(n);
      expect(isBuiltinFunction(n)).toBe(true);
    }
  });

  it('keeps the explicit dangerous classes over the catalogue', () => {
    expect(functionVerdict(['pg_sleep']).class).toBe('admin');
    expect(functionVerdict(['pg_catalog', 'set_config']).class).toBe('privilege');
    expect(functionVerdict(['pg_restore_relation_stats']).class).toBe('admin');
  });
});

describe('lexing assumes standard_conforming_strings = on', () => {
  // The classifier splits statements as PostgreSQL does with the setting on (its default since 9.1);
  // Warden pins it on for its database users, so the database splits the same way.
  it("reads 'a\\' as a complete string: the rest is a second statement", async () => {
    const c = await classifySql("SELECT 'a\\'; SELECT '; DELETE FROM t; --'");
    expect(c.statements.map((s) => s.type)).toEqual(['SelectStmt', 'SelectStmt']);
    expect(c.class).toBe('read');
  });

  it('sees the DELETE that a backslash before a quote does not hide', async () => {
    const c = await classifySql("SELECT 'a\\'; DELETE FROM t; --'");
    expect(c.class).toBe('write');
    expect(c.tables).toEqual(['public.t']);
  });
});

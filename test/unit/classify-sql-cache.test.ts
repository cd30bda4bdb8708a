/**
 * The classification cache (lambdas/core/classify/sql.ts): exact text only, frozen, failures never
 * kept, long texts never kept, and a broken parser still fails closed for cached texts.
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';

import {
  cachedClassifications,
  CLASSIFICATION_CACHE_SIZE,
  classifySql,
  classifySqlSync,
  initSqlClassifier,
  MAX_CACHED_SQL_BYTES,
  parseSqlTree,
} from '../../lambdas/core/classify/sql.js';
import { BadRequestError, ServiceUnavailableError, SqlParseError } from '../../lambdas/core/errors.js';

// A pass-through libpg-query whose parse can be made to fail as a WASM overflow does (RuntimeError).
const parser = vi.hoisted(() => ({ overflowOn: undefined as string | undefined }));
vi.mock('libpg-query', async (importOriginal) => {
  const actual = await importOriginal<typeof import('libpg-query')>();
  return {
    ...actual,
    parseSync: (sql: string) => {
      if (parser.overflowOn !== undefined && sql.includes(parser.overflowOn)) {
        const e = new Error('memory access out of bounds');
        e.name = 'RuntimeError';
        throw e;
      }
      return actual.parseSync(sql);
    },
  };
});

beforeAll(async () => {
  await initSqlClassifier();
});

let n = 0;
/** A text no other test has classified. */
const fresh = (sql: string): string => `${sql} -- cache test ${(n += 1)}`;

describe('classification cache', () => {
  it('answers the same text with the same frozen classification', () => {
    const sql = fresh('SELECT id, name FROM customers WHERE id = 1');
    const before = cachedClassifications();
    const a = classifySqlSync(sql);
    expect(cachedClassifications()).toBe(before + 1);
    const b = classifySqlSync(sql);
    expect(b).toBe(a);
    expect(cachedClassifications()).toBe(before + 1);
    expect(a.class).toBe('read');
    for (const v of [
      a,
      a.statements,
      a.statements[0],
      a.statements[0].reasons,
      a.tables,
      a.functions,
      a.reasons,
    ]) {
      expect(Object.isFrozen(v)).toBe(true);
    }
  });

  it('cannot be changed by a caller: a tampered classification does not reach the next one', async () => {
    const sql = fresh('DELETE FROM customers WHERE id = 1');
    const a = classifySqlSync(sql);
    expect(a.class).toBe('write');
    const attempts: (() => void)[] = [
      () => ((a as { class: string }).class = 'read'),
      () => ((a.statements[0] as { class: string }).class = 'read'),
      () => (a.tables as string[]).pop(),
      () => (a.reasons as string[]).splice(0),
      () => (a.statements[0].reasons as string[]).push('x'),
      () => ((a.statements as unknown[])[0] = { type: 'SelectStmt', class: 'read', reasons: [] }),
    ];
    for (const attempt of attempts) expect(attempt).toThrow(TypeError);
    for (const again of [classifySqlSync(sql), await classifySql(sql)]) {
      expect(again.class).toBe('write');
      expect(again.statements[0]).toMatchObject({ type: 'DeleteStmt', class: 'write' });
      expect(again.tables).toEqual(['public.customers']);
      expect(again.reasons.length).toBeGreaterThan(0);
    }
  });

  it('classifies a text that differs by anything (one character, a trailing statement) afresh', () => {
    // No trailing comment here: the variants append right after the cached text.
    const base = `SELECT * FROM t WHERE n = ${(n += 1)}`;
    expect(classifySqlSync(base).class).toBe('read');
    const variants: [string, string][] = [
      [`${base}; DROP TABLE x`, 'ddl'],
      [`${base};DELETE FROM t`, 'write'],
      [`${base}; GRANT ALL ON t TO public`, 'privilege'],
      [`${base}; COPY t TO PROGRAM 'sh'`, 'admin'],
      [`${base}\n;\n\tUPDATE t SET n = 0`, 'write'],
      [`${base} OR n IN (SELECT nextval('s'))`, 'write'],
      [`${base} `, 'read'],
      [`${base};`, 'read'],
      [base.replace('SELECT *', 'SELECT  *'), 'read'],
    ];
    const original = classifySqlSync(base);
    for (const [sql, cls] of variants) {
      expect(classifySqlSync(sql), sql).not.toBe(original);
      expect(classifySqlSync(sql).class, sql).toBe(cls);
      expect(classifySqlSync(sql).class, `${sql} (again)`).toBe(cls);
    }
    // and the original is still what it was
    expect(classifySqlSync(base).class).toBe('read');
    expect(classifySqlSync(base).tables).toEqual(['public.t']);
  });

  it('tells apart a read and a write that differ only in one call, in both orders', () => {
    const read = fresh('SELECT nextval_x FROM s');
    const write = read.replace('nextval_x', 'nextval(1)');
    expect(classifySqlSync(write).class).toBe('write');
    expect(classifySqlSync(read).class).toBe('read');
    expect(classifySqlSync(write).class).toBe('write');
  });

  it('keeps no failure: parse errors and refusals are computed again and fail every time', () => {
    const before = cachedClassifications();
    const failing: [string, new (...args: never[]) => Error][] = [
      [fresh('SELEC 1'), SqlParseError],
      [fresh('SELECT FROM WHERE ('), SqlParseError],
      ['SELECT 1\u0000; DROP TABLE t', BadRequestError],
      ['   ', BadRequestError],
      [';;', BadRequestError],
      [`SELECT ${'('.repeat(2000)}1${')'.repeat(2000)}`, BadRequestError],
    ];
    for (let round = 0; round < 3; round += 1) {
      for (const [sql, type] of failing) expect(() => classifySqlSync(sql), sql.slice(0, 40)).toThrow(type);
    }
    expect(cachedClassifications()).toBe(before);
  });

  it('does not hold texts longer than 16 KiB (counted in UTF-8 bytes)', () => {
    const pad = (sql: string, bytes: number, ch = 'x'): string => {
      const head = `${sql} -- `;
      const unit = Buffer.byteLength(ch, 'utf8');
      return head + ch.repeat(Math.ceil((bytes - Buffer.byteLength(head, 'utf8')) / unit));
    };
    const long = pad(fresh('SELECT 1 FROM t'), MAX_CACHED_SQL_BYTES + 1);
    const multibyte = pad(fresh('SELECT 2 FROM t'), MAX_CACHED_SQL_BYTES + 1, '€'); // ~5.5k chars
    expect(multibyte.length).toBeLessThan(MAX_CACHED_SQL_BYTES);
    const before = cachedClassifications();
    for (const sql of [long, multibyte]) {
      expect(Buffer.byteLength(sql, 'utf8')).toBeGreaterThan(MAX_CACHED_SQL_BYTES);
      const a = classifySqlSync(sql);
      const b = classifySqlSync(sql);
      expect(b).not.toBe(a);
      expect(b).toEqual(a);
      expect(a.class).toBe('read');
    }
    expect(cachedClassifications()).toBe(before);
    // A text of exactly the limit is held.
    const atLimit = pad(fresh('SELECT 3 FROM t'), MAX_CACHED_SQL_BYTES);
    expect(Buffer.byteLength(atLimit, 'utf8')).toBe(MAX_CACHED_SQL_BYTES);
    expect(classifySqlSync(atLimit)).toBe(classifySqlSync(atLimit));
  });

  it(`holds at most ${CLASSIFICATION_CACHE_SIZE} classifications`, () => {
    for (let i = 0; i < CLASSIFICATION_CACHE_SIZE + 50; i += 1) classifySqlSync(fresh(`SELECT ${i}`));
    expect(cachedClassifications()).toBe(CLASSIFICATION_CACHE_SIZE);
    // The oldest were evicted: classifying one again gives a new (equal) object.
    const first = fresh('SELECT 1');
    const a = classifySqlSync(first);
    for (let i = 0; i < CLASSIFICATION_CACHE_SIZE; i += 1) classifySqlSync(fresh(`SELECT ${i}`));
    const b = classifySqlSync(first);
    expect(b).not.toBe(a);
    expect(b).toEqual(a);
  });

  it('keeps the tree of a repeating text for its shown form; a text seen once keeps only the last parse', () => {
    const sql = fresh("SELECT * FROM customers WHERE ssn = '123-45-6789'");
    classifySqlSync(sql);
    const first = parseSqlTree(sql); // the classification's parse (the last one)
    expect(parseSqlTree(sql)).toBe(first);
    classifySqlSync(fresh('SELECT 1')); // another text in between
    expect(classifySqlSync(sql).class).toBe('read'); // from the cache, nothing parsed
    const second = parseSqlTree(sql); // parsed again: now known to repeat, so kept
    expect(second).toEqual(first);
    classifySqlSync(fresh('SELECT 2'));
    expect(classifySqlSync(sql).class).toBe('read');
    expect(parseSqlTree(sql)).toBe(second);
    expect(() => (second.stmts as unknown[]).push({})).toThrow(TypeError);
    expect(() => ((second.stmts?.[0] as { stmt: unknown }).stmt = {})).toThrow(TypeError);
    // Another text, however close, is its own parse.
    const other = `${sql}\n;DELETE FROM customers`;
    expect(parseSqlTree(other)).not.toBe(second);
    expect(parseSqlTree(other).stmts).toHaveLength(2);
    expect(classifySqlSync(other).class).toBe('write');
  });

  // Last: it breaks the parser for the rest of this module instance.
  it('fails closed for cached texts too once the parser has broken', () => {
    const cached = fresh('SELECT id FROM customers');
    expect(classifySqlSync(cached).class).toBe('read');
    parseSqlTree(cached);
    parser.overflowOn = 'OVERFLOW_NOW';
    try {
      expect(() => classifySqlSync(fresh('SELECT OVERFLOW_NOW'))).toThrow(/too complex/);
      expect(() => classifySqlSync(cached)).toThrow(ServiceUnavailableError);
      expect(() => parseSqlTree(cached)).toThrow(ServiceUnavailableError);
      expect(() => classifySqlSync(fresh('SELECT 1'))).toThrow(ServiceUnavailableError);
    } finally {
      parser.overflowOn = undefined;
    }
  });
});

import { beforeAll, describe, expect, it } from 'vitest';
import {
  classifySql,
  classifySqlSync,
  initSqlClassifier,
  parseSqlTree,
} from '../../lambdas/core/classify/sql.js';
import { BadRequestError, SqlParseError } from '../../lambdas/core/errors.js';
import type { SqlClass } from '../../lambdas/core/types.js';

beforeAll(async () => {
  await initSqlClassifier();
});

interface Case {
  readonly sql: string;
  readonly cls: SqlClass;
  /** A reason that must be given, in part. */
  readonly reason?: string | RegExp;
}

/** Each never-read class from the issue, with at least one example. */
const neverRead: Record<string, readonly Case[]> = {
  'data-modifying CTE': [
    {
      sql: 'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d',
      cls: 'write',
      reason: 'data-modifying CTE (DeleteStmt)',
    },
    {
      sql: 'WITH i AS (INSERT INTO t VALUES (1) RETURNING id) SELECT 1',
      cls: 'write',
      reason: 'data-modifying CTE (InsertStmt)',
    },
    {
      sql: 'WITH u AS (UPDATE t SET a = 1 RETURNING a) SELECT count(*) FROM u',
      cls: 'write',
      reason: 'data-modifying CTE (UpdateStmt)',
    },
    {
      sql: 'WITH m AS (MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE RETURNING t.id) SELECT * FROM m',
      cls: 'write',
      reason: 'data-modifying CTE (MergeStmt)',
    },
    {
      sql: 'WITH a AS (SELECT 1), b AS (WITH c AS (DELETE FROM t RETURNING 1) SELECT * FROM c) SELECT * FROM b',
      cls: 'write',
      reason: 'data-modifying CTE (DeleteStmt)',
    },
  ],
  'plain writes': [
    { sql: 'INSERT INTO t (a) VALUES (1)', cls: 'write', reason: 'InsertStmt' },
    { sql: 'UPDATE t SET a = 2 WHERE id = 1', cls: 'write' },
    { sql: 'DELETE FROM t WHERE id = 1', cls: 'write' },
    { sql: 'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a', cls: 'write' },
  ],
  'EXPLAIN ANALYZE of a write': [
    { sql: 'EXPLAIN ANALYZE DELETE FROM t', cls: 'write', reason: 'EXPLAIN ANALYZE executes the DeleteStmt' },
    {
      sql: 'EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1',
      cls: 'write',
      reason: 'EXPLAIN ANALYZE executes the UpdateStmt',
    },
    { sql: 'EXPLAIN (ANALYZE true) INSERT INTO t VALUES (1)', cls: 'write' },
    { sql: 'EXPLAIN DELETE FROM t', cls: 'write', reason: 'EXPLAIN of a DeleteStmt' },
    { sql: "EXPLAIN ANALYZE SELECT nextval('s')", cls: 'write', reason: 'function nextval' },
  ],
  'SELECT … INTO': [
    { sql: 'SELECT * INTO new_t FROM t', cls: 'ddl', reason: 'SELECT … INTO creates a table' },
  ],
  'locking clause': [
    { sql: 'SELECT * FROM t FOR UPDATE', cls: 'write', reason: 'FOR UPDATE/SHARE' },
    { sql: 'SELECT * FROM t WHERE id IN (SELECT id FROM u FOR SHARE)', cls: 'write' },
    { sql: 'SELECT * FROM t FOR NO KEY UPDATE SKIP LOCKED', cls: 'write' },
  ],
  COPY: [
    { sql: 'COPY t TO STDOUT', cls: 'admin', reason: 'COPY' },
    { sql: "COPY t FROM '/tmp/x.csv'", cls: 'admin' },
    { sql: "COPY (SELECT 1) TO PROGRAM 'curl evil'", cls: 'admin' },
    { sql: "COPY (DELETE FROM t RETURNING *) TO '/tmp/x'", cls: 'admin', reason: 'nested DeleteStmt' },
  ],
  DO: [{ sql: 'DO $$ BEGIN PERFORM pg_sleep(1); END $$', cls: 'admin', reason: 'DO runs' }],
  CALL: [{ sql: 'CALL archive_orders(30)', cls: 'write', reason: 'CALL runs a procedure' }],
  'prepared statements': [
    { sql: 'PREPARE p AS SELECT 1', cls: 'write' },
    { sql: 'PREPARE p AS DELETE FROM t', cls: 'write', reason: 'nested DeleteStmt' },
    { sql: 'EXECUTE p', cls: 'write' },
    { sql: 'DEALLOCATE p', cls: 'write' },
  ],
  'role changes': [
    { sql: 'SET ROLE admin', cls: 'privilege', reason: 'acting role' },
    { sql: "SET SESSION AUTHORIZATION 'postgres'", cls: 'privilege' },
    { sql: 'SET LOCAL ROLE admin', cls: 'privilege' },
    { sql: 'RESET ROLE', cls: 'privilege' },
    { sql: 'RESET ALL', cls: 'privilege' },
    { sql: "SELECT set_config('role', 'admin', false)", cls: 'privilege', reason: 'function set_config' },
    { sql: "SELECT pg_catalog.set_config('role', 'admin', false)", cls: 'privilege' },
  ],
  'other SET': [
    { sql: 'SET search_path = evil, public', cls: 'admin', reason: 'session settings' },
    { sql: 'SET statement_timeout = 0', cls: 'admin' },
    { sql: 'RESET work_mem', cls: 'admin' },
    { sql: 'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', cls: 'admin' },
  ],
  LOCK: [{ sql: 'LOCK TABLE t IN ACCESS EXCLUSIVE MODE', cls: 'write', reason: 'LOCK' }],
  maintenance: [
    { sql: 'VACUUM FULL t', cls: 'admin' },
    { sql: 'ANALYZE t', cls: 'admin' },
    { sql: 'CLUSTER t USING t_pkey', cls: 'admin' },
    { sql: 'REINDEX TABLE t', cls: 'admin' },
    { sql: 'CHECKPOINT', cls: 'admin' },
  ],
  'transaction control': [
    { sql: 'BEGIN', cls: 'write', reason: 'transaction control' },
    { sql: 'COMMIT', cls: 'write' },
    { sql: 'ROLLBACK', cls: 'write' },
    { sql: 'SAVEPOINT s1', cls: 'write' },
    { sql: "PREPARE TRANSACTION 'x'", cls: 'admin', reason: 'two-phase' },
  ],
  'LISTEN/NOTIFY': [
    { sql: 'LISTEN ch', cls: 'admin' },
    { sql: 'UNLISTEN *', cls: 'admin' },
    { sql: "NOTIFY ch, 'payload'", cls: 'write' },
  ],
  'a second statement after a harmless first': [
    { sql: 'SELECT 1; DELETE FROM t', cls: 'write', reason: 'statement 2 (DeleteStmt)' },
    { sql: 'SELECT 1; SELECT 2; DROP TABLE t', cls: 'ddl', reason: 'statement 3 (DropStmt)' },
    { sql: 'SELECT 1;GRANT ALL ON t TO PUBLIC', cls: 'privilege' },
  ],
  privilege: [
    { sql: 'GRANT SELECT ON t TO agent', cls: 'privilege' },
    { sql: 'REVOKE ALL ON t FROM agent', cls: 'privilege' },
    { sql: 'GRANT admin TO agent', cls: 'privilege' },
    { sql: "CREATE ROLE evil LOGIN PASSWORD 'x'", cls: 'privilege' },
    { sql: 'ALTER ROLE agent SUPERUSER', cls: 'privilege' },
    { sql: 'DROP ROLE agent', cls: 'privilege' },
    { sql: 'ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO agent', cls: 'privilege' },
    { sql: 'ALTER TABLE t OWNER TO agent', cls: 'ddl' },
    { sql: 'CREATE POLICY p ON t USING (true)', cls: 'privilege' },
  ],
  ddl: [
    { sql: 'CREATE TABLE x (id int)', cls: 'ddl' },
    { sql: 'CREATE TABLE x AS SELECT * FROM t', cls: 'ddl', reason: 'CREATE TABLE AS' },
    { sql: 'ALTER TABLE t ADD COLUMN b text', cls: 'ddl' },
    { sql: 'DROP TABLE t CASCADE', cls: 'ddl' },
    { sql: 'CREATE INDEX ON t (a)', cls: 'ddl' },
    { sql: 'CREATE VIEW v AS SELECT 1', cls: 'ddl' },
    { sql: 'CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$', cls: 'ddl' },
    { sql: 'TRUNCATE t', cls: 'ddl', reason: 'TRUNCATE' },
    { sql: "COMMENT ON TABLE t IS 'x'", cls: 'ddl' },
    { sql: 'ALTER TABLE t RENAME TO u', cls: 'ddl' },
  ],
  admin: [
    { sql: 'ALTER SYSTEM SET work_mem = 1', cls: 'admin' },
    { sql: 'CREATE DATABASE x', cls: 'admin' },
    { sql: 'CREATE EXTENSION dblink', cls: 'admin' },
    { sql: "LOAD 'x'", cls: 'admin' },
    { sql: 'DISCARD ALL', cls: 'admin' },
    { sql: 'DECLARE c CURSOR FOR SELECT 1', cls: 'admin' },
  ],
  'functions not on the allowlist': [
    {
      sql: "SELECT pg_read_file('/etc/passwd')",
      cls: 'admin',
      reason: 'function pg_read_file is not on the read allowlist',
    },
    { sql: 'SELECT pg_terminate_backend(123)', cls: 'admin' },
    { sql: "SELECT lo_export(1, '/tmp/x')", cls: 'admin' },
    { sql: "SELECT lo_import('/etc/passwd')", cls: 'admin' },
    { sql: "SELECT * FROM dblink('host=x', 'select 1') AS t(a int)", cls: 'admin' },
    { sql: "SELECT dblink_exec('drop table t')", cls: 'admin' },
    { sql: 'SELECT pg_sleep(10)', cls: 'admin' },
    { sql: "SELECT query_to_xml('delete from t', true, true, '')", cls: 'admin' },
    { sql: "SELECT nextval('seq')", cls: 'write', reason: 'function nextval' },
    { sql: "SELECT setval('seq', 1)", cls: 'write' },
    { sql: 'SELECT pg_advisory_lock(1)', cls: 'write' },
    { sql: 'SELECT my_udf(a) FROM t', cls: 'write', reason: 'function my_udf is not on the read allowlist' },
    { sql: 'SELECT * FROM generate_report()', cls: 'write' },
    { sql: 'SELECT public.lower(a) FROM t', cls: 'write', reason: 'function public.lower' },
    { sql: 'SELECT count(*) FROM t WHERE a = ANY(SELECT evil())', cls: 'write' },
    { sql: 'SELECT 1 WHERE EXISTS (SELECT 1 FROM t WHERE audit_log(t.id))', cls: 'write' },
  ],
  'operators and sampling not on the allowlist': [
    { sql: 'SELECT a ~~~ b FROM t', cls: 'write', reason: 'operator ~~~' },
    { sql: 'SELECT a OPERATOR(evil.+) b FROM t', cls: 'write', reason: 'operator evil.+' },
    {
      sql: 'SELECT * FROM t TABLESAMPLE system_rows(10)',
      cls: 'write',
      reason: 'TABLESAMPLE method system_rows',
    },
  ],
};

const reads: readonly string[] = [
  'SELECT 1',
  'SELECT * FROM t',
  'select a, b from s.t where a = 1 order by b desc limit 10 offset 5',
  'SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id LEFT JOIN x ON true',
  'SELECT * FROM t WHERE id IN (SELECT t_id FROM u WHERE u.flag) AND EXISTS (SELECT 1 FROM v)',
  "WITH recent AS (SELECT * FROM orders WHERE created_at > now() - interval '1 day') SELECT count(*) FROM recent",
  'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT sum(n) FROM r',
  'SELECT id, row_number() OVER (PARTITION BY a ORDER BY b), lag(b) OVER w, rank() OVER w FROM t WINDOW w AS (ORDER BY b)',
  'SELECT a FROM t UNION SELECT a FROM u INTERSECT SELECT a FROM v EXCEPT SELECT 1',
  'SELECT coalesce(a, 0), nullif(b, 0), lower(c), upper(c), length(c), substring(c from 1 for 3), trim(c) FROM t',
  "SELECT date_trunc('day', ts), extract(year FROM ts), to_char(ts, 'YYYY'), round(x::numeric, 2), abs(x) FROM t",
  "SELECT jsonb_build_object('a', a), data->>'name', data #> '{a,b}', json_agg(t) FROM t GROUP BY a, data",
  "SELECT string_agg(name, ', ' ORDER BY name), array_agg(DISTINCT id) FILTER (WHERE id > 0) FROM t",
  'SELECT pg_catalog.lower(a), CAST(b AS text), c::int, greatest(1, 2), least(3, 4) FROM t',
  "SELECT md5(a), concat(a, b), a || b, a LIKE 'x%', a ILIKE 'y', a BETWEEN 1 AND 2, a IS DISTINCT FROM b FROM t",
  "SELECT CASE WHEN a > 1 THEN 'big' ELSE 'small' END FROM t",
  'VALUES (1, 2), (3, 4)',
  'TABLE t',
  'SELECT * FROM t TABLESAMPLE BERNOULLI (10)',
  'EXPLAIN SELECT * FROM t',
  'EXPLAIN ANALYZE SELECT * FROM t',
  'EXPLAIN (ANALYZE false) SELECT 1',
  'SHOW search_path',
  "SELECT current_user, current_date, now(), current_setting('timezone')",
  'SELECT * FROM t WHERE id = :id AND name = :name',
  '/* leading comment */ SELECT 1 -- trailing',
];

describe('sql classifier', () => {
  for (const [group, cases] of Object.entries(neverRead)) {
    describe(`never calls ${group} read`, () => {
      it.each(cases)('$sql → $cls', async ({ sql, cls, reason }) => {
        const result = await classifySql(sql);
        expect(result.class).toBe(cls);
        expect(result.reasons.length).toBeGreaterThan(0);
        if (reason !== undefined) {
          const text = result.reasons.join(' | ');
          if (typeof reason === 'string') expect(text).toContain(reason);
          else expect(text).toMatch(reason);
        }
      });
    });
  }

  describe('calls plain reads read', () => {
    it.each(reads)('%s', (sql) => {
      const result = classifySqlSync(sql);
      expect(result.reasons).toEqual([]);
      expect(result.class).toBe('read');
      expect(result.statements.every((s) => s.class === 'read')).toBe(true);
    });
  });

  describe('tables and functions', () => {
    it('names tables schema-qualified, unqualified ones in public', () => {
      const r = classifySqlSync('SELECT * FROM sales.orders o JOIN customers c ON c.id = o.cid');
      expect(r.tables).toEqual(['public.customers', 'sales.orders']);
    });

    it('does not count CTE names as tables, but does count the tables behind them', () => {
      const r = classifySqlSync(
        'WITH recent AS (SELECT * FROM orders) SELECT * FROM recent JOIN items ON true',
      );
      expect(r.tables).toEqual(['public.items', 'public.orders']);
    });

    it('still counts a real table that shares its name with a CTE in another scope', () => {
      const r = classifySqlSync('SELECT * FROM x, (WITH x AS (SELECT 1) SELECT * FROM x) s');
      expect(r.tables).toEqual(['public.x']);
    });

    it('counts a table a CTE refers to before a later CTE of the same name exists', () => {
      const r = classifySqlSync('WITH a AS (SELECT * FROM b), b AS (SELECT * FROM a) SELECT * FROM b');
      expect(r.tables).toEqual(['public.b']);
    });

    it('lists the tables of writes, DDL, SELECT INTO and DROP', () => {
      expect(classifySqlSync('INSERT INTO audit.log SELECT * FROM events').tables).toEqual([
        'audit.log',
        'public.events',
      ]);
      expect(classifySqlSync('UPDATE t SET a = u.a FROM u WHERE u.id = t.id').tables).toEqual([
        'public.t',
        'public.u',
      ]);
      expect(classifySqlSync('SELECT * INTO backup FROM t').tables).toEqual(['public.backup', 'public.t']);
      expect(classifySqlSync('DROP TABLE a.b, c').tables).toEqual(['a.b', 'public.c']);
      expect(classifySqlSync('TRUNCATE x, y.z').tables).toEqual(['public.x', 'y.z']);
    });

    it('lists functions called, lower-case, schema-qualified as written', () => {
      const r = classifySqlSync(
        'SELECT count(*), pg_catalog.lower(a), EXTRACT(year FROM ts), my.f(1) FROM t',
      );
      expect(r.functions).toEqual(['count', 'extract', 'my.f', 'pg_catalog.lower']);
      expect(r.class).toBe('write');
      expect(r.reasons).toEqual(['function my.f is not on the read allowlist']);
    });
  });

  describe('Data API named parameters', () => {
    it('reads :name as a parameter in code, and leaves strings, identifiers, comments and slices alone', () => {
      const sql = [
        'SELECT * FROM "odd:name" WHERE a = :a AND b = :b_2::int',
        "AND c = ':x' AND d = E'\\':y' AND e = $$:z$$ AND f = $t$ :q $t$",
        'AND g[1:n] = 2 /* :c */ -- :w',
      ].join('\n');
      const r = classifySqlSync(sql);
      expect(r.class).toBe('read');
      expect(r.tables).toEqual(['public.odd:name']);
    });

    it("keeps the caller's positions in errors of parameterised text", () => {
      const sql = 'SELECT * FROM t WHERE a = :a AND AND b = :b';
      expect(() => classifySqlSync(sql)).toThrow(SqlParseError);
      try {
        classifySqlSync(sql);
      } catch (e) {
        expect((e as SqlParseError).details?.position).toBe(sql.indexOf('AND b') + 1);
      }
    });

    it('still sees a write after a parameter', () => {
      expect(classifySqlSync('SELECT :x; DELETE FROM t WHERE id = :id').class).toBe('write');
    });
  });

  describe('multi-statement text', () => {
    it('classifies each statement and takes the most dangerous class', () => {
      const r = classifySqlSync('SELECT 1; UPDATE t SET a = 1; GRANT SELECT ON t TO x; SELECT 2');
      expect(r.statements.map((s) => [s.type, s.class])).toEqual([
        ['SelectStmt', 'read'],
        ['UpdateStmt', 'write'],
        ['GrantStmt', 'privilege'],
        ['SelectStmt', 'read'],
      ]);
      expect(r.class).toBe('privilege');
      expect(r.reasons).toContain('statement 3 (GrantStmt): GrantStmt is a privilege statement');
    });

    it('keeps a text of several reads read', () => {
      expect(classifySqlSync('SELECT 1; SELECT * FROM t;').class).toBe('read');
    });

    it('keeps BEGIN; UPDATE; COMMIT a write, not admin', () => {
      expect(classifySqlSync('BEGIN; UPDATE t SET a = 1; COMMIT').class).toBe('write');
    });
  });

  describe('bad input', () => {
    it('throws SqlParseError with the parser message and a 1-based position', async () => {
      const err = await classifySql('SELECT * FRM t').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SqlParseError);
      expect((err as SqlParseError).message).toBe('syntax error at or near "FRM"');
      expect((err as SqlParseError).details).toEqual({ position: 10 });
      expect((err as SqlParseError).statusCode).toBe(400);
    });

    it('reports the position inside a later statement', () => {
      const sql = 'SELECT 1; SELEC 2';
      const err = (() => {
        try {
          classifySqlSync(sql);
        } catch (e) {
          return e as SqlParseError;
        }
        throw new Error('expected a parse error');
      })();
      expect(err.message).toBe('syntax error at or near "SELEC"');
      expect(err.details?.position).toBe(sql.lastIndexOf('SELEC') + 1);
    });

    it('reports an unterminated string', () => {
      expect(() => classifySqlSync("SELECT 'abc")).toThrow(SqlParseError);
    });

    it.each(['', '   \n\t', '-- just a comment', '/* only */', ';', ' ; ; '])(
      'refuses %j as no SQL statement',
      async (sql) => {
        await expect(classifySql(sql)).rejects.toThrow(BadRequestError);
        await expect(classifySql(sql)).rejects.toThrow('no SQL statement');
      },
    );
  });
});

describe('the parse a request reuses (classification, then its shown form)', () => {
  it('answers the same text from the last parse, frozen so no reader can change what the next sees', () => {
    const a = parseSqlTree('SELECT 1 FROM t WHERE x = 2');
    expect(parseSqlTree('SELECT 1 FROM t WHERE x = 2')).toBe(a);
    expect(() => {
      (a.stmts as unknown[]).push({});
    }).toThrow(TypeError);
    // A tampered tree cannot turn a write into a read: the classifier sees the frozen tree.
    expect(classifySqlSync('SELECT 1 FROM t WHERE x = 2').class).toBe('read');
  });

  it('never answers another text, however close, from the last parse', () => {
    expect(classifySqlSync('SELECT 1 FROM t').class).toBe('read');
    expect(classifySqlSync('SELECT 1 FROM t; DELETE FROM t').class).toBe('write');
    expect(classifySqlSync('SELECT 1 FROM t ').class).toBe('read');
    expect(parseSqlTree('DELETE FROM t')).not.toBe(parseSqlTree('DELETE FROM u'));
  });
});

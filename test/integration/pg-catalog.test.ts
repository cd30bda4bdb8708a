/**
 * The classifier's view of PostgreSQL's built-ins checked against PostgreSQL itself (PGlite):
 * the shipped catalogue lists are what the catalogue says, the read fixtures really are reads that
 * run in a read-only transaction, and attribute notation really calls functions.
 */
import { readFileSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PG_IMMUTABLE_FUNCTIONS,
  PG_OTHER_FUNCTIONS,
} from '../../lambdas/core/classify/pg-catalog-functions.js';
import { readPgCatalogFunctions } from '../../lib/local/pg-catalog.js';

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/sql/builtin-reads.json', import.meta.url), 'utf8'),
) as { read: { family: string; sql: string }[] };

let db: PGlite;

beforeAll(async () => {
  db = await PGlite.create();
  await db.exec(`
    CREATE TYPE rainbow AS ENUM ('red', 'orange', 'yellow', 'green', 'blue');
    CREATE TABLE customers (id serial PRIMARY KEY, name text);
    INSERT INTO customers (name) VALUES ('ada');
    CREATE TABLE shapes (path path, point point, box box, name text, area float8);
    CREATE TABLE ptif_test (a int) PARTITION BY RANGE (a);
    CREATE TABLE ptif_test0 PARTITION OF ptif_test FOR VALUES FROM (0) TO (100) PARTITION BY LIST (a);
    CREATE TABLE ptif_test01 PARTITION OF ptif_test0 FOR VALUES IN (1);
  `);
}, 60_000);

afterAll(async () => {
  await db?.close();
});

describe('pg-catalog-functions.ts', () => {
  it('lists exactly what the catalogue says (regenerate with lib/local/pg-catalog.ts)', async () => {
    const lists = await readPgCatalogFunctions(db);
    expect([...PG_IMMUTABLE_FUNCTIONS]).toEqual(lists.immutable);
    expect([...PG_OTHER_FUNCTIONS]).toEqual(lists.other);
  });
});

describe('the read fixtures', () => {
  it.each(fixture.read.map((c) => [c.family, c.sql] as const))(
    'run in a read-only transaction: %s',
    async (_family, sql) => {
      await db.exec('BEGIN READ ONLY');
      try {
        await db.query(sql);
      } finally {
        await db.exec('ROLLBACK');
      }
    },
  );
});

describe('attribute notation', () => {
  it("calls the function: ('customers_id_seq').nextval advances the sequence", async () => {
    const before = await db.query<{ v: string }>(`SELECT last_value::text AS v FROM customers_id_seq`);
    await db.query(`SELECT ('customers_id_seq').nextval`);
    const after = await db.query<{ v: string }>(`SELECT last_value::text AS v FROM customers_id_seq`);
    expect(Number(after.rows[0].v)).toBe(Number(before.rows[0].v) + 1);
  });
});

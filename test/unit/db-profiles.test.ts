/**
 * The masking SQL generator (lambdas/core/masking/db-profiles.ts): pure output, hostile names,
 * types kept, a real HMAC, and the generated SQL applied to PostgreSQL itself (PGlite).
 */
import { createHmac } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, type SqlTargetConfig } from '../../lambdas/core/config.js';
import {
  catalogueSql,
  checkProbes,
  evaluateProbe,
  exemptionProblems,
  generateMaskingSql,
  maskExpression,
  parseQualifiedName,
  quoteIdent,
  quoteLiteral,
  type CatalogueColumn,
} from '../../lambdas/core/masking/db-profiles.js';

const HOSTILE_SCHEMA = 'Sales "EU"; --';
const HOSTILE_TABLE = 'we"ird; DROP TABLE canary; --';
const HOSTILE_COLUMN = "a'b$warden$c\\";

function target(over: Record<string, unknown> = {}): SqlTargetConfig {
  const t = parseConfig({
    targets: {
      t: {
        kind: 'sql',
        resourceArn: 'arn:aws:rds:us-east-1:1:cluster:c',
        database: 'd',
        secrets: { read: 'r', write: 'w', maskedRead: 'mr', maskedWrite: 'mw' },
        masking: {
          rules: [
            { column: 'people.ssn', strategy: 'redact', type: 'SSN' },
            { column: 'people.card', strategy: 'partial', type: 'CARD' },
            { column: 'people.iban', strategy: 'partial', type: 'IBAN' },
            { column: 'people.email', strategy: 'hash', type: 'EMAIL' },
            { column: 'people.short', strategy: 'redact', type: 'SSN' },
            { column: 'people.fixed', strategy: 'hash', type: 'SSN' },
            { column: 'people.doc', strategy: 'redact', type: 'SSN' },
            { column: 'people.docb', strategy: 'hash', type: 'EMAIL' },
            { column: 'people.token', strategy: 'hash', type: 'COLUMN' },
            { column: 'people.num', strategy: 'hash', type: 'SSN' },
            { column: 'people.born', strategy: 'redact', type: 'DATE' },
            { column: 'people.nick', strategy: 'null' },
            { column: '*.*.' + HOSTILE_COLUMN.toLowerCase(), strategy: 'redact', type: 'SSN' },
          ],
        },
        db: { schemas: ['public', HOSTILE_SCHEMA] },
        ...over,
      },
    },
  }).targets.t;
  if (t.kind !== 'sql') throw new Error('not sql');
  return t;
}

describe('quoting', () => {
  it('always double-quotes names and doubles embedded quotes', () => {
    expect(quoteIdent('customers')).toBe('"customers"');
    expect(quoteIdent('a"b')).toBe('"a""b"');
    expect(() => quoteIdent('x'.repeat(64))).toThrow(/63 bytes/);
    expect(() => quoteIdent('a\0b')).toThrow(/NUL/);
    expect(() => quoteIdent('')).toThrow(/empty/);
  });

  it('writes literals as escape strings, whatever standard_conforming_strings says', () => {
    expect(quoteLiteral("it's \\ here")).toBe("E'it''s \\\\ here'");
    expect(() => quoteLiteral('a\0')).toThrow(/NUL/);
  });
});

describe('the generator, pure', () => {
  const columns: CatalogueColumn[] = [
    { schema: 'public', table: 'people', column: 'ssn', type: 'text', kind: 'r', position: 2 },
    { schema: 'public', table: 'people', column: 'id', type: 'integer', kind: 'r', position: 1 },
    { schema: 'public', table: 'orders', column: 'id', type: 'integer', kind: 'r', position: 1 },
  ];

  it('is a function of the configuration and the catalogue only (order of the catalogue included)', () => {
    const a = generateMaskingSql(target(), columns);
    const b = generateMaskingSql(target(), [...columns].reverse());
    expect(a).toEqual(b);
    expect(a.find((s) => s.startsWith('CREATE VIEW "warden_masked"."people"'))).toBe(
      'CREATE VIEW "warden_masked"."people" AS SELECT src."id", CASE WHEN src."ssn" IS NULL THEN NULL ' +
        `ELSE CAST(E'[SSN]' AS text) END AS "ssn" FROM "public"."people" AS src`,
    );
  });

  it('pins search_path, statement_timeout and standard_conforming_strings for every Warden user', () => {
    const sql = generateMaskingSql(target({ statementTimeoutMs: 2500 }), columns);
    for (const user of ['warden_ro', 'warden_rw', 'warden_masked_ro', 'warden_masked_rw']) {
      expect(sql).toContain(`ALTER ROLE "${user}" SET statement_timeout TO 2500`);
      expect(sql).toContain(`ALTER ROLE "${user}" SET standard_conforming_strings TO on`);
    }
    expect(sql).toContain(
      `ALTER ROLE "warden_masked_ro" SET search_path TO "warden_masked", ${quoteIdent(`warden_masked_${HOSTILE_SCHEMA}`)}`,
    );
    expect(sql).toContain(
      `ALTER ROLE "warden_ro" SET search_path TO "public", ${quoteIdent(HOSTILE_SCHEMA)}`,
    );
  });

  it('gives the masked writer SELECT on non-sensitive columns only, and nothing on the views', () => {
    const sql = generateMaskingSql(target(), columns);
    expect(sql).toContain('GRANT SELECT ("id") ON "public"."people" TO "warden_masked_rw"');
    expect(sql.filter((s) => /GRANT SELECT.*warden_masked_rw/.test(s) && s.includes('ssn'))).toEqual([]);
    expect(
      sql.filter((s) => /GRANT .* ON ALL TABLES IN SCHEMA "warden_masked" TO "warden_masked_rw"/.test(s)),
    ).toEqual([]);
  });

  it('refuses types that are not type names, so a catalogue cannot inject SQL', () => {
    const bad = (type: string) => () =>
      generateMaskingSql(target(), [
        { schema: 'public', table: 'people', column: 'ssn', type, kind: 'r', position: 1 },
      ]);
    expect(bad('text; DROP TABLE people')).toThrow(/not a type name/);
    expect(bad('text /* x */')).toThrow(/not a type name/);
    expect(bad('text) AS x FROM pg_authid --')).toThrow();
    expect(bad('')).toThrow();
    expect(bad('"my ""odd"" type"')).not.toThrow();
  });

  it('refuses configurations that would merge or hide users and schemas', () => {
    const dup = target({ db: { users: { read: 'same', write: 'same' } } });
    expect(() => generateMaskingSql(dup, [])).toThrow(/both "same"/);
    expect(() => generateMaskingSql(target({ db: { schemas: ['warden_masked'] } }), [])).toThrow(
      /may not include/,
    );
    expect(() => generateMaskingSql(target({ db: { schemas: ['pg_catalog'] } }), [])).toThrow(
      /may not include/,
    );
    expect(() => generateMaskingSql(target({ db: { schemas: ['x'.repeat(60)] } }), [])).toThrow(/63 bytes/);
    expect(() =>
      maskExpression({ column: 'a', strategy: 'redact', type: "X'; --" }, { column: 'a', type: 'text' }),
    ).toThrow(/not a label/);
  });

  it('judges probe outcomes: a denied probe that ran, or failed for another reason, is a failure', () => {
    const probes = checkProbes(target(), columns);
    const denied = probes.find((p) => p.expect.kind === 'denied')!;
    expect(evaluateProbe(denied, { ok: true, rows: [] })).toMatch(/the query ran/);
    expect(evaluateProbe(denied, { ok: false, sqlState: '42P01', message: 'no such table' })).toMatch(
      /42501/,
    );
    expect(
      evaluateProbe(denied, { ok: false, sqlState: '42501', message: 'permission denied' }),
    ).toBeUndefined();
    const settings = probes.find((p) => p.expect.kind === 'settings' && p.as === 'maskedRead')!;
    const path = JSON.stringify(['warden_masked', `warden_masked_${HOSTILE_SCHEMA}`]);
    const good = ['warden_masked_ro', path, '5000', 'on', 'false'];
    expect(evaluateProbe(settings, { ok: true, rows: [good] })).toBeUndefined();
    expect(evaluateProbe(settings, { ok: true, rows: [[...good.slice(0, 3), 'off', 'false']] })).toMatch(
      /standard_conforming_strings is off/,
    );
    expect(evaluateProbe(settings, { ok: true, rows: [[good[0], '["public"]', ...good.slice(2)]] })).toMatch(
      /search_path/,
    );
    expect(evaluateProbe(settings, { ok: true, rows: [[...good.slice(0, 4), 'true']] })).toMatch(/superuser/);
    // What reads as its owner: asked of both masked users, Warden's own schemas left out.
    const none = probes.filter((p) => p.expect.kind === 'none');
    expect(none.map((p) => p.as).sort()).toEqual([
      ...Array<string>(3).fill('maskedRead'),
      ...Array<string>(3).fill('maskedWrite'),
    ]);
    expect(none.filter((p) => /member of no role/.test(p.what))).toHaveLength(2);
    const owners = none.filter((p) => !/member of no role/.test(p.what));
    for (const p of owners) {
      expect(p.sql).toContain("'warden_private'");
      expect(p.sql).toContain(`'warden_masked_${HOSTILE_SCHEMA.replace(/'/g, "''")}'`);
      expect(evaluateProbe(p, { ok: true, rows: [] })).toBeUndefined();
      expect(evaluateProbe(p, { ok: true, rows: [['public.f(integer)'], ['public.v']] })).toMatch(
        /FAILED, it can: public\.f\(integer\), public\.v\. Fix: REVOKE/,
      );
    }
  });
});

describe('exceptions (db.maskedMayUse)', () => {
  const GEO = '"Geo ""Ref"""';
  it('takes names only as the check prints them, so nothing else reaches the SQL', () => {
    const ok = target({
      db: {
        schemas: ['public'],
        maskedMayUse: {
          relations: ['public.spatial_ref_sys', `${GEO}."x'y"`],
          functions: ['public.postgis_full_version()', 'public.f(integer, character varying(10))'],
        },
      },
    });
    expect(ok.db.maskedMayUse?.relations).toHaveLength(2);
    for (const relations of [
      ['spatial_ref_sys'],
      ['public.Spatial'],
      ["public.x'); DROP TABLE canary; --"],
      ['public."unterminated'],
      ['a.b.c'],
    ]) {
      expect(
        () => target({ db: { schemas: ['public'], maskedMayUse: { relations } } }),
        relations[0],
      ).toThrow(/schema\.name/);
    }
    for (const functions of [['public.f'], ['public.f(a))'], ['public.f(integer); DROP TABLE canary']]) {
      expect(
        () => target({ db: { schemas: ['public'], maskedMayUse: { functions } } }),
        functions[0],
      ).toThrow(/schema\.name\(argument types\)/);
    }
  });

  it('splits quoted names the way format(%I) wrote them', () => {
    expect(parseQualifiedName('public.spatial_ref_sys')).toEqual({
      schema: 'public',
      name: 'spatial_ref_sys',
    });
    expect(parseQualifiedName(`${GEO}."x.y"`)).toEqual({ schema: 'Geo "Ref"', name: 'x.y' });
    expect(parseQualifiedName('public.')).toBeUndefined();
    expect(parseQualifiedName('"".x')).toBeUndefined();
  });

  it("refuses an exempt table with a masked column, and anything in Warden's schemas", () => {
    const t = target({
      db: {
        schemas: ['public'],
        maskedMayUse: {
          relations: ['public.people', 'public.lookup', 'warden_masked.people', 'warden_private.hash_key'],
        },
      },
    });
    const columns: CatalogueColumn[] = [
      { schema: 'public', table: 'people', column: 'id', type: 'integer', kind: 'r', position: 1 },
      { schema: 'public', table: 'people', column: 'ssn', type: 'text', kind: 'r', position: 2 },
      { schema: 'public', table: 'lookup', column: 'code', type: 'text', kind: 'r', position: 1 },
    ];
    expect(exemptionProblems(t, columns)).toEqual([
      'db.maskedMayUse.relations: public.people has masked columns (ssn); the masked users would read them raw. Take it off (they read it through its masking view)',
      "db.maskedMayUse.relations: warden_masked.people is in Warden's own schema warden_masked; take it off",
      "db.maskedMayUse.relations: warden_private.hash_key is in Warden's own schema warden_private; take it off",
    ]);
    expect(exemptionProblems(target(), columns)).toEqual([]);
  });

  it('adds no probe and excludes nothing without exceptions', () => {
    const bare = checkProbes(target(), []);
    expect(bare.some((p) => p.what.includes('exempt'))).toBe(false);
    expect(
      bare.some(
        (p) =>
          p.sql.includes('NOT IN ((') || p.sql.includes('pg_get_function_identity_arguments(p.oid)) NOT IN'),
      ),
    ).toBe(false);
  });
});

describe('the generated SQL on PostgreSQL (PGlite)', () => {
  let db: PGlite;
  const t = target();
  const apply = async () => {
    const catalogue = await db.query<CatalogueColumn>(catalogueSql(t));
    const statements = generateMaskingSql(t, catalogue.rows);
    await db.transaction(async (tx) => {
      for (const s of statements) await tx.exec(s);
    });
    return { catalogue: catalogue.rows, statements };
  };
  const asRole = async <T>(role: string, text: string): Promise<T[]> => {
    // The Data API twin's emulated login: role settings, then the role.
    return db.transaction(async (tx) => {
      const settings = await tx.query<{ s: string }>(
        `SELECT unnest(setconfig) AS s FROM pg_db_role_setting WHERE setrole = (SELECT oid FROM pg_roles WHERE rolname = $1)`,
        [role],
      );
      for (const { s } of settings.rows) {
        const i = s.indexOf('=');
        await tx.query('SELECT set_config($1, $2, true)', [s.slice(0, i), s.slice(i + 1)]);
      }
      await tx.exec(`SET LOCAL ROLE ${quoteIdent(role)}`);
      return (await tx.query<T>(text)).rows;
    });
  };

  beforeAll(async () => {
    db = await PGlite.create();
    await db.exec(`
      CREATE TABLE canary (id int);
      CREATE TABLE people (
        id serial PRIMARY KEY, ssn text, card varchar(19), iban text, email varchar(40),
        short varchar(4), fixed char(11), doc jsonb, docb json, token uuid, num bigint, born date,
        nick text, note text
      );
      INSERT INTO people (ssn, card, iban, email, short, fixed, doc, docb, token, num, born, nick, note) VALUES
        ('123-45-6789', '4111-1111-1111-1111', 'DE89 3704 0044 0532 0130 00', 'Jane@Example.com', 'abcd',
         '123-45-6789', '{"a":1}', '[1]', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 123456789, '1980-02-03', 'jj', 'hello'),
        (NULL, NULL, 'GB82WEST12345698765432', 'jane@example.com', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'x');
      CREATE SCHEMA ${quoteIdent(HOSTILE_SCHEMA)};
      CREATE TABLE ${quoteIdent(HOSTILE_SCHEMA)}.${quoteIdent(HOSTILE_TABLE)} (id int, ${quoteIdent(HOSTILE_COLUMN)} text);
      INSERT INTO ${quoteIdent(HOSTILE_SCHEMA)}.${quoteIdent(HOSTILE_TABLE)} VALUES (1, 'secret-value-1');
      CREATE VIEW people_view AS SELECT id, ssn FROM people;`);
    await apply();
  }, 60_000);

  afterAll(async () => {
    await db?.close();
  });

  it('runs the exception probes with hostile names, excluding exactly what is named', async () => {
    const geo = quoteIdent(`Geo "Ref'`);
    await db.exec(`CREATE SCHEMA ${geo}; GRANT USAGE ON SCHEMA ${geo} TO PUBLIC;
      CREATE TABLE ${geo}."x'y" (code text); CREATE TABLE ${geo}.other (code text);
      CREATE VIEW ${geo}.v AS SELECT p.ssn FROM public.people p;
      GRANT SELECT ON ALL TABLES IN SCHEMA ${geo} TO PUBLIC;`);
    try {
      const exempt = target({
        db: {
          schemas: ['public', HOSTILE_SCHEMA],
          maskedMayUse: { relations: [`${geo}."x'y"`, `${geo}.v`] },
        },
      });
      const probes = checkProbes(exempt, []).filter(
        (p) =>
          p.as === 'maskedRead' && (p.what.includes('can read no table') || p.what.includes('exempt view')),
      );
      expect(probes).toHaveLength(2);
      const [relations, views] = await Promise.all(
        probes.map((p) => asRole<Record<string, string>>('warden_masked_ro', p.sql)),
      );
      const names = relations.map((r) => Object.values(r)[0]);
      expect(names).toContain(`${geo}.other`);
      expect(names).not.toContain(`${geo}."x'y"`);
      expect(names).not.toContain(`${geo}.v`);
      expect(views.map((r) => Object.values(r)[0])).toEqual([`${geo}.v reads public.people`]);
      expect((await db.query(`SELECT to_regclass('public.canary') AS c`)).rows[0]).toEqual({ c: 'canary' });
    } finally {
      await db.exec(`DROP SCHEMA ${geo} CASCADE`);
    }
  });

  it('applies with hostile schema, table and column names and injects nothing', async () => {
    expect((await db.query(`SELECT to_regclass('public.canary') AS c`)).rows[0]).toEqual({ c: 'canary' });
    const rows = await asRole<Record<string, unknown>>(
      'warden_masked_ro',
      `SELECT * FROM ${quoteIdent(HOSTILE_TABLE)}`,
    );
    expect(rows).toEqual([{ id: 1, [HOSTILE_COLUMN]: '[SSN]' }]);
  });

  it('is idempotent, and a second run removes a mis-grant', async () => {
    await db.exec('GRANT SELECT ON public.people TO warden_masked_ro');
    await expect(asRole('warden_masked_ro', 'SELECT ssn FROM public.people')).resolves.toHaveLength(2);
    await apply();
    await expect(asRole('warden_masked_ro', 'SELECT ssn FROM public.people')).rejects.toThrow(
      /permission denied/,
    );
  });

  it('masks with the same formats as the gateway and keeps each column type', async () => {
    const [row] = await asRole<Record<string, any>>('warden_masked_ro', 'SELECT * FROM people ORDER BY id');
    expect(row).toMatchObject({
      ssn: '[SSN]',
      card: '****-****-****-1111',
      iban: 'DE** **** **** **** **30 00',
      short: '[SSN]',
      doc: '[SSN]',
      docb: expect.stringMatching(/^hmac:[0-9a-f]{64}$/),
      born: null,
      nick: null,
      note: 'hello',
    });
    expect(row.email).toMatch(/^hmac:[0-9a-f]{64}$/);
    expect(row.fixed).toMatch(/^hmac:[0-9a-f]{64}$/);
    expect(row.token).toMatch(/^[0-9a-f-]{36}$/);
    expect(row.token).not.toBe('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
    expect(typeof row.num === 'bigint' || typeof row.num === 'number' || typeof row.num === 'string').toBe(
      true,
    );
    expect(String(row.num)).not.toBe('123456789');
    const types = await db.query<{ attname: string; t: string; v: string }>(
      `SELECT a.attname, format_type(a.atttypid, NULL) AS t, format_type(b.atttypid, NULL) AS v
         FROM pg_attribute a JOIN pg_attribute b ON b.attname = a.attname
        WHERE a.attrelid = 'public.people'::regclass AND b.attrelid = 'warden_masked.people'::regclass AND a.attnum > 0`,
    );
    for (const r of types.rows) expect(r.v, r.attname).toBe(r.t);
  });

  it('hashes with HMAC-SHA256 under a key only the owner can read, deterministic across formats', async () => {
    const [pads] = (
      await db.query<{ inner_pad: Uint8Array }>('SELECT inner_pad FROM warden_private.hash_key')
    ).rows;
    const key = Buffer.from(pads.inner_pad.slice(0, 32)).map((b) => b ^ 0x36);
    const rows = await asRole<{ email: string }>('warden_masked_ro', 'SELECT email FROM people ORDER BY id');
    const expected = 'hmac:' + createHmac('sha256', key).update('EMAIL:jane@example.com').digest('hex');
    expect(rows.map((r) => r.email)).toEqual([expected, expected]);
    await expect(asRole('warden_masked_ro', 'SELECT * FROM warden_private.hash_key')).rejects.toThrow(
      /permission denied/,
    );
    await expect(asRole('warden_masked_rw', 'SELECT * FROM warden_private.hash_key')).rejects.toThrow(
      /permission denied/,
    );
    // A second setup keeps the key (hashes stay joinable across setups).
    await apply();
    const again = await asRole<{ email: string }>('warden_masked_ro', 'SELECT email FROM people ORDER BY id');
    expect(again[0].email).toBe(expected);
  });

  it('gives the masked writer writes without reads of sensitive columns', async () => {
    await expect(
      asRole('warden_masked_rw', "UPDATE people SET note = 'n' WHERE id = 1 RETURNING id"),
    ).resolves.toEqual([{ id: 1 }]);
    for (const text of [
      'UPDATE people SET note = ssn WHERE id = 1',
      "UPDATE people SET note = 'x' WHERE ssn LIKE '1%'",
      'UPDATE people SET note = (SELECT p::text FROM people p LIMIT 1)',
      "INSERT INTO people (note) VALUES ('y') RETURNING ssn",
      "DELETE FROM people WHERE email = 'jane@example.com'",
    ]) {
      await expect(asRole('warden_masked_rw', text), text).rejects.toThrow(/permission denied/);
    }
    await expect(asRole('warden_masked_rw', 'SELECT * FROM people_view')).rejects.toThrow(
      /permission denied/,
    );
    await expect(asRole('warden_masked_ro', 'SELECT * FROM people_view')).rejects.toThrow();
  });
});

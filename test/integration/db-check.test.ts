/**
 * `warden db setup|check` against the twin, and what a failed check does to the gateway: a
 * deliberately mis-granted masked user fails the check (exit 1), and the target then refuses
 * masked principals (nothing runs) while unmasked ones are served.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbCommand } from '../../bin/db-cli.js';
import { demoConfig } from '../../lib/local/demo-config.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';

let twin: TestTwin;
const saved = { dir: process.env.WARDEN_DATA_DIR, config: process.env.WARDEN_CONFIG };

beforeAll(async () => {
  twin = await startTestTwin();
  // The CLI finds the twin through its data dir; it must use the demo config, not the handlers'.
  process.env.WARDEN_DATA_DIR = twin.dataDir;
  delete process.env.WARDEN_CONFIG;
}, 120_000);

afterAll(async () => {
  process.env.WARDEN_DATA_DIR = saved.dir;
  if (saved.config !== undefined) process.env.WARDEN_CONFIG = saved.config;
  await twin?.close();
});

async function cli(
  sub: 'setup' | 'check',
  options: { apply?: boolean; config?: string; endpoint?: string } = {},
) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await dbCommand(sub, 'demo', options, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('warden db setup', () => {
  it('prints the generated SQL as one transaction, and --apply applies it idempotently', async () => {
    const printed = await cli('setup');
    expect(printed.code).toBe(0);
    expect(printed.out).toMatch(/^-- warden db setup demo/);
    expect(printed.out).toContain('CREATE VIEW "warden_masked"."customers"');
    expect(printed.out).toContain('ALTER ROLE "warden_masked_ro" SET standard_conforming_strings TO on');
    expect(printed.out.trim().endsWith('COMMIT;')).toBe(true);
    const applied = await cli('setup', { apply: true });
    expect(applied.code).toBe(0);
    expect(applied.out).toMatch(/applied \d+ statements/);
  });
});

describe('warden db check and a mis-granted masked user', () => {
  it('fails the check, refuses masked principals and still serves unmasked ones', async () => {
    const good = await cli('check');
    expect(good.err).toBe('');
    expect(good.code).toBe(0);

    // The mistake an administrator could make by hand.
    await twin.db.exec('GRANT SELECT ON public.customers TO warden_masked_ro');
    const bad = await cli('check');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(
      /FAIL {2}warden_masked_ro cannot read public\.customers\.ssn: FAILED, the query ran/,
    );
    // The reader reads nothing but the masking views, whichever columns a grant covers.
    expect(bad.err).toContain(
      "warden_masked_ro can read no table, view, materialized view or foreign table outside Warden's schemas (a view reads as its owner): FAILED, it can: public.customers.",
    );

    // The instance that is up checked at its cold start and keeps that pass until it is re-checked
    // (five minutes by default: test/integration/db-masking-recheck.test.ts); a new
    // instance (a scale-out, a deploy) runs the same check during its init and refuses.
    await twin.restartApi();
    const text = 'SELECT id, ssn FROM customers ORDER BY id LIMIT 3';
    const carol = await twin.api('POST', '/v1/targets/demo/sql', {
      token: await twin.token('carol'),
      body: { sql: text },
    });
    expect(carol.status).toBe(403);
    expect(carol.body.error.code).toBe('masking_not_enforced');
    expect(carol.body.error.message).toMatch(/warden db setup demo --apply/);
    expect(twin.statementLog.filter((s) => s.sql.includes(text))).toHaveLength(0);

    const bob = await twin.api('POST', '/v1/targets/demo/sql', {
      token: await twin.token('bob'),
      body: { sql: text },
    });
    expect(bob.status).toBe(200);
    expect(bob.body.result.rows[0].ssn).toMatch(/^\d{3}-\d{2}-\d{4}$/);

    // Setup resets the privileges; the check passes again.
    expect((await cli('setup', { apply: true })).code).toBe(0);
    expect((await cli('check')).code).toBe(0);
  });

  it('fails the check when the masked writer may write a masked column (a setup from before this rule)', async () => {
    // What every earlier setup granted: INSERT and UPDATE on the whole table.
    await twin.db.exec('GRANT INSERT, UPDATE ON public.customers TO warden_masked_rw');
    const bad = await cli('check');
    expect(bad.code).toBe(1);
    for (const column of ['email', 'ssn', 'card_number']) {
      expect(bad.err).toContain(`warden_masked_rw cannot write public.customers.${column}: FAILED, it may`);
    }
    // Column by column, as a hand-made grant would be.
    expect((await cli('setup', { apply: true })).code).toBe(0);
    await twin.db.exec('GRANT UPDATE (ssn) ON public.customers TO warden_masked_rw');
    const one = await cli('check');
    expect(one.code).toBe(1);
    expect(one.err).toContain('warden_masked_rw cannot write public.customers.ssn: FAILED');
    expect(one.err).not.toContain('public.customers.email: FAILED');
    expect((await cli('setup', { apply: true })).code).toBe(0);
    expect((await cli('check')).code).toBe(0);
  });

  it('fails the check when a masked user may run a SECURITY DEFINER function or read a view: both read as their owner', async () => {
    // What an application schema often holds: a helper that runs as its owner (PostgreSQL grants
    // EXECUTE on every new function to PUBLIC), and a reporting view granted to PUBLIC.
    await twin.db
      .exec(`CREATE FUNCTION public.contact_of(cid integer) RETURNS text LANGUAGE sql SECURITY DEFINER
      AS $$ SELECT reverse(ssn) || ' ' || email FROM public.customers WHERE id = cid $$`);
    await twin.db.exec('CREATE VIEW public.contacts AS SELECT id, name, ssn, email FROM public.customers');
    await twin.db.exec('GRANT SELECT ON public.contacts TO PUBLIC');
    try {
      // The hole itself, at the database: the masked reader gets a raw (reversed) SSN.
      const leaked = await twin.db.transaction(async (tx) => {
        await tx.exec('SET LOCAL ROLE warden_masked_ro');
        const fn = await tx.query<{ c: string }>('SELECT public.contact_of(1) AS c');
        const view = await tx.query<{ ssn: string }>('SELECT ssn FROM public.contacts WHERE id = 1');
        return { fn: fn.rows[0].c, view: view.rows[0].ssn };
      });
      expect(leaked.view).toMatch(/^\d{3}-\d{2}-\d{4}$/);
      expect(leaked.fn.split(' ')[0].split('').reverse().join('')).toBe(leaked.view);

      const bad = await cli('check');
      expect(bad.code).toBe(1);
      expect(bad.err).toContain(
        "warden_masked_ro can run no SECURITY DEFINER function outside Warden's schemas (each runs as its owner): FAILED, it can: public.contact_of(cid integer)",
      );
      expect(bad.err).toContain(
        "warden_masked_rw can run no SECURITY DEFINER function outside Warden's schemas (each runs as its owner): FAILED, it can: public.contact_of(cid integer)",
      );
      expect(bad.err).toMatch(
        /warden_masked_ro can read no table, view, materialized view or foreign table outside Warden's schemas \(a view reads as its owner\): FAILED, it can: public\.contacts\. Fix: REVOKE SELECT/,
      );
      // A new instance refuses masked principals; nothing runs.
      await twin.restartApi();
      const text = 'SELECT id FROM customers WHERE id = 2';
      const carol = await twin.api('POST', '/v1/targets/demo/sql', {
        token: await twin.token('carol'),
        body: { sql: text },
      });
      expect(carol.status).toBe(403);
      expect(carol.body.error.code).toBe('masking_not_enforced');
      expect(twin.statementLog.filter((s) => s.sql.includes(text))).toHaveLength(0);

      // The fixes the report names.
      await twin.db.exec('REVOKE EXECUTE ON FUNCTION public.contact_of(integer) FROM PUBLIC');
      await twin.db.exec('REVOKE SELECT ON public.contacts FROM PUBLIC');
      expect((await cli('check')).code).toBe(0);
    } finally {
      await twin.db.exec('DROP VIEW IF EXISTS public.contacts');
      await twin.db.exec('DROP FUNCTION IF EXISTS public.contact_of(integer)');
    }
  });

  it('fails the check when a masked user may read a table in a schema Warden does not mask', async () => {
    // An old copy kept in another schema, readable by everyone: no masking view covers it.
    await twin.db.exec('CREATE SCHEMA archive');
    await twin.db.exec('CREATE TABLE archive.customers_2019 AS SELECT id, ssn FROM public.customers LIMIT 5');
    await twin.db.exec('GRANT USAGE ON SCHEMA archive TO PUBLIC');
    await twin.db.exec('GRANT SELECT ON archive.customers_2019 TO PUBLIC');
    try {
      const bad = await cli('check');
      expect(bad.code).toBe(1);
      expect(bad.err).toContain('warden_masked_ro can read no table');
      expect(bad.err).toContain('FAILED, it can: archive.customers_2019.');
      expect(bad.err).toContain('warden_masked_rw can read no view, materialized view or foreign table');
    } finally {
      await twin.db.exec('DROP SCHEMA archive CASCADE');
    }
    expect((await cli('check')).code).toBe(0);
  });

  it('fails the check when a masked user is made a member of a role, pg_read_all_data say', async () => {
    await twin.db.exec('GRANT pg_read_all_data TO warden_masked_ro');
    try {
      const bad = await cli('check');
      expect(bad.code).toBe(1);
      expect(bad.err).toContain(
        "warden_masked_ro is a member of no role (a member holds its roles' privileges): FAILED, it can: pg_read_all_data.",
      );
    } finally {
      await twin.db.exec('REVOKE pg_read_all_data FROM warden_masked_ro');
    }
    expect((await cli('check')).code).toBe(0);
  });

  it('fails the check when a Warden user loses standard_conforming_strings', async () => {
    await twin.db.exec('ALTER ROLE warden_rw SET standard_conforming_strings TO off');
    const bad = await cli('check');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/warden_rw: .*standard_conforming_strings is off/);
    expect((await cli('setup', { apply: true })).code).toBe(0);
    expect((await cli('check')).code).toBe(0);
  });
});

describe('warden db check: exceptions a database needs (db.maskedMayUse)', () => {
  /** The demo configuration with these exceptions, as a --config file for the CLI. */
  function withExceptions(maskedMayUse: { relations?: string[]; functions?: string[] }) {
    const config = demoConfig();
    const demo = config.targets!.demo as { db: Record<string, unknown> };
    demo.db = { ...demo.db, maskedMayUse };
    const dir = mkdtempSync(join(tmpdir(), 'warden-db-config-'));
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify(config));
    return { file, dispose: () => rmSync(dir, { recursive: true, force: true }) };
  }
  async function check(maskedMayUse: { relations?: string[]; functions?: string[] }) {
    const { file, dispose } = withExceptions(maskedMayUse);
    try {
      return await cli('check', { config: file, endpoint: twin.dataApiUrl });
    } finally {
      dispose();
    }
  }
  const AWS_ENV = ['AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'] as const;
  const savedEnv = Object.fromEntries(AWS_ENV.map((k) => [k, process.env[k]]));
  beforeAll(async () => {
    // --config is how an operator names a deployed target: the CLI then signs as the environment says.
    process.env.AWS_REGION = 'us-east-1';
    process.env.AWS_ACCESS_KEY_ID = 'local-twin';
    process.env.AWS_SECRET_ACCESS_KEY = 'local-twin';
    // What PostGIS installs into the data schema: a reference table and a catalogue view, both
    // readable by PUBLIC (its functions read them as whoever calls them).
    await twin.db.exec(
      `CREATE TABLE public.spatial_ref_sys (srid integer PRIMARY KEY, auth_name varchar(256), srtext varchar(2048))`,
    );
    await twin.db.exec(`INSERT INTO public.spatial_ref_sys VALUES (4326, 'EPSG', 'GEOGCS["WGS 84"]')`);
    await twin.db.exec(`CREATE VIEW public.geometry_columns AS
      SELECT n.nspname AS f_table_schema, c.relname AS f_table_name
        FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind = 'r'`);
    await twin.db.exec('GRANT SELECT ON public.spatial_ref_sys, public.geometry_columns TO PUBLIC');
    // An extension's helper that runs as its owner and returns nothing about the data.
    await twin.db
      .exec(`CREATE FUNCTION public.postgis_full_version() RETURNS text LANGUAGE sql SECURITY DEFINER
      AS $$ SELECT 'POSTGIS="3.4.2"'::text $$`);
    // The new table gets its masking view (no rule matches its columns).
    expect((await cli('setup', { apply: true })).code).toBe(0);
  }, 60_000);
  afterAll(async () => {
    await twin.db.exec('DROP VIEW IF EXISTS public.geometry_columns');
    await twin.db.exec('DROP TABLE IF EXISTS public.spatial_ref_sys CASCADE');
    await twin.db.exec('DROP FUNCTION IF EXISTS public.postgis_full_version()');
    await cli('setup', { apply: true });
    for (const k of AWS_ENV) {
      if (savedEnv[k] === undefined) delete process.env[k];
      else process.env[k] = savedEnv[k];
    }
  });

  const POSTGIS = {
    relations: ['public.spatial_ref_sys', 'public.geometry_columns'],
    functions: ['public.postgis_full_version()'],
  };

  it('fails without them, naming each; passes with exactly what the check named', async () => {
    const bare = await check({});
    expect(bare.code).toBe(1);
    expect(bare.err).toContain('FAILED, it can: public.geometry_columns, public.spatial_ref_sys.');
    expect(bare.err).toContain('FAILED, it can: public.postgis_full_version()');

    const exempt = await check(POSTGIS);
    expect(exempt.err).toBe('');
    expect(exempt.code).toBe(0);
    expect(exempt.out).toContain(
      'each exempt view warden_masked_ro may read reads only what warden_masked_ro may read on its own or is exempt',
    );
    // Only what is named: one exception does not cover the other.
    const half = await check({ relations: ['public.spatial_ref_sys'] });
    expect(half.code).toBe(1);
    expect(half.err).toContain('FAILED, it can: public.geometry_columns.');
    expect(half.err).not.toContain('public.spatial_ref_sys.');
  });

  it("refuses an exempt table with a masked column, and one in Warden's own schemas", async () => {
    const raw = await check({ ...POSTGIS, relations: [...POSTGIS.relations, 'public.customers'] });
    expect(raw.code).toBe(1);
    expect(raw.err).toMatch(
      /db\.maskedMayUse\.relations: public\.customers has masked columns \([a-z_, ]*\bssn\b[a-z_, ]*\); the masked users would read them raw/,
    );
    const own = await check({ relations: ['warden_private.hash_key'] });
    expect(own.code).toBe(1);
    expect(own.err).toContain("db.maskedMayUse.relations: warden_private.hash_key is in Warden's own schema");
  });

  it('refuses an exempt view that reads a data table, another view, or a catalogue table the user may not read', async () => {
    // A prompt-injected agent's way round an exception: a view the administrator was asked to exempt
    // ("it is only reference data") that reads the raw table as its owner.
    await twin.db.exec('CREATE VIEW public.regions AS SELECT id, ssn AS code FROM public.customers');
    // The same one step removed: the exempt view reads a view nobody exempted.
    await twin.db.exec('CREATE VIEW public.contact_codes AS SELECT id, email FROM public.customers');
    await twin.db.exec(
      'CREATE VIEW public.country_codes AS SELECT id, email AS code FROM public.contact_codes',
    );
    // Sampled raw values: pg_statistic holds the planner's histograms of every column (PostgreSQL
    // lets only superusers read it); a view over it, owned by the administrator, reads it all.
    await twin.db.exec('ANALYZE public.customers');
    await twin.db.exec(
      `CREATE VIEW public.column_stats AS SELECT starelid, staattnum, stavalues1::text AS v FROM pg_catalog.pg_statistic`,
    );
    await twin.db.exec('GRANT SELECT ON public.regions, public.country_codes, public.column_stats TO PUBLIC');
    try {
      // Each hole at the database: the masked reader reads raw values through the view.
      const leaked = await twin.db.transaction(async (tx) => {
        await tx.exec('SET LOCAL ROLE warden_masked_ro');
        const region = await tx.query<{ code: string }>('SELECT code FROM public.regions LIMIT 1');
        const country = await tx.query<{ code: string }>('SELECT code FROM public.country_codes LIMIT 1');
        const stats = await tx.query<{ v: string }>('SELECT v FROM public.column_stats');
        return {
          region: region.rows[0].code,
          country: country.rows[0].code,
          stats: stats.rows.map((r) => r.v).join(' '),
        };
      });
      expect(leaked.region).toMatch(/^\d{3}-\d{2}-\d{4}$/);
      expect(leaked.country).toMatch(/@/);
      expect(leaked.stats).toMatch(/\d{3}-\d{2}-\d{4}/);

      const bad = await check({
        ...POSTGIS,
        relations: [...POSTGIS.relations, 'public.regions', 'public.country_codes', 'public.column_stats'],
      });
      expect(bad.code).toBe(1);
      expect(bad.err).toContain('public.regions reads public.customers');
      expect(bad.err).toContain('public.country_codes reads public.contact_codes');
      expect(bad.err).toContain('public.column_stats reads pg_catalog.pg_statistic');
      expect(bad.err).not.toContain('public.geometry_columns reads');
      // Exempting the inner view too does not help: it reads the raw table in turn.
      const deeper = await check({
        ...POSTGIS,
        relations: [...POSTGIS.relations, 'public.country_codes', 'public.contact_codes'],
      });
      expect(deeper.code).toBe(1);
      expect(deeper.err).toContain('public.contact_codes reads public.customers');
    } finally {
      await twin.db.exec(
        'DROP VIEW IF EXISTS public.regions, public.country_codes, public.contact_codes, public.column_stats',
      );
    }
    expect((await check(POSTGIS)).code).toBe(0);
  });

  it('keeps refusing a SECURITY DEFINER function nobody exempted beside one that is', async () => {
    await twin.db
      .exec(`CREATE FUNCTION public.contact_of(cid integer) RETURNS text LANGUAGE sql SECURITY DEFINER
      AS $$ SELECT reverse(ssn) FROM public.customers WHERE id = cid $$`);
    try {
      const bad = await check(POSTGIS);
      expect(bad.code).toBe(1);
      expect(bad.err).toContain('FAILED, it can: public.contact_of(cid integer)');
      expect(bad.err).not.toContain('postgis_full_version');
    } finally {
      await twin.db.exec('DROP FUNCTION public.contact_of(integer)');
    }
  });
});

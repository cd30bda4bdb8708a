/**
 * `warden db setup|check` against the twin, and what a failed check does to the gateway: a
 * deliberately mis-granted masked user fails the check (exit 1), and the target then refuses
 * masked principals (nothing runs) while unmasked ones are served.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbCommand } from '../../bin/db-cli.js';
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

async function cli(sub: 'setup' | 'check', options: { apply?: boolean } = {}) {
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

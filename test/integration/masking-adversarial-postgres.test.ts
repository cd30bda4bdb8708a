/**
 * Issue 12's adversarial masking suite against a real PostgreSQL 15 server behind the same Data
 * API twin: the demo data and the generated database setup (masking views, profile users, grants,
 * role settings) applied to it, every statement logged in as the profile's own user, so the
 * role-level settings apply at login as on Aurora. Skips loudly without the binaries (and fails
 * instead under WARDEN_REQUIRE_POSTGRES=1, as in CI).
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { RDSDataClient } from '@aws-sdk/client-rds-data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDbCheck } from '../../lambdas/adapters/db-masking.js';
import { parseConfig, type SqlTargetConfig } from '../../lambdas/core/config.js';
import { demoConfig } from '../../lib/local/demo-config.js';
import type { DataApiSecret } from '../../lib/local/data-api.js';
import { DEMO_ROLES, DEMO_TARGET, demoSqlTarget, seedDemoDatabase } from '../../lib/local/demo-data.js';
import { maskingAdversarialSuite } from '../support/masking-attacks.js';
import { skipWithoutPostgres, startPostgres, type PostgresServer } from '../support/postgres.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';

describe.skipIf(skipWithoutPostgres('the adversarial masking suite'))('real PostgreSQL 15', () => {
  let server: PostgresServer;
  let admin: pg.Client;
  let twin: TestTwin;

  beforeAll(async () => {
    server = await startPostgres();
    const root = await server.connect();
    await root.query('CREATE DATABASE demo');
    await root.end();
    admin = await server.connect('demo');
    // The demo rows, then the setup `warden db setup demo` generates, applied by the superuser.
    await seedDemoDatabase(
      {
        exec: (sql) => admin.query(sql),
        query: async <T>(sql: string) => (await admin.query(sql)) as unknown as { rows: T[] },
      },
      { customers: 300 },
    );
    // Aurora's secrets hold each user's password; here the test makes them up.
    const secrets: Record<string, DataApiSecret> = {};
    for (const [arn, { role }] of Object.entries(DEMO_ROLES)) {
      if (role === server.superuser) {
        secrets[arn] = { role, password: server.superuserPassword };
        continue;
      }
      const password = randomBytes(18).toString('base64url');
      await admin.query(`ALTER ROLE "${role}" LOGIN PASSWORD '${password}'`);
      secrets[arn] = { role, password };
    }
    const users = Object.values(demoSqlTarget().db?.users ?? {});
    if (users.length === 0) throw new Error('the demo target names no database users');
    twin = await startTestTwin({
      postgres: { connection: { host: server.host, port: server.port, database: 'demo' }, secrets },
    });
  }, 180_000);

  afterAll(async () => {
    await twin?.close();
    await admin?.end();
    await server?.stop();
  });

  maskingAdversarialSuite('real PostgreSQL', () => ({ twin, adminSecret: DEMO_TARGET.adminSecret }));

  it('the check finds a SECURITY DEFINER function and a view granted to PUBLIC, both reading as their owner', async () => {
    const target = parseConfig(demoConfig()).targets.demo as SqlTargetConfig;
    const client = new RDSDataClient({
      endpoint: twin.dataApiUrl,
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    });
    expect((await runDbCheck(client, 'demo', target)).ok).toBe(true);
    await admin.query(`CREATE FUNCTION public.contact_of(cid integer) RETURNS text LANGUAGE sql
      SECURITY DEFINER AS $$ SELECT reverse(ssn) FROM public.customers WHERE id = cid $$`);
    await admin.query('CREATE VIEW public.contacts AS SELECT id, ssn FROM public.customers');
    await admin.query('GRANT SELECT ON public.contacts TO PUBLIC');
    try {
      const bad = await runDbCheck(client, 'demo', target);
      expect(bad.ok).toBe(false);
      expect(bad.problems.join('\n')).toContain('warden_masked_ro can run no SECURITY DEFINER function');
      expect(bad.problems.join('\n')).toContain('it can: public.contact_of(cid integer)');
      expect(bad.problems.join('\n')).toContain('warden_masked_rw can read no view');
      expect(bad.problems.join('\n')).toContain('it can: public.contacts.');
    } finally {
      await admin.query('DROP VIEW public.contacts');
      await admin.query('DROP FUNCTION public.contact_of(integer)');
      client.destroy();
    }
    expect((await runDbCheck(client, 'demo', target)).ok).toBe(true);
  }, 60_000);

  it("an exempt view over pg_statistic (the planner's samples of raw values) fails the check; a catalogue view passes", async () => {
    const base = demoConfig();
    const demo = base.targets!.demo as { db: Record<string, unknown> };
    demo.db = {
      ...demo.db,
      maskedMayUse: { relations: ['public.geometry_columns', 'public.column_stats'] },
    };
    const target = parseConfig(base).targets.demo as SqlTargetConfig;
    const client = new RDSDataClient({
      endpoint: twin.dataApiUrl,
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    });
    await admin.query('ANALYZE public.customers');
    await admin.query(`CREATE VIEW public.geometry_columns AS SELECT n.nspname, c.relname
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace`);
    await admin.query(`CREATE VIEW public.column_stats AS
      SELECT starelid, staattnum, stavalues1::text AS v FROM pg_catalog.pg_statistic`);
    await admin.query('GRANT SELECT ON public.geometry_columns, public.column_stats TO PUBLIC');
    try {
      // The hole at the database: as the masked reader, the view hands out sampled SSNs.
      await admin.query('SET ROLE warden_masked_ro');
      const sampled = await admin.query<{ v: string }>('SELECT v FROM public.column_stats');
      await admin.query('RESET ROLE');
      expect(sampled.rows.map((r) => r.v).join(' ')).toMatch(/\d{3}-\d{2}-\d{4}/);

      const bad = await runDbCheck(client, 'demo', target);
      expect(bad.ok).toBe(false);
      const text = bad.problems.join('\n');
      expect(text).toContain('public.column_stats reads pg_catalog.pg_statistic');
      expect(text).not.toContain('public.geometry_columns reads');
      await admin.query('DROP VIEW public.column_stats');
      const exempt = parseConfig({
        ...base,
        targets: {
          ...base.targets,
          demo: { ...demo, db: { ...demo.db, maskedMayUse: { relations: ['public.geometry_columns'] } } },
        },
      }).targets.demo as SqlTargetConfig;
      expect((await runDbCheck(client, 'demo', exempt)).problems).toEqual([]);
    } finally {
      await admin.query('RESET ROLE');
      await admin.query('DROP VIEW IF EXISTS public.column_stats, public.geometry_columns');
      client.destroy();
    }
  }, 60_000);
});

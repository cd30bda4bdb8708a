/**
 * The Data API twin over both of its backends: PGlite (one superuser connection, logins emulated
 * with SET LOCAL ROLE and the role's pg_db_role_setting entries) and a real PostgreSQL 15 server
 * (every request logged in as the secret's own user). The same statements through the real RDS
 * Data client answer the same on both; role-level settings apply; hostile input still behaves.
 */
import {
  BeginTransactionCommand,
  CommitTransactionCommand,
  ExecuteStatementCommand,
  RDSDataClient,
  type ExecuteStatementCommandInput,
} from '@aws-sdk/client-rds-data';
import { PGlite } from '@electric-sql/pglite';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDataApiServer, type DataApiServer } from '../../lib/local/data-api.js';
import { DEMO_READ_ROLE, DEMO_TARGET, DEMO_WRITE_ROLE, seedDemoDatabase } from '../../lib/local/demo-data.js';
import { skipWithoutPostgres, startPostgres, type PostgresServer } from '../support/postgres.js';

const credentials = { accessKeyId: 'x', secretAccessKey: 'x' };
const PROBE_SECRET = 'arn:aws:secretsmanager:us-east-1:000000000000:secret:settings-probe-Zz99Yy';
const PASSWORDS = { [DEMO_READ_ROLE]: 'ro-pw-1', [DEMO_WRITE_ROLE]: 'rw-pw-2', settings_probe: "pr'obe-3" };
const SECRETS = {
  [DEMO_TARGET.secrets.read]: { role: DEMO_READ_ROLE, password: PASSWORDS[DEMO_READ_ROLE] },
  [DEMO_TARGET.secrets.write]: { role: DEMO_WRITE_ROLE, password: PASSWORDS[DEMO_WRITE_ROLE] },
  [PROBE_SECRET]: { role: 'settings_probe', password: PASSWORDS.settings_probe },
};

/** A role whose login-time settings are visible: search_path, timeouts, string syntax, precedence. */
const PROBE_SETUP = `
  CREATE ROLE settings_probe LOGIN PASSWORD 'pr''obe-3';
  CREATE SCHEMA probe;
  CREATE TABLE probe.customers (id int, name text);
  INSERT INTO probe.customers VALUES (1, 'from the probe schema');
  GRANT USAGE ON SCHEMA probe TO settings_probe;
  GRANT SELECT ON probe.customers TO settings_probe;
  ALTER ROLE settings_probe SET search_path = probe, pg_catalog;
  ALTER ROLE settings_probe SET statement_timeout = '1500ms';
  ALTER ROLE settings_probe SET standard_conforming_strings = off;
  ALTER ROLE settings_probe SET application_name = 'probe-any-database';
  DO $$ BEGIN
    EXECUTE format('ALTER ROLE settings_probe IN DATABASE %I SET application_name = %L',
                   current_database(), 'probe-this-database');
  END $$;`;

interface Backend {
  server: DataApiServer;
  client: RDSDataClient;
  /** Runs SQL as the database superuser, outside the Data API. */
  admin(sql: string): Promise<unknown>;
  close(): Promise<void>;
}

function exec(
  b: Backend,
  input: Omit<ExecuteStatementCommandInput, 'resourceArn' | 'secretArn'>,
  secretArn: string = DEMO_TARGET.secrets.read,
) {
  return b.client.send(
    new ExecuteStatementCommand({
      resourceArn: DEMO_TARGET.resourceArn,
      secretArn,
      database: 'demo',
      ...input,
    }),
  );
}

/** What a call answers, success or failure, as comparable data. */
async function answer(
  b: Backend,
  input: Omit<ExecuteStatementCommandInput, 'resourceArn' | 'secretArn'>,
  secretArn?: string,
): Promise<unknown> {
  try {
    const out = await exec(b, input, secretArn);
    return {
      records: out.records,
      formattedRecords: out.formattedRecords,
      columnMetadata: out.columnMetadata,
      numberOfRecordsUpdated: out.numberOfRecordsUpdated,
    };
  } catch (err) {
    const e = err as Error & { $metadata?: { httpStatusCode?: number } };
    return { error: e.name, status: e.$metadata?.httpStatusCode, message: e.message };
  }
}

async function rejection(p: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number } }> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the call to fail');
}

function clientFor(server: DataApiServer): RDSDataClient {
  return new RDSDataClient({ endpoint: server.url, region: 'us-east-1', credentials, maxAttempts: 1 });
}

async function pgliteBackend(): Promise<Backend> {
  const db = new PGlite();
  await seedDemoDatabase(db, { customers: 60, seed: 11 });
  await db.exec(PROBE_SETUP);
  const server = await startDataApiServer({
    db,
    secrets: SECRETS,
    resourceArn: DEMO_TARGET.resourceArn,
    database: 'demo',
  });
  const client = clientFor(server);
  return {
    server,
    client,
    admin: (sql) => db.exec(sql),
    async close() {
      client.destroy();
      await server.close();
      await db.close();
    },
  };
}

async function postgresBackend(pgServer: PostgresServer): Promise<Backend> {
  const root = await pgServer.connect();
  await root.query('CREATE DATABASE demo');
  await root.end();
  const admin: pg.Client = await pgServer.connect('demo');
  await seedDemoDatabase(
    {
      exec: (sql) => admin.query(sql),
      query: async <T>(sql: string) => (await admin.query(sql)) as unknown as { rows: T[] },
    },
    { customers: 60, seed: 11 },
  );
  await admin.query(
    `ALTER ROLE ${DEMO_READ_ROLE} LOGIN PASSWORD '${PASSWORDS[DEMO_READ_ROLE]}';
     ALTER ROLE ${DEMO_WRITE_ROLE} LOGIN PASSWORD '${PASSWORDS[DEMO_WRITE_ROLE]}';`,
  );
  await admin.query(PROBE_SETUP);
  const server = await startDataApiServer({
    postgres: { host: pgServer.host, port: pgServer.port, database: 'demo' },
    secrets: SECRETS,
    resourceArn: DEMO_TARGET.resourceArn,
    database: 'demo',
  });
  const client = clientFor(server);
  return {
    server,
    client,
    admin: (sql) => admin.query(sql),
    async close() {
      client.destroy();
      await server.close();
      await admin.end();
    },
  };
}

/** The role-settings and hostile-input cases, the same on both backends. */
function loginBehaviour(name: string, backend: () => Backend, realServer: boolean): void {
  describe(`${name}: role-level settings apply at login`, () => {
    it("resolves unqualified names through the role's search_path, and nothing else", async () => {
      const b = backend();
      const path = await exec(b, { sql: 'show search_path' }, PROBE_SECRET);
      expect(path.records).toEqual([[{ stringValue: 'probe, pg_catalog' }]]);
      const rows = await exec(b, { sql: 'select name from customers' }, PROBE_SECRET);
      expect(rows.records).toEqual([[{ stringValue: 'from the probe schema' }]]);
      const raw = await rejection(exec(b, { sql: 'select count(*) from public.customers' }, PROBE_SECRET));
      expect(raw.message).toMatch(/^ERROR: permission denied for (schema public|table customers)/);
    });

    it('applies the role-in-database setting over the role-wide one', async () => {
      const out = await exec(backend(), { sql: 'show application_name' }, PROBE_SECRET);
      expect(out.records).toEqual([[{ stringValue: 'probe-this-database' }]]);
    });

    it("applies the role's statement_timeout", async () => {
      const b = backend();
      const shown = await exec(b, { sql: 'show statement_timeout' }, PROBE_SECRET);
      expect(shown.records).toEqual([[{ stringValue: '1500ms' }]]);
      if (realServer) {
        // PGlite has no timer signals, so only a real server can cancel (see data-api.ts).
        const err = await rejection(exec(b, { sql: 'select pg_sleep(30)' }, PROBE_SECRET));
        expect(err.name).toBe('BadRequestException');
        expect(err.message).toBe('ERROR: canceling statement due to statement timeout; SQLState: 57014');
      }
    });

    it("applies the role's standard_conforming_strings, and parameters stay data under it", async () => {
      const b = backend();
      const shown = await exec(b, { sql: 'show standard_conforming_strings' }, PROBE_SECRET);
      expect(shown.records).toEqual([[{ stringValue: 'off' }]]);
      // With it off a backslash escapes inside '…': 'x\\' is the two characters x\.
      const literal = await exec(b, { sql: String.raw`select 'x\\' as v` }, PROBE_SECRET);
      expect(literal.records).toEqual([[{ stringValue: 'x\\' }]]);
      const onForOthers = await exec(b, { sql: String.raw`select 'x\\' as v` });
      expect(onForOthers.records).toEqual([[{ stringValue: 'x\\\\' }]]);
      const hostile = String.raw`\'; select name from public.customers; --\\`;
      const bound = await exec(
        b,
        { sql: 'select :p::text as v', parameters: [{ name: 'p', value: { stringValue: hostile } }] },
        PROBE_SECRET,
      );
      expect(bound.records).toEqual([[{ stringValue: hostile }]]);
    });

    it('starts every request as a fresh login: what a statement SET does not carry over', async () => {
      const b = backend();
      await exec(b, { sql: 'set search_path = public' }, PROBE_SECRET);
      await exec(b, { sql: `set application_name = 'changed'` }, PROBE_SECRET);
      const after = await exec(
        b,
        { sql: 'select current_setting($$search_path$$), current_setting($$application_name$$)' },
        PROBE_SECRET,
      );
      expect(after.records).toEqual([
        [{ stringValue: 'probe, pg_catalog' }, { stringValue: 'probe-this-database' }],
      ]);
    });

    it('keeps the settings for every statement of a Data API transaction', async () => {
      const b = backend();
      const base = { resourceArn: DEMO_TARGET.resourceArn, secretArn: PROBE_SECRET, database: 'demo' };
      const { transactionId } = await b.client.send(new BeginTransactionCommand(base));
      const first = await exec(b, { sql: 'select name from customers', transactionId }, PROBE_SECRET);
      const second = await exec(b, { sql: 'show statement_timeout', transactionId }, PROBE_SECRET);
      await b.client.send(new CommitTransactionCommand({ ...base, transactionId }));
      expect(first.records).toEqual([[{ stringValue: 'from the probe schema' }]]);
      expect(second.records).toEqual([[{ stringValue: '1500ms' }]]);
    });
  });

  describe(`${name}: hostile input`, () => {
    it('refuses a NUL in a parameter or in the statement, and runs nothing', async () => {
      const b = backend();
      const before = await exec(b, { sql: 'select count(*) from orders' });
      for (const input of [
        {
          sql: 'insert into orders (customer_id, order_number, amount, status, created_at) values (1, :n, 1, :s, now())',
          parameters: [
            { name: 'n', value: { stringValue: 'ORD-NUL' } },
            { name: 's', value: { stringValue: 'paid\u0000; drop table orders' } },
          ],
        },
        {
          sql: `insert into orders (customer_id, order_number, amount, status, created_at) values (1, 'ORD-NUL2', 1, 'a\u0000b', now())`,
        },
      ]) {
        const err = await rejection(exec(b, input, DEMO_TARGET.secrets.write));
        expect(err.name).toBe('BadRequestException');
        expect(err.$metadata?.httpStatusCode).toBe(400);
      }
      const after = await exec(b, { sql: 'select count(*) from orders' });
      expect(after.records).toEqual(before.records);
    });

    it('refuses a role switch as PostgreSQL refuses it to a non-superuser', async () => {
      const err = await rejection(exec(backend(), { sql: 'set role postgres' }, PROBE_SECRET));
      expect(err.message).toBe('ERROR: permission denied to set role "postgres"; SQLState: 42501');
    });

    it('refuses a second statement smuggled after the first', async () => {
      const b = backend();
      const err = await rejection(
        exec(b, { sql: `select 1; update customers set name = 'x' where id = 1` }, DEMO_TARGET.secrets.write),
      );
      expect(err.name).toBe('BadRequestException');
      expect(err.message).toMatch(/cannot insert multiple commands into a prepared statement/);
      const name = await exec(b, { sql: 'select name from customers where id = 1' });
      expect(name.records![0][0].stringValue).not.toBe('x');
    });

    it('refuses an unknown secret without logging in', async () => {
      const err = await rejection(exec(backend(), { sql: 'select 1' }, `${PROBE_SECRET}-other`));
      expect(err.name).toBe('ForbiddenException');
    });
  });
}

describe('PGlite backend (emulated logins)', () => {
  let b: Backend;
  beforeAll(async () => {
    b = await pgliteBackend();
  });
  afterAll(async () => {
    await b?.close();
  });
  loginBehaviour('PGlite', () => b, false);
});

describe.skipIf(skipWithoutPostgres('Data API twin backends'))('real PostgreSQL backend', () => {
  let pgServer: PostgresServer;
  let real: Backend;
  let lite: Backend;
  beforeAll(async () => {
    pgServer = await startPostgres();
    [real, lite] = await Promise.all([postgresBackend(pgServer), pgliteBackend()]);
  });
  afterAll(async () => {
    await real?.close();
    await lite?.close();
    await pgServer?.stop();
  });

  loginBehaviour('PostgreSQL 15', () => real, true);

  it('logs in as the secret’s own user (session_user, not just current_user)', async () => {
    const out = await exec(real, { sql: 'select session_user::text, current_user::text' }, PROBE_SECRET);
    expect(out.records).toEqual([[{ stringValue: 'settings_probe' }, { stringValue: 'settings_probe' }]]);
  });

  it('fails like a login failure when a secret carries the wrong password', async () => {
    const server = await startDataApiServer({
      postgres: { host: pgServer.host, port: pgServer.port, database: 'demo' },
      secrets: { [PROBE_SECRET]: { role: 'settings_probe', password: 'wrong' } },
      resourceArn: DEMO_TARGET.resourceArn,
    }).catch((err: unknown) => err as Error);
    // Loading the type catalogue already logs in, so the server refuses to start at all.
    expect(server).toBeInstanceOf(Error);
    expect((server as Error).message).toMatch(/password authentication failed for user "settings_probe"/);
  });

  const SAME_ANSWERS: {
    title: string;
    input: Omit<ExecuteStatementCommandInput, 'resourceArn' | 'secretArn'>;
    secret?: string;
    /** The exception expected, when the call must fail. */
    failure?: string;
  }[] = [
    {
      title: 'typed rows with column metadata',
      input: {
        sql: `select c.id, c.name, c.card_number, c.created_at, o.amount, o.order_number, null::text as nothing,
                     array[1,2,3] as ints, array['a', null, 'b,c'] as texts, true as flag, 1.5::float8 as ratio,
                     '\\x00ff'::bytea as bin, '{"a": [1, 2]}'::jsonb as doc, date '2024-02-29' as d,
                     interval '1 day 2 hours' as i, '5d5b2e0e-0000-4000-8000-000000000001'::uuid as u,
                     12345678901234::int8 as big, 'NaN'::float8 as nan, 1.10::numeric(6,3) as num
                from customers c join orders o on o.customer_id = c.id order by o.id limit 5`,
        includeResultMetadata: true,
      },
    },
    {
      title: 'records formatted as JSON',
      input: {
        sql: 'select id, email, created_at from customers order by id limit 3',
        formatRecordsAs: 'JSON',
      },
    },
    {
      title: 'numbers as the result set options ask',
      input: {
        sql: 'select sum(amount) as total, count(*) as n, avg(amount)::numeric(12,2) as mean from orders',
        resultSetOptions: { decimalReturnType: 'DOUBLE_OR_LONG', longReturnType: 'STRING' },
      },
    },
    {
      title: 'parameters with type hints',
      input: {
        sql: 'select :d as d, :u as u, :n as n, :b as b, :l + 1 as l, :f as f, :x::text as x, :nothing::text as z',
        parameters: [
          { name: 'd', value: { stringValue: '2024-01-31' }, typeHint: 'DATE' },
          { name: 'u', value: { stringValue: '5d5b2e0e-0000-4000-8000-000000000002' }, typeHint: 'UUID' },
          { name: 'n', value: { stringValue: '10.250' }, typeHint: 'DECIMAL' },
          { name: 'b', value: { booleanValue: true } },
          { name: 'l', value: { longValue: 41 } },
          { name: 'f', value: { doubleValue: 0.25 } },
          { name: 'x', value: { stringValue: "it's :x and $1" } },
          { name: 'nothing', value: { isNull: true } },
        ],
        includeResultMetadata: true,
      },
    },
    {
      title: 'an unknown table',
      failure: 'BadRequestException',
      input: { sql: 'select * from no_such_table' },
    },
    {
      title: 'division by zero',
      failure: 'BadRequestException',
      input: { sql: 'select 1 / (count(*) - count(*)) from customers' },
    },
    { title: 'a syntax error', failure: 'BadRequestException', input: { sql: 'select from where' } },
    {
      title: 'a write with the read-only secret',
      failure: 'BadRequestException',
      input: { sql: `update customers set name = 'x' where id = 1` },
    },
    {
      title: 'a write with the read-write secret',
      input: { sql: `update orders set status = status where id <= 3` },
      secret: DEMO_TARGET.secrets.write,
    },
    {
      title: 'DDL with the read-write secret',
      failure: 'BadRequestException',
      input: { sql: 'create table public.sneaky (x int)' },
      secret: DEMO_TARGET.secrets.write,
    },
    { title: 'transaction control', failure: 'BadRequestException', input: { sql: 'commit' } },
    {
      title: 'a result over 1 MiB',
      failure: 'BadRequestException',
      input: { sql: `select repeat('x', 1024) from generate_series(1, 1100)` },
    },
    {
      title: 'an unknown database',
      failure: 'BadRequestException',
      input: { sql: 'select 1', database: 'nope' },
    },
  ];

  it.each(SAME_ANSWERS)(
    'answers the same as the PGlite backend: $title',
    async ({ input, secret, failure }) => {
      const [fromReal, fromLite] = await Promise.all([
        answer(real, input, secret),
        answer(lite, input, secret),
      ]);
      expect(fromReal).toEqual(fromLite);
      expect(fromReal).toHaveProperty(failure ? 'error' : 'numberOfRecordsUpdated');
      if (failure) expect((fromReal as { error: string }).error).toBe(failure);
    },
  );
});

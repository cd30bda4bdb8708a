import {
  BatchExecuteStatementCommand,
  BeginTransactionCommand,
  CommitTransactionCommand,
  ExecuteStatementCommand,
  RDSDataClient,
  RollbackTransactionCommand,
  type ExecuteStatementCommandInput,
} from '@aws-sdk/client-rds-data';
import { PGlite } from '@electric-sql/pglite';
import { loadModule } from 'libpg-query';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExecutionError, NotFoundError } from '../../lambdas/core/errors.js';
import { createRdsDataExecutor } from '../../lambdas/adapters/rds-data.js';
import {
  startDataApiServer,
  translateNamedParameters,
  type DataApiServer,
} from '../../lib/local/data-api.js';
import { DEMO_ROLES, DEMO_TARGET, seedDemoDatabase } from '../../lib/local/demo-data.js';

const CUSTOMERS = 300;
const credentials = { accessKeyId: 'x', secretAccessKey: 'x' };

let db: PGlite;
let server: DataApiServer;
let client: RDSDataClient;

const read = { resourceArn: DEMO_TARGET.resourceArn, secretArn: DEMO_TARGET.secrets.read, database: 'demo' };
const write = { ...read, secretArn: DEMO_TARGET.secrets.write };

function exec(input: Omit<ExecuteStatementCommandInput, 'resourceArn' | 'secretArn'>, as = read) {
  return client.send(new ExecuteStatementCommand({ ...as, ...input }));
}

async function rejection(p: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number } }> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the call to fail');
}

beforeAll(async () => {
  db = new PGlite();
  await seedDemoDatabase(db, { customers: CUSTOMERS, seed: 7 });
  await db.exec(
    'CREATE TABLE public.scratch (id serial PRIMARY KEY, note text, at date, ref uuid, n numeric(8,3))',
  );
  // Tables created after seeding get the roles' grants through default privileges.
  server = await startDataApiServer({
    db,
    secrets: { ...DEMO_ROLES },
    resourceArn: DEMO_TARGET.resourceArn,
    database: DEMO_TARGET.database,
  });
  client = new RDSDataClient({ endpoint: server.url, region: 'us-east-1', credentials, maxAttempts: 1 });
});

afterAll(async () => {
  client?.destroy();
  await server?.close();
  await db?.close();
});

describe('demo database', () => {
  it('seeds the requested number of customers and a few orders each, idempotently', async () => {
    await seedDemoDatabase(db, { customers: 50 });
    const counts = await db.query<{ c: number; o: number }>(
      'select (select count(*)::int from customers) c, (select count(*)::int from orders) o',
    );
    expect(counts.rows[0].c).toBe(CUSTOMERS);
    expect(counts.rows[0].o).toBeGreaterThan(CUSTOMERS);
  });

  it('generates card numbers that pass Luhn, well-formed SSNs, IBANs with valid mod-97 and order numbers', async () => {
    const { rows } = await db.query<{
      card_number: string | null;
      ssn: string;
      iban: string | null;
      email: string;
    }>('select card_number, ssn, iban, email from customers');
    const luhn = (n: string) =>
      [...n].reverse().reduce((sum, ch, i) => {
        let d = Number(ch);
        if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
        return sum + d;
      }, 0) %
        10 ===
      0;
    const cards = rows.map((r) => r.card_number).filter((c): c is string => c !== null);
    expect(cards.length).toBeGreaterThan(CUSTOMERS / 2);
    for (const card of cards) {
      expect(card).toMatch(/^(4\d{3}|5[1-5]\d{2}|2[2-7]\d{2})([- ]\d{4}){3}$/);
      expect(luhn(card.replace(/\D/g, ''))).toBe(true);
    }
    for (const { ssn, email } of rows) {
      expect(ssn).toMatch(/^\d{3}-\d{2}-\d{4}$/);
      const area = Number(ssn.slice(0, 3));
      expect(area === 0 || area === 666 || area >= 900).toBe(false);
      expect(email).toMatch(/^[a-z]+\.[a-z]+\d+@(mail\.)?example\.(com|net|org)$/);
    }
    const ibans = rows.map((r) => r.iban).filter((i): i is string => i !== null);
    expect(new Set(ibans.map((i) => i.slice(0, 2)))).toEqual(new Set(['DE', 'GB', 'FR']));
    for (const spaced of ibans) {
      const iban = spaced.replace(/ /g, '');
      expect(iban.length).toBe({ DE: 22, GB: 22, FR: 27 }[iban.slice(0, 2)]);
      const numeric = (iban.slice(4) + iban.slice(0, 4)).replace(/[A-Z]/g, (c) =>
        String(c.charCodeAt(0) - 55),
      );
      expect(BigInt(numeric) % 97n).toBe(1n);
    }
    const orders = await db.query<{ order_number: string }>('select order_number from orders');
    for (const o of orders.rows) expect(o.order_number).toMatch(/^ORD-20(22|23|24)-\d{6}$/);
  });
});

describe('named parameters', () => {
  beforeAll(() => loadModule());

  it('replaces :name outside literals, comments and quoted identifiers, and keeps :: casts', () => {
    const { text, order } = translateNamedParameters(
      `select 'a :id é', "col:id", :id::int, $$ :id $$, arr[1:2], :other -- :id\n/* :id */ , :id`,
      new Set(['id', 'other']),
    );
    expect(text).toBe(`select 'a :id é', "col:id", $1::int, $$ :id $$, arr[1:2], $2 -- :id\n/* :id */ , $1`);
    expect(order).toEqual(['id', 'other']);
  });

  it('leaves names that were not supplied for PostgreSQL to reject', () => {
    expect(translateNamedParameters('select :missing', new Set(['id'])).text).toBe('select :missing');
  });
});

describe('local Data API with the real RDS Data client', () => {
  it('returns typed records and PgJDBC-like column metadata', async () => {
    const out = await exec({
      sql: `select c.id, c.name, c.card_number, c.created_at, o.amount, o.order_number, null::text as nothing,
                   array[1,2,3] as ints, true as flag, 1.5::float8 as ratio
              from customers c join orders o on o.customer_id = c.id order by o.id limit 3`,
      includeResultMetadata: true,
    });
    expect(out.records).toHaveLength(3);
    const row = out.records![0];
    expect(row[0].longValue).toEqual(expect.any(Number));
    expect(row[1].stringValue).toEqual(expect.any(String));
    expect(row[3].stringValue).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?$/);
    expect(row[4].stringValue).toMatch(/^\d+\.\d\d$/); // numeric stays exact, as a string
    expect(row[6]).toEqual({ isNull: true });
    expect(row[7].arrayValue).toEqual({ longValues: [1, 2, 3] });
    expect(row[8].booleanValue).toBe(true);
    expect(row[9].doubleValue).toBe(1.5);
    const meta = out.columnMetadata!;
    expect(meta.map((m) => m.name)).toEqual([
      'id',
      'name',
      'card_number',
      'created_at',
      'amount',
      'order_number',
      'nothing',
      'ints',
      'flag',
      'ratio',
    ]);
    expect(meta[0]).toMatchObject({
      typeName: 'serial',
      type: 4,
      tableName: 'customers',
      nullable: 0,
      isAutoIncrement: true,
    });
    expect(meta[2]).toMatchObject({ typeName: 'text', type: 12, tableName: 'customers', nullable: 1 });
    expect(meta[3]).toMatchObject({ typeName: 'timestamptz', type: 93 });
    expect(meta[4]).toMatchObject({
      typeName: 'numeric',
      type: 2,
      precision: 10,
      scale: 2,
      tableName: 'orders',
    });
    expect(meta[7]).toMatchObject({ typeName: '_int4', type: 2003, arrayBaseColumnType: 4 });
    expect(meta[6]).toMatchObject({ tableName: '', nullable: 2 });
    expect(out.numberOfRecordsUpdated).toBe(0);
  });

  it('formats records as a JSON string when asked', async () => {
    const out = await exec({
      sql: 'select id, email from customers order by id limit 2',
      formatRecordsAs: 'JSON',
    });
    expect(out.records).toBeUndefined();
    const rows = JSON.parse(out.formattedRecords!) as { id: number; email: string }[];
    expect(rows).toEqual([
      { id: 1, email: expect.stringContaining('@') },
      { id: 2, email: expect.stringContaining('@') },
    ]);
  });

  it('binds named parameters, leaving a colon inside a literal and a ::int cast alone', async () => {
    const out = await exec({
      sql: `select ':id is not a parameter' as lit, :id::int + 1 as next, name from customers where id = :id and :flag`,
      parameters: [
        { name: 'id', value: { longValue: 5 } },
        { name: 'flag', value: { booleanValue: true } },
      ],
    });
    expect(out.records).toHaveLength(1);
    expect(out.records![0][0].stringValue).toBe(':id is not a parameter');
    expect(out.records![0][1].longValue).toBe(6);
  });

  it('honours typeHint for DATE, UUID and DECIMAL parameters', async () => {
    const out = await exec({
      sql: `select pg_typeof(:d)::text, pg_typeof(:u)::text, pg_typeof(:n)::text, :d + 1 as next_day`,
      parameters: [
        { name: 'd', value: { stringValue: '2024-02-28' }, typeHint: 'DATE' },
        { name: 'u', value: { stringValue: '6f1c0b9e-58c4-4f5e-9a51-3d1ad2d1c0aa' }, typeHint: 'UUID' },
        { name: 'n', value: { stringValue: '12.345' }, typeHint: 'DECIMAL' },
      ],
    });
    expect(out.records![0].map((f) => f.stringValue)).toEqual(['date', 'uuid', 'numeric', '2024-02-29']);
  });

  it('runs BatchExecuteStatement once per parameter set, atomically', async () => {
    const sql = 'insert into scratch (note, n) values (:note, :n)';
    const out = await client.send(
      new BatchExecuteStatementCommand({
        ...write,
        sql,
        parameterSets: ['one', 'two', 'three'].map((note, i) => [
          { name: 'note', value: { stringValue: `batch-${note}` } },
          { name: 'n', value: { doubleValue: i + 0.5 } },
        ]),
      }),
    );
    expect(out.updateResults).toHaveLength(3);
    const failing = await rejection(
      client.send(
        new BatchExecuteStatementCommand({
          ...write,
          sql: 'insert into scratch (id, note) values (:id, :note)',
          parameterSets: [
            [
              { name: 'id', value: { longValue: 900001 } },
              { name: 'note', value: { stringValue: 'batch-dup' } },
            ],
            [
              { name: 'id', value: { longValue: 900001 } },
              { name: 'note', value: { stringValue: 'batch-dup' } },
            ],
          ],
        }),
      ),
    );
    expect(failing.name).toBe('BadRequestException');
    const count = await exec({ sql: `select count(*)::int from scratch where note like 'batch-%'` });
    expect(count.records![0][0].longValue).toBe(3);
  });

  it('commits a transaction, and a rollback really undoes its writes', async () => {
    const begin = await client.send(new BeginTransactionCommand(write));
    await exec(
      { sql: `insert into scratch (note) values ('tx-committed')`, transactionId: begin.transactionId },
      write,
    );
    const commit = await client.send(
      new CommitTransactionCommand({ ...write, transactionId: begin.transactionId! }),
    );
    expect(commit.transactionStatus).toBe('Transaction Committed');

    const second = await client.send(new BeginTransactionCommand(write));
    await exec(
      { sql: `insert into scratch (note) values ('tx-rolled-back')`, transactionId: second.transactionId },
      write,
    );
    const inside = await exec(
      {
        sql: `select count(*)::int from scratch where note = 'tx-rolled-back'`,
        transactionId: second.transactionId,
      },
      write,
    );
    expect(inside.records![0][0].longValue).toBe(1);
    const rollback = await client.send(
      new RollbackTransactionCommand({ ...write, transactionId: second.transactionId! }),
    );
    expect(rollback.transactionStatus).toBe('Rollback Complete');

    const after = await exec({
      sql: `select note from scratch where note in ('tx-committed', 'tx-rolled-back') order by note`,
    });
    expect(after.records!.map((r) => r[0].stringValue)).toEqual(['tx-committed']);
  });

  it('answers NotFoundException for an unknown or finished transaction', async () => {
    const err = await rejection(exec({ sql: 'select 1', transactionId: 'no-such-transaction' }));
    expect(err.name).toBe('NotFoundException');
    expect(err.$metadata?.httpStatusCode).toBe(404);
  });

  it('rolls back a transaction left idle past the timeout', async () => {
    const quick = await startDataApiServer({
      db,
      secrets: { ...DEMO_ROLES },
      resourceArn: DEMO_TARGET.resourceArn,
      // Long enough that the statement inside the transaction arrives before it on a loaded
      // machine (100 ms was not, once, under load 9 on Node 22); the read below waits it out.
      transactionTimeoutMs: 1_500,
    });
    const quickClient = new RDSDataClient({
      endpoint: quick.url,
      region: 'us-east-1',
      credentials,
      maxAttempts: 1,
    });
    try {
      const begin = await quickClient.send(new BeginTransactionCommand(write));
      await quickClient.send(
        new ExecuteStatementCommand({
          ...write,
          sql: `insert into scratch (note) values ('tx-abandoned')`,
          transactionId: begin.transactionId,
        }),
      );
      // The held connection is released only by the timeout's rollback, so this waits for it.
      const seen = await quickClient.send(
        new ExecuteStatementCommand({
          ...read,
          sql: `select count(*)::int from scratch where note = 'tx-abandoned'`,
        }),
      );
      expect(seen.records![0][0].longValue).toBe(0);
      const err = await rejection(
        quickClient.send(new CommitTransactionCommand({ ...write, transactionId: begin.transactionId! })),
      );
      expect(err.name).toBe('NotFoundException');
    } finally {
      quickClient.destroy();
      await quick.close();
    }
  });

  it("carries PostgreSQL's error message and SQLState in a BadRequestException", async () => {
    const err = await rejection(exec({ sql: 'select * from no_such_table' }));
    expect(err.name).toBe('BadRequestException');
    expect(err.$metadata?.httpStatusCode).toBe(400);
    expect(err.message).toBe(
      'ERROR: relation "no_such_table" does not exist\n  Position: 15; SQLState: 42P01',
    );
  });

  it("refuses a write with the read-only secret through PostgreSQL's own permissions", async () => {
    const err = await rejection(exec({ sql: `update customers set name = 'x' where id = 1` }));
    expect(err.name).toBe('BadRequestException');
    expect(err.message).toBe('ERROR: permission denied for table customers; SQLState: 42501');
    const unchanged = await exec({ sql: 'select name from customers where id = 1' });
    expect(unchanged.records![0][0].stringValue).not.toBe('x');
  });

  it('refuses DDL with the read-write secret', async () => {
    const err = await rejection(exec({ sql: 'create table public.sneaky (x int)' }, write));
    expect(err.message).toMatch(/^ERROR: permission denied for schema public/);
  });

  it.each([
    'reset role',
    'set role postgres',
    'set local role postgres',
    'set session authorization default',
    `select set_config('role', 'postgres', true)`,
  ])('refuses %s as a non-superuser login would', async (sql) => {
    const err = await rejection(exec({ sql }));
    expect(err.name).toBe('BadRequestException');
    expect(err.message).toMatch(/^ERROR: permission denied to set role ".+"; SQLState: 42501$/);
  });

  it('refuses a role switch before running it, naming the role asked for', async () => {
    const err = await rejection(exec({ sql: 'set role warden_rw' }));
    expect(err.message).toBe('ERROR: permission denied to set role "warden_rw"; SQLState: 42501');
  });

  it('rolls back a statement that escapes its role through dynamic SQL', async () => {
    const err = await rejection(
      exec({ sql: `do $$ begin execute 'reset role'; execute 'create table public.pwned (x int)'; end $$` }),
    );
    expect(err.message).toMatch(/permission denied to set role/);
    const table = await db.query<{ t: string | null }>(`select to_regclass('public.pwned')::text as t`);
    expect(table.rows[0].t).toBeNull();
  });

  it('refuses transaction control inside ExecuteStatement', async () => {
    const err = await rejection(exec({ sql: 'commit' }));
    expect(err.name).toBe('BadRequestException');
    expect(err.message).toMatch(/BeginTransaction/);
  });

  it('fails like the service when a result exceeds 1 MiB', async () => {
    const err = await rejection(exec({ sql: `select repeat('x', 1024) from generate_series(1, 1100)` }));
    expect(err.name).toBe('BadRequestException');
    expect(err.message).toBe('Database returned more than the allowed response size limit');
    const fits = await exec({ sql: `select repeat('x', 1024) from generate_series(1, 900)` });
    expect(fits.records).toHaveLength(900);
  });

  it('refuses an unknown secret, an unknown cluster and an unknown database', async () => {
    const secret = await rejection(
      exec({ sql: 'select 1' }, { ...read, secretArn: `${read.secretArn}-nope` }),
    );
    expect(secret.name).toBe('ForbiddenException');
    const cluster = await rejection(
      client.send(
        new ExecuteStatementCommand({ ...read, resourceArn: `${read.resourceArn}-nope`, sql: 'select 1' }),
      ),
    );
    expect(cluster.name).toBe('BadRequestException');
    const database = await rejection(exec({ sql: 'select 1', database: 'other' }));
    expect(database.message).toMatch(/database "other" does not exist; SQLState: 3D000/);
  });

  it('describes columns as they are now, after a change made on the database, through the endpoint or in a rolled-back transaction', async () => {
    const admin = { ...read, secretArn: DEMO_TARGET.adminSecret };
    await db.exec(
      'CREATE TABLE public.meta_probe (id int, note text); GRANT SELECT ON public.meta_probe TO warden_ro',
    );
    // A plain SELECT each time, so only the change itself can make the twin read the catalogs again.
    const nullable = async () =>
      (await exec({ sql: 'select note from meta_probe', includeResultMetadata: true })).columnMetadata![0]
        .nullable;
    expect(await nullable()).toBe(1);
    expect(await nullable()).toBe(1);
    await db.exec('ALTER TABLE public.meta_probe ALTER COLUMN note SET NOT NULL');
    expect(await nullable()).toBe(0);
    await exec({ sql: 'ALTER TABLE public.meta_probe ALTER COLUMN note DROP NOT NULL' }, admin);
    expect(await nullable()).toBe(1);
    const { transactionId } = await client.send(new BeginTransactionCommand(admin));
    await exec({ sql: 'ALTER TABLE public.meta_probe ALTER COLUMN note SET NOT NULL', transactionId }, admin);
    const inside = await exec(
      { sql: 'select note from meta_probe', includeResultMetadata: true, transactionId },
      admin,
    );
    expect(inside.columnMetadata![0].nullable).toBe(0);
    await client.send(new RollbackTransactionCommand({ ...admin, transactionId }));
    expect(await nullable()).toBe(1);
    // A plain SELECT of a function that runs DDL: the function is someone's code, so it counts.
    await db.exec(
      `CREATE FUNCTION public.meta_migrate() RETURNS int LANGUAGE plpgsql AS $$ BEGIN ` +
        `ALTER TABLE public.meta_probe ALTER COLUMN note SET NOT NULL; RETURN 1; END $$`,
    );
    expect(await nullable()).toBe(1); // metadata read again after the CREATE, and kept
    await exec({ sql: 'select meta_migrate()' }, admin);
    expect(await nullable()).toBe(0);
    // (a built-in in a plain SELECT is not: the cached metadata is used, and still right)
    await exec({ sql: "select lower('X'), pg_catalog.upper('y')" }, admin);
    expect(await nullable()).toBe(0);
  });

  it("applies the role's login settings as they are now, changed on the database or through the endpoint", async () => {
    const admin = { ...read, secretArn: DEMO_TARGET.adminSecret };
    const appName = async () =>
      (await exec({ sql: `select current_setting('application_name')` })).records![0][0].stringValue;
    const before = await appName();
    expect(await appName()).toBe(before);
    await db.exec(`ALTER ROLE warden_ro SET application_name = 'set-on-the-database'`);
    expect(await appName()).toBe('set-on-the-database');
    expect(await appName()).toBe('set-on-the-database');
    await exec({ sql: `ALTER ROLE warden_ro SET application_name = 'set-through-the-endpoint'` }, admin);
    expect(await appName()).toBe('set-through-the-endpoint');
    await db.exec('ALTER ROLE warden_ro RESET application_name');
    expect(await appName()).toBe(before);
  });

  it('logs every statement attempted with its secret, role and outcome', async () => {
    const marker = `log-marker-${Date.now()}`;
    await exec({ sql: `select '${marker}'` });
    await rejection(exec({ sql: `delete from customers where name = '${marker}'` }));
    const entries = server.statementLog.filter((e) => e.sql.includes(marker));
    expect(entries).toEqual([
      expect.objectContaining({
        secretArn: read.secretArn,
        role: 'warden_ro',
        ok: true,
        operation: 'ExecuteStatement',
      }),
      expect.objectContaining({
        secretArn: read.secretArn,
        role: 'warden_ro',
        ok: false,
        error: 'ERROR: permission denied for table customers; SQLState: 42501',
      }),
    ]);
    expect(Date.parse(entries[0].at)).not.toBeNaN();
  });
});

describe('RDS Data executor against the local Data API', () => {
  const executor = () => createRdsDataExecutor({ client, targets: { demo: { ...DEMO_TARGET } } });

  it('returns a SqlResult with columns, row objects and counts', async () => {
    const result = await executor().execute({
      target: 'demo',
      level: 'read',
      sql: 'select id, email, created_at from customers where id <= :max order by id',
      parameters: [{ name: 'max', value: 3 }],
      maxRows: 100,
    });
    expect(result.columns).toEqual([
      { name: 'id', type: 'serial', table: 'customers' },
      { name: 'email', type: 'text', table: 'customers' },
      { name: 'created_at', type: 'timestamptz', table: 'customers' },
    ]);
    expect(result.rows.map((r) => r.id)).toEqual([1, 2, 3]);
    expect(result.rows[0].email).toEqual(expect.stringContaining('@'));
    expect(result).toMatchObject({ truncated: false, rowCount: 3 });
  });

  it('truncates at maxRows without rewriting the SQL', async () => {
    const result = await executor().execute({
      target: 'demo',
      level: 'read',
      sql: 'select id from customers order by id',
      maxRows: 10,
    });
    expect(result.rows).toHaveLength(10);
    expect(result).toMatchObject({ truncated: true, rowCount: 10 });
    expect(server.statementLog.at(-1)?.sql).toBe('select id from customers order by id');
  });

  it('keeps both values when two columns share a name', async () => {
    const result = await executor().execute({
      target: 'demo',
      level: 'read',
      sql: 'select 1 as a, 2 as a',
      maxRows: 10,
    });
    expect(result.rows).toEqual([{ a: 1, a_2: 2 }]);
  });

  it('runs writes with the write secret and reports the rows updated', async () => {
    const result = await executor().execute({
      target: 'demo',
      level: 'write',
      sql: `insert into scratch (note, at, ref) values ('exec-a', :at, :ref), ('exec-b', :at, :ref)`,
      parameters: [
        { name: 'at', value: '2024-05-01', typeHint: 'DATE' },
        { name: 'ref', value: '6f1c0b9e-58c4-4f5e-9a51-3d1ad2d1c0aa', typeHint: 'UUID' },
      ],
      maxRows: 10,
    });
    expect(result).toMatchObject({ rowCount: 2, rows: [], truncated: false });
    expect(server.statementLog.at(-1)).toMatchObject({
      secretArn: DEMO_TARGET.secrets.write,
      role: 'warden_rw',
      ok: true,
    });
  });

  it("maps a SQL error to 400 sql_error with PostgreSQL's message", async () => {
    const err = await rejection(
      executor().execute({ target: 'demo', level: 'read', sql: 'select nope from customers', maxRows: 10 }),
    );
    expect(err).toBeInstanceOf(ExecutionError);
    expect(err).toMatchObject({ statusCode: 400, code: 'sql_error' });
    expect(err.message).toMatch(/^ERROR: column "nope" does not exist/);
  });

  it('maps a write through the read-only user to 403 database_permission_denied', async () => {
    const err = await rejection(
      executor().execute({ target: 'demo', level: 'read', sql: 'delete from orders', maxRows: 10 }),
    );
    expect(err).toMatchObject({ statusCode: 403, code: 'database_permission_denied' });
    const still = await exec({ sql: 'select count(*)::int from orders' });
    expect(still.records![0][0].longValue).toBeGreaterThan(0);
  });

  it('runs an oversized read once and answers 422 result_too_large, never a smaller re-run', async () => {
    const sql = `select g, repeat('x', 1024) as pad from generate_series(1, 1100) as g`;
    const runs = () => server.statementLog.filter((s) => s.sql.includes('generate_series(1, 1100)')).length;
    const before = runs();
    const err = await rejection(executor().execute({ target: 'demo', level: 'read', sql, maxRows: 1000 }));
    expect(err).toMatchObject({ statusCode: 422, code: 'result_too_large' });
    expect(err.message).not.toMatch(/may have been applied/);
    expect(runs() - before).toBe(1);
  });

  it('answers an oversized write with 422 result_too_large and never re-runs it', async () => {
    const sql = `select repeat('x', 1024) from generate_series(1, 1100)`;
    const before = server.statementLog.filter((s) => s.sql.includes('generate_series(1, 1100)')).length;
    const err = await rejection(executor().execute({ target: 'demo', level: 'write', sql, maxRows: 10 }));
    expect(err).toMatchObject({ statusCode: 422, code: 'result_too_large' });
    expect(err.message).toMatch(/LIMIT/);
    const after = server.statementLog.filter((s) => s.sql.includes('generate_series(1, 1100)')).length;
    expect(after - before).toBe(1);
  });

  it('refuses an unknown target without calling the Data API', async () => {
    const before = server.statementLog.length;
    const err = await rejection(
      executor().execute({ target: 'prod', level: 'read', sql: 'select 1', maxRows: 1 }),
    );
    expect(err).toBeInstanceOf(NotFoundError);
    expect(server.statementLog.length).toBe(before);
  });

  it('never reports success when the Data API cannot be reached', async () => {
    const gone = await startDataApiServer({
      db,
      secrets: { ...DEMO_ROLES },
      resourceArn: DEMO_TARGET.resourceArn,
    });
    await gone.close();
    const deadClient = new RDSDataClient({
      endpoint: gone.url,
      region: 'us-east-1',
      credentials,
      maxAttempts: 1,
    });
    try {
      const err = await rejection(
        createRdsDataExecutor({ client: deadClient, targets: { demo: { ...DEMO_TARGET } } }).execute({
          target: 'demo',
          level: 'write',
          sql: `update scratch set note = note`,
          maxRows: 1,
        }),
      );
      expect(err).toBeInstanceOf(ExecutionError);
      expect((err as ExecutionError).statusCode).toBeGreaterThanOrEqual(502);
      expect(err.message).toMatch(/may or may not have been applied/);
    } finally {
      deadClient.destroy();
    }
  });
});

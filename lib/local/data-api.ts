/**
 * The local twin of the RDS Data API: an HTTP server that speaks the Data API's REST-JSON wire
 * protocol in front of PostgreSQL, so `@aws-sdk/client-rds-data` is the SQL executor in both worlds
 * (only `endpoint` differs). Two backends share everything above the connection (wire shapes,
 * value mapping, parameters, transactions, errors): an embedded PGlite (`db`, the twin's default)
 * or a real PostgreSQL server on loopback (`postgres`, used by the tests that need real logins).
 *
 * Fidelity notes (what the real service does, and how the twin emulates it):
 * - Each secret maps to a database user. The real service logs in as the secret's user, so the
 *   user's privileges and its role-level settings (`ALTER ROLE … SET search_path`,
 *   `statement_timeout`, `standard_conforming_strings`, …) apply from login.
 * - With `postgres`, the twin does the same: each secret has a small pool of connections logged in
 *   with its own user and password. After each request (or Data API transaction) the connection
 *   is reset with `DISCARD ALL`, so what a statement SET does not reach the next request and the
 *   role-level values are back. A change to a role's settings reaches connections logged in after
 *   it (idle ones are closed after 10 s), as on any pooled server.
 * - With PGlite there is one connection, logged in as a superuser, so every request runs inside
 *   a transaction that begins with `RESET ALL` (a fresh login's defaults), then EMULATES THE
 *   LOGIN: it applies the role's `pg_db_role_setting` entries with transaction-local `set_config`
 *   (PostgreSQL's precedence: `ALTER ROLE ALL`, then `ALTER DATABASE`, then `ALTER ROLE`, then
 *   `ALTER ROLE … IN DATABASE`; a `role` setting is ignored), then `SET LOCAL ROLE <role>`.
 *   The role's settings and the tables' column metadata are read from the catalogs once and kept
 *   until the catalogs may have changed: a statement through the endpoint that is not plain DML
 *   (SELECT/INSERT/UPDATE/DELETE/MERGE), or any SQL run on the PGlite instance by anyone else
 *   (seen at PGlite's execProtocolRawSync). Plain DML that calls a function PostgreSQL does
 *   not ship counts as not plain (that function may run DDL). (PgJDBC, behind the service, keeps
 *   column metadata per connection and never forgets it, so the service is staler than this.)
 *   Privileges are therefore PostgreSQL's own: a write with the read-only secret fails with
 *   PostgreSQL's "permission denied for table …". Deviations: `RESET x` / `SET x TO DEFAULT`
 *   inside a request returns to the server default, not the role's value (a real login's reset
 *   value is the role's); and PGlite has no timer signals, so `statement_timeout` is set and
 *   shown but never cancels anything (the real-server tests check cancellation, SQLSTATE 57014).
 * - Emulating a non-superuser login: because the session user underneath is a superuser, a
 *   statement could switch back (`RESET ROLE`, `SET ROLE postgres`, `SET SESSION AUTHORIZATION`,
 *   `set_config('role', …)`). As defence in depth the PGlite backend (1) refuses, before running
 *   it, any statement whose parse tree sets `role`/`session_authorization` or calls `set_config`,
 *   with the error PostgreSQL gives a non-superuser ("permission denied to set role", SQLState
 *   42501), and (2) after every statement checks, inside the same transaction, that
 *   `current_user` is still the secret's role and the transaction is still open (catching dynamic
 *   SQL in `DO` blocks or functions); if not, the transaction is rolled back and the same error
 *   returned. Deviation: on Aurora a non-superuser's `RESET ROLE` is a harmless no-op and
 *   `set_config` of an ordinary setting works; here both are refused. With `postgres` none of
 *   this is needed (the login is real) and PostgreSQL decides.
 * - Transaction control statements (`BEGIN`, `COMMIT`, …) inside ExecuteStatement are refused; use
 *   BeginTransaction/CommitTransaction/RollbackTransaction (savepoints are allowed).
 * - Like the service's driver, every request sets `TimeZone = 'UTC'` and `DateStyle = 'ISO, MDY'`
 *   for its transaction, after the login's settings.
 * - A transaction opened with BeginTransaction holds its connection until commit, rollback, or
 *   `transactionTimeoutMs` of inactivity (then it is rolled back, like the service's
 *   idle-transaction timeout). PGlite is single-connection: requests are serialized, and other
 *   requests wait meanwhile, where the real service (and the `postgres` backend) would use
 *   another connection.
 * - The server holds PGlite's own query lock while it works, so other code using the same PGlite
 *   instance (e.g. a test reading rows directly) is serialized with it and never runs inside a
 *   request's transaction.
 * - Results over 1 MiB fail with BadRequestException "Database returned more than the allowed
 *   response size limit", like the service. The statement itself has already run (and, outside a
 *   transaction, committed), as on the service.
 * - Values follow the service's PostgreSQL mapping: integers → longValue, floats → doubleValue,
 *   numeric → stringValue, bool → booleanValue, bytea → blobValue, arrays → arrayValue, everything
 *   else (text, dates, uuid, json…) → stringValue; timestamps in UTC as `YYYY-MM-DD HH:MM:SS[.f]`.
 *   Column metadata follows PgJDBC's (JDBC type numbers, `serial` for nextval-defaulted integers).
 * - Parameters: `:name` is replaced by `$n` using PostgreSQL's own lexer (libpg-query `scan`), so
 *   string literals, comments, quoted identifiers and `::` casts are never touched. longValue is
 *   sent as int8, doubleValue as float8, booleanValue as bool, blobValue as bytea; stringValue is
 *   left for PostgreSQL to infer unless a typeHint (DATE, TIME, TIMESTAMP, DECIMAL, UUID, JSON)
 *   gives its type.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { protocol, type PGlite } from '@electric-sql/pglite';
import { loadModule, parse, scanSync } from 'libpg-query';
import { isBuiltinFunction } from '../../lambdas/core/classify/sql-functions.js';
import { closeServer, keepAliveWithMargin, listenLoopback } from './listen.js';

export interface DataApiSecret {
  /**
   * The database user a request with this secret logs in as (PGlite: the role it runs as, through
   * `SET LOCAL ROLE`).
   */
  readonly role: string;
  /** The user's password: required with a real PostgreSQL server, unused with PGlite. */
  readonly password?: string;
}

interface CommonServerOptions {
  /** @default 0 (any free port) */
  readonly port?: number;
  /** @default '127.0.0.1' */
  readonly host?: '127.0.0.1';
  /** Secret ARN → the user requests with that secret log in as. */
  readonly secrets: Record<string, DataApiSecret>;
  /** The only cluster ARN the endpoint answers for. */
  readonly resourceArn: string;
  /** When set, a request naming another database fails like the service (3D000). */
  readonly database?: string;
  /** @default 1_048_576 (the service's 1 MiB response limit) */
  readonly maxResponseBytes?: number;
  /** Idle time after which an open transaction is rolled back. @default 60_000 */
  readonly transactionTimeoutMs?: number;
  /** Oldest entries are dropped past this many. @default 100_000 */
  readonly maxLogEntries?: number;
}

/** Either an embedded PGlite (`db`) or a real PostgreSQL server on loopback (`postgres`). */
export type DataApiServerOptions = CommonServerOptions &
  (
    | { readonly db: PGlite; readonly postgres?: undefined }
    | { readonly postgres: PostgresConnection; readonly db?: undefined }
  );

export interface StatementLogEntry {
  readonly at: string;
  readonly secretArn: string;
  /** The role the statement ran as ('' when the secret was unknown). */
  readonly role: string;
  readonly sql: string;
  readonly ok: boolean;
  readonly error?: string;
  readonly operation: 'ExecuteStatement' | 'BatchExecuteStatement';
  readonly transactionId?: string;
}

/**
 * A second endpoint of the same Data API twin that answers only calls naming one of its secrets:
 * the twin's stand-in for an IAM policy that lets a function read some secrets and not others.
 */
export interface RestrictedDataApiEndpoint {
  readonly url: string;
  /** Secret ARNs refused so far, in order (tests). */
  readonly refused: readonly string[];
  close(): Promise<void>;
}

export interface DataApiServer {
  readonly url: string;
  readonly port: number;
  /**
   * Opens another endpoint on loopback for `allowedSecrets` only: a call naming any other secret
   * (or none) is answered as the Data API answers a secret the caller may not read (403
   * ForbiddenException, "access to it is denied") before anything runs. The twin points the API
   * function's Data API client here, so its runtime cannot reach the write credentials, while the
   * execute function uses the unrestricted endpoint. Same process and handler, no proxy hop.
   */
  restrictedEndpoint(allowedSecrets: readonly string[]): Promise<RestrictedDataApiEndpoint>;
  close(): Promise<void>;
  /** Every statement attempted through the endpoint, in order. */
  readonly statementLog: ReadonlyArray<StatementLogEntry>;
}

const ONE_MIB = 1024 * 1024;
const MAX_REQUEST_BYTES = 8 * ONE_MIB;
const RESPONSE_TOO_LARGE = 'Database returned more than the allowed response size limit';

/** An error answered in the service's shape: HTTP status, `x-amzn-errortype`, `{message}`. */
class DataApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
    this.name = 'DataApiError';
  }
}

/** The Data API's answer to a secret the caller may not read (or that does not exist). */
function forbidden(secretArn: string): DataApiError {
  return new DataApiError(
    403,
    'ForbiddenException',
    `Error fetching secret ${secretArn}: the secret does not exist or access to it is denied`,
  );
}

// ---------------------------------------------------------------------------------------------
// Wire shapes (the subset of the Data API model the twin reads and writes)

type Field =
  | { isNull: true }
  | { booleanValue: boolean }
  | { longValue: number }
  | { doubleValue: number }
  | { stringValue: string }
  | { blobValue: string }
  | { arrayValue: ArrayValue };

type ArrayValue =
  | { booleanValues: (boolean | null)[] }
  | { longValues: (number | null)[] }
  | { doubleValues: (number | null)[] }
  | { stringValues: (string | null)[] }
  | { arrayValues: ArrayValue[] };

interface SqlParameterIn {
  name?: string;
  value?: Record<string, unknown>;
  typeHint?: string;
}

interface ResultSetOptionsIn {
  decimalReturnType?: 'STRING' | 'DOUBLE_OR_LONG';
  longReturnType?: 'STRING' | 'LONG';
}

interface ColumnMetadata {
  name: string;
  label: string;
  type: number;
  typeName: string;
  schemaName: string;
  tableName: string;
  isAutoIncrement: boolean;
  isSigned: boolean;
  isCurrency: boolean;
  isCaseSensitive: boolean;
  nullable: number;
  precision: number;
  scale: number;
  arrayBaseColumnType: number;
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL over PGlite's wire protocol. Using the protocol (instead of `db.query`) gives the raw
// text of every value and the RowDescription's table OIDs and type modifiers that the Data API's
// column metadata needs.

interface PgField {
  name: string;
  tableID: number;
  columnID: number;
  dataTypeID: number;
  dataTypeModifier: number;
}

interface PgError {
  message: string;
  code?: string;
  position?: string;
  detail?: string;
  hint?: string;
  where?: string;
}

/** One table as the column metadata describes it (see describeColumns). */
interface KeptTable {
  readonly table: string;
  readonly schema: string;
  readonly columns: Map<number, { notNull: boolean; serial: boolean }>;
}

interface PgOutcome {
  fields?: PgField[];
  rows: (string | null)[][];
  commandTag?: string;
  error?: PgError;
  /** ReadyForQuery status: 'I' idle, 'T' in transaction, 'E' failed transaction. */
  txStatus: string;
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function collect(messages: ReadonlyArray<{ name: string }>): PgOutcome {
  const outcome: PgOutcome = { rows: [], txStatus: 'I' };
  for (const m of messages as ReadonlyArray<Record<string, any>>) {
    switch (m.name) {
      case 'rowDescription':
        outcome.fields = (m.fields as PgField[]).map((f) => ({
          name: f.name,
          tableID: f.tableID,
          columnID: f.columnID,
          dataTypeID: f.dataTypeID,
          dataTypeModifier: f.dataTypeModifier,
        }));
        break;
      case 'dataRow':
        outcome.rows.push(m.fields as (string | null)[]);
        break;
      case 'commandComplete':
        outcome.commandTag = m.text as string;
        break;
      case 'error':
        outcome.error ??= {
          message: String(m.message),
          code: m.code,
          position: m.position,
          detail: m.detail,
          hint: m.hint,
          where: m.where,
        };
        break;
      case 'readyForQuery':
        outcome.txStatus = m.status as string;
        break;
    }
  }
  return outcome;
}

/** PgJDBC's rendering of a server error, plus the Data API's `; SQLState:` suffix. */
function formatPgError(e: PgError): string {
  let text = `ERROR: ${e.message}`;
  if (e.detail) text += `\n  Detail: ${e.detail}`;
  if (e.hint) text += `\n  Hint: ${e.hint}`;
  if (e.position) text += `\n  Position: ${e.position}`;
  if (e.where) text += `\n  Where: ${e.where}`;
  return e.code ? `${text}; SQLState: ${e.code}` : text;
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * One login's connection, held for one request or for one Data API transaction. Every request
 * begins its own transaction on it (the service's autocommit is the twin's BEGIN … COMMIT).
 */
interface PgSession {
  /** One statement through the extended protocol (parse, bind, describe, execute, sync). */
  extended(sql: string, values?: (string | null)[], types?: number[]): Promise<PgOutcome>;
  /**
   * `sql` as `extended` does, then `check` in the same round trip (one Sync): `check` runs only when
   * `sql` succeeded, inside the same transaction; its outcome is undefined otherwise.
   */
  extendedThen?(
    sql: string,
    values: (string | null)[],
    types: number[],
    check: string,
  ): Promise<[PgOutcome, PgOutcome | undefined]>;
  /** Control statements the twin itself issues (BEGIN, SET LOCAL, COMMIT…); fails loudly. */
  simple(sql: string): Promise<PgOutcome>;
  /** The transaction status of the last ReadyForQuery: 'I' idle, 'T' in transaction, 'E' failed. */
  readonly status: string;
  /**
   * Says a statement that may change the catalogs (anything but plain DML) ran on this session:
   * what the backend keeps about them is forgotten now and again when the session is released.
   */
  catalogsMayChange(): void;
  /** Gives the connection back; an unfinished transaction is rolled back first. */
  release(): Promise<void>;
}

/** Where statements run: PGlite (an emulated login) or a real PostgreSQL server (a real one). */
interface PgBackend {
  /**
   * Logs in as the secret's user (PGlite: becomes its role, with its role-level settings) and
   * begins a transaction with the service's session settings.
   */
  begin(secret: DataApiSecret): Promise<PgSession>;
  /** True when the login is emulated over a superuser session, so statements must be guarded. */
  readonly emulatedLogin: boolean;
  /**
   * A number that changes whenever the catalogs may have changed (a statement that is not plain DML,
   * or any SQL run on the database by anyone else); what is kept about the catalogs is valid while
   * it stays the same. Undefined where changes cannot be seen (a real server): keep nothing.
   */
  catalogGeneration?(): number;
  /** Every row of pg_type (oid, typname, typcategory, typelem). */
  loadTypes(): Promise<(string | null)[][]>;
  close(): Promise<void>;
}

/** What the service's driver sets on every session, after login (and so after role settings). */
const SESSION_SETTINGS = "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, MDY'";

/**
 * What PostgreSQL applies at login from `pg_db_role_setting` (ALTER ROLE … SET, ALTER DATABASE …
 * SET, ALTER ROLE … IN DATABASE … SET) for `$1`, in PostgreSQL's order of precedence (global <
 * database < role < role in database): one `name=value` per row.
 */
const ROLE_SETTINGS_SQL = `SELECT u.c FROM pg_catalog.pg_db_role_setting d
  CROSS JOIN LATERAL pg_catalog.unnest(d.setconfig) WITH ORDINALITY AS u(c, n)
 WHERE d.setdatabase OPERATOR(pg_catalog.=) ANY (ARRAY[0::pg_catalog.oid, (SELECT oid FROM pg_catalog.pg_database
         WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database())])
   AND d.setrole OPERATOR(pg_catalog.=) ANY (ARRAY[0::pg_catalog.oid, (SELECT oid FROM pg_catalog.pg_roles
         WHERE rolname OPERATOR(pg_catalog.=) $1)])
 ORDER BY d.setrole OPERATOR(pg_catalog.<>) 0, d.setdatabase OPERATOR(pg_catalog.<>) 0, u.n`;

/**
 * The role's login settings as name/value pairs, in order; `role` and `session_authorization` are
 * left out: the secret decides who the request runs as.
 */
function roleSettings(rows: readonly (readonly (string | null)[])[]): [string, string][] {
  const out: [string, string][] = [];
  for (const [entry] of rows) {
    if (entry === null) continue;
    const eq = entry.indexOf('=');
    const name = eq < 0 ? entry : entry.slice(0, eq);
    if (['role', 'session_authorization'].includes(name.toLowerCase())) continue;
    out.push([name, eq < 0 ? '' : entry.slice(eq + 1)]);
  }
  return out;
}

/** An escape string literal: read the same whatever `standard_conforming_strings` is. */
function escapeLiteral(text: string): string {
  return `E'${text.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** Transaction-local `set_config` of each setting, one statement each so they apply in order. */
function applySettingsSql(settings: readonly [string, string][]): string {
  return settings
    .map(
      ([name, value]) =>
        `SELECT pg_catalog.set_config(${escapeLiteral(name)}, ${escapeLiteral(value)}, true)`,
    )
    .join('; ');
}

/**
 * Holds PGlite's own query lock until the returned release is called, so the twin's requests are
 * serialized with each other and with anyone else using the same PGlite instance.
 */
function acquireConnection(db: PGlite): Promise<() => void> {
  return new Promise((resolveAcquired) => {
    void db.runExclusive(() => new Promise<void>((release) => resolveAcquired(release)));
  });
}

/**
 * Counts the SQL run on `db` by anyone but the returned `run` (which runs the Data API's own
 * messages): every query PGlite runs, whatever the API used, passes through its
 * `execProtocolRawSync`, synchronously within the call that asked for it.
 */
function watchForeignSql(db: PGlite): {
  run: (message: Uint8Array) => ReturnType<PGlite['execProtocol']>;
  foreign: () => number;
} {
  let ours = false;
  let foreign = 0;
  const target = db as unknown as { execProtocolRawSync: (...args: unknown[]) => unknown };
  const raw = target.execProtocolRawSync;
  if (typeof raw !== 'function') throw new Error('this PGlite has no execProtocolRawSync to watch');
  target.execProtocolRawSync = function (this: unknown, ...args: unknown[]) {
    if (!ours) foreign++;
    return raw.apply(this, args);
  };
  return {
    run(message) {
      ours = true;
      try {
        return db.execProtocol(message, { throwOnError: false });
      } finally {
        ours = false;
      }
    },
    foreign: () => foreign,
  };
}

function pgliteBackend(db: PGlite): PgBackend {
  const watched = watchForeignSql(db);
  const exec = watched.run;
  // Catalog changes the Data API's own statements may have made (see catalogsMayChange).
  let ownChanges = 0;
  const generation = () => watched.foreign() + ownChanges;
  /** Role → its login settings, valid for `settingsGeneration`. */
  const settingsByRole = new Map<string, [string, string][]>();
  let settingsGeneration = -1;
  /** Parse, bind, describe and execute one unnamed statement (extended protocol, no Sync). */
  const portal = (sql: string, values: (string | null)[], types: number[]): Uint8Array[] => {
    const { serialize } = protocol;
    return [
      serialize.parse({ text: sql, types }),
      serialize.bind({ values }),
      serialize.describe({ type: 'P' }),
      serialize.execute({}),
    ];
  };
  const open = (release: () => void): PgSession => {
    let status = 'I';
    let changedCatalogs = false;
    const session: PgSession = {
      get status() {
        return status;
      },
      catalogsMayChange() {
        changedCatalogs = true;
        ownChanges++;
      },
      async extended(sql, values = [], types = []) {
        const message = concatBytes([...portal(sql, values, types), protocol.serialize.sync()]);
        const { messages } = await exec(message);
        const outcome = collect(messages);
        status = outcome.txStatus;
        return outcome;
      },
      async extendedThen(sql, values, types, check) {
        const message = concatBytes([
          ...portal(sql, values, types),
          ...portal(check, [], []),
          protocol.serialize.sync(),
        ]);
        const { messages } = await exec(message);
        // The check's messages begin at the second ParseComplete; after an error in `sql` the server
        // skips everything up to the Sync, so there is none.
        let second = -1;
        for (let i = 0, seen = 0; i < messages.length; i++) {
          if (messages[i].name === 'parseComplete' && ++seen === 2) {
            second = i;
            break;
          }
        }
        const first = collect(second < 0 ? messages : messages.slice(0, second));
        const then = second < 0 ? undefined : collect(messages.slice(second));
        status = (then ?? first).txStatus;
        first.txStatus = status;
        return [first, then];
      },
      async simple(sql) {
        const { messages } = await exec(protocol.serialize.query(sql));
        const outcome = collect(messages);
        status = outcome.txStatus;
        if (outcome.error) throw new DataApiError(400, 'BadRequestException', formatPgError(outcome.error));
        return outcome;
      },
      async release() {
        try {
          if (status !== 'I') await session.simple('ROLLBACK').catch(() => undefined);
        } finally {
          // Whatever the transaction saw of its own catalog changes is not what others see now.
          if (changedCatalogs) ownChanges++;
          release();
        }
      },
    };
    return session;
  };
  /**
   * The role's login settings, read from pg_db_role_setting and kept until the catalogs may have
   * changed (an ALTER ROLE … SET through the endpoint, or any SQL run on the database directly).
   */
  const settingsOf = async (session: PgSession, role: string): Promise<[string, string][]> => {
    if (settingsGeneration !== generation()) {
      settingsByRole.clear();
      settingsGeneration = generation();
    }
    let settings = settingsByRole.get(role);
    if (!settings) {
      // Read with the server's defaults (a search_path an earlier request SET must not resolve
      // anything in this superuser query).
      await session.simple('RESET ALL');
      const found = await session.extended(ROLE_SETTINGS_SQL, [role]);
      if (found.error)
        throw new DataApiError(500, 'InternalServerErrorException', formatPgError(found.error));
      settings = roleSettings(found.rows);
      settingsByRole.set(role, settings);
    }
    return settings;
  };
  return {
    emulatedLogin: true,
    catalogGeneration: generation,
    async begin(secret) {
      const session = open(await acquireConnection(db));
      try {
        const settings = await settingsOf(session, secret.role);
        // A fresh login has the server's defaults (nothing an earlier request SET survives), then
        // the role's login settings as transaction-local ones.
        await session.simple(
          [
            'RESET ALL',
            'BEGIN',
            ...(settings.length ? [applySettingsSql(settings)] : []),
            SESSION_SETTINGS,
            `SET LOCAL ROLE ${quoteIdent(secret.role)}`,
          ].join('; '),
        );
      } catch (err) {
        await session.release();
        throw err;
      }
      return session;
    },
    async loadTypes() {
      await db.waitReady;
      const session = open(await acquireConnection(db));
      try {
        return (await session.extended(TYPES_SQL)).rows;
      } finally {
        await session.release();
      }
    },
    async close() {
      // The PGlite instance belongs to the caller.
    },
  };
}

/** A real PostgreSQL server the twin logs in to with each secret's own user and password. */
export interface PostgresConnection {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  /** Connections kept per secret. @default 8 */
  readonly poolSize?: number;
}

type PgPoolClient = import('pg').PoolClient;

/** Raw text for every column: the twin maps values itself, as it does for PGlite. */
const rawText = { getTypeParser: () => (value: string) => value };

async function postgresBackend(
  connection: PostgresConnection,
  secrets: Record<string, DataApiSecret>,
): Promise<PgBackend> {
  const { default: pg } = await import('pg');
  const pools = new Map<string, import('pg').Pool>();
  const poolFor = (secret: DataApiSecret): import('pg').Pool => {
    let pool = pools.get(secret.role);
    if (!pool) {
      pool = new pg.Pool({
        host: connection.host,
        port: connection.port,
        database: connection.database,
        user: secret.role,
        password: secret.password,
        max: connection.poolSize ?? 8,
        idleTimeoutMillis: 10_000,
        allowExitOnIdle: true,
      });
      // An idle connection the server closed is dropped by the pool; nothing to answer.
      pool.on('error', () => undefined);
      pools.set(secret.role, pool);
    }
    return pool;
  };

  const open = (client: PgPoolClient): PgSession => {
    let status = 'I';
    let messages: { name: string }[] = [];
    let broken: Error | undefined;
    const wire = (client as unknown as { connection: NodeJS.EventEmitter }).connection;
    const onMessage = (m: { name: string; status?: string }): void => {
      messages.push(m);
      if (m.name === 'readyForQuery') status = String(m.status);
    };
    const onError = (err: Error): void => {
      broken = err;
    };
    wire.on('message', onMessage);
    client.on('error', onError);
    const run = async (config: string | import('pg').QueryArrayConfig): Promise<PgOutcome> => {
      if (broken) throw broken;
      messages = [];
      try {
        await client.query(config);
      } catch (err) {
        // A server error arrives as a message (collected below); anything else is the connection.
        if (!messages.some((m) => m.name === 'error')) {
          broken ??= err instanceof Error ? err : new Error(String(err));
          throw broken;
        }
      }
      return collect(messages);
    };
    const session: PgSession = {
      get status() {
        return status;
      },
      catalogsMayChange() {
        // A real server: nothing about its catalogs is kept here.
      },
      extended(sql, values = [], types = []) {
        return run({
          text: sql,
          values,
          // pg sends `types` as the Parse message's parameter types and asks it for row parsers.
          types: Object.assign([...types], rawText) as never,
          rowMode: 'array',
          // Always Parse/Bind/Execute, as PGlite above: one statement, never a simple-query batch.
          ...({ queryMode: 'extended' } as object),
        });
      },
      async simple(sql) {
        const outcome = await run(sql);
        if (outcome.error) throw new DataApiError(400, 'BadRequestException', formatPgError(outcome.error));
        return outcome;
      },
      async release() {
        try {
          if (!broken) {
            if (status !== 'I') await run('ROLLBACK');
            // The next request on this connection starts as a fresh login would: settings a
            // statement SET are discarded and the role-level ones are back.
            await run('DISCARD ALL');
          }
        } catch {
          // handled below: the connection is not reused
        } finally {
          wire.off('message', onMessage);
          client.off('error', onError);
          client.release(broken ?? (status === 'I' ? undefined : new Error('transaction left open')));
        }
      },
    };
    return session;
  };

  const login = async (secret: DataApiSecret): Promise<PgSession> => {
    let client: PgPoolClient;
    try {
      client = await poolFor(secret).connect();
    } catch (err) {
      const e = err as { message?: string; code?: string };
      throw new DataApiError(
        400,
        'BadRequestException',
        e.code
          ? formatPgError({ message: String(e.message), code: e.code })
          : `Could not connect to the database: ${String(e.message)}`,
      );
    }
    return open(client);
  };

  return {
    emulatedLogin: false,
    async begin(secret) {
      const session = await login(secret);
      try {
        await session.simple(`BEGIN; ${SESSION_SETTINGS}`);
      } catch (err) {
        await session.release();
        throw err;
      }
      return session;
    },
    async loadTypes() {
      const first = Object.values(secrets)[0];
      if (!first) return [];
      const session = await login(first);
      try {
        return (await session.extended(TYPES_SQL)).rows;
      } finally {
        await session.release();
      }
    },
    async close() {
      await Promise.all([...pools.values()].map((p) => p.end()));
    },
  };
}

/** Who the statement left the session as (the emulated login's guard). */
const CURRENT_USER_SQL = 'select current_user::text';

const TYPES_SQL = 'select oid::int8, typname, typcategory, typelem::int8 from pg_catalog.pg_type';

/** A promise-chain lock serializing the statements of one Data API transaction. */
class Queue {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

// ---------------------------------------------------------------------------------------------
// Types: PostgreSQL type OIDs → Data API value kinds and JDBC metadata

interface PgType {
  name: string;
  category: string;
  elem: number;
}

const JDBC = {
  BIT: -7,
  SMALLINT: 5,
  INTEGER: 4,
  BIGINT: -5,
  REAL: 7,
  DOUBLE: 8,
  NUMERIC: 2,
  CHAR: 1,
  VARCHAR: 12,
  DATE: 91,
  TIME: 92,
  TIMESTAMP: 93,
  BINARY: -2,
  ARRAY: 2003,
  OTHER: 1111,
} as const;

const INT_TYPES = new Set(['int2', 'int4', 'int8', 'oid', 'xid', 'cid']);
const FLOAT_TYPES = new Set(['float4', 'float8']);
const MAX_INT = 2147483647;

function jdbcType(t: PgType | undefined): number {
  switch (t?.name) {
    case 'bool':
      return JDBC.BIT;
    case 'int2':
      return JDBC.SMALLINT;
    case 'int4':
      return JDBC.INTEGER;
    case 'int8':
    case 'oid':
      return JDBC.BIGINT;
    case 'float4':
      return JDBC.REAL;
    case 'float8':
      return JDBC.DOUBLE;
    case 'numeric':
    case 'money':
      return JDBC.NUMERIC;
    case 'bpchar':
    case 'char':
      return JDBC.CHAR;
    case 'text':
    case 'varchar':
    case 'name':
      return JDBC.VARCHAR;
    case 'date':
      return JDBC.DATE;
    case 'time':
    case 'timetz':
      return JDBC.TIME;
    case 'timestamp':
    case 'timestamptz':
      return JDBC.TIMESTAMP;
    case 'bytea':
      return JDBC.BINARY;
    default:
      return t?.category === 'A' ? JDBC.ARRAY : JDBC.OTHER;
  }
}

function precisionAndScale(t: PgType | undefined, typmod: number): [number, number] {
  switch (t?.name) {
    case 'bool':
      return [1, 0];
    case 'int2':
      return [5, 0];
    case 'int4':
      return [10, 0];
    case 'int8':
      return [19, 0];
    case 'float4':
      return [8, 8];
    case 'float8':
      return [17, 17];
    case 'numeric':
      return typmod >= 4 ? [((typmod - 4) >> 16) & 0xffff, (typmod - 4) & 0xffff] : [0, 0];
    case 'varchar':
    case 'bpchar':
      return [typmod >= 4 ? typmod - 4 : MAX_INT, 0];
    case 'date':
      return [13, 0];
    case 'time':
      return [15, 6];
    case 'timestamp':
      return [29, 6];
    case 'timestamptz':
      return [35, 6];
    default:
      return [MAX_INT, 0];
  }
}

// ---------------------------------------------------------------------------------------------
// Parameters

/** Data API typeHint → the PostgreSQL type the parameter is declared as. */
const TYPE_HINT_OIDS: Record<string, number> = {
  DATE: 1082,
  TIME: 1083,
  TIMESTAMP: 1114,
  DECIMAL: 1700,
  UUID: 2950,
  JSON: 114,
};
const OID = { unknown: 0, bool: 16, bytea: 17, int8: 20, float8: 701 } as const;

interface BoundParameter {
  value: string | null;
  type: number;
}

function bindParameter(p: SqlParameterIn): BoundParameter {
  const v = p.value ?? {};
  const hint = p.typeHint;
  if (hint !== undefined && !(hint in TYPE_HINT_OIDS)) {
    throw new DataApiError(400, 'BadRequestException', `Invalid type hint: ${hint}`);
  }
  const hinted = hint === undefined ? undefined : TYPE_HINT_OIDS[hint];
  if (v.isNull === true) return { value: null, type: hinted ?? OID.unknown };
  if (typeof v.stringValue === 'string') return { value: v.stringValue, type: hinted ?? OID.unknown };
  if (typeof v.longValue === 'number') return { value: String(v.longValue), type: hinted ?? OID.int8 };
  if (typeof v.doubleValue === 'number') {
    return { value: String(v.doubleValue), type: hinted ?? OID.float8 };
  }
  if (typeof v.booleanValue === 'boolean') {
    return { value: v.booleanValue ? 't' : 'f', type: OID.bool };
  }
  if (typeof v.blobValue === 'string') {
    return { value: `\\x${Buffer.from(v.blobValue, 'base64').toString('hex')}`, type: OID.bytea };
  }
  if (v.arrayValue !== undefined) {
    throw new DataApiError(400, 'BadRequestException', 'Array parameters are not supported.');
  }
  throw new DataApiError(400, 'BadRequestException', `Invalid value for parameter ${p.name ?? ''}`);
}

/**
 * Replaces `:name` placeholders with `$n` using PostgreSQL's lexer, so a `:` inside a string
 * literal, comment or quoted identifier, a `::` cast and an array slice `a[1:2]` stay as written.
 * Only names that were supplied are replaced; anything else reaches PostgreSQL unchanged and fails
 * there with its own message. Returns the names in `$n` order.
 */
export function translateNamedParameters(
  sql: string,
  names: ReadonlySet<string>,
): { text: string; order: string[] } {
  if (names.size === 0 || !sql.includes(':')) return { text: sql, order: [] };
  let tokens;
  try {
    tokens = scanSync(sql).tokens;
  } catch {
    return { text: sql, order: [] };
  }
  // The lexer's offsets are in UTF-8 bytes.
  const bytes = Buffer.from(sql, 'utf8');
  const order: string[] = [];
  const chunks: Buffer[] = [];
  let copied = 0;
  for (let i = 0; i + 1 < tokens.length; i++) {
    const colon = tokens[i];
    const next = tokens[i + 1];
    if (colon.text !== ':' || next.start !== colon.end) continue;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(next.text) || !names.has(next.text)) continue;
    let index = order.indexOf(next.text);
    if (index < 0) index = order.push(next.text) - 1;
    chunks.push(bytes.subarray(copied, colon.start), Buffer.from(`$${index + 1}`));
    copied = next.end;
    i++;
  }
  chunks.push(bytes.subarray(copied));
  return { text: Buffer.concat(chunks).toString('utf8'), order };
}

// ---------------------------------------------------------------------------------------------
// Guarding the emulated non-superuser login

/** Statements that only read or change rows, never the catalogs (savepoints change nothing either). */
const PLAIN_STATEMENTS = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

/**
 * Whether every statement of a parse tree is plain DML, so the catalogs are as they were. Anything
 * else (DDL, ALTER ROLE … SET, DO, CALL, EXPLAIN, an unparseable text) may have changed them, and
 * so may plain DML that calls a function PostgreSQL does not ship (or one named in a schema other
 * than pg_catalog): `SELECT my_migration()` can run any DDL.
 */
function onlyPlainDml(parseTree: unknown): boolean {
  const stmts = (parseTree as { stmts?: { stmt?: Record<string, unknown> }[] } | undefined)?.stmts;
  if (!Array.isArray(stmts) || stmts.length === 0) return false;
  return stmts.every((s) => {
    const kinds = Object.keys(s.stmt ?? {});
    return kinds.length === 1 && PLAIN_STATEMENTS.has(kinds[0]) && !callsOwnCode(s.stmt);
  });
}

/** Whether a statement calls a function PostgreSQL does not ship, by the names the parser gives. */
function callsOwnCode(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(callsOwnCode);
  if (node === null || typeof node !== 'object') return false;
  for (const [key, value] of Object.entries(node)) {
    if (key === 'FuncCall') {
      const parts = ((value as { funcname?: { String?: { sval?: string } }[] }).funcname ?? []).map(
        (n) => n.String?.sval ?? '',
      );
      const bare =
        parts.length === 1 ? parts[0] : parts.length === 2 && parts[0] === 'pg_catalog' ? parts[1] : '';
      if (!isBuiltinFunction(bare.toLowerCase())) return true;
    }
    if (callsOwnCode(value)) return true;
  }
  return false;
}

const ALLOWED_TRANSACTION_KINDS = new Set([
  'TRANS_STMT_SAVEPOINT',
  'TRANS_STMT_RELEASE',
  'TRANS_STMT_ROLLBACK_TO',
]);

function setRoleDenied(role: string): DataApiError {
  return new DataApiError(
    400,
    'BadRequestException',
    formatPgError({ message: `permission denied to set role "${role}"`, code: '42501' }),
  );
}

/**
 * Throws when the statement would leave the twin's transaction or, with an emulated login
 * (`guardRole`), the secret's role.
 */
function guardStatement(parseTree: unknown, role: string, guardRole: boolean): void {
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(visit);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    for (const [key, value] of Object.entries(node)) {
      if (key === 'VariableSetStmt' && guardRole) {
        const name = String((value as { name?: string }).name ?? '').toLowerCase();
        if (name === 'role' || name === 'session_authorization') {
          // PostgreSQL names the role asked for; RESET/DEFAULT name none, so name the login's.
          const args = (value as { args?: { A_Const?: { sval?: { sval?: string } } }[] }).args;
          throw setRoleDenied(args?.[0]?.A_Const?.sval?.sval ?? role);
        }
      } else if (key === 'FuncCall' && guardRole) {
        const parts = ((value as { funcname?: { String?: { sval?: string } }[] }).funcname ?? [])
          .map((p) => p.String?.sval?.toLowerCase())
          .filter(Boolean);
        if (parts[parts.length - 1] === 'set_config') throw setRoleDenied(role);
      } else if (key === 'TransactionStmt') {
        const kind = String((value as { kind?: string }).kind);
        if (!ALLOWED_TRANSACTION_KINDS.has(kind)) {
          throw new DataApiError(
            400,
            'BadRequestException',
            'Transaction control statements are not supported in ExecuteStatement; ' +
              'use BeginTransaction, CommitTransaction and RollbackTransaction.',
          );
        }
      }
      visit(value);
    }
  };
  visit(parseTree);
}

// ---------------------------------------------------------------------------------------------
// Converting PostgreSQL text values to Data API fields

/** Parses PostgreSQL's array text form (`{1,NULL,"a,b",{2,3}}`). */
type ArrayNode = (string | null | ArrayNode)[];
function parseArrayLiteral(text: string): ArrayNode {
  let s = text;
  if (s.startsWith('[')) s = s.slice(s.indexOf('=') + 1); // explicit bounds: [0:1]={…}
  let i = 0;
  const parseLevel = (): ArrayNode => {
    const out: ArrayNode = [];
    i++; // '{'
    if (s[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      if (s[i] === '{') {
        out.push(parseLevel());
      } else if (s[i] === '"') {
        let value = '';
        i++;
        while (s[i] !== '"') {
          if (s[i] === '\\') i++;
          value += s[i++];
        }
        i++;
        out.push(value);
      } else {
        let j = i;
        while (s[j] !== ',' && s[j] !== '}') j++;
        const raw = s.slice(i, j);
        out.push(raw === 'NULL' ? null : raw);
        i = j;
      }
      if (s[i] === ',') {
        i++;
        continue;
      }
      i++; // '}'
      return out;
    }
  };
  return parseLevel();
}

interface ValueOptions {
  decimalAsNumber: boolean;
  longAsString: boolean;
}

function scalarField(raw: string, t: PgType | undefined, opts: ValueOptions): Field {
  const name = t?.name ?? '';
  if (name === 'bool') return { booleanValue: raw === 't' };
  if (INT_TYPES.has(name)) {
    return opts.longAsString ? { stringValue: raw } : { longValue: Number(raw) };
  }
  if (FLOAT_TYPES.has(name)) {
    const n = Number(raw);
    return Number.isFinite(n) ? { doubleValue: n } : { stringValue: raw };
  }
  if (name === 'numeric' && opts.decimalAsNumber) {
    const n = Number(raw);
    if (!Number.isFinite(n)) return { stringValue: raw };
    return Number.isInteger(n) && !raw.includes('.') ? { longValue: n } : { doubleValue: n };
  }
  if (name === 'bytea') {
    return { blobValue: Buffer.from(raw.startsWith('\\x') ? raw.slice(2) : raw, 'hex').toString('base64') };
  }
  if (name === 'timestamptz') return { stringValue: raw.replace(/\+00$/, '') };
  return { stringValue: raw };
}

function arrayValue(node: ArrayNode, elem: PgType | undefined, opts: ValueOptions): ArrayValue {
  if (node.some((e) => Array.isArray(e))) {
    return { arrayValues: node.map((e) => arrayValue(Array.isArray(e) ? e : [e], elem, opts)) };
  }
  const fields = (node as (string | null)[]).map((e) => (e === null ? null : scalarField(e, elem, opts)));
  const pick = <K extends string>(key: K) =>
    fields.map((f) => (f === null ? null : ((f as Record<string, unknown>)[key] as never)));
  const first = fields.find((f) => f !== null);
  if (first && 'booleanValue' in first) return { booleanValues: pick('booleanValue') };
  if (first && 'longValue' in first) return { longValues: pick('longValue') };
  if (first && 'doubleValue' in first) return { doubleValues: pick('doubleValue') };
  return {
    stringValues: fields.map((f) =>
      f === null ? null : 'stringValue' in f ? f.stringValue : 'blobValue' in f ? f.blobValue : null,
    ),
  };
}

function toField(
  raw: string | null,
  t: PgType | undefined,
  types: Map<number, PgType>,
  opts: ValueOptions,
): Field {
  if (raw === null) return { isNull: true };
  if (t?.category === 'A' && t.elem !== 0) {
    return { arrayValue: arrayValue(parseArrayLiteral(raw), types.get(t.elem), opts) };
  }
  return scalarField(raw, t, opts);
}

function arrayToJson(a: ArrayValue): unknown[] {
  if ('arrayValues' in a) return a.arrayValues.map(arrayToJson);
  return Object.values(a)[0] as unknown[];
}

function fieldToJson(f: Field): unknown {
  if ('isNull' in f) return null;
  if ('arrayValue' in f) return arrayToJson(f.arrayValue);
  return Object.values(f)[0];
}

// ---------------------------------------------------------------------------------------------
// The server

interface OpenTransaction {
  readonly id: string;
  readonly secretArn: string;
  readonly role: string;
  readonly session: PgSession;
  readonly queue: Queue;
  timer?: NodeJS.Timeout;
  closed: boolean;
}

interface StatementRequest {
  readonly secretArn: string;
  readonly role: string;
  readonly sql: string;
  readonly parameters: readonly SqlParameterIn[];
}

export async function startDataApiServer(options: DataApiServerOptions): Promise<DataApiServer> {
  const { resourceArn } = options;
  if ((options.db === undefined) === (options.postgres === undefined)) {
    throw new Error('startDataApiServer needs exactly one of `db` (PGlite) and `postgres`');
  }
  if (options.postgres) {
    const missing = Object.entries(options.secrets).find(([, s]) => typeof s.password !== 'string');
    if (missing) throw new Error(`secret ${missing[0]} has no password (needed with a PostgreSQL server)`);
  }
  const maxResponseBytes = options.maxResponseBytes ?? ONE_MIB;
  const transactionTimeoutMs = options.transactionTimeoutMs ?? 60_000;
  const maxLogEntries = options.maxLogEntries ?? 100_000;
  const statementLog: StatementLogEntry[] = [];
  const transactions = new Map<string, OpenTransaction>();
  const types = new Map<number, PgType>();

  await loadModule();
  const backend = options.db
    ? pgliteBackend(options.db)
    : await postgresBackend(options.postgres, options.secrets);
  try {
    for (const [oid, name, category, elem] of await backend.loadTypes()) {
      types.set(Number(oid), { name: name ?? '', category: category ?? '', elem: Number(elem) });
    }
  } catch (err) {
    await backend.close();
    throw err;
  }

  const log = (entry: StatementLogEntry): void => {
    statementLog.push(entry);
    if (statementLog.length > maxLogEntries) statementLog.splice(0, statementLog.length - maxLogEntries);
  };

  const checkTarget = (
    body: Record<string, unknown>,
  ): { secretArn: string; role: string; secret: DataApiSecret } => {
    if (body.resourceArn !== resourceArn) {
      throw new DataApiError(
        400,
        'BadRequestException',
        `Invalid resourceArn: no Aurora cluster with the Data API enabled is known as ${String(body.resourceArn)}`,
      );
    }
    const secretArn = String(body.secretArn ?? '');
    const secret = options.secrets[secretArn];
    if (!secret) throw forbidden(secretArn);
    if (options.database !== undefined && body.database !== undefined && body.database !== options.database) {
      throw new DataApiError(
        400,
        'BadRequestException',
        formatPgError({ message: `database "${String(body.database)}" does not exist`, code: '3D000' }),
      );
    }
    return { secretArn, role: secret.role, secret };
  };

  const openTransactionFor = (body: Record<string, unknown>, secretArn: string): OpenTransaction => {
    const id = String(body.transactionId);
    const tx = transactions.get(id);
    if (!tx || tx.closed) {
      throw new DataApiError(404, 'NotFoundException', `Transaction ${id} is not found`);
    }
    if (tx.secretArn !== secretArn) {
      throw new DataApiError(400, 'BadRequestException', `Transaction ${id} was started with another secret`);
    }
    return tx;
  };

  const touch = (tx: OpenTransaction): void => {
    if (tx.timer) clearTimeout(tx.timer);
    tx.timer = setTimeout(() => {
      void tx.queue.run(() => endTransaction(tx, 'ROLLBACK')).catch(() => undefined);
    }, transactionTimeoutMs);
    tx.timer.unref();
  };

  const endTransaction = async (tx: OpenTransaction, how: 'COMMIT' | 'ROLLBACK'): Promise<string> => {
    if (tx.closed) throw new DataApiError(404, 'NotFoundException', `Transaction ${tx.id} is not found`);
    tx.closed = true;
    if (tx.timer) clearTimeout(tx.timer);
    transactions.delete(tx.id);
    try {
      const outcome = await tx.session.simple(how);
      if (how === 'COMMIT' && outcome.commandTag === 'ROLLBACK') {
        throw new DataApiError(
          400,
          'BadRequestException',
          `Transaction ${tx.id} was rolled back because a statement in it failed`,
        );
      }
      return how === 'COMMIT' ? 'Transaction Committed' : 'Rollback Complete';
    } finally {
      await tx.session.release();
    }
  };

  /**
   * Runs one statement as `role` inside the already-open transaction, then checks that the
   * statement left both the role and the transaction as they were.
   */
  const runStatement = async (session: PgSession, req: StatementRequest): Promise<PgOutcome> => {
    const bound = new Map<string, BoundParameter>();
    for (const p of req.parameters) {
      if (!p.name) throw new DataApiError(400, 'BadRequestException', 'Parameter name is required');
      bound.set(p.name, bindParameter(p));
    }
    const { text, order } = translateNamedParameters(req.sql, new Set(bound.keys()));
    let tree: unknown;
    try {
      tree = await parse(text);
    } catch {
      tree = undefined; // PostgreSQL reports the syntax error in its own words below
    }
    guardStatement(tree, req.role, backend.emulatedLogin);
    // Said before it runs, so that nothing kept about the catalogs outlives what it may change.
    if (!onlyPlainDml(tree)) session.catalogsMayChange();
    const params = order.map((name) => bound.get(name)!);
    const values = params.map((p) => p.value);
    const types = params.map((p) => p.type);
    if (!backend.emulatedLogin) {
      const outcome = await session.extended(text, values, types);
      if (outcome.error) return outcome;
      // A real login cannot leave its user; the transaction must still be the twin's.
      if (outcome.txStatus !== 'T') throw setRoleDenied(req.role);
      return outcome;
    }
    // The check runs right after the statement, in the same transaction (and, where the session
    // can pipeline, the same round trip).
    let outcome: PgOutcome;
    let who: PgOutcome | undefined;
    if (session.extendedThen) {
      [outcome, who] = await session.extendedThen(text, values, types, CURRENT_USER_SQL);
    } else {
      outcome = await session.extended(text, values, types);
      if (!outcome.error) who = await session.extended(CURRENT_USER_SQL);
    }
    if (outcome.error) return outcome;
    if (!who || who.error || who.txStatus !== 'T' || who.rows[0]?.[0] !== req.role) {
      if (session.status !== 'I') await session.simple('ROLLBACK');
      throw setRoleDenied(String(who?.rows[0]?.[0] ?? 'postgres'));
    }
    return outcome;
  };

  const logged = async <T>(
    req: StatementRequest,
    operation: StatementLogEntry['operation'],
    transactionId: string | undefined,
    fn: () => Promise<T>,
  ): Promise<T> => {
    const base = {
      at: new Date().toISOString(),
      secretArn: req.secretArn,
      role: req.role,
      sql: req.sql,
      operation,
    };
    const extra = transactionId ? { transactionId } : {};
    try {
      const result = await fn();
      log({ ...base, ok: true, ...extra });
      return result;
    } catch (err) {
      log({ ...base, ok: false, error: err instanceof Error ? err.message : String(err), ...extra });
      throw err;
    }
  };

  /** Runs `fn` in the caller's transaction, or in a fresh one committed on success. */
  const inTransaction = async <T>(
    body: Record<string, unknown>,
    secretArn: string,
    secret: DataApiSecret,
    fn: (session: PgSession) => Promise<T>,
  ): Promise<T> => {
    if (body.transactionId !== undefined && body.transactionId !== '') {
      const tx = openTransactionFor(body, secretArn);
      return tx.queue.run(async () => {
        if (tx.closed) throw new DataApiError(404, 'NotFoundException', `Transaction ${tx.id} is not found`);
        touch(tx);
        try {
          return await fn(tx.session);
        } catch (err) {
          // A statement that escaped the role already rolled the transaction back.
          if (tx.session.status === 'I') {
            tx.closed = true;
            transactions.delete(tx.id);
            if (tx.timer) clearTimeout(tx.timer);
            await tx.session.release();
          }
          throw err;
        }
      });
    }
    const session = await backend.begin(secret);
    try {
      const result = await fn(session);
      const commit = await session.simple('COMMIT');
      if (commit.commandTag === 'ROLLBACK') {
        throw new DataApiError(400, 'BadRequestException', 'The statement was rolled back');
      }
      return result;
    } finally {
      // Rolls back whatever is still open (a failed statement) and gives the connection back.
      await session.release();
    }
  };

  /**
   * What the column metadata needs of each table (its name, and each column's NOT NULL and serial
   * default), kept while the catalogs stay as they were (backend.catalogGeneration), as PgJDBC keeps
   * field metadata per connection. Only where the backend can tell; else read for every result.
   */
  const keptTables = new Map<number, KeptTable>();
  let keptGeneration: number | undefined;
  const MAX_KEPT_TABLES = 1_000;

  const describeColumns = async (session: PgSession, fields: PgField[]): Promise<ColumnMetadata[]> => {
    const tableIds = [...new Set(fields.map((f) => f.tableID).filter((id) => id !== 0))];
    const generation = backend.catalogGeneration?.();
    if (generation === undefined || generation !== keptGeneration || keptTables.size > MAX_KEPT_TABLES) {
      keptTables.clear();
      keptGeneration = generation;
    }
    const tables = new Map<number, KeptTable>();
    const unknownTables: number[] = [];
    for (const id of tableIds) {
      const kept = keptTables.get(id);
      if (kept) tables.set(id, kept);
      else unknownTables.push(id);
    }
    const missingTypes = [...new Set(fields.map((f) => f.dataTypeID))].filter((oid) => !types.has(oid));
    if (missingTypes.length > 0) {
      const found = await session.extended(
        'select oid::int8, typname, typcategory, typelem::int8 from pg_catalog.pg_type where oid = any($1::oid[])',
        [`{${missingTypes.join(',')}}`],
      );
      for (const [oid, name, category, elem] of found.rows) {
        types.set(Number(oid), { name: name ?? '', category: category ?? '', elem: Number(elem) });
      }
    }
    if (unknownTables.length > 0) {
      const found = await session.extended(
        `select c.oid::int8, c.relname, n.nspname, a.attnum::int8, a.attnotnull,
                coalesce(pg_catalog.pg_get_expr(d.adbin, d.adrelid), '') like 'nextval(%'
           from pg_catalog.pg_class c
           join pg_catalog.pg_namespace n on n.oid = c.relnamespace
           join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0
           left join pg_catalog.pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
          where c.oid = any($1::oid[])`,
        [`{${unknownTables.join(',')}}`],
      );
      for (const [oid, relname, nspname, attnum, notNull, serial] of found.rows) {
        let table = tables.get(Number(oid));
        if (!table) {
          table = { table: relname ?? '', schema: nspname ?? '', columns: new Map() };
          tables.set(Number(oid), table);
        }
        table.columns.set(Number(attnum), { notNull: notNull === 't', serial: serial === 't' });
      }
      // Only a statement that changed nothing may leave what it read for the next ones.
      if (generation !== undefined && backend.catalogGeneration?.() === generation && !found.error) {
        for (const id of unknownTables) {
          const table = tables.get(id);
          if (table) keptTables.set(id, table);
        }
      }
    }
    return fields.map((f) => {
      const t = types.get(f.dataTypeID);
      const column = tables.get(f.tableID)?.columns.get(f.columnID);
      const [precision, scale] = precisionAndScale(t, f.dataTypeModifier);
      let typeName = t?.name ?? 'unknown';
      if (column?.serial && typeName === 'int4') typeName = 'serial';
      if (column?.serial && typeName === 'int8') typeName = 'bigserial';
      const elem = t?.category === 'A' ? types.get(t.elem) : undefined;
      return {
        name: f.name,
        label: f.name,
        type: jdbcType(t),
        typeName,
        // PgJDBC (and so the service) leaves schemaName empty for PostgreSQL.
        schemaName: '',
        tableName: tables.get(f.tableID)?.table ?? '',
        isAutoIncrement: column?.serial ?? false,
        isSigned: t?.category === 'N',
        isCurrency: t?.name === 'money',
        isCaseSensitive: t?.category === 'S',
        nullable: column ? (column.notNull ? 0 : 1) : 2,
        precision,
        scale,
        arrayBaseColumnType: elem ? jdbcType(elem) : 0,
      };
    });
  };

  const updatedCount = (tag: string | undefined): number => {
    // Command tags: `INSERT 0 5`, `UPDATE 3`, `DELETE 1`, `MERGE 2`; a SELECT's count is not an update.
    const m = /^(?:INSERT \d+|UPDATE|DELETE|MERGE|COPY) (\d+)$/.exec(tag ?? '');
    return m ? Number(m[1]) : 0;
  };

  const execute = async (body: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const { secretArn, role, secret } = checkTarget(body);
    if (typeof body.sql !== 'string' || body.sql.trim() === '') {
      throw new DataApiError(400, 'BadRequestException', 'SQL statement is required');
    }
    const req: StatementRequest = {
      secretArn,
      role,
      sql: body.sql,
      parameters: (body.parameters as SqlParameterIn[] | undefined) ?? [],
    };
    const rso = (body.resultSetOptions as ResultSetOptionsIn | undefined) ?? {};
    const valueOptions: ValueOptions = {
      decimalAsNumber: rso.decimalReturnType === 'DOUBLE_OR_LONG',
      longAsString: rso.longReturnType === 'STRING',
    };
    const txId =
      typeof body.transactionId === 'string' && body.transactionId ? body.transactionId : undefined;
    return logged(req, 'ExecuteStatement', txId, async () => {
      const response = await inTransaction(body, secretArn, secret, async (session) => {
        const outcome = await runStatement(session, req);
        if (outcome.error) throw new DataApiError(400, 'BadRequestException', formatPgError(outcome.error));
        const response: Record<string, unknown> = {};
        if (outcome.fields) {
          const metadata = await describeColumns(session, outcome.fields);
          const rowTypes = outcome.fields.map((f) => types.get(f.dataTypeID));
          const records = outcome.rows.map((row) =>
            row.map((raw, i) => toField(raw, rowTypes[i], types, valueOptions)),
          );
          if (body.formatRecordsAs === 'JSON') {
            response.formattedRecords = JSON.stringify(
              records.map((r) => Object.fromEntries(r.map((f, i) => [metadata[i].name, fieldToJson(f)]))),
            );
          } else {
            response.records = records;
          }
          if (body.includeResultMetadata === true) response.columnMetadata = metadata;
          response.numberOfRecordsUpdated = updatedCount(outcome.commandTag);
        } else {
          response.numberOfRecordsUpdated = updatedCount(outcome.commandTag);
          response.generatedFields = [];
        }
        return response;
      });
      // Like the service, the limit applies to what comes back: the statement has already run.
      if (Buffer.byteLength(JSON.stringify(response)) > maxResponseBytes) {
        throw new DataApiError(400, 'BadRequestException', RESPONSE_TOO_LARGE);
      }
      return response;
    });
  };

  const batchExecute = async (body: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const { secretArn, role, secret } = checkTarget(body);
    if (typeof body.sql !== 'string' || body.sql.trim() === '') {
      throw new DataApiError(400, 'BadRequestException', 'SQL statement is required');
    }
    const sql = body.sql;
    const sets = (body.parameterSets as SqlParameterIn[][] | undefined) ?? [];
    const txId =
      typeof body.transactionId === 'string' && body.transactionId ? body.transactionId : undefined;
    return inTransaction(body, secretArn, secret, async (session) => {
      const updateResults: { generatedFields: Field[] }[] = [];
      for (const parameters of sets.length > 0 ? sets : [[]]) {
        const req: StatementRequest = { secretArn, role, sql, parameters };
        await logged(req, 'BatchExecuteStatement', txId, async () => {
          const outcome = await runStatement(session, req);
          if (outcome.error) throw new DataApiError(400, 'BadRequestException', formatPgError(outcome.error));
        });
        updateResults.push({ generatedFields: [] });
      }
      return { updateResults };
    });
  };

  const beginTransaction = async (body: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const { secretArn, role, secret } = checkTarget(body);
    const session = await backend.begin(secret);
    const tx: OpenTransaction = {
      id: randomBytes(24).toString('base64'),
      secretArn,
      role,
      session,
      queue: new Queue(),
      closed: false,
    };
    transactions.set(tx.id, tx);
    touch(tx);
    return { transactionId: tx.id };
  };

  const finishTransaction =
    (how: 'COMMIT' | 'ROLLBACK') =>
    async (body: Record<string, unknown>): Promise<Record<string, unknown>> => {
      const { secretArn } = checkTarget(body);
      const tx = openTransactionFor(body, secretArn);
      const transactionStatus = await tx.queue.run(() => endTransaction(tx, how));
      return { transactionStatus };
    };

  const routes: Record<string, (body: Record<string, unknown>) => Promise<Record<string, unknown>>> = {
    '/Execute': execute,
    '/BatchExecute': batchExecute,
    '/BeginTransaction': beginTransaction,
    '/CommitTransaction': finishTransaction('COMMIT'),
    '/RollbackTransaction': finishTransaction('ROLLBACK'),
  };

  const send = (res: http.ServerResponse, status: number, payload: string, errorType?: string): void => {
    const headers: Record<string, string | number> = {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(payload),
      'x-amzn-requestid': randomBytes(16).toString('hex'),
    };
    if (errorType) headers['x-amzn-errortype'] = errorType;
    res.writeHead(status, headers).end(payload);
  };

  const handle = async (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    gate?: { readonly allowed: ReadonlySet<string>; readonly refused: string[] },
  ): Promise<void> => {
    try {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      const route = routes[path];
      if (req.method !== 'POST' || !route) {
        throw new DataApiError(404, 'UnknownOperationException', `Unknown operation ${req.method} ${path}`);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of req) {
        size += (chunk as Buffer).length;
        if (size > MAX_REQUEST_BYTES)
          throw new DataApiError(413, 'RequestEntityTooLargeException', 'Request too large');
        chunks.push(chunk as Buffer);
      }
      let body: unknown;
      try {
        body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
      } catch {
        throw new DataApiError(400, 'SerializationException', 'Request body is not valid JSON');
      }
      if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        throw new DataApiError(400, 'SerializationException', 'Request body must be a JSON object');
      }
      if (gate) {
        // Every operation names the secret it runs with; anything else (none, not a string) is refused too.
        const secretArn = (body as { secretArn?: unknown }).secretArn;
        if (typeof secretArn !== 'string' || !gate.allowed.has(secretArn)) {
          const named = typeof secretArn === 'string' ? secretArn : '';
          gate.refused.push(named);
          throw forbidden(named);
        }
      }
      const result = await route(body as Record<string, unknown>);
      send(res, 200, JSON.stringify(result));
    } catch (err) {
      if (err instanceof DataApiError) {
        send(res, err.status, JSON.stringify({ message: err.message }), err.type);
      } else {
        send(
          res,
          500,
          JSON.stringify({ message: `Internal error: ${err instanceof Error ? err.message : String(err)}` }),
          'InternalServerErrorException',
        );
      }
    }
  };

  const server = keepAliveWithMargin(http.createServer((req, res) => void handle(req, res)));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const restricted = new Set<http.Server>();

  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    port,
    statementLog,
    async restrictedEndpoint(allowedSecrets) {
      const gate = { allowed: new Set(allowedSecrets), refused: [] as string[] };
      const gated = http.createServer((req, res) => void handle(req, res, gate));
      restricted.add(gated);
      const url = await listenLoopback(gated, options.host);
      return {
        url,
        refused: gate.refused,
        close: async () => {
          restricted.delete(gated);
          await closeServer(gated);
        },
      };
    },
    async close() {
      for (const gated of [...restricted]) await closeServer(gated);
      restricted.clear();
      for (const tx of [...transactions.values()]) {
        await tx.queue.run(() => endTransaction(tx, 'ROLLBACK')).catch(() => undefined);
      }
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
      await backend.close();
    },
  };
}

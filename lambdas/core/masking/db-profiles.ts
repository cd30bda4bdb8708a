/**
 * Database-enforced masking (docs/masking.md): the SQL that makes PostgreSQL itself apply a SQL
 * target's masking rules, beneath every computation an agent's statement can make.
 *
 * Pure functions of the target's configuration and the columns read from the catalogue:
 * - `catalogueSql(schemas)`: the query that lists the columns the generator needs.
 * - `generateMaskingSql(target, columns)`: idempotent statements (roles, schemas, hash key,
 *   masking views, grants, role settings), to run in one transaction by an administrator.
 * - `checkProbes(target, columns)` + `evaluateProbe`: what `warden db check` (and the gateway, when
 *   it first serves a masked principal on a target) runs as each Warden user, and what it expects.
 *
 * The profiles:
 * - `unmasked`: the `read`/`write` users, with privileges on the raw tables (principals Cedar allows
 *   `view_unmasked`).
 * - `masked`: `maskedRead` has USAGE on the masking schema (`warden_masked` for `public`,
 *   `warden_masked_<schema>` otherwise) and SELECT on its views only; each view is the raw table
 *   with every sensitive column replaced by its mask expression, owned by the NOLOGIN `owner`
 *   role, and the user's `search_path` is pinned to the masking schemas, so `customers` means the
 *   view. `maskedWrite` writes the raw tables but may SELECT only their non-sensitive columns, so
 *   a write cannot read (copy, compare, return) a sensitive value; and it may INSERT and UPDATE
 *   only those columns too, so a write cannot put a guessed value into a sensitive column, which
 *   the masked reader would then show hashed (a dictionary oracle for `hash` columns: insert a
 *   guess, compare its hash with the stored rows') or a unique index would refuse (a membership
 *   oracle for any masked column). DELETE stays (it needs SELECT for any column its WHERE reads).
 * Every Warden user gets `statement_timeout` and `standard_conforming_strings = on` as role
 * settings, so they hold from login, whatever a statement does before.
 *
 * Masks keep their column's type (so views are drop-in): text-like columns get the gateway's own
 * formats (`[SSN]`, `****-****-****-1111`, `DE** **** **** **** **30 00`, `***@example.com`,
 * `hmac:<64 hex>`); json gets them as JSON strings; uuid and integer columns get a keyed hash of
 * their type under `hash`; anything else becomes NULL. No mask expression can raise an error on a
 * stored value (no cast of a value that could fail), so no error message can carry one.
 *
 * The keyed hash is HMAC-SHA256 built from PostgreSQL's built-in `sha256()` (no extension to
 * install or trust): the key is 32 random bytes generated inside the database at setup
 * (`gen_random_uuid()`, a CSPRNG), never derived from names, stored as its HMAC inner and outer
 * pads in `warden_private.hash_key`, a table only the owner role can read. The views read it with
 * the owner's rights; the masked users cannot.
 */
import type { SqlTargetConfig } from '../config.js';
import { compileRule, findRule, type CompiledRule } from './rules.js';
import { PARTIAL_TYPES } from './strategies.js';
import type { ColumnRule } from './types.js';

/** One column as the catalogue query returns it. */
export interface CatalogueColumn {
  readonly schema: string;
  readonly table: string;
  readonly column: string;
  /**
   * `format_type(atttypid, atttypmod)` for built-in types (`text`, `character varying(20)`), the
   * schema-qualified name of any other (`public.mood`, `"My Schema"."my type"`).
   */
  readonly type: string;
  /** `pg_class.relkind`: r (table), p (partitioned), f (foreign), m (materialized view), v (view). */
  readonly kind: string;
  /** `attnum`: view columns keep the table's order. */
  readonly position: number;
}

/** What the generator reads of a SQL target. */
export type DbMaskingTarget = Pick<SqlTargetConfig, 'db' | 'masking' | 'statementTimeoutMs'>;

export const PRIVATE_SCHEMA = 'warden_private';
export const HASH_KEY_TABLE = 'hash_key';

export type WardenUser = 'read' | 'write' | 'maskedRead' | 'maskedWrite';
export const WARDEN_USERS: readonly WardenUser[] = ['read', 'write', 'maskedRead', 'maskedWrite'];

export class DbMaskingConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DbMaskingConfigError';
  }
}

// ---------------------------------------------------------------------------------------------
// Quoting: every name and literal the generator writes goes through these.

function checkName(name: string, what: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new DbMaskingConfigError(`${what} is empty`);
  if (name.includes('\0')) throw new DbMaskingConfigError(`${what} contains a NUL byte`);
  // PostgreSQL truncates longer names silently: two names would become one.
  if (Buffer.byteLength(name, 'utf8') > 63) {
    throw new DbMaskingConfigError(`${what} "${name}" is longer than PostgreSQL's 63 bytes`);
  }
  return name;
}

/** A double-quoted identifier: always quoted, so case and any character are kept as they are. */
export function quoteIdent(name: string): string {
  checkName(name, 'a name');
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * An escape-string literal: `E'…'` means the same whatever `standard_conforming_strings` the
 * administrator's session has (a plain `'…'` would not).
 */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new DbMaskingConfigError('a literal contains a NUL byte');
  return `E'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** A dollar-quoted body whose tag does not occur in it. */
function dollarQuote(body: string): string {
  let tag = 'warden';
  for (let i = 0; body.includes(`$${tag}$`); i++) tag = `warden${i}`;
  return `$${tag}$${body}$${tag}$`;
}

const qualified = (schema: string, name: string): string => `${quoteIdent(schema)}.${quoteIdent(name)}`;

/**
 * A type as `format_type` writes it. It lands in generated SQL unquoted, so only its tokens are
 * accepted: words, quoted identifiers, numbers, `.`, `,`, `(`, `)`, `[`, `]` and spaces.
 */
function checkType(type: string): string {
  const token = /\s+|"(?:[^"]|"")*"|[A-Za-z_][A-Za-z0-9_$]*|\d+|[.,()[\]]/y;
  let i = 0;
  let depth = 0;
  while (i < type.length) {
    token.lastIndex = i;
    const m = token.exec(type);
    if (!m) throw new DbMaskingConfigError(`column type ${JSON.stringify(type)} is not a type name`);
    if (m[0] === '(') depth++;
    if (m[0] === ')' && --depth < 0) throw new DbMaskingConfigError(`column type ${JSON.stringify(type)}`);
    i = token.lastIndex;
  }
  if (type.trim() === '' || depth !== 0) {
    throw new DbMaskingConfigError(`column type ${JSON.stringify(type)} is not a type name`);
  }
  return type;
}

// ---------------------------------------------------------------------------------------------
// Names

/** The masking schema over one of the target's schemas. */
export function maskedSchemaFor(schema: string): string {
  return checkName(schema === 'public' ? 'warden_masked' : `warden_masked_${schema}`, 'masking schema');
}

function users(target: DbMaskingTarget): Record<WardenUser | 'owner', string> {
  const u = target.db.users;
  const all = {
    read: u.read,
    write: u.write,
    maskedRead: u.maskedRead,
    maskedWrite: u.maskedWrite,
    owner: u.owner,
  };
  const seen = new Map<string, string>();
  for (const [k, v] of Object.entries(all)) {
    checkName(v, `db.users.${k}`);
    const other = seen.get(v);
    if (other) throw new DbMaskingConfigError(`db.users.${other} and db.users.${k} are both "${v}"`);
    seen.set(v, k);
  }
  return all;
}

function schemasOf(target: DbMaskingTarget): string[] {
  const schemas = target.db.schemas.map((s) => checkName(s, 'db.schemas entry'));
  for (const s of schemas) {
    const warden = s === PRIVATE_SCHEMA || s === 'warden_masked' || s.startsWith('warden_masked_');
    if (warden || s.startsWith('pg_') || s === 'information_schema') {
      throw new DbMaskingConfigError(`db.schemas may not include "${s}"`);
    }
  }
  if (new Set(schemas).size !== schemas.length) throw new DbMaskingConfigError('db.schemas has a duplicate');
  return schemas;
}

/** The search_path each Warden user is pinned to. */
export function searchPathFor(target: DbMaskingTarget, user: WardenUser): string[] {
  const schemas = schemasOf(target);
  return user === 'maskedRead' ? schemas.map(maskedSchemaFor) : schemas;
}

// ---------------------------------------------------------------------------------------------
// The catalogue

/**
 * Lists the columns of the target's tables and views (partitions excluded: their parent is the
 * table). Schemas are inlined as literals so the query runs the same over the Data API and psql.
 */
export function catalogueSql(target: Pick<DbMaskingTarget, 'db'>): string {
  const schemas = target.db.schemas.map((s) => quoteLiteral(checkName(s, 'db.schemas entry')));
  return `SELECT n.nspname::text AS "schema", c.relname::text AS "table", a.attname::text AS "column",
       CASE WHEN t.typnamespace = 'pg_catalog'::regnamespace
            THEN pg_catalog.format_type(a.atttypid, a.atttypmod)
            ELSE pg_catalog.quote_ident(tn.nspname) || '.' || pg_catalog.quote_ident(t.typname) END AS "type",
       c.relkind::text AS "kind",
       a.attnum::int AS "position"
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
  JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace
 WHERE c.relkind IN ('r', 'p', 'f', 'm', 'v') AND NOT c.relispartition
   AND n.nspname IN (${schemas.join(', ')})
 ORDER BY 1, 2, 6`;
}

interface Table {
  readonly schema: string;
  readonly name: string;
  readonly kind: string;
  readonly columns: { readonly column: CatalogueColumn; readonly rule?: ColumnRule }[];
}

/** Tables (not views) of the target's schemas with their columns in order and the rule of each. */
function tablesOf(target: DbMaskingTarget, columns: readonly CatalogueColumn[]): Table[] {
  const schemas = new Set(schemasOf(target));
  const rules: CompiledRule[] = target.masking.rules.map(compileRule);
  const byTable = new Map<string, Table>();
  for (const c of [...columns].sort((a, b) => a.position - b.position)) {
    if (!schemas.has(c.schema) || c.kind === 'v') continue;
    checkName(c.table, 'a table name');
    checkName(c.column, 'a column name');
    checkType(c.type);
    const key = JSON.stringify([c.schema, c.table]);
    let t = byTable.get(key);
    if (!t) {
      t = { schema: c.schema, name: c.table, kind: c.kind, columns: [] };
      byTable.set(key, t);
    }
    const rule = findRule(rules, { schema: c.schema, table: c.table, name: c.column });
    t.columns.push({ column: c, ...(rule ? { rule } : {}) });
  }
  return [...byTable.values()].sort((a, b) =>
    a.schema === b.schema ? (a.name < b.name ? -1 : 1) : a.schema < b.schema ? -1 : 1,
  );
}

/** The sensitive columns (those a rule matches) of the target's tables. */
export function sensitiveColumns(
  target: DbMaskingTarget,
  columns: readonly CatalogueColumn[],
): { schema: string; table: string; column: string; rule: ColumnRule }[] {
  const out: { schema: string; table: string; column: string; rule: ColumnRule }[] = [];
  for (const t of tablesOf(target, columns)) {
    for (const { column, rule } of t.columns) {
      if (rule) out.push({ schema: t.schema, table: t.name, column: column.column, rule });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Mask expressions

/** ASCII separators, kept by `partial`; everything else (letters, digits, non-ASCII) is significant. */
const NONSIG = '[\\x01-\\x2f\\x3a-\\x40\\x5b-\\x60\\x7b-\\x7f]';
const SIG = '[^\\x01-\\x2f\\x3a-\\x40\\x5b-\\x60\\x7b-\\x7f]';
/** A significant character followed by at least four more: starred, so the last four stay. */
const NOT_LAST_FOUR = `${SIG}(?=(?:${NONSIG}*${SIG}){4})`;

type TypeFamily =
  | { kind: 'text'; cast: string }
  | { kind: 'json'; cast: 'json' | 'jsonb' }
  | { kind: 'uuid' }
  | { kind: 'int'; cast: 'smallint' | 'integer' | 'bigint'; max: string }
  | { kind: 'other' };

function familyOf(type: string): TypeFamily {
  const t = type.trim();
  // The type without its length, so a placeholder or hash is never cut to fit.
  if (t === 'text') return { kind: 'text', cast: 'text' };
  if (/^character varying(\(\d+\))?$/.test(t)) return { kind: 'text', cast: 'character varying' };
  if (/^character(\(\d+\))?$/.test(t)) return { kind: 'text', cast: 'bpchar' };
  if (/^(?:(?:"?public"?|"?[a-z_][a-z0-9_]*"?)\.)?"?citext"?$/.test(t)) return { kind: 'text', cast: t };
  if (t === 'json' || t === 'jsonb') return { kind: 'json', cast: t };
  if (t === 'uuid') return { kind: 'uuid' };
  if (t === 'smallint') return { kind: 'int', cast: 'smallint', max: '32767' };
  if (t === 'integer') return { kind: 'int', cast: 'integer', max: '2147483647' };
  if (t === 'bigint') return { kind: 'int', cast: 'bigint', max: '' };
  return { kind: 'other' };
}

/** What counts as the same value (so hashes join across formats); as the gateway's normalizeForHash. */
function normalized(type: string, x: string): string {
  switch (type) {
    case 'CARD':
    case 'SSN':
    case 'PHONE':
      return `pg_catalog.regexp_replace(${x}, ${quoteLiteral('\\D')}, '', 'g')`;
    case 'IBAN':
      return `pg_catalog.upper(pg_catalog.regexp_replace(${x}, ${quoteLiteral('\\s')}, '', 'g'))`;
    case 'EMAIL':
    case 'IPV6':
      return `pg_catalog.lower(${x})`;
    default:
      return x;
  }
}

/** Lower-case hex of HMAC-SHA256(key, type ':' value), as the gateway's Hasher computes it. */
function hmacHex(type: string, text: string): string {
  const pad = (p: 'inner_pad' | 'outer_pad') =>
    `(SELECT k.${p} FROM ${qualified(PRIVATE_SCHEMA, HASH_KEY_TABLE)} AS k)`;
  const message = `pg_catalog.convert_to(${quoteLiteral(`${type}:`)} || ${normalized(type, text)}, 'UTF8')`;
  return `pg_catalog.encode(pg_catalog.sha256(${pad('outer_pad')} || pg_catalog.sha256(${pad('inner_pad')} || ${message})), 'hex')`;
}

function partialText(type: string, x: string): string {
  const significant = `pg_catalog.length(pg_catalog.regexp_replace(${x}, ${quoteLiteral(NONSIG)}, '', 'g'))`;
  const stars = `pg_catalog.repeat('*', GREATEST(1, pg_catalog.length(${x})))`;
  const lastFour = (s: string) => `pg_catalog.regexp_replace(${s}, ${quoteLiteral(NOT_LAST_FOUR)}, '*', 'g')`;
  const generic = `CASE WHEN ${significant} < 8 THEN ${stars} ELSE ${lastFour(x)} END`;
  if (type === 'EMAIL') {
    return `CASE WHEN ${x} ~ ${quoteLiteral('.@[^@]*$')} THEN '***' || pg_catalog.substring(${x}, ${quoteLiteral('@[^@]*$')}) ELSE ${generic} END`;
  }
  if (type === 'IBAN') {
    // The country stays (`DE** **** … **30 00`): it says which bank system, not which account.
    return `CASE WHEN ${significant} >= 8 AND ${x} ~ ${quoteLiteral('^[A-Z]{2}')} THEN pg_catalog.left(${x}, 2) || ${lastFour(`pg_catalog.substr(${x}, 3)`)} ELSE ${generic} END`;
  }
  return generic;
}

/** The expression that stands for `src.<column>` in the masking view. */
export function maskExpression(rule: ColumnRule, column: Pick<CatalogueColumn, 'column' | 'type'>): string {
  const x = `src.${quoteIdent(column.column)}`;
  const type = checkType(column.type);
  const label = rule.type ?? 'COLUMN';
  if (!/^[A-Za-z0-9_]{1,40}$/.test(label)) {
    throw new DbMaskingConfigError(
      `masking rule ${rule.column}: type ${JSON.stringify(label)} is not a label`,
    );
  }
  const family = familyOf(type);
  const typedNull = `CAST(NULL AS ${type})`;
  const nullable = (expr: string) => `CASE WHEN ${x} IS NULL THEN NULL ELSE ${expr} END`;
  if (rule.strategy === 'null') return typedNull;
  const strategy = rule.strategy === 'partial' && !PARTIAL_TYPES.has(label) ? 'redact' : rule.strategy;
  switch (family.kind) {
    case 'text': {
      const cast = (e: string) => `CAST(${e} AS ${family.cast})`;
      if (strategy === 'redact') return nullable(cast(quoteLiteral(`[${label}]`)));
      if (strategy === 'partial') return nullable(cast(partialText(label, `${x}::text`)));
      return nullable(cast(`'hmac:' || ${hmacHex(label, `${x}::text`)}`));
    }
    case 'json': {
      const fn = family.cast === 'json' ? 'pg_catalog.to_json' : 'pg_catalog.to_jsonb';
      if (strategy === 'hash') return nullable(`${fn}('hmac:' || ${hmacHex(label, `${x}::text`)})`);
      return nullable(`${fn}(${quoteLiteral(`[${label}]`)}::text)`);
    }
    case 'uuid':
      return strategy === 'hash'
        ? nullable(`CAST(pg_catalog.substr(${hmacHex(label, `${x}::text`)}, 1, 32) AS uuid)`)
        : typedNull;
    case 'int': {
      if (strategy !== 'hash') return typedNull;
      // 60 bits of the HMAC as a bigint, folded into the column's range: joinable, same type.
      const bits = `CAST(CAST(('x' || pg_catalog.substr(${hmacHex(label, `${x}::text`)}, 1, 15)) AS bit(60)) AS bigint)`;
      return nullable(family.max ? `CAST(pg_catalog.mod(${bits}, ${family.max}) AS ${family.cast})` : bits);
    }
    default:
      return typedNull;
  }
}

// ---------------------------------------------------------------------------------------------
// The setup

function ensureRole(name: string, login: boolean): string {
  const body = `BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = ${quoteLiteral(name)}) THEN
    CREATE ROLE ${quoteIdent(name)} ${login ? 'LOGIN' : 'NOLOGIN'};
  END IF;
END`;
  return `DO ${dollarQuote(body)}`;
}

/** Drops every view left in the masking schemas, so they hold exactly what this setup creates. */
function dropMaskingViews(schemas: readonly string[]): string {
  const list = schemas.map(quoteLiteral).join(', ');
  const body = `DECLARE v record;
BEGIN
  FOR v IN SELECT n.nspname, c.relname FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'v' AND n.nspname IN (${list})
  LOOP
    EXECUTE pg_catalog.format('DROP VIEW %I.%I', v.nspname, v.relname);
  END LOOP;
END`;
  return `DO ${dollarQuote(body)}`;
}

/** A masked user inherits nothing: any role membership could carry raw privileges. */
function dropMemberships(user: string): string {
  const body = `DECLARE r record;
BEGIN
  FOR r IN SELECT g.rolname FROM pg_catalog.pg_auth_members m
             JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
             JOIN pg_catalog.pg_roles u ON u.oid = m.member
            WHERE u.rolname = ${quoteLiteral(user)}
  LOOP
    EXECUTE pg_catalog.format('REVOKE %I FROM %I', r.rolname, ${quoteLiteral(user)});
  END LOOP;
END`;
  return `DO ${dollarQuote(body)}`;
}

/**
 * The setup, as statements to run in order in one transaction by an administrator (the owner of
 * the target's tables, or a role with CREATEROLE that may grant on them). Running it again
 * converges: views are rebuilt from the current catalogue, privileges reset and granted again.
 */
export function generateMaskingSql(target: DbMaskingTarget, columns: readonly CatalogueColumn[]): string[] {
  const u = users(target);
  const schemas = schemasOf(target);
  const timeout = target.statementTimeoutMs;
  if (!Number.isSafeInteger(timeout) || timeout < 1) throw new DbMaskingConfigError('statementTimeoutMs');
  const tables = tablesOf(target, columns);
  const maskedSchemas = schemas.map(maskedSchemaFor);
  const all = [...schemas, ...maskedSchemas, PRIVATE_SCHEMA];
  const owner = quoteIdent(u.owner);
  const sql: string[] = [];

  // Roles. The administrator joins the owner role so it may hand objects to it (PostgreSQL 15).
  sql.push(ensureRole(u.owner, false));
  for (const k of WARDEN_USERS) sql.push(ensureRole(u[k], true));
  sql.push(`GRANT ${owner} TO CURRENT_USER`);
  for (const k of ['maskedRead', 'maskedWrite'] as const) sql.push(dropMemberships(u[k]));

  // Schemas of Warden's own objects: only the owner creates in them.
  for (const s of [...maskedSchemas, PRIVATE_SCHEMA]) {
    sql.push(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(s)}`);
    sql.push(`ALTER SCHEMA ${quoteIdent(s)} OWNER TO ${owner}`);
    sql.push(`REVOKE ALL ON SCHEMA ${quoteIdent(s)} FROM PUBLIC`);
  }

  // The hash key: 32 random bytes from the database's CSPRNG, kept as its HMAC pads.
  const keyTable = qualified(PRIVATE_SCHEMA, HASH_KEY_TABLE);
  sql.push(
    `CREATE TABLE IF NOT EXISTS ${keyTable} (id boolean PRIMARY KEY DEFAULT true CHECK (id), ` +
      `inner_pad bytea NOT NULL, outer_pad bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`,
  );
  sql.push(`ALTER TABLE ${keyTable} OWNER TO ${owner}`);
  sql.push(`REVOKE ALL ON ${keyTable} FROM PUBLIC`);
  const pad = (byte: number) =>
    `pg_catalog.decode((SELECT pg_catalog.string_agg(pg_catalog.lpad(pg_catalog.to_hex(pg_catalog.get_byte(k.key, i) # ${byte}), 2, '0'), '' ORDER BY i) FROM pg_catalog.generate_series(0, 63) AS i), 'hex')`;
  sql.push(
    `INSERT INTO ${keyTable} (inner_pad, outer_pad) SELECT ${pad(0x36)}, ${pad(0x5c)} FROM (SELECT ` +
      `pg_catalog.decode(pg_catalog.replace(pg_catalog.gen_random_uuid()::text || pg_catalog.gen_random_uuid()::text, '-', '') ` +
      `|| pg_catalog.repeat('00', 32), 'hex') AS key) AS k ON CONFLICT (id) DO NOTHING`,
  );

  // The owner reads the raw tables (the views run with its rights).
  for (const s of schemas) {
    sql.push(`GRANT USAGE ON SCHEMA ${quoteIdent(s)} TO ${owner}`);
    sql.push(`GRANT SELECT ON ALL TABLES IN SCHEMA ${quoteIdent(s)} TO ${owner}`);
  }

  // The masking views.
  sql.push(dropMaskingViews(maskedSchemas));
  for (const t of tables) {
    const view = qualified(maskedSchemaFor(t.schema), t.name);
    const select = t.columns.map(({ column, rule }) =>
      rule
        ? `${maskExpression(rule, column)} AS ${quoteIdent(column.column)}`
        : `src.${quoteIdent(column.column)}`,
    );
    sql.push(`CREATE VIEW ${view} AS SELECT ${select.join(', ')} FROM ${qualified(t.schema, t.name)} AS src`);
    sql.push(`ALTER VIEW ${view} OWNER TO ${owner}`);
  }

  // Privileges: reset, then exactly what each profile needs.
  for (const k of WARDEN_USERS) {
    const who = quoteIdent(u[k]);
    for (const s of all) {
      sql.push(`REVOKE ALL ON ALL TABLES IN SCHEMA ${quoteIdent(s)} FROM ${who}`);
      sql.push(`REVOKE ALL ON SCHEMA ${quoteIdent(s)} FROM ${who}`);
    }
  }
  // A PUBLIC grant on a table with a sensitive column would reach the masked users too.
  for (const t of tables) {
    if (t.columns.some((c) => c.rule)) sql.push(`REVOKE ALL ON ${qualified(t.schema, t.name)} FROM PUBLIC`);
  }
  const read = quoteIdent(u.read);
  const write = quoteIdent(u.write);
  const maskedRead = quoteIdent(u.maskedRead);
  const maskedWrite = quoteIdent(u.maskedWrite);
  for (const s of schemas) {
    const schema = quoteIdent(s);
    sql.push(`GRANT USAGE ON SCHEMA ${schema} TO ${read}, ${write}, ${maskedWrite}`);
    sql.push(`GRANT SELECT ON ALL TABLES IN SCHEMA ${schema} TO ${read}`);
    sql.push(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO ${write}`);
    sql.push(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${schema} TO ${write}`);
    sql.push(`GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO ${maskedWrite}`);
    sql.push(`GRANT USAGE ON ALL SEQUENCES IN SCHEMA ${schema} TO ${maskedWrite}`);
  }
  for (const t of tables) {
    const clear = t.columns.filter((c) => !c.rule).map((c) => quoteIdent(c.column.column));
    const table = qualified(t.schema, t.name);
    if (clear.length > 0) sql.push(`GRANT SELECT (${clear.join(', ')}) ON ${table} TO ${maskedWrite}`);
    if (t.columns.some((c) => c.rule)) {
      // Writes only to the columns it may read: no guessed value into a sensitive column.
      sql.push(`REVOKE INSERT, UPDATE ON ${table} FROM ${maskedWrite}`);
      if (clear.length > 0) {
        sql.push(
          `GRANT INSERT (${clear.join(', ')}), UPDATE (${clear.join(', ')}) ON ${table} TO ${maskedWrite}`,
        );
      }
    }
  }
  for (const s of maskedSchemas) {
    sql.push(`GRANT USAGE ON SCHEMA ${quoteIdent(s)} TO ${maskedRead}`);
    sql.push(`GRANT SELECT ON ALL TABLES IN SCHEMA ${quoteIdent(s)} TO ${maskedRead}`);
  }

  // Role settings: in force from login, for every Warden user.
  for (const k of WARDEN_USERS) {
    const who = quoteIdent(u[k]);
    sql.push(`ALTER ROLE ${who} SET search_path TO ${searchPathFor(target, k).map(quoteIdent).join(', ')}`);
    sql.push(`ALTER ROLE ${who} SET statement_timeout TO ${timeout}`);
    sql.push(`ALTER ROLE ${who} SET standard_conforming_strings TO on`);
  }
  return sql;
}

// ---------------------------------------------------------------------------------------------
// Exceptions: what the masked users may keep outside Warden's schemas (db.maskedMayUse)

/** One identifier as `format('%I')` writes it, unquoted. */
function parseIdent(text: string, at: number): { value: string; end: number } | undefined {
  if (text[at] === '"') {
    let value = '';
    for (let i = at + 1; i < text.length; i++) {
      if (text[i] !== '"') value += text[i];
      else if (text[i + 1] === '"') value += text[i++];
      else return value ? { value, end: i + 1 } : undefined;
    }
    return undefined;
  }
  const m = /^[a-z_][a-z0-9_$]*/.exec(text.slice(at));
  return m ? { value: m[0], end: at + m[0].length } : undefined;
}

/** `schema.name` as the check prints it, split (undefined when it is not that form). */
export function parseQualifiedName(text: string): { schema: string; name: string } | undefined {
  const schema = parseIdent(text, 0);
  if (!schema || text[schema.end] !== '.') return undefined;
  const name = parseIdent(text, schema.end + 1);
  if (!name || name.end !== text.length) return undefined;
  return { schema: schema.value, name: name.value };
}

/** The target's exceptions, parsed; a malformed entry is a configuration error. */
function exemptOf(target: DbMaskingTarget): {
  relations: { schema: string; name: string; text: string }[];
  functions: string[];
} {
  const given = target.db.maskedMayUse;
  const relations = (given?.relations ?? []).map((text) => {
    const parsed = parseQualifiedName(text);
    if (!parsed) {
      throw new DbMaskingConfigError(
        `db.maskedMayUse.relations entry ${JSON.stringify(text)} is not schema.name as the check names it`,
      );
    }
    checkName(parsed.schema, 'a schema name');
    checkName(parsed.name, 'a relation name');
    return { ...parsed, text };
  });
  const functions = [...(given?.functions ?? [])];
  for (const f of functions) {
    if (f.includes('\0'))
      throw new DbMaskingConfigError('a db.maskedMayUse.functions entry contains a NUL byte');
  }
  return { relations, functions };
}

/**
 * What is wrong with the target's exceptions before anything is asked of the database: an exempt
 * relation in Warden's own schemas, or an exempt table of the data schemas with a column a masking
 * rule matches (the masked users would read that column raw). [] when there is nothing.
 */
export function exemptionProblems(target: DbMaskingTarget, columns: readonly CatalogueColumn[]): string[] {
  const { relations } = exemptOf(target);
  if (relations.length === 0) return [];
  const warden = new Set([PRIVATE_SCHEMA, ...schemasOf(target).map((schema) => maskedSchemaFor(schema))]);
  const masked = new Map<string, string[]>();
  for (const t of tablesOf(target, columns)) {
    const cols = t.columns.filter((c) => c.rule).map((c) => c.column.column);
    if (cols.length > 0) masked.set(JSON.stringify([t.schema, t.name]), cols);
  }
  const out: string[] = [];
  for (const r of relations) {
    if (warden.has(r.schema)) {
      out.push(`db.maskedMayUse.relations: ${r.text} is in Warden's own schema ${r.schema}; take it off`);
      continue;
    }
    const cols = masked.get(JSON.stringify([r.schema, r.name]));
    if (cols) {
      out.push(
        `db.maskedMayUse.relations: ${r.text} has masked columns (${cols.join(', ')}); the masked users would read them raw. Take it off (they read it through its masking view)`,
      );
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The check

export type ProbeExpectation =
  | { readonly kind: 'denied' }
  | { readonly kind: 'allowed' }
  /** The query runs and its one value is false. */
  | { readonly kind: 'false' }
  /**
   * The query runs and finds nothing: each row it finds names something the user must not have
   * (`fix` says how to take it away).
   */
  | { readonly kind: 'none'; readonly fix: string }
  | {
      readonly kind: 'settings';
      readonly user: string;
      readonly searchPath: readonly string[];
      readonly statementTimeoutMs: number;
    };

/** Opens every statement the check sends, so the twin's invariant checks can tell them from requests. */
export const CHECK_MARK = '/* warden db check */ ';

export interface Probe {
  /** Which Warden user (secret) runs it. */
  readonly as: WardenUser;
  readonly sql: string;
  readonly expect: ProbeExpectation;
  /** What it proves, for the report. */
  readonly what: string;
}

/** What running a probe gave: rows (as text), or an error with its SQLSTATE. */
export type ProbeOutcome =
  | { readonly ok: true; readonly rows: readonly (readonly (string | null)[])[] }
  | {
      readonly ok: false;
      readonly sqlState?: string;
      readonly message: string;
      /** The probe could not run (throttled, a 5xx, a timeout): nothing was learnt about masking. */
      readonly transient?: boolean;
    };

const SETTINGS_SQL = `SELECT current_user::text,
       pg_catalog.to_json(pg_catalog.current_schemas(false))::text,
       (SELECT setting FROM pg_catalog.pg_settings WHERE name = 'statement_timeout'),
       (SELECT setting FROM pg_catalog.pg_settings WHERE name = 'standard_conforming_strings'),
       (SELECT (r.rolsuper OR r.rolbypassrls)::text FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)`;

/**
 * The probes `warden db check` runs: each user's settings; each masked user tries every raw
 * sensitive column (and the hash key), expecting permission denied; the masked reader reads every
 * masking view.
 */
export function checkProbes(target: DbMaskingTarget, columns: readonly CatalogueColumn[]): Probe[] {
  const u = users(target);
  const probes: Probe[] = [];
  for (const k of WARDEN_USERS) {
    probes.push({
      as: k,
      sql: SETTINGS_SQL,
      expect: {
        kind: 'settings',
        user: u[k],
        searchPath: searchPathFor(target, k),
        statementTimeoutMs: target.statementTimeoutMs,
      },
      what: `${u[k]}: search_path, statement_timeout, standard_conforming_strings, no superuser or BYPASSRLS`,
    });
  }
  const tables = tablesOf(target, columns);
  for (const k of ['maskedRead', 'maskedWrite'] as const) {
    for (const t of tables) {
      for (const { column, rule } of t.columns) {
        if (!rule) continue;
        probes.push({
          as: k,
          sql: `SELECT src.${quoteIdent(column.column)} FROM ${qualified(t.schema, t.name)} AS src LIMIT 0`,
          expect: { kind: 'denied' },
          what: `${u[k]} cannot read ${t.schema}.${t.name}.${column.column}`,
        });
      }
    }
    probes.push({
      as: k,
      sql: `SELECT 1 FROM ${qualified(PRIVATE_SCHEMA, HASH_KEY_TABLE)} LIMIT 0`,
      expect: { kind: 'denied' },
      what: `${u[k]} cannot read the hash key`,
    });
  }
  // Asked of the catalogue, so nothing is written (an INSERT of no rows would still fire
  // statement triggers): the masked writer holds no INSERT or UPDATE on a sensitive column.
  for (const t of tables) {
    for (const { column, rule } of t.columns) {
      if (!rule) continue;
      const args = `${quoteLiteral(qualified(t.schema, t.name))}, ${quoteLiteral(column.column)}`;
      probes.push({
        as: 'maskedWrite',
        sql: `SELECT has_column_privilege(${args}, 'INSERT') OR has_column_privilege(${args}, 'UPDATE') AS may_write`,
        expect: { kind: 'false' },
        what: `${u.maskedWrite} cannot write ${t.schema}.${t.name}.${column.column}`,
      });
    }
  }
  // What reads with another role's privileges: a view, a materialized view or a foreign table reads
  // its tables as its owner, and a SECURITY DEFINER function runs as its owner, so either, readable
  // or executable by a masked user (PostgreSQL grants EXECUTE on every new function to PUBLIC, and
  // many schemas grant SELECT on views to PUBLIC), gives it the raw columns the masking views hide.
  // Warden's own schemas are not asked about: their views are the masking views.
  const warden = [PRIVATE_SCHEMA, ...target.db.schemas.map((schema) => maskedSchemaFor(schema))]
    .map((name) => quoteLiteral(name))
    .join(', ');
  const outside = `n.nspname NOT IN ('pg_catalog', 'information_schema', ${warden}) AND n.nspname NOT LIKE 'pg\\_%'
  AND pg_catalog.has_schema_privilege(n.oid, 'USAGE')`;
  // The masked reader reads nothing else at all, tables included (its data is the masking views);
  // the masked writer holds column grants on the data schemas' tables by design (their columns
  // without a mask), so for it those tables are the column probes' business.
  const dataSchemas = target.db.schemas.map((schema) => quoteLiteral(schema)).join(', ');
  const exempt = exemptOf(target);
  const exemptPairs = exempt.relations
    .map((r) => `(${quoteLiteral(r.schema)}, ${quoteLiteral(r.name)})`)
    .join(', ');
  const notExemptRelation =
    exempt.relations.length === 0 ? '' : `\n  AND (n.nspname, c.relname) NOT IN (${exemptPairs})`;
  const notExemptFunction =
    exempt.functions.length === 0
      ? ''
      : `\n  AND pg_catalog.format('%I.%I(%s)', n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)) NOT IN (${exempt.functions.map((f) => quoteLiteral(f)).join(', ')})`;
  const readerKinds = `c.relkind IN ('r', 'p', 'v', 'm', 'f')`;
  const writerKinds = `(c.relkind IN ('v', 'm', 'f') OR (c.relkind IN ('r', 'p') AND n.nspname NOT IN (${dataSchemas})))`;
  for (const k of ['maskedRead', 'maskedWrite'] as const) {
    probes.push({
      as: k,
      sql: `SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE ${k === 'maskedRead' ? readerKinds : writerKinds} AND ${outside}
  AND (pg_catalog.has_table_privilege(c.oid, 'SELECT') OR pg_catalog.has_any_column_privilege(c.oid, 'SELECT'))${notExemptRelation}
ORDER BY 1 LIMIT 20`,
      expect: { kind: 'none', fix: 'REVOKE SELECT ON <it> FROM PUBLIC (and from the masked user)' },
      what:
        k === 'maskedRead'
          ? `${u[k]} can read no table, view, materialized view or foreign table outside Warden's schemas (a view reads as its owner)`
          : `${u[k]} can read no view, materialized view or foreign table outside Warden's schemas, nor a table outside the data schemas (a view reads as its owner)`,
    });
    probes.push({
      as: k,
      sql: `SELECT pg_catalog.format('%I.%I(%s)', n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid))
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE p.prosecdef AND ${outside}
  AND pg_catalog.has_function_privilege(p.oid, 'EXECUTE')${notExemptFunction}
ORDER BY 1 LIMIT 20`,
      expect: {
        kind: 'none',
        fix: 'REVOKE EXECUTE ON FUNCTION <it> FROM PUBLIC (and from the masked user), then GRANT it to the roles that need it',
      },
      what: `${u[k]} can run no SECURITY DEFINER function outside Warden's schemas (each runs as its owner)`,
    });
    // An exempt view or materialized view reads its relations as its owner: each one it reads (every
    // relation of its query tree, subqueries included, from the rule's stored tree: pg_depend
    // records no dependency on a system catalogue) must
    // be one the masked user may read on its own (a catalogue table such as pg_class, whose rows
    // PostgreSQL filters by the user's privileges where it must) or exempt itself (and so checked
    // in turn). A view over pg_statistic (sampled raw values) or a data table is refused.
    if (exempt.relations.length > 0) {
      probes.push({
        as: k,
        sql: `SELECT DISTINCT pg_catalog.format('%I.%I reads %I.%I', vn.nspname, v.relname, rn.nspname, rc.relname)
  FROM pg_catalog.pg_class v
  JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace
  JOIN pg_catalog.pg_rewrite w ON w.ev_class = v.oid
  CROSS JOIN LATERAL pg_catalog.regexp_matches(w.ev_action::text, ':relid ([0-9]+)', 'g') AS m(relid)
  JOIN pg_catalog.pg_class rc ON rc.oid = m.relid[1]::oid
  JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
WHERE (vn.nspname, v.relname) IN (${exemptPairs})
  AND rc.oid <> v.oid
  AND NOT (rn.nspname NOT IN (${warden}) AND pg_catalog.has_table_privilege(rc.oid, 'SELECT'))
  AND (rn.nspname, rc.relname) NOT IN (${exemptPairs})
ORDER BY 1 LIMIT 20`,
        expect: {
          kind: 'none',
          fix: 'take the view off db.maskedMayUse.relations, or make it read only what the masked user may read',
        },
        what: `each exempt view ${u[k]} may read reads only what ${u[k]} may read on its own or is exempt (a view reads as its owner)`,
      });
    }
    // A member holds its roles' privileges (pg_read_all_data reads every table, pg_read_server_files
    // the database's files), whatever was granted to the user itself.
    probes.push({
      as: k,
      sql: `SELECT r.rolname::text FROM pg_catalog.pg_auth_members m
  JOIN pg_catalog.pg_roles r ON r.oid = m.roleid
WHERE m.member = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
ORDER BY 1 LIMIT 20`,
      expect: { kind: 'none', fix: 'REVOKE <it> FROM the masked user' },
      what: `${u[k]} is a member of no role (a member holds its roles' privileges)`,
    });
  }
  for (const t of tables) {
    probes.push({
      as: 'maskedRead',
      sql: `SELECT * FROM ${qualified(maskedSchemaFor(t.schema), t.name)} LIMIT 0`,
      expect: { kind: 'allowed' },
      what: `${u.maskedRead} reads the masking view of ${t.schema}.${t.name}`,
    });
  }
  return probes.map((p) => ({ ...p, sql: CHECK_MARK + p.sql }));
}

/** A problem with the outcome of a probe, or undefined when it proved what it should. */
export function evaluateProbe(probe: Probe, outcome: ProbeOutcome): string | undefined {
  const e = probe.expect;
  if (e.kind === 'denied') {
    if (outcome.ok) return `${probe.what}: FAILED, the query ran (it must be refused)`;
    if (outcome.sqlState !== '42501') {
      return `${probe.what}: FAILED, expected permission denied (42501), got ${outcome.sqlState ?? 'an error'}: ${outcome.message}`;
    }
    return undefined;
  }
  if (!outcome.ok) return `${probe.what}: FAILED: ${outcome.message}`;
  if (e.kind === 'allowed') return undefined;
  if (e.kind === 'none') {
    const found = outcome.rows.map((r) => String(r[0]));
    return found.length === 0
      ? undefined
      : `${probe.what}: FAILED, it can: ${found.join(', ')}. Fix: ${e.fix}`;
  }
  if (e.kind === 'false') {
    const value = outcome.rows[0]?.[0];
    return value === 'false'
      ? undefined
      : `${probe.what}: FAILED, it may (the database answered ${String(value)})`;
  }
  const row = outcome.rows[0] ?? [];
  const problems: string[] = [];
  if (row[0] !== e.user) problems.push(`runs as ${String(row[0])}, not ${e.user}`);
  let path: unknown;
  try {
    path = JSON.parse(row[1] ?? 'null');
  } catch {
    path = row[1];
  }
  if (JSON.stringify(path) !== JSON.stringify(e.searchPath)) {
    problems.push(
      `search_path resolves to ${JSON.stringify(path)}, expected ${JSON.stringify(e.searchPath)}`,
    );
  }
  if (row[2] !== String(e.statementTimeoutMs)) {
    problems.push(`statement_timeout is ${String(row[2])} ms, expected ${e.statementTimeoutMs}`);
  }
  if (row[3] !== 'on') problems.push(`standard_conforming_strings is ${String(row[3])}, expected on`);
  if (row[4] !== 'false') problems.push('is a superuser or has BYPASSRLS');
  return problems.length > 0 ? `${probe.what}: FAILED: ${problems.join('; ')}` : undefined;
}

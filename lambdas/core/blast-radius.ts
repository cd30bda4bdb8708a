/**
 * The blast radius of a request, shown to approvers before they decide. For a SQL write:
 * PostgreSQL's own estimate of the rows it would touch, the tables, and whether it has no WHERE.
 * The estimate comes from `EXPLAIN` (never ANALYZE) of a SELECT over the same rows, derived from
 * the write by its token positions, classified `read` again, and run through the read-only
 * database user: the write itself is never planned or run, and nothing here can change data.
 * For an AWS call: the IAM action and the exact resources its session policy names.
 */
import { scanSync, type ScanToken } from 'libpg-query';
import { classifySqlSync, parseStatements } from './classify/sql.js';
import type { SqlExecutor } from './ports.js';
import type { AwsClassification, SqlParameter } from './types.js';

/** Rows above which a write is high risk unless the target says otherwise. */
export const DEFAULT_BLAST_RADIUS_ROWS = 1000;

/**
 * Share of the planner's estimate of a table's rows at which a write counts as reaching nearly
 * all of it (`DELETE FROM customers WHERE id <> 7`): high risk whatever the row threshold.
 */
export const NEARLY_WHOLE_TABLE_SHARE = 0.9;

export interface SqlStatementReach {
  readonly type: string;
  /** schema-qualified */
  readonly table?: string;
  readonly noWhere: boolean;
  /** PostgreSQL's estimate of the rows touched; absent when it could not be estimated. */
  readonly estimatedRows?: number;
  /** PostgreSQL's estimate of the table's rows. */
  readonly tableRows?: number;
  readonly wholeTable: boolean;
  /**
   * The estimate reaches at least NEARLY_WHOLE_TABLE_SHARE of the table's estimated rows (and is
   * not already the whole table).
   */
  readonly nearlyWholeTable?: boolean;
  /** Why there is no estimate. */
  readonly note?: string;
}

export interface SqlBlastRadius {
  readonly kind: 'sql';
  readonly statements: readonly SqlStatementReach[];
  readonly tables: readonly string[];
  /** Sum over the statements; absent when any could not be estimated. */
  readonly estimatedRows?: number;
  readonly noWhere: boolean;
  readonly wholeTable: boolean;
  readonly threshold: number;
  /**
   * Whole table, nearly the whole table (≥ 90% of its estimated rows), more rows than the
   * threshold, or no estimate for a row write.
   */
  readonly high: boolean;
  /** Why it is high risk, in words (`estimated 349 of ~350 rows of public.customers`). */
  readonly highReason?: string;
}

export interface AwsBlastRadius {
  readonly kind: 'aws';
  readonly action: string;
  readonly resources: readonly string[];
}

export type BlastRadius = SqlBlastRadius | AwsBlastRadius;

type Json = Record<string, any>;

export function awsBlastRadius(c: AwsClassification): AwsBlastRadius {
  return { kind: 'aws', action: c.iamAction, resources: [...c.resources] };
}

const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;

function relationName(rv: Json | undefined): { qualified: string; sql: string } | undefined {
  if (!rv?.relname) return undefined;
  const schema = rv.schemaname ?? 'public';
  return {
    qualified: `${schema}.${rv.relname}`,
    sql: `${rv.schemaname ? `${quoteIdent(rv.schemaname)}.` : ''}${quoteIdent(rv.relname)}`,
  };
}

/** The statement's tokens outside parentheses (its own clauses, not sub-queries or lists). */
function topLevel(tokens: readonly ScanToken[]): ScanToken[] {
  const out: ScanToken[] = [];
  let depth = 0;
  for (const t of tokens) {
    if (t.text === '(' || t.text === '[') depth++;
    else if (t.text === ')' || t.text === ']') depth--;
    else if (depth === 0) out.push(t);
  }
  return out;
}

const kw = (t: ScanToken | undefined, ...words: string[]) =>
  t !== undefined && t.keywordKind !== 0 && words.includes(t.text.toUpperCase());

/**
 * The SELECT that reads the rows a DELETE or UPDATE would touch, as text over the caller's own
 * (so named parameters stay): `DELETE FROM t USING u WHERE …` → `SELECT 1 FROM t , u WHERE …`,
 * `UPDATE t SET … FROM u WHERE …` → `SELECT 1 FROM t , u WHERE …`; RETURNING is dropped.
 */
export function readingSelect(
  original: string,
  parsed: string,
  type: 'DELETE' | 'UPDATE',
): string | undefined {
  const tokens = topLevel(scanSync(parsed).tokens);
  const start = tokens.findIndex((t) => kw(t, type));
  if (start < 0) return undefined;
  const edits: { from: number; to: number; text: string }[] = [];
  let rest: ScanToken[];
  if (type === 'DELETE') {
    const from = tokens[start + 1];
    if (!kw(from, 'FROM')) return undefined;
    edits.push({ from: tokens[start].start, to: from.end, text: 'SELECT 1 FROM' });
    rest = tokens.slice(start + 2);
    const using = rest.find((t) => kw(t, 'USING'));
    if (using) edits.push({ from: using.start, to: using.end, text: ',' });
  } else {
    edits.push({ from: tokens[start].start, to: tokens[start].end, text: 'SELECT 1 FROM' });
    rest = tokens.slice(start + 1);
    const set = rest.findIndex((t) => kw(t, 'SET'));
    if (set < 0) return undefined;
    const after = rest.slice(set + 1).find((t) => kw(t, 'FROM', 'WHERE', 'RETURNING'));
    edits.push({ from: rest[set].start, to: after ? after.start : parsed.length, text: ' ' });
    if (after && kw(after, 'FROM')) edits.push({ from: after.start, to: after.end, text: ',' });
  }
  const where = rest.findIndex((t) => kw(t, 'WHERE'));
  if (where >= 0 && kw(rest[where + 1], 'CURRENT')) return undefined; // WHERE CURRENT OF a cursor
  const returning = rest.find((t) => kw(t, 'RETURNING'));
  if (returning) edits.push({ from: returning.start, to: parsed.length, text: '' });
  let out = original;
  for (const e of [...edits].sort((a, b) => b.from - a.from)) {
    out = out.slice(0, e.from) + e.text + out.slice(e.to);
  }
  return out.trim();
}

/** The query part of an INSERT (`INSERT INTO t (a) SELECT …` → `SELECT …`), without ON CONFLICT / RETURNING. */
function insertSource(original: string, parsed: string): string | undefined {
  const tokens = topLevel(scanSync(parsed).tokens);
  const into = tokens.findIndex((t) => kw(t, 'INTO'));
  const src = tokens.slice(into + 1).find((t) => kw(t, 'SELECT', 'WITH', 'TABLE'));
  if (!src) return undefined;
  const end = tokens.find((t) => t.start > src.start && kw(t, 'ON', 'RETURNING'));
  return original.slice(src.start, end ? end.start : parsed.length).trim();
}

function planRows(result: { rows: readonly Record<string, unknown>[] }): number | undefined {
  const cell = Object.values(result.rows[0] ?? {})[0];
  const plan = (typeof cell === 'string' ? JSON.parse(cell) : cell) as Json[] | undefined;
  const rows = plan?.[0]?.Plan?.['Plan Rows'];
  return typeof rows === 'number' && Number.isFinite(rows) ? rows : undefined;
}

export interface BlastRadiusDeps {
  readonly sql: SqlExecutor;
}

/**
 * Estimates a SQL write's reach on `target`. Never throws for a statement it cannot estimate: that
 * statement has no estimate and a note, and the whole is high risk (an approver is told it is
 * unknown, not that it is small).
 */
export async function sqlBlastRadius(
  deps: BlastRadiusDeps,
  target: string,
  sql: string,
  parameters: readonly SqlParameter[] | undefined,
  threshold = DEFAULT_BLAST_RADIUS_ROWS,
  /**
   * The requester's masking profile: a masked requester's estimate is planned as the masked reader,
   * over the masking views, so not even the planner's statistics of a raw column answer for it.
   */
  profile: 'masked' | 'unmasked' = 'unmasked',
): Promise<SqlBlastRadius> {
  const { stmts, text } = parseStatements(sql);
  const explain = async (select: string): Promise<number | undefined> => {
    // Only a text the classifier proves to be one read reaches the database, as the read-only user.
    const c = classifySqlSync(select);
    if (c.class !== 'read' || c.statements.length !== 1) return undefined;
    const used = (parameters ?? []).filter((p) => new RegExp(`:${p.name}\\b`).test(select));
    const res = await deps.sql.execute({
      target,
      level: 'read',
      profile,
      sql: `EXPLAIN (FORMAT JSON) ${select}`,
      ...(used.length ? { parameters: used } : {}),
      maxRows: 1,
    });
    return planRows(res);
  };
  const tableRows = async (rel: { sql: string }) => explain(`SELECT 1 FROM ${rel.sql}`);

  const statements: SqlStatementReach[] = [];
  for (const raw of stmts) {
    const node = raw.stmt ?? {};
    const type = Object.keys(node)[0] ?? '';
    const body = (node as Json)[type] as Json;
    const from = raw.stmt_location ?? 0;
    const to = raw.stmt_len ? from + raw.stmt_len : text.length;
    const original = sql.slice(from, to);
    const parsed = text.slice(from, to);
    const attempt = async (fn: () => Promise<SqlStatementReach>, fallback: SqlStatementReach) => {
      try {
        statements.push(await fn());
      } catch {
        statements.push({ ...fallback, note: 'PostgreSQL could not estimate it' });
      }
    };
    if (type === 'DeleteStmt' || type === 'UpdateStmt') {
      const rel = relationName(body.relation);
      const kind = type === 'DeleteStmt' ? 'DELETE' : 'UPDATE';
      const noWhere = !body.whereClause;
      const base = { type: kind, ...(rel ? { table: rel.qualified } : {}), noWhere, wholeTable: noWhere };
      await attempt(async () => {
        const select = readingSelect(original, parsed, kind);
        const estimated = select ? await explain(select) : undefined;
        const total = rel ? await tableRows(rel) : undefined;
        if (estimated === undefined) return { ...base, note: 'no estimate for this form of statement' };
        return {
          ...base,
          estimatedRows: estimated,
          ...(total !== undefined ? { tableRows: total } : {}),
          ...reachOfTable(noWhere, estimated, total),
        };
      }, base);
    } else if (type === 'TruncateStmt') {
      for (const rv of (body.relations ?? []) as Json[]) {
        const rel = relationName(rv.RangeVar);
        const base = {
          type: 'TRUNCATE',
          ...(rel ? { table: rel.qualified } : {}),
          noWhere: true,
          wholeTable: true,
        };
        await attempt(async () => {
          const total = rel ? await tableRows(rel) : undefined;
          return total === undefined ? base : { ...base, estimatedRows: total, tableRows: total };
        }, base);
      }
    } else if (type === 'InsertStmt') {
      const rel = relationName(body.relation);
      const base = {
        type: 'INSERT',
        ...(rel ? { table: rel.qualified } : {}),
        noWhere: false,
        wholeTable: false,
      };
      const values = body.selectStmt?.SelectStmt?.valuesLists;
      if (Array.isArray(values)) {
        statements.push({ ...base, estimatedRows: values.length });
      } else {
        await attempt(async () => {
          const source = insertSource(original, parsed);
          const estimated = source ? await explain(source) : undefined;
          return estimated === undefined
            ? { ...base, note: 'no estimate for this form of statement' }
            : { ...base, estimatedRows: estimated };
        }, base);
      }
    } else if (type === 'MergeStmt') {
      const rel = relationName(body.relation);
      statements.push({
        type: 'MERGE',
        ...(rel ? { table: rel.qualified } : {}),
        noWhere: false,
        wholeTable: false,
        note: 'no estimate for MERGE',
      });
    }
  }
  const writes = statements;
  const unknown = writes.some((s) => s.estimatedRows === undefined);
  const estimatedRows = unknown ? undefined : writes.reduce((n, s) => n + (s.estimatedRows ?? 0), 0);
  const wholeTable = writes.some((s) => s.wholeTable);
  const tables = [...new Set(writes.flatMap((s) => (s.table ? [s.table] : [])))].sort();
  const nearly = writes.find((s) => s.nearlyWholeTable);
  const highReason = wholeTable
    ? 'whole table'
    : unknown
      ? 'reach unknown'
      : nearly
        ? `estimated ${nearly.estimatedRows} of ~${nearly.tableRows} rows${nearly.table ? ` of ${nearly.table}` : ''}`
        : (estimatedRows ?? 0) > threshold
          ? `more than ${threshold} rows`
          : undefined;
  return {
    kind: 'sql',
    statements: writes,
    tables,
    ...(estimatedRows !== undefined ? { estimatedRows } : {}),
    noWhere: writes.some((s) => s.noWhere),
    wholeTable,
    threshold,
    high: highReason !== undefined,
    ...(highReason ? { highReason } : {}),
  };
}

/** Whole table (no WHERE, or the estimate is all of it) or nearly (≥ 90% of its estimated rows). */
function reachOfTable(
  noWhere: boolean,
  estimated: number,
  total: number | undefined,
): { wholeTable: boolean; nearlyWholeTable?: true } {
  const known = total !== undefined && total > 0;
  if (noWhere || (known && estimated >= total)) return { wholeTable: true };
  if (known && estimated >= NEARLY_WHOLE_TABLE_SHARE * total)
    return { wholeTable: false, nearlyWholeTable: true };
  return { wholeTable: false };
}

/**
 * The shown form of a request: what is stored in the record and the trail and shown to anyone who
 * is not entitled to the exact one (auditors, the requester's colleagues, notifications, logs).
 *
 * An agent brings data into Warden as well as taking it out: literals in its statements, bound
 * parameters, AWS call input, MCP tool arguments, its justification. The shown form masks them:
 *
 * - SQL literals and parameters in a *sensitive-column context* (an expression that also reads a
 *   column a masking rule covers: `ssn = '583050905'`, `substr(ssn,1,3) = '583'`,
 *   `ssn IN (:a, :b)`, `UPDATE … SET ssn = '…'`, `INSERT (ssn) VALUES ('…')`) take that column's
 *   mask, whatever their shape, so an unformatted SSN is masked like the column is;
 * - every other literal and parameter goes through the detectors (cards, emails, SSNs, …);
 * - then the whole text goes through the detectors again (comments, identifiers, anything).
 *
 * The exact form, needed to run the request byte for byte after approval, is sealed apart
 * (lambdas/core/sealing.ts). Literals in a neutral context (`status = 'shipped'`, `id = 7`) stay,
 * so the trail remains readable. A sensitive literal this code cannot place in the text withholds
 * the whole statement rather than guess.
 */
import { canonicalJson } from './classify/mcp.js';
import { parseSqlTree } from './classify/sql.js';
import { compileRule, type CompiledRule } from './masking/rules.js';
import type { ColumnRef, ColumnRule } from './masking/types.js';
import type { ResultMasker } from './requests.js';
import type { AwsOperation, McpOperation, Operation, SqlOperation, SqlParameter } from './types.js';

export const WITHHELD_STATEMENT = '[statement withheld: a sensitive literal could not be placed]';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

const STATEMENTS = new Set([
  'SelectStmt',
  'InsertStmt',
  'UpdateStmt',
  'DeleteStmt',
  'MergeStmt',
  'ExplainStmt',
  'CreateTableAsStmt',
  'ViewStmt',
]);

interface ConstHit {
  /** Byte offset of the literal's first character (a sign, a prefix like `E`, or the quote). */
  readonly location: number;
  readonly value: string | number | boolean | null;
  readonly kind: 'string' | 'number' | 'other';
}

interface Group {
  readonly consts: ConstHit[];
  readonly params: number[];
  readonly columns: ColumnRef[];
  /** The group a subquery's groups belong to: `ssn = (SELECT '…')` is sensitive inside too. */
  readonly parent?: Group;
}

const newGroup = (preset?: ColumnRef, parent?: Group): Group => ({
  consts: [],
  params: [],
  columns: preset ? [preset] : [],
  ...(parent ? { parent } : {}),
});

/** What the shown form needs from a target: its masker and its column rules. */
export interface ShowContext {
  readonly masker: ResultMasker;
  readonly rules: readonly ColumnRule[];
}

function compiled(rules: readonly ColumnRule[]): CompiledRule[] {
  return rules.map(compileRule);
}

/** Relations named in the statement (`alias → relation`) and all relations, for resolving columns. */
function relations(tree: unknown): { aliases: Map<string, ColumnRef>; all: ColumnRef[] } {
  const aliases = new Map<string, ColumnRef>();
  const all: ColumnRef[] = [];
  const stack: unknown[] = [tree];
  while (stack.length > 0) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      stack.push(...v);
      continue;
    }
    if (!isObject(v)) continue;
    // Wrapped (`{RangeVar: …}` in FROM) or bare (the `relation` of INSERT, UPDATE, DELETE).
    const rv = isObject(v.RangeVar) ? v.RangeVar : v;
    if (typeof rv.relname === 'string' && (rv === v || isObject(v.RangeVar))) {
      const rel: ColumnRef = {
        name: '',
        table: rv.relname,
        ...(typeof rv.schemaname === 'string' ? { schema: rv.schemaname } : {}),
      };
      all.push(rel);
      aliases.set(rv.relname.toLowerCase(), rel);
      const alias = isObject(rv.alias) ? rv.alias.aliasname : undefined;
      if (typeof alias === 'string') aliases.set(alias.toLowerCase(), rel);
    }
    for (const child of Object.values(v)) if (typeof child === 'object' && child !== null) stack.push(child);
  }
  return { aliases, all };
}

function constOf(body: Json): ConstHit | undefined {
  const location = typeof body.location === 'number' ? body.location : undefined;
  if (location === undefined) return undefined;
  if (isObject(body.sval)) return { location, value: String(body.sval.sval ?? ''), kind: 'string' };
  if (isObject(body.ival)) return { location, value: Number(body.ival.ival ?? 0), kind: 'number' };
  if (isObject(body.fval)) return { location, value: String(body.fval.fval ?? ''), kind: 'number' };
  if (isObject(body.bsval)) return { location, value: String(body.bsval.bsval ?? ''), kind: 'string' };
  if (isObject(body.boolval)) return { location, value: Boolean(body.boolval.boolval), kind: 'other' };
  return { location, value: null, kind: 'other' };
}

function fieldNames(fields: unknown): string[] | undefined {
  if (!Array.isArray(fields)) return undefined;
  const names: string[] = [];
  for (const f of fields) {
    if (isObject(f) && isObject(f.String) && typeof f.String.sval === 'string') names.push(f.String.sval);
    else return undefined; // `t.*`: a whole row, not one column
  }
  return names;
}

/** Walks one statement, collecting literals, parameters and columns into expression groups. */
function collectGroups(stmt: unknown, aliases: Map<string, ColumnRef>, all: ColumnRef[]): Group[] {
  const groups: Group[] = [];
  // Groups opened inside a statement belong to the group the statement sits in (a subquery's).
  let enclosing: Group | undefined;
  const open = (preset?: ColumnRef): Group => {
    const g = newGroup(preset, enclosing);
    groups.push(g);
    return g;
  };
  const columnsNamed = (names: string[]): ColumnRef[] => {
    const name = names[names.length - 1];
    if (names.length >= 2) {
      const qualifier = names[names.length - 2].toLowerCase();
      const rel = aliases.get(qualifier);
      const schema = names.length >= 3 ? names[names.length - 3] : undefined;
      return [
        rel ? { ...rel, name } : { name, table: names[names.length - 2], ...(schema ? { schema } : {}) },
      ];
    }
    // Unqualified: it may belong to any relation of the statement.
    return all.length > 0 ? all.map((rel) => ({ ...rel, name })) : [{ name }];
  };
  const targetOf = (stmtBody: Json): ColumnRef | undefined => {
    const rel = isObject(stmtBody.relation) ? stmtBody.relation : undefined;
    return rel && typeof rel.relname === 'string'
      ? {
          name: '',
          table: rel.relname,
          ...(typeof rel.schemaname === 'string' ? { schema: rel.schemaname } : {}),
        }
      : undefined;
  };

  const walk = (node: unknown, group: Group): void => {
    if (Array.isArray(node)) {
      for (const n of node) walk(n, group);
      return;
    }
    if (!isObject(node)) return;
    const keys = Object.keys(node);
    const type = keys.length === 1 ? keys[0] : undefined;
    const body = type ? node[type] : undefined;
    if (!type || !isObject(body)) {
      for (const v of Object.values(node)) walk(v, group);
      return;
    }
    if (STATEMENTS.has(type)) {
      const outer = enclosing;
      enclosing = group;
      try {
        walkStatement(type, body);
      } finally {
        enclosing = outer;
      }
      return;
    }
    walkExpression(type, body, group);
  };

  const walkStatement = (type: string, body: Json): void => {
    const target = targetOf(body);
    for (const [field, value] of Object.entries(body)) {
      if (type === 'InsertStmt' && field === 'selectStmt' && target) {
        walkInsertValues(value, body.cols, target);
      } else if (type === 'UpdateStmt' && field === 'targetList' && Array.isArray(value) && target) {
        for (const rt of value) {
          const res = isObject(rt) && isObject(rt.ResTarget) ? rt.ResTarget : undefined;
          const col = res && typeof res.name === 'string' ? { ...target, name: res.name } : undefined;
          walk(res ? res.val : rt, open(col));
        }
      } else if (Array.isArray(value)) {
        for (const v of value) walk(v, open());
      } else {
        walk(value, open());
      }
    }
  };

  const walkExpression = (type: string, body: Json, group: Group): void => {
    switch (type) {
      case 'A_Const': {
        const hit = constOf(body);
        if (hit) group.consts.push(hit);
        return;
      }
      case 'ParamRef':
        if (typeof body.location === 'number') group.params.push(body.location);
        return;
      case 'ColumnRef': {
        const names = fieldNames(body.fields);
        if (names && names.length > 0) group.columns.push(...columnsNamed(names));
        return;
      }
      case 'BoolExpr':
        for (const arg of Array.isArray(body.args) ? body.args : []) walk(arg, open());
        return;
      case 'SubLink':
        walk(body.testexpr, group);
        walk(body.subselect, group);
        return;
      case 'ResTarget':
        walk(body.val, open());
        return;
      case 'JoinExpr':
        walk(body.larg, open());
        walk(body.rarg, open());
        walk(body.quals, open());
        return;
      default:
        for (const v of Object.values(body)) walk(v, group);
    }
  };

  const walkInsertValues = (select: unknown, cols: unknown, target: ColumnRef): void => {
    const sel = isObject(select) && isObject(select.SelectStmt) ? select.SelectStmt : undefined;
    const names = Array.isArray(cols)
      ? cols.map((c) => (isObject(c) && isObject(c.ResTarget) ? String(c.ResTarget.name ?? '') : ''))
      : [];
    if (!sel || !Array.isArray(sel.valuesLists)) {
      walk(select, open());
      return;
    }
    for (const row of sel.valuesLists) {
      const items =
        isObject(row) && isObject(row.List) && Array.isArray(row.List.items) ? row.List.items : [];
      items.forEach((item, i) => {
        // Without a column list the position alone does not say which column: fail closed, sensitive
        // when any rule covers the table.
        const col = names[i] ? { ...target, name: names[i] } : { ...target, name: '*' };
        walk(item, open(col));
      });
    }
  };

  walk(stmt, open());
  return groups;
}

/** End (string index, exclusive) of the literal token starting at `i`, or -1 when it is not one. */
export function literalEnd(sql: string, i: number): number {
  let j = i;
  const rest = sql.slice(j, j + 3);
  let backslashEscapes = false;
  if (/^[eE]'/.test(rest)) {
    backslashEscapes = true;
    j += 1;
  } else if (/^[bBxXnN]'/.test(rest)) j += 1;
  else if (/^[uU]&'/.test(rest)) j += 2;
  if (sql[j] === "'") {
    let k = j + 1;
    for (;;) {
      while (k < sql.length) {
        if (backslashEscapes && sql[k] === '\\') k += 2;
        else if (sql[k] === "'" && sql[k + 1] === "'") k += 2;
        else if (sql[k] === "'") break;
        else k += 1;
      }
      if (k >= sql.length) return -1;
      k += 1;
      // 'a'<newline>'b' is one literal in PostgreSQL.
      const cont = /^[ \t\f\r]*\n\s*'/.exec(sql.slice(k, k + 256));
      if (!cont) return k;
      k += cont[0].length;
    }
  }
  if (sql[j] === '$') {
    const tag = /^\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(j, j + 64));
    if (!tag) return -1;
    const close = sql.indexOf(tag[0], j + tag[0].length);
    return close < 0 ? -1 : close + tag[0].length;
  }
  const num =
    /^[-+]?\s*(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][-+]?\d+)?)/.exec(
      sql.slice(j, j + 512),
    );
  return num && /\d/.test(num[0]) ? j + num[0].length : -1;
}

/** A byte offset in `sql`'s UTF-8 as a string index. */
function byteToIndex(sql: string): (byte: number) => number {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(sql)) return (b) => b;
  const buf = Buffer.from(sql, 'utf8');
  return (b) => buf.subarray(0, b).toString('utf8').length;
}

const quote = (text: string): string => `'${text.replace(/'/g, "''")}'`;

function columnMask(masker: ResultMasker, col: ColumnRef, value: unknown): unknown {
  const key = col.name || '_';
  return masker.maskRows([{ ...col, name: key }], [{ [key]: value }]).rows[0]?.[key];
}

function render(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  return quote(typeof value === 'string' ? value : JSON.stringify(value));
}

interface SqlShown {
  readonly sql: string;
  readonly parameters?: SqlParameter[];
}

function sensitiveColumn(rules: CompiledRule[], columns: readonly ColumnRef[]): ColumnRef | undefined {
  for (const c of columns) {
    if (c.name === '*') {
      // An INSERT value without a column list: sensitive when any rule covers a column of the table.
      for (const r of rules) {
        const last = r.rule.column.split('.').pop() ?? '';
        const probe = { ...c, name: last.replace(/[*?]/g, 'x') };
        if (r.matches(probe)) return probe;
      }
      continue;
    }
    if (rules.some((r) => r.matches(c))) return c;
  }
  return undefined;
}

/** The shown form of a SQL statement and its parameters. */
export function showSql(op: SqlOperation, ctx: ShowContext): SqlShown {
  const { masker } = ctx;
  const rules = compiled(ctx.rules);
  const replacements: { start: number; end: number; text: string }[] = [];
  const sensitiveParams = new Map<string, ColumnRef>();
  let withheld = false;
  let unparsed = false;
  const relationsSeen: ColumnRef[] = [];

  if (rules.length > 0 || /['$\d]/.test(op.sql)) {
    let tree: { stmts?: { stmt?: Json }[] } | undefined;
    try {
      tree = parseSqlTree(op.sql);
    } catch {
      // Unparseable text never runs and is never sealed, but it may be kept (the trail of a
      // refusal): with no tree to place literals, every quoted string and long number is withheld.
      unparsed = true;
    }
    const index = byteToIndex(op.sql);
    for (const { stmt } of tree?.stmts ?? []) {
      const { aliases, all } = relations(stmt);
      relationsSeen.push(...all);
      const memo = new Map<Group, ColumnRef | undefined>();
      const sensitive = (g: Group): ColumnRef | undefined => {
        if (memo.has(g)) return memo.get(g);
        const own = sensitiveColumn(rules, g.columns) ?? (g.parent ? sensitive(g.parent) : undefined);
        memo.set(g, own);
        return own;
      };
      for (const group of collectGroups(stmt, aliases, all)) {
        const col = rules.length > 0 ? sensitive(group) : undefined;
        for (const hit of group.consts) {
          const start = index(hit.location);
          const end = literalEnd(op.sql, start);
          let text: string | undefined;
          if (col) text = render(columnMask(masker, col, hit.value));
          else if (hit.kind !== 'other') {
            const masked = masker.maskValue(hit.value).value;
            if (masked !== hit.value) text = render(masked);
          }
          if (text === undefined) continue;
          if (end < 0) {
            withheld = true;
            continue;
          }
          replacements.push({ start, end, text });
        }
        for (const loc of group.params) {
          const name = /^:([A-Za-z_][A-Za-z0-9_]*)/.exec(op.sql.slice(index(loc), index(loc) + 130))?.[1];
          if (name && col) sensitiveParams.set(name, col);
        }
      }
    }
  }

  let sql: string;
  if (withheld) sql = WITHHELD_STATEMENT;
  else if (unparsed) sql = op.sql.replace(/'(?:[^']|'')*'?|\$\$[^]*?(?:\$\$|$)|\d[\d_.]{3,}/g, "'[LITERAL]'");
  else {
    replacements.sort((a, b) => b.start - a.start);
    sql = op.sql;
    let floor = Infinity;
    for (const r of replacements) {
      if (r.end > floor) continue; // overlapping (a literal inside another): the outer one wins
      sql = sql.slice(0, r.start) + r.text + sql.slice(r.end);
      floor = r.start;
    }
  }
  // The second layer: comments, identifiers and anything the tree did not show as a literal.
  sql = masker.maskText(sql).text;

  const parameters = op.parameters?.map((p): SqlParameter => {
    // A parameter named like a covered column (`:ssn`) is masked as that column even where it is used.
    const named = [{ name: p.name }, ...relationsSeen.map((rel) => ({ ...rel, name: p.name }))];
    const col = sensitiveParams.get(p.name) ?? (rules.length > 0 ? sensitiveColumn(rules, named) : undefined);
    const value =
      unparsed && p.value !== null && typeof p.value !== 'boolean'
        ? '[LITERAL]'
        : col
          ? columnMask(masker, col, p.value)
          : masker.maskValue(p.value).value;
    return {
      name: p.name,
      value: (value === undefined ? null : value) as SqlParameter['value'],
      ...(p.typeHint ? { typeHint: p.typeHint } : {}),
    };
  });
  return { sql, ...(parameters ? { parameters } : {}) };
}

/** The shown form of any operation. */
export function showOperation(op: Operation, ctx: ShowContext): Operation {
  switch (op.kind) {
    case 'sql':
      return { kind: 'sql', ...showSql(op, ctx) };
    case 'aws': {
      const shown: AwsOperation = {
        ...op,
        input: ctx.masker.maskValue(op.input).value as Record<string, unknown>,
      };
      return shown;
    }
    case 'mcp': {
      let args: unknown;
      try {
        args = JSON.parse(op.argumentsJson);
      } catch {
        return { ...op, argumentsJson: ctx.masker.maskText(op.argumentsJson).text };
      }
      const shown: McpOperation = {
        ...op,
        argumentsJson: canonicalJson(ctx.masker.maskValue(args).value),
      };
      return shown;
    }
    case 'access':
      return op;
  }
}

/** Free text (justifications, comments) as shown: through the detectors. */
export function showText(text: string | undefined, masker: ResultMasker): string | undefined {
  return text === undefined ? undefined : masker.maskText(text).text;
}

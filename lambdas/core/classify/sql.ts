/**
 * SQL classifier: what a statement text would do, judged on PostgreSQL's own parse tree
 * (libpg-query), failing closed.
 *
 * A statement is `read` only when its WHOLE tree (every node, every list) holds nothing but
 * SELECT machinery, allowlisted built-in functions and operators, and no locking or INTO clause.
 * Everything else is classified by the most dangerous thing found anywhere in it; the text's
 * class is its most dangerous statement's class (read < write < ddl < privilege < admin).
 *
 * Decisions worth knowing (each one tested):
 * - EXPLAIN is classified as the statement it explains. EXPLAIN ANALYZE runs it, so EXPLAIN
 *   ANALYZE of a DELETE is a write; EXPLAIN ANALYZE of a read-only SELECT runs only that read and
 *   stays read. EXPLAIN (no ANALYZE) of a write is also not read: PostgreSQL checks the write's
 *   permissions while planning, and the read-only database user would fail anyway.
 * - TRUNCATE is ddl, not write: it empties whole tables (optionally CASCADE), cannot be scoped
 *   by WHERE, takes an ACCESS EXCLUSIVE lock, and needs its own privilege.
 * - Transaction control (BEGIN/COMMIT/ROLLBACK/SAVEPOINT) is write, so `BEGIN; UPDATE…; COMMIT`
 *   stays a write; two-phase commit (PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED) is admin.
 * - PREPARE/EXECUTE/DEALLOCATE are write: a prepared statement can only be DML or SELECT, and
 *   EXECUTE's text does not show which. CALL is write (someone's procedure). DO is admin.
 * - SET ROLE / SET SESSION AUTHORIZATION / RESET ROLE / RESET ALL / set_config() are privilege;
 *   any other SET/RESET, LISTEN/UNLISTEN, DISCARD, cursors, COPY (any direction) are admin.
 *   NOTIFY and LOCK are write. SHOW is read.
 * - A function not on the allowlist (sql-functions.ts) is write (unknown code may change data);
 *   immutable built-ins (PostgreSQL's catalogue, pg-catalog-functions.ts) are read; known
 *   dangerous ones (file access, backends, large objects, dblink, pg_sleep) are admin;
 *   set_config is privilege. The same holds for user-defined operators and TABLESAMPLE methods.
 * - Attribute notation calls functions too: `c.fn` and `(expr).fn` are `fn(c)` / `fn(expr)` when
 *   no column is named fn. For built-in names they are judged as calls (`('seq').nextval` is write).
 * - Not visible in the text, so not judged here: what a view, trigger, rule, type-input or cast
 *   function does when a plain SELECT touches it, and a non-built-in function called in attribute
 *   notation (`c.my_fn` looks like a column). The read-only database user is the backstop.
 * - Named parameters (`:id`, as the RDS Data API takes them) are parsed as `$1` placeholders.
 *
 * Classifications are kept in an LRU keyed by the exact text (CLASSIFICATION_CACHE_SIZE entries,
 * texts up to MAX_CACHED_SQL_BYTES), deep-frozen, so an agent repeating a statement is not parsed
 * and walked again. Only classifications are kept: a text that fails (parse error, refusal) is
 * tried again every time, and once the parser is broken a cached text fails like any other.
 */
import { loadModule, parseSync, scanSync, type ScanToken } from 'libpg-query';
import { BadRequestError, ServiceUnavailableError, SqlParseError } from '../errors.js';
import { deepFreeze, Lru } from '../lru.js';
import { badTextCharacter } from '../sql-input.js';
import type { SqlClass, SqlClassification, SqlStatementClassification } from '../types.js';
import {
  functionVerdict,
  isBuiltinFunction,
  READ_OPERATORS,
  READ_TABLESAMPLE_METHODS,
} from './sql-functions.js';
import { MAX_NESTING, roughNesting, tokenNesting } from './sql-nesting.js';

const SEVERITY: Record<SqlClass, number> = { read: 0, write: 1, ddl: 2, privilege: 3, admin: 4 };

export function moreDangerous(a: SqlClass, b: SqlClass): SqlClass {
  return SEVERITY[b] > SEVERITY[a] ? b : a;
}

const STATEMENT_CLASSES: Record<string, SqlClass> = {
  SelectStmt: 'read',
  ExplainStmt: 'read', // judged by what it explains, which the walk finds
  VariableShowStmt: 'read',
  InsertStmt: 'write',
  UpdateStmt: 'write',
  DeleteStmt: 'write',
  MergeStmt: 'write',
  LockStmt: 'write',
  CallStmt: 'write',
  NotifyStmt: 'write',
  TransactionStmt: 'write',
  PrepareStmt: 'write',
  ExecuteStmt: 'write',
  DeallocateStmt: 'write',
  RefreshMatViewStmt: 'write',
  ConstraintsSetStmt: 'write',
  TruncateStmt: 'ddl',
  RenameStmt: 'ddl',
  CommentStmt: 'ddl',
  ViewStmt: 'ddl',
  IndexStmt: 'ddl',
  RuleStmt: 'ddl',
  DefineStmt: 'ddl',
  CompositeTypeStmt: 'ddl',
  ImportForeignSchemaStmt: 'ddl',
  GrantStmt: 'privilege',
  GrantRoleStmt: 'privilege',
  CreateRoleStmt: 'privilege',
  AlterRoleStmt: 'privilege',
  AlterRoleSetStmt: 'privilege',
  DropRoleStmt: 'privilege',
  AlterDefaultPrivilegesStmt: 'privilege',
  ReassignOwnedStmt: 'privilege',
  DropOwnedStmt: 'privilege',
  AlterOwnerStmt: 'privilege',
  CreatePolicyStmt: 'privilege',
  AlterPolicyStmt: 'privilege',
  SecLabelStmt: 'privilege',
  CreateUserMappingStmt: 'privilege',
  AlterUserMappingStmt: 'privilege',
  DropUserMappingStmt: 'privilege',
  VariableSetStmt: 'admin', // SET ROLE and friends are raised to privilege below
  DoStmt: 'admin',
  CopyStmt: 'admin',
  VacuumStmt: 'admin',
  ClusterStmt: 'admin',
  ReindexStmt: 'admin',
  CheckPointStmt: 'admin',
  AlterSystemStmt: 'admin',
  CreatedbStmt: 'admin',
  DropdbStmt: 'admin',
  AlterDatabaseStmt: 'admin',
  AlterDatabaseSetStmt: 'admin',
  AlterDatabaseRefreshCollStmt: 'admin',
  CreateTableSpaceStmt: 'admin',
  DropTableSpaceStmt: 'admin',
  AlterTableSpaceOptionsStmt: 'admin',
  AlterTableMoveAllStmt: 'admin',
  CreateExtensionStmt: 'admin',
  AlterExtensionStmt: 'admin',
  AlterExtensionContentsStmt: 'admin',
  CreateFdwStmt: 'admin',
  AlterFdwStmt: 'admin',
  CreateForeignServerStmt: 'admin',
  AlterForeignServerStmt: 'admin',
  CreatePublicationStmt: 'admin',
  AlterPublicationStmt: 'admin',
  CreateSubscriptionStmt: 'admin',
  AlterSubscriptionStmt: 'admin',
  DropSubscriptionStmt: 'admin',
  CreateEventTrigStmt: 'admin',
  AlterEventTrigStmt: 'admin',
  CreatePLangStmt: 'admin',
  LoadStmt: 'admin',
  DiscardStmt: 'admin',
  ListenStmt: 'admin',
  UnlistenStmt: 'admin',
  DeclareCursorStmt: 'admin',
  FetchStmt: 'admin',
  ClosePortalStmt: 'admin',
};

const STATEMENT_WORDS: Record<string, string> = {
  CopyStmt: 'COPY reads or writes files, programs or the client stream',
  DoStmt: 'DO runs an anonymous code block',
  TruncateStmt: 'TRUNCATE empties whole tables',
  CallStmt: 'CALL runs a procedure',
  LockStmt: 'LOCK takes table locks',
  CreateTableAsStmt: 'CREATE TABLE AS creates a table',
};

function statementClass(type: string): { class: SqlClass; known: boolean } {
  const known = STATEMENT_CLASSES[type];
  if (known) return { class: known, known: true };
  // CREATE/ALTER/DROP of schema objects not listed above (tables, functions, types, …).
  if (/^(Create|Alter|Drop)/.test(type) && type.endsWith('Stmt')) return { class: 'ddl', known: true };
  return { class: 'admin', known: false };
}

/** Tree walk state for one node: where it sits and which CTE names are visible there. */
interface Frame {
  readonly value: unknown;
  readonly ctes: ReadonlySet<string>;
  /** How the walk got here, for reasons ("data-modifying CTE (DeleteStmt)"). */
  readonly via?: 'cte' | 'explain' | 'explain analyze';
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `[{String: {sval: 'a'}}, …]` → `['a', …]` */
function names(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list.map((item) => {
    const s = isObject(item) && isObject(item.String) ? item.String.sval : undefined;
    return typeof s === 'string' ? s : '';
  });
}

function isAnalyze(options: unknown): boolean {
  if (!Array.isArray(options)) return false;
  return options.some((o) => {
    const def = isObject(o) && isObject(o.DefElem) ? o.DefElem : undefined;
    if (!def || def.defname !== 'analyze') return false;
    const arg = isObject(def.arg) ? def.arg : undefined;
    if (!arg) return true;
    const v = isObject(arg.String) ? arg.String.sval : isObject(arg.Boolean) ? arg.Boolean.boolval : arg;
    // Anything but an explicit false keeps ANALYZE on: fail closed.
    return !(v === false || v === undefined || (typeof v === 'string' && /^(false|off|0|no)$/i.test(v)));
  });
}

class StatementJudge {
  cls: SqlClass = 'read';
  readonly reasons: string[] = [];
  constructor(
    private readonly tables: Set<string>,
    private readonly functions: Set<string>,
    private readonly qualified: Set<string> = new Set(),
  ) {}

  escalate(cls: SqlClass, reason: string): void {
    this.cls = moreDangerous(this.cls, cls);
    if (!this.reasons.includes(reason)) this.reasons.push(reason);
  }

  /**
   * Walks every node iteratively: no input depth can overflow the stack here. libpg-query's JSON
   * wraps a node as `{Type: body}` only where the C field is a generic Node; typed fields
   * (`relation`, `larg`, `into`, `funccall`) hold the bare body. So checks that matter run on
   * bodies recognised by shape as well as on wrappers.
   */
  walk(root: Json): void {
    const stack: Frame[] = [{ value: root, ctes: new Set() }];
    let top = true;
    while (stack.length > 0) {
      const frame = stack.pop() as Frame;
      const { value } = frame;
      if (Array.isArray(value)) {
        for (let i = value.length - 1; i >= 0; i -= 1) stack.push({ value: value[i], ctes: frame.ctes });
        continue;
      }
      if (!isObject(value)) continue;
      const keys = Object.keys(value);
      const code = keys.length === 1 ? keys[0].charCodeAt(0) : 0;
      const wrapped = code >= 65 && code <= 90 && isObject(value[keys[0]]); // {UpperCaseType: body}
      if (wrapped) {
        const type = keys[0];
        const body = value[type] as Json;
        this.node(type, body, frame, top);
        top = false;
        this.body(body, frame, stack, type);
      } else {
        top = false;
        this.body(value, frame, stack, undefined);
      }
    }
  }

  private body(body: Json, frame: Frame, stack: Frame[], type: string | undefined): void {
    if (typeof body.relname === 'string' && 'relpersistence' in body) this.relation(body, frame.ctes);
    if (Array.isArray(body.funcname) && 'funcformat' in body) this.functionCall(body);
    if (isObject(body.intoClause)) this.escalate('ddl', 'SELECT … INTO creates a table');
    if (Array.isArray(body.lockingClause) && body.lockingClause.length > 0) {
      this.escalate('write', 'SELECT … FOR UPDATE/SHARE locks rows');
    }
    let scope = frame.ctes;
    const withClause = isObject(body.withClause) ? body.withClause : undefined;
    if (withClause && Array.isArray(withClause.ctes)) {
      const ctes: unknown[] = withClause.ctes;
      const cteNames = ctes.map((c) =>
        isObject(c) && isObject(c.CommonTableExpr) && typeof c.CommonTableExpr.ctename === 'string'
          ? c.CommonTableExpr.ctename
          : '',
      );
      const all = new Set([...frame.ctes, ...cteNames]);
      scope = all;
      // A CTE sees the ones before it; under RECURSIVE it sees all of them, itself included.
      ctes.forEach((cte, i) => {
        const visible =
          withClause.recursive === true ? all : new Set([...frame.ctes, ...cteNames.slice(0, i)]);
        stack.push({ value: cte, ctes: visible });
      });
    }
    for (const [key, child] of Object.entries(body)) {
      if (key === 'withClause' || typeof child !== 'object' || child === null) continue;
      if (type === 'CommonTableExpr' && key === 'ctequery') {
        stack.push({ value: child, ctes: scope, via: 'cte' });
      } else if (type === 'ExplainStmt' && key === 'query') {
        stack.push({
          value: child,
          ctes: scope,
          via: isAnalyze(body.options) ? 'explain analyze' : 'explain',
        });
      } else {
        stack.push({ value: child, ctes: scope });
      }
    }
  }

  private relation(body: Json, ctes: ReadonlySet<string>): void {
    const schema = typeof body.schemaname === 'string' ? body.schemaname : undefined;
    const rel = body.relname as string;
    if (schema === undefined && ctes.has(rel)) return; // a CTE, not a table
    const catalog = typeof body.catalogname === 'string' ? `${body.catalogname}.` : '';
    this.tables.add(`${catalog}${schema ?? 'public'}.${rel}`);
    if (schema !== undefined) this.qualified.add(`${catalog}${schema}.${rel}`);
  }

  private functionCall(body: Json): void {
    const parts = names(body.funcname);
    // Calls the grammar writes for SQL syntax (EXTRACT, TRIM, AT TIME ZONE) carry pg_catalog.
    const written =
      body.funcformat === 'COERCE_SQL_SYNTAX' && parts[0] === 'pg_catalog' ? parts.slice(1) : parts;
    const verdict = functionVerdict(parts);
    this.functions.add(written.join('.'));
    if (verdict.class !== 'read') {
      this.escalate(verdict.class, `function ${verdict.name} is not on the read allowlist`);
    }
  }

  /**
   * A name in attribute notation is a column or a call of the one-argument function of that name;
   * which one depends on the table's columns, which the text does not show. Built-in names are
   * judged as calls (a column that shares an allowlisted function's name stays read); a function of
   * someone else's is not told apart from a column here, and the read-only user is the backstop.
   */
  private attributeCall(name: string, written: string): void {
    if (!isBuiltinFunction(name)) return;
    const verdict = functionVerdict([name]);
    if (verdict.class === 'read') return;
    this.functions.add(name);
    this.escalate(
      verdict.class,
      `${written} is a call of function ${name} (attribute notation), which is not on the read allowlist`,
    );
  }

  private node(type: string, body: Json, frame: Frame, top: boolean): void {
    if (type.endsWith('Stmt') && !top) this.nestedStatement(type, frame);
    switch (type) {
      case 'A_Expr':
        this.operator(body.name);
        return;
      case 'SubLink': // `x <<< ANY (SELECT …)`
        if (Array.isArray(body.operName)) this.operator(body.operName);
        return;
      case 'SortBy': // `ORDER BY x USING <<<`
        if (Array.isArray(body.useOp)) this.operator(body.useOp);
        return;
      case 'RangeTableSample': {
        const method = names(body.method);
        if (method.length !== 1 || !READ_TABLESAMPLE_METHODS.has(method[0])) {
          this.escalate('write', `TABLESAMPLE method ${method.join('.')} is not on the read allowlist`);
        }
        return;
      }
      case 'DropStmt':
        this.droppedRelations(body);
        return;
      case 'ColumnRef': {
        // `c.fn` (and `s.t.fn`) is `fn(c)` when c has no column fn: PostgreSQL's attribute notation.
        const fields = Array.isArray(body.fields) ? body.fields : [];
        const last = fields.length > 1 ? names(fields.slice(-1))[0] : '';
        if (last) this.attributeCall(last, `${names(fields.slice(0, -1)).join('.')}.${last}`);
        return;
      }
      case 'A_Indirection': // `(expr).fn` is `fn(expr)`, for any expression: `('seq').nextval`
        for (const name of names(body.indirection)) if (name) this.attributeCall(name, `(…).${name}`);
        return;
      default:
        return;
    }
  }

  private operator(nameList: unknown): void {
    const parts = names(nameList);
    const op = parts[parts.length - 1] ?? '';
    const qualified = parts.length > 1 && !(parts.length === 2 && parts[0] === 'pg_catalog');
    if (qualified || !READ_OPERATORS.has(op)) {
      this.escalate('write', `operator ${parts.join('.')} is not on the read allowlist`);
    }
  }

  private nestedStatement(type: string, frame: Frame): void {
    if (type === 'SelectStmt') return;
    const { class: cls } = statementClass(type);
    const reason =
      frame.via === 'cte'
        ? `data-modifying CTE (${type})`
        : frame.via === 'explain analyze'
          ? `EXPLAIN ANALYZE executes the ${type}`
          : frame.via === 'explain'
            ? `EXPLAIN of a ${type} is judged as the ${type}`
            : `nested ${type}`;
    this.escalate(moreDangerous(cls, 'write'), reason);
  }

  private droppedRelations(body: Json): void {
    const relationKinds = [
      'OBJECT_TABLE',
      'OBJECT_VIEW',
      'OBJECT_MATVIEW',
      'OBJECT_FOREIGN_TABLE',
      'OBJECT_SEQUENCE',
    ];
    if (!relationKinds.includes(String(body.removeType)) || !Array.isArray(body.objects)) return;
    for (const obj of body.objects) {
      const parts = isObject(obj) && isObject(obj.List) ? names(obj.List.items) : [];
      if (parts.length === 1) this.tables.add(`public.${parts[0]}`);
      else if (parts.length > 1) this.tables.add(parts.join('.'));
    }
  }
}

function judgeStatement(
  stmt: Json,
  tables: Set<string>,
  functions: Set<string>,
  qualified: Set<string>,
): SqlStatementClassification {
  const type = Object.keys(stmt)[0] ?? 'unknown';
  const body = isObject(stmt[type]) ? (stmt[type] as Json) : {};
  const judge = new StatementJudge(tables, functions, qualified);
  const base = statementClass(type);
  if (!base.known) judge.escalate('admin', `statement type ${type} is not known to the classifier`);
  else if (type === 'VariableSetStmt') {
    const name = typeof body.name === 'string' ? body.name.toLowerCase() : '';
    if (name === 'role' || name === 'session_authorization' || body.kind === 'VAR_RESET_ALL') {
      judge.escalate(
        'privilege',
        `${body.kind === 'VAR_RESET_ALL' ? 'RESET ALL' : `SET/RESET ${name}`} changes the acting role`,
      );
    } else judge.escalate('admin', `SET/RESET ${name || String(body.kind)} changes session settings`);
  } else if (type === 'TransactionStmt') {
    const twoPhase = ['TRANS_STMT_PREPARE', 'TRANS_STMT_COMMIT_PREPARED', 'TRANS_STMT_ROLLBACK_PREPARED'];
    if (twoPhase.includes(String(body.kind)))
      judge.escalate('admin', 'two-phase commit leaves server state behind');
    else judge.escalate('write', 'transaction control');
  } else if (type === 'CreateTableAsStmt') {
    judge.escalate('ddl', STATEMENT_WORDS[type]);
  } else if (base.class !== 'read') {
    judge.escalate(base.class, STATEMENT_WORDS[type] ?? `${type} is a ${base.class} statement`);
  }
  judge.walk(stmt);
  return { type, class: judge.cls, reasons: judge.reasons };
}

let loaded = false;
/** Set once the WASM parser overflowed: its memory can no longer be trusted. */
let parserBroken = false;

/** Loads the WASM parser. Await it at cold start (module scope of a handler). */
export async function initSqlClassifier(): Promise<void> {
  await loadModule();
  loaded = true;
}

/**
 * Rewrites Data API named parameters (`:id`) to `$1` placeholders of the same length, so the
 * parser accepts them and error positions still point into the caller's text. A small lexer
 * (strings, quoted identifiers, dollar quotes, comments, array brackets) rather than libpg-query's
 * scanner, which costs twice a parse: a mistake here can only change the inside of a literal or
 * make the parse fail, never turn code into a literal.
 */
function placeholders(sql: string): string {
  const out: string[] = [];
  let depth = 0;
  let i = 0;
  const n = sql.length;
  const identChar = (c: string | undefined): boolean =>
    c !== undefined && /[A-Za-z0-9_$\u0080-\uffff]/.test(c);
  while (i < n) {
    const c = sql[i];
    const next = sql[i + 1];
    let end = i + 1;
    if (c === '-' && next === '-') {
      end = sql.indexOf('\n', i);
      end = end < 0 ? n : end;
    } else if (c === '/' && next === '*') {
      let nest = 1;
      end = i + 2;
      while (end < n && nest > 0) {
        const pair = sql.slice(end, end + 2);
        nest += pair === '/*' ? 1 : pair === '*/' ? -1 : 0;
        end += pair === '/*' || pair === '*/' ? 2 : 1;
      }
    } else if (c === "'") {
      const escapes = /[eE]/.test(sql[i - 1] ?? '') && !identChar(sql[i - 2]);
      end = i + 1;
      while (end < n) {
        if (escapes && sql[end] === '\\') end += 2;
        else if (sql[end] === "'" && sql[end + 1] === "'") end += 2;
        else if (sql[end] === "'") break;
        else end += 1;
      }
      end += 1;
    } else if (c === '"') {
      end = i + 1;
      while (end < n && !(sql[end] === '"' && sql[end + 1] !== '"')) end += sql[end] === '"' ? 2 : 1;
      end += 1;
    } else if (c === '$' && !identChar(sql[i - 1])) {
      const tag = /^\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(i, i + 64));
      if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        end = close < 0 ? n : close + tag[0].length;
      }
    } else if (c === '[') depth += 1;
    else if (c === ']') depth = Math.max(0, depth - 1);
    else if (c === ':' && next === ':') end = i + 2;
    else if (c === ':' && depth === 0 && /[A-Za-z_]/.test(next ?? '')) {
      // Inside brackets `a[1:n]` is an array slice, not a parameter.
      const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(sql.slice(i + 1, i + 1 + 128));
      end = i + 1 + (name ? name[0].length : 0);
      out.push('$1'.padEnd(end - i, ' '));
      i = end;
      continue;
    }
    out.push(sql.slice(i, end));
    i = end;
  }
  return out.join('');
}

function isParseError(e: unknown): e is Error & { sqlDetails: { message: string; cursorPosition: number } } {
  return e instanceof Error && isObject((e as { sqlDetails?: unknown }).sqlDetails);
}

function tokenize(sql: string): ScanToken[] {
  try {
    return scanSync(sql).tokens;
  } catch (e) {
    throw new BadRequestError('SQL could not be tokenized', undefined, e);
  }
}

type ParsedStatement = { stmt?: Json; stmt_location?: number; stmt_len?: number };

function rawParse(text: string): { stmts?: ParsedStatement[] } {
  try {
    return parseSync(text) as { stmts?: ParsedStatement[] };
  } catch (e) {
    if (isParseError(e)) {
      // libpg-query reports 0-based; PostgreSQL says 1-based characters.
      throw new SqlParseError(e.sqlDetails.message, e.sqlDetails.cursorPosition + 1, e);
    }
    if (e instanceof RangeError || (e instanceof Error && e.name === 'RuntimeError')) {
      parserBroken = true;
      throw new BadRequestError('statement is too complex to parse', undefined, e);
    }
    throw new BadRequestError('SQL could not be parsed', undefined, e);
  }
}

/**
 * The last text parsed and its tree: a request parses its statement for classification and again
 * for its shown form (lambdas/core/shown.ts) and its bounded read; the later ones are answered
 * from here. Trees are frozen, so no reader can change what the next one sees.
 */
let lastParsed: { sql: string; tree: { stmts?: ParsedStatement[] } } | undefined;

/**
 * Trees of texts that repeat: when a text's classification comes from its cache, nothing was
 * parsed, so its shown form would parse it. A text whose classification is cached already and is
 * parsed again is a repeating one; its tree is kept here. (Keeping every tree costs about 25% more
 * per request on traffic that never repeats, as trees then outlive the young generation.) Keyed by
 * the exact text; bounded by the texts' total size: a tree takes about 60 times its text in memory
 * at worst (a long IN list), so 256 KiB of text is about 15 MB of trees.
 */
const PARSE_CACHE_SIZE = 512;
const PARSE_CACHE_TEXT_BYTES = 256 * 1024;
const parsed = new Lru<string, { stmts?: ParsedStatement[] }>(PARSE_CACHE_SIZE, {
  maxWeight: PARSE_CACHE_TEXT_BYTES,
  weigh: (sql) => Buffer.byteLength(sql, 'utf8'),
});

export const CLASSIFICATION_CACHE_SIZE = 512;
/** Longer texts are classified every time: rarely repeated, and they would hold the most memory. */
export const MAX_CACHED_SQL_BYTES = 16 * 1024;

const classifications = new Lru<string, SqlClassification>(CLASSIFICATION_CACHE_SIZE);

/** How many classifications are held now (for tests). */
export function cachedClassifications(): number {
  return classifications.size;
}

function cacheable(sql: string): boolean {
  // A UTF-8 character is 1 to 3 bytes per UTF-16 unit, so the length bounds the bytes both ways.
  if (sql.length > MAX_CACHED_SQL_BYTES) return false;
  return sql.length * 3 <= MAX_CACHED_SQL_BYTES || Buffer.byteLength(sql, 'utf8') <= MAX_CACHED_SQL_BYTES;
}

function parseChecked(sql: string): { stmts?: ParsedStatement[] } {
  if (parserBroken) throw new ServiceUnavailableError('the SQL parser failed earlier in this process');
  if (lastParsed?.sql === sql) return lastParsed.tree;
  const hit = parsed.get(sql);
  if (hit !== undefined) return hit;
  const tree = deepFreeze(parseUncached(sql));
  lastParsed = { sql, tree };
  if (classifications.has(sql)) parsed.set(sql, tree);
  return tree;
}

function parseUncached(sql: string): { stmts?: ParsedStatement[] } {
  if (parserBroken) throw new ServiceUnavailableError('the SQL parser failed earlier in this process');
  // The lexer runs only when the cheap count cannot rule out deep nesting.
  if (roughNesting(sql) > MAX_NESTING) {
    if (tokenNesting(tokenize(sql)) > MAX_NESTING) {
      throw new BadRequestError(`statement is nested too deeply (more than ${MAX_NESTING} levels)`);
    }
  }
  try {
    return rawParse(sql);
  } catch (e) {
    // A text that parses holds no `:name` outside strings, comments and array slices, so only a
    // text PostgreSQL refuses is retried with the Data API's named parameters as `$1`.
    if (!(e instanceof SqlParseError) || !/(^|[^:]):[A-Za-z_]/.test(sql)) throw e;
    const text = placeholders(sql);
    if (text === sql) throw e;
    return rawParse(text);
  }
}

/**
 * The parse tree of `sql` (Data API `:name` parameters read as `$1` placeholders at the same
 * byte offsets), for the request's shown form (lambdas/core/shown.ts). Same checks and errors as
 * classification; requires `initSqlClassifier()` to have resolved.
 */
export function parseSqlTree(sql: string): { stmts?: { stmt?: Record<string, unknown> }[] } {
  if (!loaded) throw new Error('initSqlClassifier() must resolve before parseSqlTree()');
  return parseChecked(sql);
}

/**
 * Classifies every statement of `sql`. Throws SqlParseError when PostgreSQL would reject the
 * text, BadRequestError when there is no statement or it is nested too deeply.
 * Requires `initSqlClassifier()` to have resolved.
 */
export function classifySqlSync(sql: string): SqlClassification {
  if (!loaded) throw new Error('initSqlClassifier() must resolve before classifySqlSync()');
  if (typeof sql !== 'string' || sql.trim() === '') throw new BadRequestError('no SQL statement');
  const cached = classifications.get(sql);
  if (cached !== undefined) {
    // Fail closed as an uncached text would: a broken parser classifies nothing.
    if (parserBroken) throw new ServiceUnavailableError('the SQL parser failed earlier in this process');
    return cached;
  }
  const classification = classifyUncached(sql);
  if (cacheable(sql)) classifications.set(sql, classification);
  return classification;
}

function classifyUncached(sql: string): SqlClassification {
  // The parser reads a C string: it would stop at a NUL the server does not stop at.
  const bad = badTextCharacter(sql);
  if (bad) throw new BadRequestError(`sql contains ${bad}`);
  const tree = parseChecked(sql);
  const stmts = (tree.stmts ?? []).map((s) => s.stmt).filter(isObject);
  if (stmts.length === 0) throw new BadRequestError('no SQL statement');
  const tables = new Set<string>();
  const functions = new Set<string>();
  const qualified = new Set<string>();
  const statements = stmts.map((s) => judgeStatement(s, tables, functions, qualified));
  let cls: SqlClass = 'read';
  const reasons: string[] = [];
  statements.forEach((s, i) => {
    cls = moreDangerous(cls, s.class);
    const prefix = statements.length > 1 ? `statement ${i + 1} (${s.type}): ` : '';
    for (const r of s.reasons) reasons.push(prefix + r);
  });
  return deepFreeze({
    kind: 'sql',
    class: cls,
    statements,
    tables: [...tables].sort(),
    ...(qualified.size > 0 ? { schemaQualified: [...qualified].sort() } : {}),
    functions: [...functions].sort(),
    reasons,
  });
}

/**
 * The text of `sql` as one query expression that can be wrapped (`SELECT * FROM (<body>) …`): when it
 * is exactly one SELECT (or VALUES, TABLE, WITH … SELECT) without INTO, its text without the
 * terminating semicolon or anything after it; otherwise undefined (EXPLAIN, SHOW, several statements).
 * (The SQL is a parsed read; one that fails to parse never gets here.)
 * PostgreSQL reports statement positions in UTF-8 bytes.
 */
export function boundableReadBody(sql: string): string | undefined {
  if (!loaded) throw new Error('initSqlClassifier() must resolve before boundableReadBody()');
  const stmts = parseChecked(sql).stmts ?? [];
  if (stmts.length !== 1) return undefined;
  const [only] = stmts;
  const select = isObject(only.stmt) ? only.stmt.SelectStmt : undefined;
  if (!isObject(select) || isObject(select.intoClause)) return undefined;
  // From the start of the text (only comments can precede the one statement) to its end.
  const bytes = Buffer.from(sql, 'utf8');
  const end = only.stmt_len ? (only.stmt_location ?? 0) + only.stmt_len : bytes.length;
  const body = bytes.subarray(0, end).toString('utf8');
  return body.trim() === '' ? undefined : body;
}

/** Async form for callers that may run before cold-start init finished. */
export async function classifySql(sql: string): Promise<SqlClassification> {
  if (!loaded) await initSqlClassifier();
  return classifySqlSync(sql);
}

/**
 * The parse tree of `sql` and the text it was parsed from: `sql` itself, or `sql` with the Data
 * API's named parameters as `$1` placeholders of the same length (so locations index either).
 * For callers that rewrite a statement by its token positions (the blast-radius estimate).
 */
export function parseStatements(sql: string): {
  stmts: { stmt?: Json; stmt_location?: number; stmt_len?: number }[];
  text: string;
} {
  if (!loaded) throw new Error('initSqlClassifier() must resolve before parseStatements()');
  const tree = parseChecked(sql) as { stmts?: { stmt?: Json; stmt_location?: number; stmt_len?: number }[] };
  let text = sql;
  try {
    rawParse(sql);
  } catch {
    text = placeholders(sql);
  }
  return { stmts: tree.stmts ?? [], text };
}

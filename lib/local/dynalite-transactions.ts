/**
 * TransactWriteItems for the local twin's DynamoDB. dynalite (4.x) implements the single-item API
 * only; Warden's request path writes a request record and its trail events in one transaction, so
 * the twin answers `TransactWriteItems` with DynamoDB's semantics, built from dynalite's own parts:
 *
 * - every item of the transaction is locked with the same per-item locks dynalite's PutItem and
 *   DeleteItem take, so single-item writes and other transactions wait (serializable);
 * - each operation is validated as dynalite validates the same PutItem / DeleteItem (the plain
 *   shapes the request path sends by one direct walk, anything else by dynalite's own checks);
 * - each condition is parsed and evaluated by dynalite's own expression code against the item as
 *   stored, and only when every one holds is anything written: all or nothing, down to the store
 *   (the items and their index entries go to LevelDB in one batch);
 * - a cancelled transaction answers `TransactionCanceledException` with one `CancellationReasons`
 *   entry per item (`ConditionalCheckFailed` with the item when `ReturnValuesOnConditionCheckFailure`
 *   is `ALL_OLD`, else `None`);
 * - `ClientRequestToken` makes a retried transaction idempotent for ten minutes, as on AWS (the SDK
 *   sends one and keeps it across its own retries, so a lost response does not write twice);
 * - the limits AWS checks: at most 100 items, one operation per item.
 *
 * Supported: Put, Delete, ConditionCheck. Update inside a transaction is refused with a clear
 * ValidationException (Warden does not use it; dynalite keeps its update evaluator private).
 */
// First: memory-level must find its comparator replaced when dynalite loads it.
import './memory-level-compare.js';
import * as crypto from 'node:crypto';
import { createRequire } from 'node:module';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Lru } from '../../lambdas/core/lru.js';

const require = createRequire(import.meta.url);

/* The parts of dynalite used here (CommonJS, untyped). */
type AttributeMap = Record<string, Record<string, unknown>>;
interface DynaliteTable {
  readonly TableName: string;
  readonly TableStatus?: string;
  readonly GlobalSecondaryIndexes?: readonly unknown[];
  readonly LocalSecondaryIndexes?: readonly unknown[];
}
interface ItemDb {
  lock(keys: string | string[], exec: (release: (done?: () => void) => () => void) => void): void;
  get(key: string, cb: (err: (Error & { name?: string }) | null, item?: AttributeMap) => void): void;
  put(key: string, item: AttributeMap, cb: (err: Error | null) => void): void;
  del(key: string, cb: (err: Error | null) => void): void;
  batch(ops: unknown[], cb: (err: Error | null) => void): void;
}
/** dynalite's one LevelDB store (abstract-level); its sub-stores are key prefixes over it. */
interface LevelDb {
  readonly status: string;
  readonly supports?: { readonly getSync?: boolean };
  get(key: string, cb?: unknown): unknown;
  getSync?(key: string): AttributeMap | undefined;
  getMany(keys: string[]): Promise<(AttributeMap | undefined)[]>;
  batch(ops: LevelOp[]): Promise<void>;
}
/** A put carries its value as JSON text already (what the store's json encoding would make of it). */
type LevelOp =
  | { type: 'put'; key: string; value: string; valueEncoding: 'utf8' }
  | { type: 'put'; key: string; value: Buffer; valueEncoding: 'buffer' }
  | { type: 'del'; key: string };
export interface DynaliteStore {
  getTable(
    name: string,
    checkStatus: boolean,
    cb: (err: DynaliteError | null, table?: DynaliteTable) => void,
  ): void;
  getItemDb(name: string): ItemDb;
  getIndexDb(indexType: 'Local' | 'Global', tableName: string, indexName: string): ItemDb;
  readonly db: LevelDb;
  readonly tableDb: ItemDb;
  readonly options: { maxItemSize: number };
}
interface DynaliteError extends Error {
  statusCode?: number;
  body?: Record<string, unknown>;
}
interface DynaliteDb {
  create(options: unknown): DynaliteStore;
  validateItem(item: AttributeMap, table: DynaliteTable): DynaliteError | undefined;
  validateKey(key: AttributeMap, table: DynaliteTable): DynaliteError | undefined;
  createKey(item: AttributeMap, table: DynaliteTable): string;
  hashPrefix(hashKey: unknown, hashType: string, rangeKey?: unknown, rangeType?: string): string;
  toRangeStr(value: unknown, type: string): string;
  checkConditional(data: unknown, existing: AttributeMap | undefined): DynaliteError | null;
  getIndexActions(
    indexes: readonly unknown[],
    existing: AttributeMap | undefined | null,
    item: AttributeMap | null,
    table: DynaliteTable,
  ): {
    puts: { index: string; key: string; item: AttributeMap }[];
    deletes: { index: string; key: string }[];
  };
  updateIndexes(
    store: DynaliteStore,
    table: DynaliteTable,
    existing: AttributeMap | undefined | null,
    item: AttributeMap | null,
    cb: (err: Error | null) => void,
  ): void;
}
interface ActionValidation {
  types: Record<string, unknown>;
  custom?: (data: unknown, store: DynaliteStore) => string | undefined;
}
interface Validations {
  checkTypes(data: unknown, types: Record<string, unknown>): Record<string, unknown>;
  checkValidations(
    data: unknown,
    types: Record<string, unknown>,
    custom: ActionValidation['custom'],
    store: DynaliteStore,
  ): void;
  validateExpressions(data: Record<string, unknown>): string | undefined;
}

export const dynaliteDb = require('dynalite/db') as DynaliteDb;
const validations = require('dynalite/validations') as Validations;
const putValidation = require('dynalite/validations/putItem') as ActionValidation;
const deleteValidation = require('dynalite/validations/deleteItem') as ActionValidation;

/**
 * dynalite parses every condition, key condition and filter expression with its PEG parser on every
 * request, and the request path sends the same few expressions over and over (`attribute_not_exists
 * (#seq)` for each trail event): the parse was the largest single cost of a write. Parses are kept
 * by everything they depend on (the text, the attribute names and values, whether it is a key
 * condition), so a repeated expression gets the same tree, the same error string, and marks the same
 * names and values used. Thrown syntax errors are not kept (they are parsed again). dynalite only
 * reads the trees it is given.
 */
interface ParseContext {
  attrNames?: Record<string, string>;
  attrVals?: Record<string, unknown>;
  unusedAttrNames?: Record<string, boolean>;
  unusedAttrVals?: Record<string, boolean>;
  isKeyCondition?: boolean;
  [other: string]: unknown;
}
interface PegParser {
  parse(input: string, options?: { context?: ParseContext }): unknown;
}
const MAX_KEPT_PARSES = 2_000;
function keepParses(parser: PegParser): void {
  const parse = parser.parse.bind(parser);
  const kept = new Map<string, { result: unknown; names: string[]; vals: string[] }>();
  parser.parse = (input, options) => {
    const context = options?.context;
    if (!context || parsingFresh) return parse(input, options);
    const key = JSON.stringify([
      input,
      context.attrNames ?? null,
      context.attrVals ?? null,
      Boolean(context.isKeyCondition),
    ]);
    let entry = kept.get(key);
    if (!entry) {
      // Parse against a context of its own with every name and value unused, to learn exactly which
      // this expression uses, whatever earlier expressions of the same request already used.
      const unusedAttrNames = Object.fromEntries(Object.keys(context.attrNames ?? {}).map((k) => [k, true]));
      const unusedAttrVals = Object.fromEntries(Object.keys(context.attrVals ?? {}).map((k) => [k, true]));
      const result = parse(input, { ...options, context: { ...context, unusedAttrNames, unusedAttrVals } });
      entry = {
        result,
        names: Object.keys(context.attrNames ?? {}).filter((k) => !unusedAttrNames[k]),
        vals: Object.keys(context.attrVals ?? {}).filter((k) => !unusedAttrVals[k]),
      };
      if (kept.size >= MAX_KEPT_PARSES) kept.delete(kept.keys().next().value as string);
      kept.set(key, entry);
    }
    for (const k of entry.names) if (context.unusedAttrNames) delete context.unusedAttrNames[k];
    for (const k of entry.vals) if (context.unusedAttrVals) delete context.unusedAttrVals[k];
    return entry.result;
  };
}
keepParses(require('dynalite/db/conditionParser') as PegParser);

/**
 * The plain operation: what the request path sends (string table name, an item of S, N, BOOL,
 * NULL, SS, L and M values in their canonical form, an optional condition with its names and
 * values) is checked here in one walk, and anything else goes through dynalite's generic
 * `checkTypes` / `checkValidations` (the largest cost of a transaction when every operation took
 * it). The walk only accepts: whatever it does not recognise as certainly valid, and already in the
 * form dynalite would store, it leaves to dynalite, so every refusal is still dynalite's own, word
 * for word (test/integration/dynalite-transactions.test.ts compares them with PutItem's and
 * DeleteItem's answers).
 */
type Plain = Record<string, unknown>;
type OperationData = Plain & { TableName: string };
const isMap = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);
const TABLE_NAME = /^[a-zA-Z0-9_.-]{3,255}$/;
const NAME_KEY = /^#[0-9a-zA-Z_]+$/;
const VALUE_KEY = /^:[0-9a-zA-Z_]+$/;
/** A number as dynalite stores it (big.js `toFixed()` of itself): no exponent, sign, leading or trailing zeros. */
const CANONICAL_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d*[1-9])?$/;
const MAX_DIGITS = 38;

/**
 * An upper bound of the size dynalite's `itemSize` gives a value (exact but for numbers), or -1
 * when the value is not in the plain form.
 */
function plainValueSize(value: unknown): number {
  if (!isMap(value)) return -1;
  let type: string | undefined;
  for (const k in value) {
    if (type !== undefined) return -1;
    type = k;
  }
  const v = type === undefined ? undefined : value[type];
  switch (type) {
    case 'S':
      return typeof v === 'string' ? v.length : -1;
    case 'N': {
      if (typeof v !== 'string' || v === '-0' || !CANONICAL_NUMBER.test(v)) return -1;
      const digits = v.length - (v.startsWith('-') ? 1 : 0) - (v.includes('.') ? 1 : 0);
      // dynalite's size of a number is at most 3 + half its digits.
      return digits <= MAX_DIGITS ? v.length + 3 : -1;
    }
    case 'BOOL':
      return typeof v === 'boolean' ? 1 : -1;
    case 'NULL':
      return v === true ? 1 : -1;
    case 'SS': {
      if (!Array.isArray(v) || v.length === 0) return -1;
      const seen = new Set<string>();
      let size = 0;
      for (const s of v) {
        if (typeof s !== 'string' || seen.has(s)) return -1;
        seen.add(s);
        size += s.length;
      }
      return size;
    }
    case 'L': {
      if (!Array.isArray(v)) return -1;
      let size = 3;
      for (const e of v) {
        const s = plainValueSize(e);
        if (s < 0) return -1;
        size += 1 + s;
      }
      return size;
    }
    case 'M': {
      const s = plainMapSize(v);
      return s < 0 ? -1 : 3 + Object.keys(v as Plain).length + s;
    }
    default:
      return -1;
  }
}

/** dynalite's `itemSize` of a map of plain values (an upper bound), or -1. */
function plainMapSize(map: unknown): number {
  if (!isMap(map)) return -1;
  let size = 0;
  for (const k in map) {
    // dynalite copies maps by assignment, which turns this one key into a prototype: leave it to dynalite.
    if (k === '__proto__') return -1;
    const s = plainValueSize(map[k]);
    if (s < 0) return -1;
    size += k.length + s;
  }
  return size;
}

const PLAIN_FIELDS = {
  Item: new Set([
    'TableName',
    'Item',
    'ConditionExpression',
    'ExpressionAttributeNames',
    'ExpressionAttributeValues',
  ]),
  Key: new Set([
    'TableName',
    'Key',
    'ConditionExpression',
    'ExpressionAttributeNames',
    'ExpressionAttributeValues',
  ]),
};

/**
 * Conditions already validated and parsed by dynalite's `validateExpressions`, so the same
 * condition is never parsed twice. The request path's conditions differ from call to call only in
 * their values (`#lastSeq = :lastSeq` with the session's last sequence number), and dynalite's
 * checks of a condition look only at the values' types, except in two places: `BETWEEN` compares
 * its bounds and `attribute_type` reads its type name. So a condition is kept by its expression,
 * its names and its values' keys and types, and reused with the new values put where the parse
 * put the old ones (the tree holds the very value objects it was given); a condition with BETWEEN
 * or attribute_type is kept by its exact values and reused as it is. Only conditions that passed
 * are kept.
 */
interface KeptCondition {
  readonly condition: { expression: unknown };
  /** The value objects the tree holds, by name; undefined when it is reused only for equal values. */
  readonly values?: Plain;
}
const keptConditions = new Map<string, KeptCondition>();
const VALUE_DEPENDENT = /between|attribute_type/i;
/** Set while a condition is parsed for this cache, so dynalite's parse cache hands out no shared tree. */
let parsingFresh = false;

function withValues(node: unknown, swap: Map<unknown, unknown>): unknown {
  const swapped = swap.get(node);
  if (swapped !== undefined) return swapped;
  if (!isMap(node) || !Array.isArray(node.args)) return node;
  return { ...node, args: node.args.map((arg) => withValues(arg, swap)) };
}

function plainCondition(expression: string, names: unknown, values: Plain | undefined): unknown {
  const exact = VALUE_DEPENDENT.test(expression);
  let shape = '';
  if (values && !exact) for (const k in values) shape += `${k}:${Object.keys(values[k] as Plain)[0]},`;
  const key = `${expression}\u0000${JSON.stringify(names ?? null)}\u0000${exact ? JSON.stringify(values ?? null) : shape}`;
  const kept = keptConditions.get(key);
  if (kept) {
    if (!kept.values || !values) return kept.condition;
    const swap = new Map<unknown, unknown>();
    for (const k in values) if (kept.values[k] !== values[k]) swap.set(kept.values[k], values[k]);
    if (swap.size === 0) return kept.condition;
    return { ...kept.condition, expression: withValues(kept.condition.expression, swap) };
  }
  const data: Plain = { ConditionExpression: expression };
  if (names !== undefined) data.ExpressionAttributeNames = names;
  if (values !== undefined) data.ExpressionAttributeValues = values;
  parsingFresh = true;
  try {
    if (validations.validateExpressions(data) || !isMap(data._condition)) return undefined;
  } finally {
    parsingFresh = false;
  }
  const condition = data._condition as KeptCondition['condition'];
  if (keptConditions.size >= MAX_KEPT_PARSES)
    keptConditions.delete(keptConditions.keys().next().value as string);
  keptConditions.set(key, exact || !values ? { condition } : { condition, values: { ...values } });
  return condition;
}

/** The operation as dynalite's validation would leave it, when it is plain; else undefined. */
function plainOperation(
  raw: Plain,
  itemField: 'Item' | 'Key',
  maxItemSize: number,
): OperationData | undefined {
  const fields = PLAIN_FIELDS[itemField];
  for (const k in raw) if (!fields.has(k) || raw[k] == null) return undefined;
  const { TableName, ConditionExpression: expression } = raw;
  const { ExpressionAttributeNames: names, ExpressionAttributeValues: values } = raw;
  if (typeof TableName !== 'string' || !TABLE_NAME.test(TableName)) return undefined;
  const size = plainMapSize(raw[itemField]);
  if (size < 0 || (itemField === 'Item' && size > maxItemSize)) return undefined;
  const data: OperationData = { TableName, [itemField]: raw[itemField] };
  if (expression === undefined) return names === undefined && values === undefined ? data : undefined;
  if (typeof expression !== 'string' || expression === '') return undefined;
  if (names !== undefined) {
    if (!isMap(names) || Object.keys(names).length === 0) return undefined;
    for (const k in names) if (!NAME_KEY.test(k) || typeof names[k] !== 'string') return undefined;
    data.ExpressionAttributeNames = names;
  }
  if (values !== undefined) {
    if (!isMap(values) || Object.keys(values).length === 0) return undefined;
    for (const k in values) if (!VALUE_KEY.test(k) || plainValueSize(values[k]) < 0) return undefined;
    data.ExpressionAttributeValues = values;
  }
  const condition = plainCondition(expression, names, values as Plain | undefined);
  if (condition === undefined) return undefined;
  data.ConditionExpression = expression;
  data._condition = condition;
  return data;
}

/** crypto.hash (Node 20.12+, one call) where there is one, else a Hash object. */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string | Buffer) => string }).hash;
const sha256 = (text: string | Buffer): string =>
  oneShotHash ? oneShotHash('sha256', text) : crypto.createHash('sha256').update(text).digest('hex');

const MAX_ITEMS = 100;
const IDEMPOTENCY_MS = 10 * 60_000;

type Kind = 'Put' | 'Delete' | 'ConditionCheck';

interface Operation {
  readonly kind: Kind;
  readonly data: Record<string, unknown> & { TableName: string };
  readonly table: DynaliteTable;
  readonly key: string;
  readonly returnOld: boolean;
}

class TransactionError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
  ) {
    super(String(body.message ?? body.Message ?? body.__type));
  }
}

const validationError = (message: string) =>
  new TransactionError(400, { __type: 'com.amazon.coral.validate#ValidationException', message });

function fromDynalite(error: unknown): TransactionError {
  const e = error as DynaliteError;
  if (e?.statusCode && e.body) return new TransactionError(e.statusCode, e.body);
  throw error;
}

const cb =
  <T>(resolve: (v: T) => void, reject: (e: unknown) => void) =>
  (err: unknown, value?: T) =>
    err ? reject(err) : resolve(value as T);

/**
 * Table definitions as dynalite last stored them. dynalite reads and decodes a definition from its
 * store on every lookup; here one is kept while it is ACTIVE and nothing has written any definition
 * since (every write to the table store, before it starts and when it ends, empties the cache, and
 * a lookup that overlapped a write is not kept).
 */
interface TableCache {
  version: number;
  readonly tables: Map<string, DynaliteTable>;
}
const tableCaches = new WeakMap<object, TableCache>();
function tableCacheOf(store: DynaliteStore): TableCache {
  const tableDb = store.tableDb as unknown as Record<string, (...args: unknown[]) => unknown>;
  let cache = tableCaches.get(tableDb);
  if (!cache) {
    const kept: TableCache = { version: 0, tables: new Map() };
    const invalidate = () => {
      kept.version++;
      kept.tables.clear();
    };
    for (const method of ['put', 'del', 'batch']) {
      const original = tableDb[method];
      tableDb[method] = function (this: unknown, ...args: unknown[]) {
        invalidate();
        const last = args.length - 1;
        const done = args[last];
        if (typeof done === 'function') {
          args[last] = (...results: unknown[]) => {
            invalidate();
            return (done as (...r: unknown[]) => unknown)(...results);
          };
        } else {
          // A write whose end cannot be seen: keep nothing from now on.
          kept.version = Number.NaN;
        }
        return original.apply(this, args);
      };
    }
    tableCaches.set(tableDb, (cache = kept));
  }
  return cache;
}

async function getTable(store: DynaliteStore, name: string): Promise<DynaliteTable> {
  const cache = tableCacheOf(store);
  const kept = cache.tables.get(name);
  if (kept) return kept;
  const version = cache.version;
  const table = await (
    new Promise((resolve, reject) =>
      store.getTable(name, false, cb(resolve, reject)),
    ) as Promise<DynaliteTable>
  ).catch((error: unknown) => {
    throw fromDynalite(error);
  });
  if (cache.version === version && table.TableStatus === 'ACTIVE') cache.tables.set(name, table);
  return table;
}

function validated(
  raw: Record<string, unknown>,
  validation: ActionValidation,
  store: DynaliteStore,
): Record<string, unknown> & { TableName: string } {
  try {
    const data = validations.checkTypes({ ...raw }, validation.types);
    validations.checkValidations(data, validation.types, validation.custom, store);
    return data as Record<string, unknown> & { TableName: string };
  } catch (error) {
    throw fromDynalite(error);
  }
}

async function parseOperations(store: DynaliteStore, body: Record<string, unknown>): Promise<Operation[]> {
  const items = body.TransactItems;
  if (!Array.isArray(items) || items.length === 0) {
    throw validationError(
      "1 validation error detected: Value null at 'transactItems' failed to satisfy constraint: Member must not be null",
    );
  }
  if (items.length > MAX_ITEMS) {
    throw validationError(
      `1 validation error detected: Value '[...]' at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to ${MAX_ITEMS}`,
    );
  }
  const ops: Operation[] = [];
  const seen = new Set<string>();
  // dynalite reads (and decodes) a table's definition from its store on every lookup: once each here.
  const tables = new Map<string, Promise<DynaliteTable>>();
  for (const entry of items as unknown[]) {
    const kinds = isMap(entry) ? Object.keys(entry) : [];
    if (!isMap(entry) || kinds.length !== 1) {
      throw validationError('each TransactItem holds exactly one operation');
    }
    const kind = kinds[0];
    if (kind === 'Update') {
      throw validationError('the local twin supports Put, Delete and ConditionCheck in TransactWriteItems');
    }
    if (kind !== 'Put' && kind !== 'Delete' && kind !== 'ConditionCheck') {
      throw validationError(`unknown TransactItem operation ${kind}`);
    }
    const operation = entry[kind];
    if (!isMap(operation)) throw validationError(`the ${kind} of a TransactItem must be a structure`);
    const { ReturnValuesOnConditionCheckFailure: returnValues, ...raw } = operation;
    if (kind === 'ConditionCheck' && typeof raw.ConditionExpression !== 'string') {
      throw validationError('ConditionCheck requires a ConditionExpression');
    }
    const data =
      plainOperation(raw, kind === 'Put' ? 'Item' : 'Key', store.options.maxItemSize) ??
      validated(raw, kind === 'Put' ? putValidation : deleteValidation, store);
    let lookup = tables.get(data.TableName);
    if (!lookup) tables.set(data.TableName, (lookup = getTable(store, data.TableName)));
    const table = await lookup;
    const invalid =
      kind === 'Put'
        ? dynaliteDb.validateItem(data.Item as AttributeMap, table)
        : dynaliteDb.validateKey(data.Key as AttributeMap, table);
    if (invalid) throw fromDynalite(invalid);
    const key = itemKeyOf((kind === 'Put' ? data.Item : data.Key) as AttributeMap, table);
    const id = `${data.TableName}\u0000${key}`;
    if (seen.has(id)) {
      throw validationError('Transaction request cannot include multiple operations on one item');
    }
    seen.add(id);
    ops.push({ kind, data, table, key, returnOld: returnValues === 'ALL_OLD' });
  }
  return ops;
}

/**
 * Locks every item with dynalite's own per-item lock, one key at a time (its lock for a list of
 * keys cost several times as much: a closure and a for-in per key, an arguments copy per
 * release), in one order for every transaction: table name, then key. dynalite's single-item
 * writes hold one key and never wait while holding it, and every transaction waits only for keys
 * after those it holds, so no cycle of waits can form. An uncontended key is held at once (dynalite
 * runs the locker synchronously), so a transaction that waits for nothing takes no turn of the
 * microtask queue here; the answer is then the release itself.
 */
function lockAll(store: DynaliteStore, ops: readonly Operation[]): (() => void) | Promise<() => void> {
  const wanted = ops.map((op) => [op.data.TableName, op.key] as const);
  wanted.sort(([ta, ka], [tb, kb]) => (ta < tb ? -1 : ta > tb ? 1 : ka < kb ? -1 : ka > kb ? 1 : 0));
  const releases: (() => void)[] = [];
  const releaseAll = () => {
    for (let i = releases.length - 1; i >= 0; i--) releases[i]();
  };
  let next = 0;
  const lockRest = (): (() => void) | Promise<() => void> => {
    while (next < wanted.length) {
      const [table, key] = wanted[next++];
      let held = false;
      let later: (() => void) | undefined;
      store.getItemDb(table).lock(key, (releaser) => {
        releases.push(releaser(() => undefined));
        if (later) later();
        else held = true;
      });
      if (!held) return new Promise((resolve) => (later = () => resolve(lockRest())));
    }
    return releaseAll;
  };
  return lockRest();
}

/**
 * The key prefix a sub-store (an item table or an index) puts before its keys in dynalite's one
 * LevelDB store, learnt by watching which key the sub-store asks the store for (dynalite 4 builds a
 * sub-store as a prefix over the main store, and forwards each call synchronously). With the
 * prefixes a transaction reads its items in one call and writes items and index entries in one
 * atomic batch, rather than one callback (and one event-loop turn) per item and index entry.
 * undefined when the sub-store does not work that way (then the per-item calls are used).
 */
const prefixes = new WeakMap<object, string | null>();
function prefixOf(store: DynaliteStore, sub: ItemDb): string | undefined {
  let prefix = prefixes.get(sub);
  if (prefix === undefined) {
    const db = store.db as { get: LevelDb['get'] };
    const get = db.get;
    let asked: unknown;
    db.get = (key: string) => {
      asked = key;
    };
    try {
      sub.get('', () => undefined);
    } finally {
      db.get = get;
    }
    prefix = typeof asked === 'string' ? asked : null;
    prefixes.set(sub, prefix);
  }
  return prefix ?? undefined;
}

function get(db: ItemDb, key: string): Promise<AttributeMap | undefined> {
  return new Promise((resolve, reject) =>
    db.get(key, (err, item) => {
      if (err && err.name !== 'NotFoundError') reject(err);
      else resolve(err ? undefined : item);
    }),
  );
}

/** The items as stored now, in the order of `ops`. */
async function readItems(
  store: DynaliteStore,
  ops: readonly Operation[],
): Promise<(AttributeMap | undefined)[]> {
  const keys: string[] = [];
  for (const op of ops) {
    const prefix = prefixOf(store, store.getItemDb(op.data.TableName));
    if (prefix === undefined) {
      return Promise.all(ops.map((o) => get(store.getItemDb(o.data.TableName), o.key)));
    }
    keys.push(prefix + op.key);
  }
  const db = store.db;
  if (db.supports?.getSync && db.getSync && db.status === 'open') return keys.map((k) => db.getSync!(k));
  return db.getMany(keys);
}

/**
 * Keys as dynalite's `createKey`, `createIndexKey` and `getIndexActions` make them, without their
 * per-call costs: dynalite looks each key attribute's type up in the definitions on every call, and
 * makes a fresh MD5 object (`crypto.createHash`) for each hash prefix, three for an audit event and
 * its index entry. Here the types are looked up once per table definition, a hash prefix of string
 * keys is one `crypto.hash` call over the same bytes, and the rest (numbers and binaries: hash
 * prefixes and range strings) is dynalite's own exported `hashPrefix` / `toRangeStr`, kept by their
 * arguments (pure functions of them). Tables this does not cover (a key attribute without a
 * definition, an index that projects only some attributes) use dynalite's functions as they are.
 * test/integration/dynalite-transactions.test.ts compares both on generated items.
 */
interface KeyAttr {
  readonly name: string;
  readonly type: string;
}
interface IndexPlan {
  readonly type: (typeof INDEX_TYPES)[number];
  readonly name: string;
  readonly keys: readonly KeyAttr[];
}
interface TablePlan {
  /** undefined: use dynalite's own functions for this table. */
  readonly keys?: readonly KeyAttr[];
  readonly indexes: readonly IndexPlan[];
  /** Per store: the sub-stores' key prefixes (null when a sub-store is not a prefixed one). */
  prefixes?: { store: DynaliteStore; item: string | null; indexes: (string | null)[] };
}
interface KeyedTable extends DynaliteTable {
  readonly KeySchema: readonly { AttributeName: string }[];
  readonly AttributeDefinitions: readonly { AttributeName: string; AttributeType: string }[];
}
type IndexDefinition = {
  IndexName: string;
  KeySchema: readonly { AttributeName: string }[];
  Projection?: { ProjectionType?: string };
};
const INDEX_TYPES = ['Local', 'Global'] as const;
const plans = new WeakMap<DynaliteTable, TablePlan>();

function planOf(table: DynaliteTable): TablePlan {
  let plan = plans.get(table);
  if (plan) return plan;
  const t = table as KeyedTable;
  const typed = (schema: readonly { AttributeName: string }[]): KeyAttr[] | undefined => {
    const out: KeyAttr[] = [];
    for (const k of schema) {
      const def = t.AttributeDefinitions?.find((d) => d.AttributeName === k.AttributeName);
      if (!def || typeof def.AttributeType !== 'string') return undefined;
      out.push({ name: k.AttributeName, type: def.AttributeType });
    }
    return out.length ? out : undefined;
  };
  const keys = Array.isArray(t.KeySchema) ? typed(t.KeySchema) : undefined;
  const indexes: IndexPlan[] = [];
  let covered = keys !== undefined;
  for (const type of INDEX_TYPES) {
    for (const index of (table[`${type}SecondaryIndexes`] ?? []) as IndexDefinition[]) {
      const indexKeys = Array.isArray(index.KeySchema) ? typed(index.KeySchema) : undefined;
      if (!indexKeys || index.Projection?.ProjectionType !== 'ALL') covered = false;
      indexes.push({ type, name: index.IndexName, keys: indexKeys ?? [] });
    }
  }
  plan = covered ? { keys, indexes } : { indexes };
  plans.set(table, plan);
  return plan;
}

/** Number range strings by value (dynalite's toRangeStr builds a Big per call). */
const keptKeys = new Lru<string, string>(4_096);
function kept(key: string, make: () => string): string {
  let value = keptKeys.get(key);
  if (value === undefined) keptKeys.set(key, (value = make()));
  return value;
}
const SURROGATE = /[\uD800-\uDFFF]/;

interface BigNumber {
  s: number;
  e: number;
  c: number[];
}
const Big = require(require.resolve('big.js', { paths: [require.resolve('dynalite')] })) as new (
  n: string,
) => BigNumber;

/** dynalite's numToBuffer (db/index.js), line for line: a number key's bytes for its hash prefix. */
function numToBuffer(text: string): Buffer {
  if (+text === 0) return Buffer.from([-128]);
  const num = new Big(text);
  const scale = num.s;
  const mantissa = num.c;
  const exponent = num.e + 1;
  const appendZero = exponent % 2 ? 1 : 0;
  const lengthWithoutExponent = Math.floor((mantissa.length + appendZero + 1) / 2);
  let bytes: number[];
  if (lengthWithoutExponent < 20 && scale === -1) {
    bytes = new Array<number>(lengthWithoutExponent + 2);
    bytes[lengthWithoutExponent + 1] = 102;
  } else {
    bytes = new Array<number>(lengthWithoutExponent + 1);
  }
  bytes[0] = Math.floor((exponent + appendZero) / 2) - 64;
  if (scale === -1) bytes[0] ^= 0xffffffff;
  let appendedZero = false;
  for (let m = 0; m < mantissa.length; m++) {
    const b = Math.floor((m + appendZero) / 2) + 1;
    if (appendZero && !m && !appendedZero) {
      bytes[b] = 0;
      appendedZero = true;
      m--;
    } else if ((m + appendZero) % 2 === 0) {
      bytes[b] = mantissa[m] * 10;
    } else {
      bytes[b] += mantissa[m];
    }
    if ((m + appendZero) % 2 || m === mantissa.length - 1) {
      if (scale === -1) bytes[b] = 101 - bytes[b];
      else bytes[b]++;
    }
  }
  return Buffer.from(bytes);
}

const OUTLIERS = Buffer.from('Outliers');
const md5 = (data: string | Buffer): string =>
  oneShotHash ? oneShotHash('md5', data) : crypto.createHash('md5').update(data).digest('hex');

/** The bytes dynalite hashes for one key piece of type S or N; undefined for anything else. */
function keyBytes(value: unknown, type: string | undefined): Buffer | undefined {
  if (typeof value !== 'string') return undefined;
  if (type === 'S') return Buffer.from(value, 'utf8');
  if (type === 'N') return numToBuffer(value);
  return undefined;
}

/** dynalite's hashPrefix(hashKey, hashType, rangeKey, rangeType) (exported for the tests). */
export function hashPrefixOf(hash: unknown, hashType: string, range?: unknown, rangeType?: string): string {
  if (
    hashType === 'S' &&
    typeof hash === 'string' &&
    (range === undefined || (rangeType === 'S' && typeof range === 'string'))
  ) {
    // dynalite hashes 'Outliers', then each key's UTF-8 bytes: the same bytes as the joined text's,
    // unless a lone surrogate (which UTF-8 encodes alone) could pair up across the join.
    const text = `Outliers${hash}${range ?? ''}`;
    if (!SURROGATE.test(text)) return md5(text).slice(0, 6);
  }
  const hashBytes = keyBytes(hash, hashType);
  // dynalite hashes no range bytes for a missing (or empty) range key.
  const rangeBytes = range ? keyBytes(range, rangeType) : EMPTY;
  if (!hashBytes || !rangeBytes) return dynaliteDb.hashPrefix(hash, hashType, range, rangeType);
  return md5(Buffer.concat([OUTLIERS, hashBytes, rangeBytes])).slice(0, 6);
}
const EMPTY = Buffer.alloc(0);

/** dynalite's toRangeStr(value, type). */
function rangeStrOf(value: unknown, type: string): string {
  if (type === 'S' || typeof value !== 'string') return dynaliteDb.toRangeStr(value, type);
  return kept(`r${type}:${value}`, () => dynaliteDb.toRangeStr(value, type));
}

const pieceOf = (item: AttributeMap, attr: KeyAttr): unknown => item[attr.name][attr.type];

/** dynalite's createKey(item, table, keySchema), for a plan's typed key schema. */
function keyOf(item: AttributeMap, keys: readonly KeyAttr[]): string {
  const hash = pieceOf(item, keys[0]);
  let key = `${hashPrefixOf(hash, keys[0].type)}/${rangeStrOf(hash, keys[0].type)}/`;
  for (let i = 1; i < keys.length; i++) key += `${rangeStrOf(pieceOf(item, keys[i]), keys[i].type)}/`;
  return key;
}

/** dynalite's createIndexKey(item, table, indexKeySchema). */
function indexKeyOf(
  item: AttributeMap,
  tableKeys: readonly KeyAttr[],
  indexKeys: readonly KeyAttr[],
): string {
  const range = tableKeys[1];
  return (
    keyOf(item, indexKeys) +
    hashPrefixOf(
      pieceOf(item, tableKeys[0]),
      tableKeys[0].type,
      range ? pieceOf(item, range) : undefined,
      range?.type,
    )
  );
}

/** The item's key in its table, as dynalite's createKey makes it (exported for the tests). */
export function itemKeyOf(item: AttributeMap, table: DynaliteTable): string {
  const { keys } = planOf(table);
  return keys ? keyOf(item, keys) : dynaliteDb.createKey(item, table);
}

/**
 * dynalite's getIndexActions over every index of the table, local ones first as updateIndexes
 * takes them; `index` counts the local indexes, then the global ones (exported for the tests).
 */
export function indexActionsOf(
  table: DynaliteTable,
  existing: AttributeMap | undefined,
  item: AttributeMap | null,
): {
  type: IndexPlan['type'];
  index: number;
  deletes: string[];
  put?: { key: string; item: AttributeMap };
}[] {
  const plan = planOf(table);
  const out: ReturnType<typeof indexActionsOf> = [];
  if (!plan.indexes.length || (!existing && !item)) return out;
  if (!plan.keys) {
    for (const type of INDEX_TYPES) {
      const indexes = table[`${type}SecondaryIndexes`];
      if (!indexes?.length) continue;
      const actions = dynaliteDb.getIndexActions(indexes, existing, item, table);
      for (const a of actions.deletes) {
        out.push({
          type,
          index: plan.indexes.findIndex((p) => p.type === type && p.name === a.index),
          deletes: [a.key],
        });
      }
      for (const a of actions.puts) {
        out.push({
          type,
          index: plan.indexes.findIndex((p) => p.type === type && p.name === a.index),
          deletes: [],
          put: { key: a.key, item: a.item },
        });
      }
    }
    return out;
  }
  for (const [i, index] of plan.indexes.entries()) {
    let key: string | null = null;
    const action: (typeof out)[number] = { type: index.type, index: i, deletes: [] };
    if (item && index.keys.every((k) => item[k.name] != null)) {
      key = indexKeyOf(item, plan.keys, index.keys);
      action.put = { key, item };
    }
    if (existing && index.keys.every((k) => existing[k.name] != null)) {
      const old = indexKeyOf(existing, plan.keys, index.keys);
      if (old !== key) action.deletes.push(old);
    }
    if (action.put || action.deletes.length) out.push(action);
  }
  return out;
}

function prefixesOf(store: DynaliteStore, table: DynaliteTable): NonNullable<TablePlan['prefixes']> {
  const plan = planOf(table);
  if (plan.prefixes?.store === store) return plan.prefixes;
  const prefixes = {
    store,
    item: prefixOf(store, store.getItemDb(table.TableName)) ?? null,
    indexes: plan.indexes.map(
      (p) => prefixOf(store, store.getIndexDb(p.type, table.TableName, p.name)) ?? null,
    ),
  };
  plan.prefixes = prefixes;
  return prefixes;
}

/** Every write of the transaction (index entries as dynalite's updateIndexes makes them, then the item). */
function writesOf(
  store: DynaliteStore,
  ops: readonly Operation[],
  existing: readonly (AttributeMap | undefined)[],
): LevelOp[] | undefined {
  const writes: LevelOp[] = [];
  // An index with every attribute projected stores the item itself: encode each value once, to
  // the bytes the store keeps (the JSON text's UTF-8, what its json encoding would make), so the
  // store neither encodes it again per entry (the 'buffer' encoding passes bytes through).
  const encoded = new Map<AttributeMap, Buffer>();
  const put = (key: string, value: AttributeMap): LevelOp => {
    let bytes = encoded.get(value);
    if (bytes === undefined) encoded.set(value, (bytes = Buffer.from(JSON.stringify(value), 'utf8')));
    return { type: 'put', key, value: bytes, valueEncoding: 'buffer' };
  };
  for (const [i, op] of ops.entries()) {
    if (op.kind === 'ConditionCheck') continue;
    const item = op.kind === 'Put' ? (op.data.Item as AttributeMap) : null;
    const prefixes = prefixesOf(store, op.table);
    if (prefixes.item === null) return undefined;
    const deletes: LevelOp[] = [];
    const puts: LevelOp[] = [];
    for (const action of indexActionsOf(op.table, existing[i], item)) {
      const prefix = prefixes.indexes[action.index];
      if (prefix == null) return undefined;
      for (const key of action.deletes) deletes.push({ type: 'del', key: prefix + key });
      if (action.put) puts.push(put(prefix + action.put.key, action.put.item));
    }
    writes.push(...deletes, ...puts);
    writes.push(item ? put(prefixes.item + op.key, item) : { type: 'del', key: prefixes.item + op.key });
  }
  return writes;
}

/** The writes one at a time through dynalite's own calls (when the store is not a prefixed one). */
async function writeEach(
  store: DynaliteStore,
  ops: readonly Operation[],
  existing: readonly (AttributeMap | undefined)[],
): Promise<void> {
  for (const [i, op] of ops.entries()) {
    if (op.kind === 'ConditionCheck') continue;
    const db = store.getItemDb(op.data.TableName);
    const item = op.kind === 'Put' ? (op.data.Item as AttributeMap) : null;
    await new Promise<void>((resolve, reject) =>
      dynaliteDb.updateIndexes(store, op.table, existing[i], item, cb(resolve, reject)),
    );
    await new Promise<void>((resolve, reject) =>
      item ? db.put(op.key, item, cb(resolve, reject)) : db.del(op.key, cb(resolve, reject)),
    );
  }
}

/** Runs one TransactWriteItems request against dynalite's store. */
export async function transactWriteItems(
  store: DynaliteStore,
  body: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const ops = await parseOperations(store, body);
  const locked = lockAll(store, ops);
  const release = typeof locked === 'function' ? locked : await locked;
  try {
    const existing = await readItems(store, ops);
    const reasons = ops.map((op, i) => {
      const failed = dynaliteDb.checkConditional(op.data, existing[i]);
      if (!failed) return { Code: 'None' };
      return {
        Code: 'ConditionalCheckFailed',
        Message: 'The conditional request failed',
        ...(op.returnOld && existing[i] ? { Item: existing[i] } : {}),
      };
    });
    if (reasons.some((r) => r.Code !== 'None')) {
      throw new TransactionError(400, {
        __type: 'com.amazonaws.dynamodb.v20120810#TransactionCanceledException',
        message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${reasons.map((r) => r.Code).join(', ')}]`,
        CancellationReasons: reasons,
      });
    }
    const writes = writesOf(store, ops, existing);
    // One batch: the items and their index entries land together or not at all.
    if (writes) {
      if (writes.length) await store.db.batch(writes);
    } else await writeEach(store, ops, existing);
    return {};
  } finally {
    release();
  }
}

/**
 * Wraps dynalite's HTTP request listener: `TransactWriteItems` is answered here, everything else goes
 * to dynalite unchanged. `onCall` sees every data-plane call (operation and tables), for counting.
 */
export function withTransactions(
  store: DynaliteStore,
  original: (req: IncomingMessage, res: ServerResponse) => void,
  observer?: {
    observed(): boolean;
    onCall(call: { operation: string; tables: string[]; body: string }): void;
  },
): (req: IncomingMessage, res: ServerResponse) => void {
  const tokens = new Map<string, { digest: string; at: number }>();
  return (req, res) => {
    const target = String(req.headers['x-amz-target'] ?? '');
    const operation = target.split('.')[1] ?? '';
    const onCall = observer?.observed() ? observer.onCall : undefined;
    if (!onCall && operation !== 'TransactWriteItems') {
      original(req, res);
      return;
    }
    if (operation !== 'TransactWriteItems') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        onCall?.({ operation, tables: tablesOf(text), body: text });
      });
      original(req, res);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const bytes = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      const text = bytes.toString('utf8');
      onCall?.({ operation, tables: tablesOf(text), body: text });
      const send = (status: number, payload: Record<string, unknown>) => {
        const out = JSON.stringify(payload);
        res.statusCode = status;
        res.setHeader('content-type', 'application/x-amz-json-1.0');
        res.setHeader('content-length', Buffer.byteLength(out));
        res.end(out);
      };
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        send(400, { __type: 'com.amazon.coral.service#SerializationException' });
        return;
      }
      const now = Date.now();
      // Tokens are kept in the order they were stored, so the expired ones are at the front: stop at
      // the first live one (a scan of every token per call made each write slower than the last).
      for (const [t, v] of tokens) {
        if (now - v.at <= IDEMPOTENCY_MS) break;
        tokens.delete(t);
      }
      const token = typeof body.ClientRequestToken === 'string' ? body.ClientRequestToken : undefined;
      // The request as sent: a retry with the same token sends the same body (the SDK serialises an
      // input the same way each time), so the bytes themselves tell a retry from a different request
      // (re-serialising the parsed body to compare it cost more than the rest of the handler; the
      // bytes as received are hashed, not the decoded text encoded again).
      const digest = token ? sha256(bytes) : '';
      const previous = token ? tokens.get(token) : undefined;
      if (previous) {
        if (previous.digest === digest) send(200, {});
        else {
          send(400, {
            __type: 'com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException',
            message: 'The request uses the same client token as a previous, but non-identical request.',
          });
        }
        return;
      }
      transactWriteItems(store, body).then(
        (answer) => {
          if (token) tokens.set(token, { digest, at: Date.now() });
          send(200, answer);
        },
        (error: unknown) => {
          if (error instanceof TransactionError) send(error.status, error.body);
          else {
            send(500, {
              __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError',
              message: String(error),
            });
          }
        },
      );
    });
  };
}

function tablesOf(text: string): string[] {
  try {
    const json = JSON.parse(text) as Record<string, unknown>;
    const names = new Set<string>();
    if (typeof json.TableName === 'string') names.add(json.TableName);
    for (const item of (json.TransactItems ?? []) as Record<string, { TableName?: string }>[]) {
      for (const part of Object.values(item)) if (part?.TableName) names.add(part.TableName);
    }
    for (const name of Object.keys((json.RequestItems ?? {}) as object)) names.add(name);
    return [...names];
  } catch {
    return [];
  }
}

/**
 * What the twin's TransactWriteItems (lib/local/dynalite-transactions.ts) leaves in dynalite's
 * store, compared with what dynalite's own single-item calls leave: the keys it makes (its own
 * createKey / createIndexKey / getIndexActions, re-done without their per-call costs) on generated
 * items and awkward values, and the store itself, byte for byte, after the same puts, updates and
 * deletes made once by transactions and once by PutItem / DeleteItem, read back through dynalite's
 * GetItem, Query (on every index) and Scan. Also the idempotency token against a tampered retry.
 */
import {
  CreateTableCommand,
  type CreateTableCommandInput,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  dynaliteDb,
  hashPrefixOf,
  indexActionsOf,
  itemKeyOf,
  type DynaliteStore,
} from '../../lib/local/dynalite-transactions.js';
import {
  createTableInput,
  localDynamoClient,
  startDynalite,
  type LocalDynamo,
} from '../../lib/local/dynamodb.js';
import { AuditTable, RequestsTable } from '../../lib/tables.js';
import { Rng } from '../fixtures/masking/corpus.js';
import { rawDynamoCall } from '../support/dynamo.js';

type Item = Record<string, Record<string, unknown>>;
type Table = Parameters<typeof itemKeyOf>[1] & Record<string, any>;

let dynamo: LocalDynamo;
let store: DynaliteStore;
let client: DynamoDBClient;

beforeAll(async () => {
  const create = dynaliteDb.create;
  dynaliteDb.create = (options: unknown) => (store = create(options));
  try {
    dynamo = await startDynalite();
  } finally {
    dynaliteDb.create = create;
  }
  client = localDynamoClient(dynamo.endpoint);
}, 60_000);

afterAll(async () => {
  client?.destroy();
  await dynamo?.close();
});

/** One call as raw JSON (any shape) to the twin's DynamoDB. */
const raw = (operation: string, body: unknown) => rawDynamoCall(dynamo.endpoint, operation, body);

/** A small deterministic generator (the same items on every run). */
function random(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}
const AWKWARD_STRINGS = [
  'a',
  'Z',
  'é',
  '日本語',
  '😀',
  '\ud83d', // a lone high surrogate
  '\ude00', // a lone low surrogate
  'x\ud83d',
  '\ude00y',
  'a\u0000b',
  'Outliers',
  ' ',
  '~',
  '/',
  '\uffff',
];
const AWKWARD_NUMBERS = [
  '0',
  '-0',
  '0.0',
  '1',
  '-1',
  '10',
  '100',
  '0.5',
  '-0.5',
  '12.340',
  '007',
  '1e5',
  '1E-5',
  '-1.5e10',
  '9'.repeat(38),
  `-${'9'.repeat(38)}`,
  `0.${'0'.repeat(100)}1`,
  '1e125',
  '-1e-129',
  '123456789012345678901',
  '-123456789012345678901',
];
function stringOf(next: () => number): string {
  if (next() < 0.3) return AWKWARD_STRINGS[Math.floor(next() * AWKWARD_STRINGS.length)];
  let s = '';
  const n = 1 + Math.floor(next() * 12);
  for (let i = 0; i < n; i++) s += String.fromCharCode(32 + Math.floor(next() * (next() < 0.1 ? 60000 : 90)));
  return s;
}
function numberOf(next: () => number): string {
  if (next() < 0.3) return AWKWARD_NUMBERS[Math.floor(next() * AWKWARD_NUMBERS.length)];
  const sign = next() < 0.3 ? '-' : '';
  const whole = String(Math.floor(next() * 10 ** Math.floor(next() * 15)));
  return next() < 0.5
    ? `${sign}${whole}`
    : `${sign}${whole}.${String(Math.floor(next() * 1e6)).padStart(6, '0')}`;
}
const bytesOf = (next: () => number) =>
  Buffer.from(Array.from({ length: 1 + Math.floor(next() * 8) }, () => Math.floor(next() * 256))).toString(
    'base64',
  );
const pieceOf = (type: string, next: () => number): Record<string, unknown> =>
  type === 'S' ? { S: stringOf(next) } : type === 'N' ? { N: numberOf(next) } : { B: bytesOf(next) };

describe('the keys of a transaction are the keys dynalite makes', () => {
  it('hash prefixes, for every pair of key types and awkward values', () => {
    const next = random(1);
    let compared = 0;
    for (const hashType of ['S', 'N', 'B']) {
      for (const rangeType of [undefined, 'S', 'N', 'B']) {
        for (let i = 0; i < 400; i++) {
          const hash = pieceOf(hashType, next)[hashType];
          const range = rangeType ? pieceOf(rangeType, next)[rangeType] : undefined;
          expect(
            hashPrefixOf(hash, hashType, range, rangeType),
            `${hashType} ${String(hash)} ${rangeType} ${String(range)}`,
          ).toBe(dynaliteDb.hashPrefix(hash, hashType, range, rangeType));
          compared++;
        }
      }
    }
    // Every awkward string against every other, where a lone surrogate meets its other half.
    for (const a of AWKWARD_STRINGS) {
      for (const b of AWKWARD_STRINGS)
        expect(hashPrefixOf(a, 'S', b, 'S')).toBe(dynaliteDb.hashPrefix(a, 'S', b, 'S'));
      for (const n of AWKWARD_NUMBERS)
        expect(hashPrefixOf(a, 'S', n, 'N')).toBe(dynaliteDb.hashPrefix(a, 'S', n, 'N'));
    }
    for (const n of AWKWARD_NUMBERS) expect(hashPrefixOf(n, 'N')).toBe(dynaliteDb.hashPrefix(n, 'N'));
    expect(compared).toBe(4800);
  });

  /** Table definitions as dynalite stores them (what its getTable gives). */
  const definitions: Table[] = [];
  for (const [hashType, rangeType] of [
    ['S', undefined],
    ['S', 'N'],
    ['S', 'S'],
    ['N', 'S'],
    ['N', undefined],
    ['B', 'N'],
    ['S', 'B'],
  ] as const) {
    for (const projection of ['ALL', 'KEYS_ONLY', 'INCLUDE'] as const) {
      definitions.push({
        TableName: `keys-${hashType}-${rangeType ?? 'none'}-${projection}`,
        TableStatus: 'ACTIVE',
        AttributeDefinitions: [
          { AttributeName: 'h', AttributeType: hashType },
          ...(rangeType ? [{ AttributeName: 'r', AttributeType: rangeType }] : []),
          { AttributeName: 'g', AttributeType: 'S' },
          { AttributeName: 'gn', AttributeType: 'N' },
          { AttributeName: 'l', AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: 'h', KeyType: 'HASH' },
          ...(rangeType ? [{ AttributeName: 'r', KeyType: 'RANGE' }] : []),
        ],
        GlobalSecondaryIndexes: [
          {
            IndexName: 'byG',
            KeySchema: [
              { AttributeName: 'g', KeyType: 'HASH' },
              { AttributeName: 'gn', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          },
          {
            IndexName: 'byGn',
            KeySchema: [{ AttributeName: 'gn', KeyType: 'HASH' }],
            Projection:
              projection === 'INCLUDE'
                ? { ProjectionType: 'INCLUDE', NonKeyAttributes: ['x'] }
                : { ProjectionType: projection },
          },
        ],
        ...(rangeType
          ? {
              LocalSecondaryIndexes: [
                {
                  IndexName: 'byL',
                  KeySchema: [
                    { AttributeName: 'h', KeyType: 'HASH' },
                    { AttributeName: 'l', KeyType: 'RANGE' },
                  ],
                  Projection: { ProjectionType: 'ALL' },
                },
              ],
            }
          : {}),
      });
    }
  }

  const itemOf = (table: Table, next: () => number): Item => {
    const types = Object.fromEntries(
      (table.AttributeDefinitions as { AttributeName: string; AttributeType: string }[]).map((d) => [
        d.AttributeName,
        d.AttributeType,
      ]),
    );
    const item: Item = { h: pieceOf(types.h, next), x: { S: stringOf(next) } };
    if (types.r) item.r = pieceOf(types.r, next);
    // Index attributes present or not, so entries come and go.
    if (next() < 0.7) item.g = { S: stringOf(next) };
    if (next() < 0.7) item.gn = { N: numberOf(next) };
    if (next() < 0.7) item.l = { S: stringOf(next) };
    return item;
  };

  /** dynalite's getIndexActions, local indexes then global ones, in the shape indexActionsOf answers. */
  function dynaliteActions(table: Table, existing: Item | undefined, item: Item | null) {
    const out: { type: string; index: string; deletes: string[]; put?: { key: string; item: Item } }[] = [];
    for (const type of ['Local', 'Global'] as const) {
      const indexes = table[`${type}SecondaryIndexes`] as { IndexName: string }[] | undefined;
      if (!indexes?.length || (!existing && !item)) continue;
      const actions = dynaliteDb.getIndexActions(indexes, existing, item, table);
      for (const a of actions.deletes) out.push({ type, index: a.index, deletes: [a.key] });
      for (const a of actions.puts)
        out.push({ type, index: a.index, deletes: [], put: { key: a.key, item: a.item } });
    }
    return out;
  }
  const names = (table: Table) =>
    [
      ...((table.LocalSecondaryIndexes ?? []) as { IndexName: string }[]),
      ...((table.GlobalSecondaryIndexes ?? []) as { IndexName: string }[]),
    ].map((i) => i.IndexName);
  /** One entry per index write, in a canonical order (puts and deletes of one index apart). */
  const flat = (
    actions: { type: string; index: string; deletes: string[]; put?: { key: string; item: Item } }[],
  ) =>
    actions
      .flatMap((a) => [
        ...a.deletes.map((key) => `${a.type} ${a.index} del ${key}`),
        ...(a.put ? [`${a.type} ${a.index} put ${a.put.key} ${JSON.stringify(a.put.item)}`] : []),
      ])
      .sort();

  it('item keys and index entries, on generated items, for every kind of table (puts, updates, deletes)', () => {
    const next = random(2);
    let compared = 0;
    for (const table of definitions) {
      const indexNames = names(table);
      for (let i = 0; i < 150; i++) {
        const existing = next() < 0.5 ? itemOf(table, next) : undefined;
        const item = next() < 0.8 ? itemOf(table, next) : null;
        if (item && existing) {
          // An update keeps the key and may move the item in its indexes.
          item.h = existing.h;
          if (existing.r) item.r = existing.r;
        }
        for (const it of [existing, item]) {
          if (it) expect(itemKeyOf(it, table)).toBe(dynaliteDb.createKey(it, table));
        }
        const ours = indexActionsOf(table, existing, item).map((a) => ({
          ...a,
          index: indexNames[a.index],
        }));
        expect(flat(ours)).toEqual(flat(dynaliteActions(table, existing, item)));
        // The item itself (not a copy) where every attribute is projected.
        for (const a of ours) {
          const projected = (table.GlobalSecondaryIndexes as any[])
            .concat(table.LocalSecondaryIndexes ?? [])
            .find((x) => x.IndexName === a.index).Projection.ProjectionType;
          if (a.put && projected === 'ALL') expect(a.put.item).toBe(item);
        }
        compared++;
      }
    }
    expect(compared).toBe(definitions.length * 150);
  });
});

/** The store's entries under a table and its indexes, keys with the table's name taken out, values as stored text. */
async function entriesOf(tableName: string): Promise<[string, string][]> {
  const db = store.db as unknown as {
    iterator(options: unknown): AsyncIterable<[string, string]>;
  };
  const out: [string, string][] = [];
  for await (const [key, value] of db.iterator({ valueEncoding: 'utf8' })) {
    if (
      [`item-${tableName}~`, `index-global~${tableName}~`, `index-local~${tableName}~`].some((p) =>
        key.startsWith(p),
      )
    ) {
      out.push([key.split(tableName).join('<table>'), value]);
    }
  }
  return out;
}

async function readBack(tableName: string, input: CreateTableCommandInput) {
  const scan = await raw('Scan', { TableName: tableName });
  const queries: unknown[] = [];
  for (const index of input.GlobalSecondaryIndexes ?? []) {
    // Every partition of the index, as Query sees it.
    const hashName = index.KeySchema![0].AttributeName!;
    const values = new Set<string>();
    for (const item of scan.body.Items as Item[])
      if (item[hashName]) values.add(JSON.stringify(item[hashName]));
    for (const v of [...values].sort()) {
      queries.push(
        (
          await raw('Query', {
            TableName: tableName,
            IndexName: index.IndexName,
            KeyConditionExpression: '#h = :h',
            ExpressionAttributeNames: { '#h': hashName },
            ExpressionAttributeValues: { ':h': JSON.parse(v) },
          })
        ).body,
      );
    }
  }
  const gets: unknown[] = [];
  const keyNames = input.KeySchema!.map((k) => k.AttributeName!);
  for (const item of scan.body.Items as Item[]) {
    gets.push(
      (
        await raw('GetItem', {
          TableName: tableName,
          Key: Object.fromEntries(keyNames.map((k) => [k, item[k]])),
        })
      ).body,
    );
  }
  return { scan: scan.body, queries, gets };
}

describe('the store after transactions is the store after single-item writes', () => {
  const cases = [
    ['the audit table', AuditTable],
    ['the requests table', RequestsTable],
  ] as const;
  it.each(cases)(
    '%s: byte for byte, and through GetItem, Query on every index and Scan',
    async (_name, def) => {
      const byTx = `st-tx-${def.logicalName.toLowerCase()}`;
      const byPut = `st-put-${def.logicalName.toLowerCase()}`;
      const inputs = [createTableInput(def, byTx), createTableInput(def, byPut)];
      for (const input of inputs) await client.send(new CreateTableCommand(input));
      const next = random(3);
      const keyNames = inputs[0].KeySchema!.map((k) => k.AttributeName!);
      const types = Object.fromEntries(
        inputs[0].AttributeDefinitions!.map((d) => [d.AttributeName!, d.AttributeType!]),
      );
      // Unique keys: with a range key, seven items in each partition.
      const keyOf = (i: number): Item => {
        const parts = keyNames.length > 1 ? [Math.floor(i / 7), i % 7] : [i];
        return Object.fromEntries(
          keyNames.map((k, j) => [
            k,
            types[k] === 'N' ? { N: String(parts[j]) } : { S: `k${j}-${parts[j]}-é😀` },
          ]),
        );
      };
      const itemOf = (i: number): Item => {
        const item: Item = { ...keyOf(i), body: { S: stringOf(next) }, n: { N: numberOf(next) } };
        for (const name of Object.keys(types)) {
          if (keyNames.includes(name) || next() < 0.25) continue;
          item[name] = types[name] === 'N' ? { N: numberOf(next) } : { S: stringOf(next) };
        }
        item.nested = {
          M: { l: { L: [{ S: 'a' }, { N: '1' }, { BOOL: true }, { NULL: true }] }, ss: { SS: ['x', 'y'] } },
        };
        return item;
      };
      // Three rounds over the same keys: new items, then updates (index attributes move or go), then
      // some deletes, each round as transactions of up to five operations and as single writes.
      for (let round = 0; round < 3; round++) {
        const ops = Array.from({ length: 40 }, (_, i) =>
          round === 2 && i % 3 === 0 ? { Delete: { Key: keyOf(i) } } : { Put: { Item: itemOf(i) } },
        );
        for (let i = 0; i < ops.length; i += 5) {
          const answer = await raw('TransactWriteItems', {
            TransactItems: ops
              .slice(i, i + 5)
              .map((op) =>
                'Put' in op
                  ? { Put: { TableName: byTx, ...op.Put } }
                  : { Delete: { TableName: byTx, ...op.Delete } },
              ),
          });
          expect(answer).toEqual({ status: 200, body: {} });
        }
        for (const op of ops) {
          const answer =
            'Put' in op
              ? await raw('PutItem', { TableName: byPut, ...op.Put })
              : await raw('DeleteItem', { TableName: byPut, ...op.Delete });
          expect(answer.status).toBe(200);
        }
      }
      const [txEntries, putEntries] = [await entriesOf(byTx), await entriesOf(byPut)];
      expect(txEntries.length).toBeGreaterThan(40);
      expect(txEntries.some(([k]) => k.startsWith('index-global~'))).toBe(true);
      expect(txEntries).toEqual(putEntries);
      const [txRead, putRead] = [await readBack(byTx, inputs[0]), await readBack(byPut, inputs[1])];
      expect((txRead.scan.Items as unknown[]).length).toBeGreaterThan(20);
      expect(txRead.queries.length).toBeGreaterThan(0);
      expect(txRead).toEqual(putRead);
    },
  );
});

describe('the idempotency token', () => {
  const TABLE = 'idem-plain';
  beforeAll(async () => {
    await client.send(
      new CreateTableCommand({
        TableName: TABLE,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      }),
    );
  });
  const body = (id: string, value: string, token: string) =>
    JSON.stringify({
      TransactItems: [{ Put: { TableName: TABLE, Item: { id: { S: id }, v: { S: value } } } }],
      ClientRequestToken: token,
    });
  const get = async (id: string) =>
    (await raw('GetItem', { TableName: TABLE, Key: { id: { S: id } } })).body.Item;

  it('a retry with the same body is answered without writing again', async () => {
    const first = body('once', 'a', 'token-once');
    expect(await raw('TransactWriteItems', first)).toEqual({ status: 200, body: {} });
    expect((await raw('DeleteItem', { TableName: TABLE, Key: { id: { S: 'once' } } })).status).toBe(200);
    expect(await raw('TransactWriteItems', first)).toEqual({ status: 200, body: {} });
    expect(await get('once')).toBeUndefined();
  });

  it('a retried token with a tampered body is refused and writes nothing', async () => {
    expect(await raw('TransactWriteItems', body('t1', 'a', 'token-tamper'))).toEqual({
      status: 200,
      body: {},
    });
    const same = body('t1', 'a', 'token-tamper');
    // Same length, one character changed; another item; the same item with another value.
    const tampered = [
      same.replace('"a"', '"b"'),
      body('t2', 'a', 'token-tamper'),
      body('t1', 'ab', 'token-tamper'),
    ];
    for (const text of tampered) {
      const answer = await raw('TransactWriteItems', text);
      expect(answer.status).toBe(400);
      expect(answer.body.__type).toBe(
        'com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException',
      );
    }
    expect(await get('t1')).toEqual({ id: { S: 't1' }, v: { S: 'a' } });
    expect(await get('t2')).toBeUndefined();
  });
});

describe('the item locks', () => {
  it('transactions over overlapping keys in two tables, in every order, racing single writes: all finish (no deadlock)', async () => {
    for (const name of ['lk-a', 'lk-b']) {
      await client.send(
        new CreateTableCommand({
          TableName: name,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
          KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        }),
      );
    }
    const next = random(11);
    const keys = ['k1', 'k2', 'k3', 'k4'];
    const shuffled = <T>(xs: T[]) =>
      xs
        .map((x) => [next(), x] as const)
        .sort((a, b) => a[0] - b[0])
        .map(([, x]) => x);
    const calls: Promise<{ status: number }>[] = [];
    for (let i = 0; i < 60; i++) {
      if (i % 4 === 3) {
        // A single write holds its key across turns of the event loop, so transactions wait for it.
        calls.push(
          raw('PutItem', {
            TableName: shuffled(['lk-a', 'lk-b'])[0],
            Item: { id: { S: shuffled(keys)[0] }, by: { S: `put-${i}` } },
          }),
        );
        continue;
      }
      const items = shuffled(keys.flatMap((k) => ['lk-a', 'lk-b'].map((t) => [t, k] as const))).slice(
        0,
        3 + Math.floor(next() * 6),
      );
      calls.push(
        raw('TransactWriteItems', {
          TransactItems: items.map(([t, k]) => ({
            Put: {
              TableName: t,
              Item: { id: { S: k }, by: { S: `tx-${i}` }, n: { N: String(items.length) } },
            },
          })),
        }),
      );
    }
    const answers = await Promise.race([
      Promise.all(calls),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('deadlocked')), 10_000)),
    ]);
    expect(answers.every((a) => a.status === 200)).toBe(true);
    // Every key ends with some writer's value.
    for (const t of ['lk-a', 'lk-b']) {
      for (const k of keys) {
        const item = (await raw('GetItem', { TableName: t, Key: { id: { S: k } } })).body.Item as
          Item | undefined;
        expect(item?.by.S).toMatch(/^(tx|put)-\d+$/);
      }
    }
  }, 20_000);
});

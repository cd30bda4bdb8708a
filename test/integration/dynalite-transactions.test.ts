/**
 * The twin's TransactWriteItems (lib/local/dynalite-transactions.ts) over the wire: what it rejects
 * and with which words, and what it writes. Each operation of a transaction is validated as
 * dynalite validates the same single-item call, so for malformed input the answer is compared with
 * dynalite's own PutItem / DeleteItem answer to the same operation (raw HTTP: shapes no SDK would
 * send); accepted input is stored exactly as PutItem stores it (numbers normalised, and so on).
 */
import {
  ConditionalCheckFailedException,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
  type DynamoDBClient,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTableInput,
  localDynamoClient,
  startDynalite,
  type LocalDynamo,
} from '../../lib/local/dynamodb.js';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { AuditTable, RequestsTable } from '../../lib/tables.js';
import { rawDynamoCall } from '../support/dynamo.js';

const PLAIN = 't-plain';
const AUDIT = 't-audit';
const REQUESTS = 't-requests';

let dynamo: LocalDynamo;
let client: DynamoDBClient;

beforeAll(async () => {
  dynamo = await startDynalite();
  client = localDynamoClient(dynamo.endpoint);
  await client.send(
    new CreateTableCommand({
      TableName: PLAIN,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
    }),
  );
  await client.send(new CreateTableCommand(createTableInput(AuditTable, AUDIT)));
  await client.send(new CreateTableCommand(createTableInput(RequestsTable, REQUESTS)));
}, 60_000);

afterAll(async () => {
  client?.destroy();
  await dynamo?.close();
});

interface Answer {
  status: number;
  body: Record<string, any>;
}

/** One call as raw JSON (any shape) to the twin's DynamoDB. */
const raw = (operation: string, body: unknown): Promise<Answer> =>
  rawDynamoCall(dynamo.endpoint, operation, body);

const transact = (items: unknown[], extra: Record<string, unknown> = {}) =>
  raw('TransactWriteItems', { TransactItems: items, ...extra });

/** The error as a client tells errors apart: status, type and message (whichever key it uses). */
const errorOf = (a: Answer) => ({
  status: a.status,
  type: String(a.body.__type ?? ''),
  message: String(a.body.message ?? a.body.Message ?? ''),
});

async function waitFor(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('condition not reached');
}

let n = 0;
const fresh = (prefix: string) => `${prefix}-${++n}`;

/** Put payloads each of which dynalite's PutItem refuses (the table is PLAIN unless named). */
const badPuts: [string, (id: string) => Record<string, unknown>][] = [
  ['no Item', () => ({ TableName: PLAIN })],
  ['no TableName', (id) => ({ Item: { id: { S: id } } })],
  ['a short table name', (id) => ({ TableName: 'ab', Item: { id: { S: id } } })],
  ['a table name with a space', (id) => ({ TableName: 'bad name', Item: { id: { S: id } } })],
  ['a table name that is a number', (id) => ({ TableName: 5, Item: { id: { S: id } } })],
  ['an Item that is a list', () => ({ TableName: PLAIN, Item: [] })],
  ['an Item that is a string', () => ({ TableName: PLAIN, Item: 'x' })],
  ['an attribute value that is a string', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: 'v' } })],
  ['an attribute value that is a list', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: [] } })],
  ['an empty attribute value', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: {} } })],
  ['two types in one value', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { S: 'a', N: '1' } } })],
  ['an S that is a number', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { S: 5 } } })],
  ['an S that is a map', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { S: {} } } })],
  ['an N that is not a number', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { N: 'abc' } } })],
  ['an empty N', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { N: '' } } })],
  ['an N that is a JSON number', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { N: 5 } } })],
  ['an N too large', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { N: '1e200' } } })],
  ['an N too small', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { N: '1e-200' } } })],
  ['an N of 39 digits', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { N: '1'.repeat(39) } } })],
  ['NULL false', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { NULL: false } } })],
  ['BOOL a number', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { BOOL: 1 } } })],
  ['BOOL a word', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { BOOL: 'maybe' } } })],
  ['an empty SS', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { SS: [] } } })],
  ['an SS with duplicates', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { SS: ['a', 'a'] } } })],
  ['an SS of numbers', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { SS: [1] } } })],
  ['an SS that is a string', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { SS: 'a' } } })],
  ['an NS with duplicates', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { NS: ['1', '1'] } } })],
  ['an NS with a word', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { NS: ['1', 'x'] } } })],
  ['an empty NS', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { NS: [] } } })],
  ['a B that is not base64', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { B: 'abc' } } })],
  [
    'a BS with duplicates',
    (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { BS: ['YQ==', 'YQ=='] } } }),
  ],
  ['an L with an empty value', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { L: [{}] } } })],
  ['an L that is a map', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { L: {} } } })],
  [
    'an M with a bad number',
    (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { M: { a: { N: 'x' } } } } }),
  ],
  ['an M that is a list', (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { M: [] } } })],
  [
    'a deep M with NULL false',
    (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { M: { a: { L: [{ NULL: false }] } } } } }),
  ],
  ['the key missing', () => ({ TableName: PLAIN, Item: { x: { S: 'a' } } })],
  ['the key of the wrong type', () => ({ TableName: PLAIN, Item: { id: { N: '1' } } })],
  ['an empty string key', () => ({ TableName: PLAIN, Item: { id: { S: '' } } })],
  ['a hash key over 2048 bytes', () => ({ TableName: PLAIN, Item: { id: { S: 'k'.repeat(2049) } } })],
  [
    'an index key of the wrong type',
    (id) => ({ TableName: REQUESTS, Item: { id: { S: id }, principal: { N: '1' } } }),
  ],
  [
    'an item over 400 KB',
    (id) => ({ TableName: PLAIN, Item: { id: { S: id }, x: { S: 'a'.repeat(400 * 1024) } } }),
  ],
  [
    'an item over 400 KB in a nested map',
    (id) => ({
      TableName: PLAIN,
      Item: { id: { S: id }, x: { M: { a: { S: 'a'.repeat(205_000) }, b: { S: 'b'.repeat(205_000) } } } },
    }),
  ],
  [
    'an empty ConditionExpression',
    (id) => ({ TableName: PLAIN, Item: { id: { S: id } }, ConditionExpression: '' }),
  ],
  [
    'a ConditionExpression with a syntax error',
    (id) => ({ TableName: PLAIN, Item: { id: { S: id } }, ConditionExpression: 'attribute_not_exists(' }),
  ],
  [
    'a ConditionExpression that is a number',
    (id) => ({ TableName: PLAIN, Item: { id: { S: id } }, ConditionExpression: 5 }),
  ],
  [
    'a ConditionExpression naming an undefined name',
    (id) => ({
      TableName: PLAIN,
      Item: { id: { S: id } },
      ConditionExpression: 'attribute_not_exists(#missing)',
    }),
  ],
  [
    'a ConditionExpression naming an undefined value',
    (id) => ({ TableName: PLAIN, Item: { id: { S: id } }, ConditionExpression: 'id = :missing' }),
  ],
  [
    'a ConditionExpression with a reserved word',
    (id) => ({
      TableName: PLAIN,
      Item: { id: { S: id } },
      ConditionExpression: 'attribute_not_exists(status)',
    }),
  ],
  [
    'an unused attribute name',
    (id) => ({
      TableName: PLAIN,
      Item: { id: { S: id } },
      ConditionExpression: 'attribute_not_exists(id)',
      ExpressionAttributeNames: { '#a': 'a' },
    }),
  ],
  [
    'an unused attribute value',
    (id) => ({
      TableName: PLAIN,
      Item: { id: { S: id } },
      ConditionExpression: 'attribute_not_exists(id)',
      ExpressionAttributeValues: { ':a': { S: 'a' } },
    }),
  ],
  [
    'attribute names without an expression',
    (id) => ({ TableName: PLAIN, Item: { id: { S: id } }, ExpressionAttributeNames: { '#a': 'a' } }),
  ],
  [
    'attribute values without an expression',
    (id) => ({ TableName: PLAIN, Item: { id: { S: id } }, ExpressionAttributeValues: { ':a': { S: 'a' } } }),
  ],
  [
    'empty attribute names',
    (id) => ({
      TableName: PLAIN,
      Item: { id: { S: id } },
      ConditionExpression: 'attribute_not_exists(id)',
      ExpressionAttributeNames: {},
    }),
  ],
  [
    'an attribute name key without #',
    (id) => ({
      TableName: PLAIN,
      Item: { id: { S: id } },
      ConditionExpression: 'attribute_not_exists(id)',
      ExpressionAttributeNames: { a: 'a' },
    }),
  ],
  [
    'an attribute name that is a number',
    (id) => ({
      TableName: PLAIN,
      Item: { id: { S: id } },
      ConditionExpression: 'attribute_not_exists(#a)',
      ExpressionAttributeNames: { '#a': 5 },
    }),
  ],
  [
    'an attribute value key without :',
    (id) => ({
      TableName: PLAIN,
      Item: { id: { S: id } },
      ConditionExpression: 'id = :a',
      ExpressionAttributeValues: { a: { S: 'a' } },
    }),
  ],
  [
    'an invalid attribute value',
    (id) => ({
      TableName: PLAIN,
      Item: { id: { S: id } },
      ConditionExpression: 'id = :a',
      ExpressionAttributeValues: { ':a': { N: 'x' } },
    }),
  ],
  [
    'Expected together with an expression',
    (id) => ({
      TableName: PLAIN,
      Item: { id: { S: id } },
      ConditionExpression: 'attribute_not_exists(id)',
      Expected: { id: { Exists: false } },
    }),
  ],
  [
    'Expected with a bad operator',
    (id) => ({ TableName: PLAIN, Item: { id: { S: id } }, Expected: { id: { ComparisonOperator: 'NOPE' } } }),
  ],
  ['ReturnValues ALL_NEW', (id) => ({ TableName: PLAIN, Item: { id: { S: id } }, ReturnValues: 'ALL_NEW' })],
  [
    'ReturnConsumedCapacity of an unknown kind',
    (id) => ({ TableName: PLAIN, Item: { id: { S: id } }, ReturnConsumedCapacity: 'SOME' }),
  ],
];

/** Put payloads PutItem accepts, some of which it normalises before storing. */
const goodPuts: [string, (id: string) => Record<string, unknown>][] = [
  [
    'every scalar and collection type',
    (id) => ({
      TableName: PLAIN,
      Item: {
        id: { S: id },
        s: { S: '' },
        n: { N: '-12.5' },
        b: { B: 'YWJj' },
        t: { BOOL: true },
        z: { NULL: true },
        ss: { SS: ['b', 'a'] },
        ns: { NS: ['1', '2.5'] },
        bs: { BS: ['YQ==', 'Yg=='] },
        l: { L: [{ S: 'x' }, { M: { k: { N: '0' } } }] },
        m: { M: {} },
      },
    }),
  ],
  [
    'numbers in non-canonical forms',
    (id) => ({
      TableName: PLAIN,
      Item: {
        id: { S: id },
        a: { N: '1.50' },
        b: { N: '007' },
        c: { N: '-0' },
        d: { N: '1e3' },
        f: { N: '.5' },
      },
    }),
  ],
  [
    'numbers in a nested map and list',
    (id) => ({
      TableName: PLAIN,
      Item: { id: { S: id }, m: { M: { a: { N: '2.0' }, l: { L: [{ N: '0010' }] } } } },
    }),
  ],
  [
    'BOOL and NULL as words',
    (id) => ({
      TableName: PLAIN,
      Item: { id: { S: id }, a: { BOOL: 'true' }, b: { BOOL: 'no' }, c: { NULL: 'yes' } },
    }),
  ],
  [
    'a value with a null member',
    (id) => ({ TableName: PLAIN, Item: { id: { S: id }, a: { S: 'x', N: null } } }),
  ],
  [
    'a value with an unknown member',
    (id) => ({ TableName: PLAIN, Item: { id: { S: id }, a: { S: 'x', Z: 1 } } }),
  ],
  ['an unknown parameter', (id) => ({ TableName: PLAIN, Item: { id: { S: id } }, Whatever: 1 })],
  ['a null parameter', (id) => ({ TableName: PLAIN, Item: { id: { S: id } }, ConditionExpression: null })],
  [
    'an attribute named __proto__',
    (id) => ({ TableName: PLAIN, Item: { id: { S: id }, ['__proto__']: { S: 'x' } } }),
  ],
  [
    'a condition with names and values',
    (id) => ({
      TableName: PLAIN,
      Item: { id: { S: id }, v: { N: '1' } },
      ConditionExpression: 'attribute_not_exists(#id) AND NOT #v = :v',
      ExpressionAttributeNames: { '#id': 'id', '#v': 'v' },
      ExpressionAttributeValues: { ':v': { N: '1.0' } },
    }),
  ],
  [
    'an Expected condition',
    (id) => ({ TableName: PLAIN, Item: { id: { S: id } }, Expected: { id: { Exists: false } } }),
  ],
  [
    'ReturnValues NONE and ReturnConsumedCapacity TOTAL',
    (id) => ({
      TableName: PLAIN,
      Item: { id: { S: id } },
      ReturnValues: 'NONE',
      ReturnConsumedCapacity: 'TOTAL',
    }),
  ],
  [
    'an item just under 400 KB',
    (id) => ({
      TableName: PLAIN,
      Item: { id: { S: id }, x: { S: 'a'.repeat(400 * 1024 - 20) } },
    }),
  ],
  [
    'an item with index keys',
    (id) => ({ TableName: REQUESTS, Item: { id: { S: id }, principal: { S: 'p' }, createdAt: { S: 't' } } }),
  ],
];

/** (A computed `['__proto__']` key is an own property, so JSON.stringify keeps it.) */
const bodyOf = (value: unknown): string => JSON.stringify(value);

function itemIdOf(payload: Record<string, unknown>): string | undefined {
  const item = (payload.Item ?? payload.Key) as Record<string, { S?: unknown }> | undefined;
  return typeof item?.id?.S === 'string' ? item.id.S : undefined;
}

describe('TransactWriteItems refuses what PutItem refuses, with the same answer', () => {
  it.each(badPuts)('a Put with %s', async (_name, make) => {
    const single = await raw('PutItem', make(fresh('single')));
    const payload = make(fresh('tx'));
    const inTransaction = await transact([{ Put: payload }]);
    expect(single.status).toBe(400);
    expect(errorOf(inTransaction)).toEqual(errorOf(single));
    const id = itemIdOf(payload);
    if (id && typeof payload.TableName === 'string' && payload.TableName.length >= 3) {
      const stored = await raw('GetItem', { TableName: payload.TableName, Key: { id: { S: id } } });
      expect(stored.body.Item).toBeUndefined();
    }
  });

  it('refuses a bad Put that follows a good one, and writes neither', async () => {
    const good = fresh('good');
    const answer = await transact([
      { Put: { TableName: PLAIN, Item: { id: { S: good } } } },
      { Put: { TableName: PLAIN, Item: { id: { S: fresh('bad') }, x: { N: 'x' } } } },
    ]);
    expect(errorOf(answer)).toEqual({
      status: 400,
      type: 'com.amazon.coral.validate#ValidationException',
      message: 'The parameter cannot be converted to a numeric value: x',
    });
    expect((await raw('GetItem', { TableName: PLAIN, Key: { id: { S: good } } })).body.Item).toBeUndefined();
  });
});

describe('TransactWriteItems stores what PutItem stores', () => {
  it.each(goodPuts)('a Put with %s', async (_name, make) => {
    const a = fresh('single');
    const b = fresh('tx');
    const single = await raw('PutItem', bodyOf(make(a)));
    expect(single.status).toBe(200);
    const inTransaction = await raw('TransactWriteItems', `{"TransactItems":[{"Put":${bodyOf(make(b))}}]}`);
    expect(inTransaction).toEqual({ status: 200, body: {} });
    const table = make(a).TableName as string;
    const one = (await raw('GetItem', { TableName: table, Key: { id: { S: a } } })).body.Item;
    const other = (await raw('GetItem', { TableName: table, Key: { id: { S: b } } })).body.Item;
    expect(one).toBeDefined();
    expect(other).toEqual({ ...one, id: { S: b } });
  });

  it('keeps an attribute named __proto__ as PutItem does', async () => {
    const a = fresh('single');
    const b = fresh('tx');
    const item = (id: string) => `{"id":{"S":"${id}"},"__proto__":{"S":"x"},"y":{"S":"z"}}`;
    expect((await raw('PutItem', `{"TableName":"${PLAIN}","Item":${item(a)}}`)).status).toBe(200);
    const answer = await raw(
      'TransactWriteItems',
      `{"TransactItems":[{"Put":{"TableName":"${PLAIN}","Item":${item(b)}}}]}`,
    );
    expect(answer.status).toBe(200);
    const one = (await raw('GetItem', { TableName: PLAIN, Key: { id: { S: a } } })).body.Item;
    const other = (await raw('GetItem', { TableName: PLAIN, Key: { id: { S: b } } })).body.Item;
    expect(other).toEqual({ ...one, id: { S: b } });
  });
});

describe('TransactWriteItems refuses what DeleteItem refuses, for Delete and ConditionCheck', () => {
  const badKeys: [string, (id: string) => Record<string, unknown>][] = [
    ['no Key', () => ({ TableName: PLAIN })],
    ['a Key that is a list', () => ({ TableName: PLAIN, Key: [] })],
    ['a key of the wrong type', () => ({ TableName: PLAIN, Key: { id: { N: '1' } } })],
    ['a key with an extra attribute', (id) => ({ TableName: PLAIN, Key: { id: { S: id }, x: { S: 'y' } } })],
    ['a key value that is empty', () => ({ TableName: PLAIN, Key: { id: {} } })],
    ['a bad condition', (id) => ({ TableName: PLAIN, Key: { id: { S: id } }, ConditionExpression: 'id =' })],
    [
      'an unused value',
      (id) => ({
        TableName: PLAIN,
        Key: { id: { S: id } },
        ConditionExpression: 'attribute_exists(id)',
        ExpressionAttributeValues: { ':v': { S: 'v' } },
      }),
    ],
    ['a bad table name', (id) => ({ TableName: 'x', Key: { id: { S: id } } })],
  ];
  it.each(badKeys)('a Delete with %s', async (_name, make) => {
    const single = await raw('DeleteItem', make(fresh('single')));
    expect(single.status).toBe(400);
    expect(errorOf(await transact([{ Delete: make(fresh('tx')) }]))).toEqual(errorOf(single));
  });
  it.each(badKeys)('a ConditionCheck with %s', async (_name, make) => {
    const payload = { ConditionExpression: 'attribute_exists(id)', ...make(fresh('single')) };
    const single = await raw('DeleteItem', payload);
    expect(single.status).toBe(400);
    expect(errorOf(await transact([{ ConditionCheck: payload }]))).toEqual(errorOf(single));
  });
});

describe('TransactWriteItems: the request as a whole', () => {
  const validation = (message: string) => ({
    status: 400,
    type: 'com.amazon.coral.validate#ValidationException',
    message,
  });
  const put = (id: string) => ({ Put: { TableName: PLAIN, Item: { id: { S: id } } } });

  it('refuses no items, and more than 100', async () => {
    const none =
      "1 validation error detected: Value null at 'transactItems' failed to satisfy constraint: Member must not be null";
    expect(errorOf(await raw('TransactWriteItems', {}))).toEqual(validation(none));
    expect(errorOf(await transact([]))).toEqual(validation(none));
    expect(errorOf(await raw('TransactWriteItems', { TransactItems: 'x' }))).toEqual(validation(none));
    const many = Array.from({ length: 101 }, () => put(fresh('many')));
    expect(errorOf(await transact(many))).toEqual(
      validation(
        "1 validation error detected: Value '[...]' at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to 100",
      ),
    );
    expect(
      (await raw('GetItem', { TableName: PLAIN, Key: { id: { S: `many-${n}` } } })).body.Item,
    ).toBeUndefined();
    const hundred = Array.from({ length: 100 }, () => put(fresh('hundred')));
    expect((await transact(hundred)).status).toBe(200);
  });

  it('refuses an entry with two operations, none, an unknown one, or an Update', async () => {
    const id = fresh('entry');
    const both = { ...put(id), Delete: { TableName: PLAIN, Key: { id: { S: id } } } };
    expect(errorOf(await transact([both]))).toEqual(
      validation('each TransactItem holds exactly one operation'),
    );
    expect(errorOf(await transact([{}]))).toEqual(
      validation('each TransactItem holds exactly one operation'),
    );
    expect(errorOf(await transact([{ Get: { TableName: PLAIN, Key: { id: { S: id } } } }]))).toEqual(
      validation('unknown TransactItem operation Get'),
    );
    const update = { Update: { TableName: PLAIN, Key: { id: { S: id } }, UpdateExpression: 'SET a = :a' } };
    expect(errorOf(await transact([put(fresh('before-update')), update]))).toEqual(
      validation('the local twin supports Put, Delete and ConditionCheck in TransactWriteItems'),
    );
    expect(
      errorOf(await transact([{ ConditionCheck: { TableName: PLAIN, Key: { id: { S: id } } } }])),
    ).toEqual(validation('ConditionCheck requires a ConditionExpression'));
  });

  it('refuses an entry or an operation that is not a structure with a 400, not a 500', async () => {
    for (const entry of [null, 'x', 5, []]) {
      expect(errorOf(await transact([entry]))).toEqual(
        validation('each TransactItem holds exactly one operation'),
      );
    }
    for (const operation of [null, 'x', 5, [], true]) {
      expect(errorOf(await transact([{ Put: operation }]))).toEqual(
        validation('the Put of a TransactItem must be a structure'),
      );
      expect(errorOf(await transact([{ ConditionCheck: operation }]))).toEqual(
        validation('the ConditionCheck of a TransactItem must be a structure'),
      );
    }
  });

  it('refuses two operations on one item, also across operation kinds', async () => {
    const id = fresh('dup');
    const twice = validation('Transaction request cannot include multiple operations on one item');
    expect(errorOf(await transact([put(id), put(id)]))).toEqual(twice);
    expect(
      errorOf(await transact([put(id), { Delete: { TableName: PLAIN, Key: { id: { S: id } } } }])),
    ).toEqual(twice);
    // The same key in another table is another item.
    const audit = { Put: { TableName: REQUESTS, Item: { id: { S: id } } } };
    expect((await transact([put(id), audit])).status).toBe(200);
  });

  it('follows a table deleted and created again with another key (definitions are kept between calls)', async () => {
    const TableName = 't-churn';
    const create = async (key: string, type: 'S' | 'N') => {
      await client.send(
        new CreateTableCommand({
          TableName,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [{ AttributeName: key, AttributeType: type }],
          KeySchema: [{ AttributeName: key, KeyType: 'HASH' }],
        }),
      );
      await waitFor(
        async () => (await raw('DescribeTable', { TableName })).body.Table?.TableStatus === 'ACTIVE',
      );
    };
    await create('id', 'S');
    const byId = { Put: { TableName, Item: { id: { S: 'a' } } } };
    const byPk = { Put: { TableName, Item: { pk: { N: '1' } } } };
    expect((await transact([byId])).status).toBe(200);
    expect((await raw('DeleteTable', { TableName })).status).toBe(200);
    await waitFor(async () => (await raw('DescribeTable', { TableName })).status === 400);
    expect(errorOf(await transact([byId])).type).toBe(
      'com.amazonaws.dynamodb.v20120810#ResourceNotFoundException',
    );
    await create('pk', 'N');
    expect(errorOf(await transact([byId]))).toEqual(
      validation('One or more parameter values were invalid: Missing the key pk in the item'),
    );
    expect((await transact([byPk])).status).toBe(200);
    expect((await raw('GetItem', { TableName, Key: { pk: { N: '1' } } })).body.Item).toEqual({
      pk: { N: '1' },
    });
  });

  it('answers a missing table as not found and body that is not JSON as a serialization error', async () => {
    expect(
      errorOf(await transact([{ Put: { TableName: 'no-such-table', Item: { id: { S: 'x' } } } }])),
    ).toEqual({
      status: 400,
      type: 'com.amazonaws.dynamodb.v20120810#ResourceNotFoundException',
      message: 'Requested resource not found: Table: no-such-table not found',
    });
    expect((await raw('TransactWriteItems', '{not json')).body.__type).toBe(
      'com.amazon.coral.service#SerializationException',
    );
  });
});

describe('TransactWriteItems: all or nothing', () => {
  const get = async (table: string, key: Record<string, unknown>) =>
    (await raw('GetItem', { TableName: table, Key: key, ConsistentRead: true })).body.Item as
      Record<string, any> | undefined;

  it('writes nothing when one condition fails, and says which, with the item only where asked', async () => {
    const [a, b, c] = [fresh('a'), fresh('b'), fresh('c')];
    await client.send(new PutItemCommand({ TableName: PLAIN, Item: { id: { S: b }, v: { N: '2' } } }));
    const items: TransactWriteItem[] = [
      { Put: { TableName: PLAIN, Item: { id: { S: a } }, ConditionExpression: 'attribute_not_exists(id)' } },
      {
        Put: {
          TableName: PLAIN,
          Item: { id: { S: b }, v: { N: '3' } },
          ConditionExpression: '#v = :v',
          ExpressionAttributeNames: { '#v': 'v' },
          ExpressionAttributeValues: { ':v': { N: '1' } },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      },
      { Delete: { TableName: PLAIN, Key: { id: { S: c } }, ConditionExpression: 'attribute_exists(id)' } },
    ];
    const answer = await transact(items);
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({
      __type: 'com.amazonaws.dynamodb.v20120810#TransactionCanceledException',
      message:
        'Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed, ConditionalCheckFailed]',
      CancellationReasons: [
        { Code: 'None' },
        {
          Code: 'ConditionalCheckFailed',
          Message: 'The conditional request failed',
          Item: { id: { S: b }, v: { N: '2' } },
        },
        { Code: 'ConditionalCheckFailed', Message: 'The conditional request failed' },
      ],
    });
    expect(await get(PLAIN, { id: { S: a } })).toBeUndefined();
    expect(await get(PLAIN, { id: { S: b } })).toEqual({ id: { S: b }, v: { N: '2' } });
  });

  it('compares a stored number with a condition value written in another form', async () => {
    const id = fresh('num');
    await raw('PutItem', { TableName: PLAIN, Item: { id: { S: id }, v: { N: '1.50' } } });
    const put = (cond: string) => ({
      Put: {
        TableName: PLAIN,
        Item: { id: { S: id }, v: { N: '2' } },
        ConditionExpression: '#v = :v',
        ExpressionAttributeNames: { '#v': 'v' },
        ExpressionAttributeValues: { ':v': { N: cond } },
      },
    });
    expect((await transact([put('1.6')])).status).toBe(400);
    expect((await transact([put('01.5')])).status).toBe(200);
    expect(await get(PLAIN, { id: { S: id } })).toEqual({ id: { S: id }, v: { N: '2' } });
  });

  it('evaluates a repeated condition with each call’s own values', async () => {
    const id = fresh('counter');
    await raw('PutItem', { TableName: PLAIN, Item: { id: { S: id }, n: { N: '0' }, tag: { S: 'a0' } } });
    const step = (expected: number, prefix: string) =>
      transact([
        {
          Put: {
            TableName: PLAIN,
            Item: { id: { S: id }, n: { N: String(expected + 1) }, tag: { S: `a${expected + 1}` } },
            ConditionExpression: '#n = :n AND begins_with(#tag, :p)',
            ExpressionAttributeNames: { '#n': 'n', '#tag': 'tag' },
            ExpressionAttributeValues: { ':n': { N: String(expected) }, ':p': { S: prefix } },
          },
        },
      ]);
    for (let i = 0; i < 5; i++) {
      expect((await step(i + 1, 'a')).status).toBe(400);
      expect((await step(i, 'b')).status).toBe(400);
      expect((await step(i, `a${i}`)).status).toBe(200);
      expect((await step(i, 'a')).status).toBe(400);
    }
    expect((await raw('GetItem', { TableName: PLAIN, Key: { id: { S: id } } })).body.Item.n).toEqual({
      N: '5',
    });
    const check = (expression: string, values: Record<string, unknown>) =>
      transact([
        {
          ConditionCheck: {
            TableName: PLAIN,
            Key: { id: { S: id } },
            ConditionExpression: expression,
            ExpressionAttributeNames: { '#n': 'n' },
            ExpressionAttributeValues: values,
          },
        },
      ]);
    expect((await check('#n BETWEEN :lo AND :hi', { ':lo': { N: '1' }, ':hi': { N: '5' } })).status).toBe(
      200,
    );
    expect((await check('#n BETWEEN :lo AND :hi', { ':lo': { N: '6' }, ':hi': { N: '9' } })).status).toBe(
      400,
    );
    expect(
      errorOf(await check('#n BETWEEN :lo AND :hi', { ':lo': { N: '9' }, ':hi': { N: '6' } })).message,
    ).toMatch(/^Invalid ConditionExpression: The BETWEEN operator requires upper bound/);
    expect((await check('attribute_type(#n, :t)', { ':t': { S: 'N' } })).status).toBe(200);
    expect((await check('attribute_type(#n, :t)', { ':t': { S: 'S' } })).status).toBe(400);
    expect(errorOf(await check('attribute_type(#n, :t)', { ':t': { S: 'X' } })).message).toMatch(
      /^Invalid ConditionExpression: Invalid attribute type name found; type: X/,
    );
    expect((await check('#n IN (:a, :b)', { ':a': { N: '4' }, ':b': { N: '5' } })).status).toBe(200);
    expect((await check('#n IN (:a, :b)', { ':a': { N: '4' }, ':b': { N: '6' } })).status).toBe(400);
  });

  it('applies puts, deletes and condition checks together, and keeps the indexes in step', async () => {
    const session = fresh('s');
    const keep = fresh('keep');
    await raw('PutItem', { TableName: PLAIN, Item: { id: { S: keep } } });
    const event = (seq: number, requestId: string) => ({
      Put: {
        TableName: AUDIT,
        Item: { sessionId: { S: session }, seq: { N: String(seq) }, requestId: { S: requestId } },
        ConditionExpression: 'attribute_not_exists(#seq)',
        ExpressionAttributeNames: { '#seq': 'seq' },
      },
    });
    const first = await transact([
      event(1, 'r1'),
      event(2, 'r1'),
      {
        ConditionCheck: {
          TableName: PLAIN,
          Key: { id: { S: keep } },
          ConditionExpression: 'attribute_exists(id)',
        },
      },
    ]);
    expect(first).toEqual({ status: 200, body: {} });
    const byRequest = async (requestId: string) =>
      (
        await client.send(
          new QueryCommand({
            TableName: AUDIT,
            IndexName: 'byRequest',
            KeyConditionExpression: 'requestId = :r',
            ExpressionAttributeValues: { ':r': { S: requestId } },
          }),
        )
      ).Items?.map((i) => i.seq.N);
    expect(await byRequest('r1')).toEqual(['1', '2']);
    // Move event 2 to another request and delete event 1: the index follows.
    const second = await transact([
      {
        Put: {
          TableName: AUDIT,
          Item: { sessionId: { S: session }, seq: { N: '2' }, requestId: { S: 'r2' } },
        },
      },
      { Delete: { TableName: AUDIT, Key: { sessionId: { S: session }, seq: { N: '1' } } } },
    ]);
    expect(second.status).toBe(200);
    expect(await byRequest('r1')).toEqual([]);
    expect(await byRequest('r2')).toEqual(['2']);
    expect(await get(AUDIT, { sessionId: { S: session }, seq: { N: '1' } })).toBeUndefined();
    expect(await get(PLAIN, { id: { S: keep } })).toEqual({ id: { S: keep } });
  });

  it('gives one winner among transactions and single writes racing for one item', async () => {
    const id = fresh('race');
    const tries = Array.from({ length: 12 }, (_, i) =>
      i % 3 === 0
        ? client
            .send(
              new PutItemCommand({
                TableName: PLAIN,
                Item: { id: { S: id }, by: { S: `put-${i}` } },
                ConditionExpression: 'attribute_not_exists(id)',
              }),
            )
            .then(
              () => `put-${i}`,
              (e: unknown) => {
                expect(e).toBeInstanceOf(ConditionalCheckFailedException);
                return undefined;
              },
            )
        : client
            .send(
              new TransactWriteItemsCommand({
                TransactItems: [
                  {
                    Put: {
                      TableName: PLAIN,
                      Item: { id: { S: id }, by: { S: `tx-${i}` } },
                      ConditionExpression: 'attribute_not_exists(id)',
                    },
                  },
                  { Put: { TableName: PLAIN, Item: { id: { S: `${id}-side-${i}` } } } },
                ],
              }),
            )
            .then(
              () => `tx-${i}`,
              (e: { name?: string }) => {
                expect(e.name).toBe('TransactionCanceledException');
                return undefined;
              },
            ),
    );
    const winners = (await Promise.all(tries)).filter(Boolean);
    expect(winners).toHaveLength(1);
    const stored = (await client.send(new GetItemCommand({ TableName: PLAIN, Key: { id: { S: id } } }))).Item;
    expect(stored?.by.S).toBe(winners[0]);
    // A losing transaction wrote none of its items.
    for (let i = 0; i < 12; i++) {
      if (i % 3 === 0) continue;
      const side = await get(PLAIN, { id: { S: `${id}-side-${i}` } });
      expect(Boolean(side)).toBe(winners[0] === `tx-${i}`);
    }
  });
});

describe('TransactWriteItems on an on-disk store', () => {
  it('writes items and index entries that a restarted store still has', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-tx-'));
    try {
      let disk = await startDynalite({ path: dir });
      let diskClient = localDynamoClient(disk.endpoint);
      await diskClient.send(new CreateTableCommand(createTableInput(AuditTable, AUDIT)));
      const items: TransactWriteItem[] = [1, 2].map((seq) => ({
        Put: {
          TableName: AUDIT,
          Item: { sessionId: { S: 's-disk' }, seq: { N: String(seq) }, requestId: { S: 'r-disk' } },
          ConditionExpression: 'attribute_not_exists(#seq)',
          ExpressionAttributeNames: { '#seq': 'seq' },
        },
      }));
      await diskClient.send(new TransactWriteItemsCommand({ TransactItems: items }));
      await expect(
        diskClient.send(new TransactWriteItemsCommand({ TransactItems: items })),
      ).rejects.toMatchObject({
        name: 'TransactionCanceledException',
      });
      diskClient.destroy();
      await disk.close();
      disk = await startDynalite({ path: dir });
      diskClient = localDynamoClient(disk.endpoint);
      try {
        const indexed = await diskClient.send(
          new QueryCommand({
            TableName: AUDIT,
            IndexName: 'byRequest',
            KeyConditionExpression: 'requestId = :r',
            ExpressionAttributeValues: { ':r': { S: 'r-disk' } },
          }),
        );
        expect(indexed.Items?.map((i) => i.seq.N)).toEqual(['1', '2']);
      } finally {
        diskClient.destroy();
        await disk.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

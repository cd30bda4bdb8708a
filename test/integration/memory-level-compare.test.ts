/**
 * lib/local/memory-level-compare.ts: the in-memory store's comparator replaced by Buffer.compare
 * for byte keys. It must order every pair as memory-level's own does, be in place in a twin started
 * the usual way, and leave what dynalite's Query and Scan return in the order they had.
 */
import {
  CreateTableCommand,
  PutItemCommand,
  QueryCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localDynamoClient, startDynalite, type LocalDynamo } from '../../lib/local/dynamodb.js';
import { fastCompare, originalCompare } from '../../lib/local/memory-level-compare.js';
import { Rng } from '../fixtures/masking/corpus.js';

const require = createRequire(import.meta.url);

function random(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}
const sign = (n: number) => Math.sign(n);

describe('the comparator', () => {
  it('gives every pair the sign memory-level gives it (buffers, views, strings)', () => {
    const next = random(7);
    const bytes = (n: number) =>
      Array.from({ length: n }, () => (next() < 0.5 ? 0x61 : Math.floor(next() * 256)));
    let compared = 0;
    for (let i = 0; i < 20_000; i++) {
      // Shared prefixes of every length, so most pairs differ late or only in length.
      const prefix = bytes(Math.floor(next() * 40));
      const a = Buffer.from([...prefix, ...bytes(Math.floor(next() * 4))]);
      const b = next() < 0.1 ? Buffer.from(a) : Buffer.from([...prefix, ...bytes(Math.floor(next() * 4))]);
      expect(sign(fastCompare(a, b))).toBe(sign(originalCompare(a, b)));
      const va = new Uint8Array(a);
      const vb = new Uint8Array(b);
      expect(sign(fastCompare(va, vb))).toBe(sign(originalCompare(va, vb)));
      const sa = a.toString('latin1');
      const sb = b.toString('latin1');
      expect(fastCompare(sa, sb)).toBe(originalCompare(sa, sb));
      compared++;
    }
    for (const [a, b] of [
      [Buffer.alloc(0), Buffer.alloc(0)],
      [Buffer.alloc(0), Buffer.from([0])],
      [Buffer.from([0xff]), Buffer.from([0x00, 0x00])],
      [Buffer.from('a~b'), Buffer.from('a~')],
    ]) {
      expect(sign(fastCompare(a, b))).toBe(sign(originalCompare(a, b)));
      expect(sign(fastCompare(b, a))).toBe(sign(originalCompare(b, a)));
    }
    expect(compared).toBe(20_000);
  });

  it('is the one memory-level loaded, in a twin started the usual way', () => {
    expect(fastCompare.installed).toBe(true);
    const from = { paths: [require.resolve('dynalite')] };
    expect(require(require.resolve('memory-level/lib/compare', from))).toBe(fastCompare);
    expect(require.cache[require.resolve('memory-level', from)]).toBeDefined();
  });
});

describe('dynalite answers in the order it did', () => {
  let dynamo: LocalDynamo;
  let client: DynamoDBClient;
  beforeAll(async () => {
    dynamo = await startDynalite();
    client = localDynamoClient(dynamo.endpoint);
  });
  afterAll(async () => {
    client?.destroy();
    await dynamo?.close();
  });

  it('Query over string and number range keys, ascending and descending', async () => {
    await client.send(
      new CreateTableCommand({
        TableName: 'cmp-order',
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          { AttributeName: 'h', AttributeType: 'S' },
          { AttributeName: 's', AttributeType: 'S' },
          { AttributeName: 'n', AttributeType: 'N' },
        ],
        KeySchema: [
          { AttributeName: 'h', KeyType: 'HASH' },
          { AttributeName: 's', KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: [
          {
            IndexName: 'byN',
            KeySchema: [
              { AttributeName: 'h', KeyType: 'HASH' },
              { AttributeName: 'n', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          },
        ],
      }),
    );
    const strings = ['a', 'aa', 'ab', 'b', 'Z', '~', 'é', '\uffff', '😀', 'a\u0001', 'a\uffff', 'a😀', '日'];
    const numbers = ['-1000', '-1.5', '-1', '-0.001', '0', '0.001', '1', '1.5', '10', '1000', '99999999999'];
    for (const [i, s] of strings.entries()) {
      await client.send(
        new PutItemCommand({
          TableName: 'cmp-order',
          Item: {
            h: { S: 'p' },
            s: { S: s },
            n: { N: numbers[i % numbers.length] + (i >= numbers.length ? '1' : '') },
          },
        }),
      );
    }
    const query = async (index: string | undefined, forward: boolean) =>
      (
        await client.send(
          new QueryCommand({
            TableName: 'cmp-order',
            IndexName: index,
            KeyConditionExpression: 'h = :h',
            ExpressionAttributeValues: { ':h': { S: 'p' } },
            ScanIndexForward: forward,
          }),
        )
      ).Items ?? [];
    // DynamoDB orders strings by their UTF-8 bytes, numbers by value.
    const byBytes = [...strings].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect((await query(undefined, true)).map((i) => i.s.S)).toEqual(byBytes);
    expect((await query(undefined, false)).map((i) => i.s.S)).toEqual([...byBytes].reverse());
    const ns = (await query('byN', true)).map((i) => Number(i.n.N));
    expect(ns).toHaveLength(strings.length);
    expect(ns).toEqual([...ns].sort((x, y) => x - y));
  });
});

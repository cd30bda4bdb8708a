/**
 * The trail's transactions go out through a low-level client in the wire form (marshallPut), not
 * through the document client; the bytes must be exactly what the document client would send.
 */
import { DynamoDBClient, TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { createDocumentClient, lowLevelClient } from '../../lambdas/adapters/dynamodb.js';
import { DynamoTrailStore, marshallPut, wireMarshalling } from '../../lambdas/adapters/trail-store.js';

function capturing(): { client: DynamoDBClient; bodies: string[] } {
  const bodies: string[] = [];
  const client = new DynamoDBClient({
    region: 'us-east-1',
    endpoint: 'http://127.0.0.1:9',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    requestHandler: {
      handle: async (request: { body?: unknown }) => {
        bodies.push(String(request.body));
        return { response: { statusCode: 200, headers: {}, body: Buffer.from('{}') } };
      },
    },
  });
  return { client, bodies };
}

const put = {
  TableName: 'warden-audit',
  Item: {
    sessionId: 's_1',
    seq: 3,
    detail: '{"a":1}',
    nested: { list: [1, 'two', { three: true }, null], empty: {}, gone: undefined },
    big: 2 ** 60,
    when: new (class Stamp {
      readonly at = '2026-12-02';
    })(),
  },
  ConditionExpression: '#lastSeq = :lastSeq',
  ExpressionAttributeNames: { '#lastSeq': 'lastSeq' },
  ExpressionAttributeValues: { ':lastSeq': 2 },
  ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
};

describe('the trail transaction in the wire form', () => {
  it('marshals each Put exactly as the document client does, also after the document client has sent', async () => {
    const viaDoc = capturing();
    const doc = createDocumentClient(viaDoc.client);
    await doc.send(new TransactWriteCommand({ TransactItems: [{ Put: put }], ClientRequestToken: 't' }));
    // The document client has set convertTopLevelContainer in its own options object by now.
    const raw = capturing();
    await raw.client.send(
      new TransactWriteItemsCommand({
        TransactItems: [marshallPut({ Put: put }, wireMarshalling(doc))],
        ClientRequestToken: 't',
      }),
    );
    expect(JSON.parse(raw.bodies[0])).toEqual(JSON.parse(viaDoc.bodies[0]));
    expect(JSON.parse(raw.bodies[0]).TransactItems[0].Put.Item.seq).toEqual({ N: '3' });
  });

  it('appends through a document client that has already sent: each item is its attribute map', async () => {
    const { client, bodies } = capturing();
    const doc = createDocumentClient(client);
    await doc.send(new TransactWriteCommand({ TransactItems: [{ Put: put }] }));
    const store = new DynamoTrailStore({ client: doc, tableName: 'warden-audit', ttlDays: 1 });
    await store.appendWith('s_new', [
      {
        type: 'request_received',
        at: '2026-12-02T00:00:00.000Z',
        requestId: 'r_1',
        principal: 'User::"alice"',
        principalName: 'alice',
        statement: 'SELECT 1',
      },
    ]);
    const items = JSON.parse(bodies[1]).TransactItems.map((t: { Put: { Item: object } }) => t.Put.Item);
    expect(items[0]).toMatchObject({
      sessionId: { S: 's_new' },
      seq: { N: '1' },
      type: { S: 'request_received' },
    });
    expect(items[1]).toMatchObject({ sessionId: { S: 's_new' }, seq: { N: '0' } });
    for (const item of items) expect(item).not.toHaveProperty('M');
  });

  it('sends low-level commands beside a document client built elsewhere through that client', () => {
    const { client } = capturing();
    const doc = createDocumentClient(client);
    expect(lowLevelClient(doc)).toBe(doc);
  });
});

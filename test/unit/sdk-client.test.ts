/**
 * The request path's SDK clients build their user-agent headers once per command and feature set
 * (withMemoizedUserAgent); what goes out must be exactly what the SDK's own middleware writes.
 */
import { DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { ExecuteStatementCommand, RDSDataClient } from '@aws-sdk/client-rds-data';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import {
  requestPathClient,
  withMemoizedUserAgent,
  withoutNoOpLogging,
} from '../../lambdas/adapters/sdk-client.js';

type Sent = Record<string, string>;

function handler(sent: Sent[], body = '{}') {
  return {
    handle: async (request: { headers: Record<string, string> }) => {
      sent.push({ ...request.headers });
      return {
        response: {
          statusCode: 200,
          headers: { 'content-type': 'application/x-amz-json-1.0' },
          body: Buffer.from(body),
        },
      };
    },
  };
}

const common = {
  region: 'us-east-1',
  endpoint: 'http://127.0.0.1:9',
  credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
};

function dynamo(sent: Sent[], extra: object = {}): DynamoDBClient {
  return new DynamoDBClient({ ...common, requestHandler: handler(sent), ...extra });
}

const ua = (h: Sent) => ({ 'user-agent': h['user-agent'], 'x-amz-user-agent': h['x-amz-user-agent'] });

async function sendAll(client: DynamoDBClient | DynamoDBDocumentClient): Promise<void> {
  const c = client as DynamoDBClient;
  await c.send(new GetItemCommand({ TableName: 't', Key: { id: { S: 'a' } } }));
  await c.send(new PutItemCommand({ TableName: 't', Item: { id: { S: 'b' } } }));
  await c.send(new GetItemCommand({ TableName: 't', Key: { id: { S: 'c' } } }));
  await c.send(new PutItemCommand({ TableName: 't', Item: { id: { S: 'd' } } }));
}

describe('withMemoizedUserAgent', () => {
  for (const cacheMiddleware of [false, true]) {
    it(`sends the SDK's own user-agent headers on every call (cacheMiddleware ${cacheMiddleware})`, async () => {
      const stock: Sent[] = [];
      const memo: Sent[] = [];
      await sendAll(withoutNoOpLogging(dynamo(stock, { cacheMiddleware })));
      await sendAll(requestPathClient(dynamo(memo, { cacheMiddleware })));
      expect(memo).toHaveLength(4);
      expect(memo.map(ua)).toEqual(stock.map(ua));
      for (const h of memo) {
        expect(h['user-agent']).toMatch(/aws-sdk-js\/\S+ .*api\/dynamodb#/);
        expect(h['x-amz-user-agent']).toMatch(/^aws-sdk-js\//);
      }
    });
  }

  it('runs the SDK middleware once per command, not once per call', async () => {
    const client = dynamo([]);
    const config = client.config as unknown as { defaultUserAgentProvider: () => Promise<unknown> };
    const provider = config.defaultUserAgentProvider;
    let built = 0;
    config.defaultUserAgentProvider = () => {
      built++;
      return provider();
    };
    await sendAll(requestPathClient(client));
    await sendAll(client);
    expect(built).toBe(2);
  });

  it('keeps apart what differs per command and feature set: the document client marks its calls', async () => {
    const stock: Sent[] = [];
    const memo: Sent[] = [];
    for (const [sent, client] of [
      [stock, withoutNoOpLogging(dynamo(stock))],
      [memo, withMemoizedUserAgent(dynamo(memo))],
    ] as const) {
      const doc = DynamoDBDocumentClient.from(client);
      await client.send(new GetItemCommand({ TableName: 't', Key: { id: { S: 'a' } } }));
      await doc.send(new GetCommand({ TableName: 't', Key: { id: 'b' } }));
      await client.send(new GetItemCommand({ TableName: 't', Key: { id: { S: 'c' } } }));
      await doc.send(new GetCommand({ TableName: 't', Key: { id: 'd' } }));
      expect(sent).toHaveLength(4);
    }
    expect(memo.map(ua)).toEqual(stock.map(ua));
    // The document client's calls carry its feature (DDB_MAPPER, "d"); the low-level ones do not.
    const features = (h: Sent) => /(?:^| )m\/([^ ]*)/.exec(h['user-agent'] ?? '')?.[1]?.split(',') ?? [];
    expect(features(memo[1]!)).toContain('d');
    expect(features(memo[0]!)).not.toContain('d');
    expect(features(memo[3]!)).toContain('d');
    expect(features(memo[2]!)).not.toContain('d');
  });

  it('honours the configured app id and custom user agent like the SDK does', async () => {
    const stock: Sent[] = [];
    const memo: Sent[] = [];
    const extra = { userAgentAppId: 'warden-test', customUserAgent: 'warden/1.0' };
    await sendAll(withoutNoOpLogging(dynamo(stock, extra)));
    await sendAll(requestPathClient(dynamo(memo, extra)));
    expect(memo.map(ua)).toEqual(stock.map(ua));
    expect(memo[3]!['user-agent']).toContain('app/warden-test');
    expect(memo[3]!['x-amz-user-agent']).toContain('warden/1.0');
  });

  it('works for the Data API client with its cached middleware', async () => {
    const body = JSON.stringify({ records: [[{ longValue: 1 }]], numberOfRecordsUpdated: 0 });
    const run = async (wrap: (c: RDSDataClient) => RDSDataClient) => {
      const sent: Sent[] = [];
      const client = wrap(
        new RDSDataClient({
          ...common,
          maxAttempts: 1,
          cacheMiddleware: true,
          requestHandler: handler(sent, body),
        }),
      );
      for (const sql of ['SELECT 1', 'SELECT 2', 'SELECT 3']) {
        const out = await client.send(
          new ExecuteStatementCommand({ resourceArn: 'arn:r', secretArn: 'arn:s', sql }),
        );
        expect(out.records).toEqual([[{ longValue: 1 }]]);
      }
      return sent;
    };
    const stock = await run(withoutNoOpLogging);
    const memo = await run(requestPathClient);
    expect(memo).toHaveLength(3);
    expect(memo.map(ua)).toEqual(stock.map(ua));
    expect(memo[2]!['user-agent']).toContain('api/rds-data#');
  });

  it('keeps the middleware under its own name and step (one user-agent middleware)', () => {
    const stock = withoutNoOpLogging(dynamo([])).middlewareStack.identify();
    const memo = requestPathClient(dynamo([])).middlewareStack.identify();
    expect([...memo].sort()).toEqual([...stock].sort());
    expect(memo.filter((m) => m.startsWith('getUserAgentMiddleware'))).toEqual([
      'getUserAgentMiddleware - build',
    ]);
  });

  it('leaves a client without a user-agent middleware alone', () => {
    const client = dynamo([]);
    client.middlewareStack.remove('getUserAgentMiddleware');
    const before = client.middlewareStack.identify();
    withMemoizedUserAgent(client);
    expect(client.middlewareStack.identify()).toEqual(before);
  });
});

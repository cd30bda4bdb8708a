/**
 * The request path's DynamoDB clients share one HTTP handler, hence one connection pool: the
 * connection the cold start's policy read opens (document client) carries the first request's
 * transactions (low-level client) too. On Lambda each new connection is also a TLS handshake.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { createDocumentClient, lowLevelClient } from '../../lambdas/adapters/dynamodb.js';

let server: Server;
let connections = 0;
const targets: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    targets.push(String(req.headers['x-amz-target']));
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/x-amz-json-1.0');
      res.end('{}');
    });
  });
  server.on('connection', () => (connections += 1));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  vi.stubEnv('AWS_ENDPOINT_URL_DYNAMODB', `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  vi.stubEnv('AWS_REGION', 'us-east-1');
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
});

afterAll(async () => {
  vi.unstubAllEnvs();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

it("sends the document client's reads and the low-level transactions over the same connection", async () => {
  const doc = createDocumentClient();
  const low = lowLevelClient(doc);
  expect(low).not.toBe(doc);
  await doc.send(new GetCommand({ TableName: 'policies', Key: { pk: 'active' } }));
  for (let i = 0; i < 3; i++) {
    await low.send(
      new TransactWriteItemsCommand({
        TransactItems: [{ Put: { TableName: 'requests', Item: { pk: { S: `r${i}` } } } }],
      }),
    );
  }
  expect(targets).toEqual([
    'DynamoDB_20120810.GetItem',
    ...Array(3).fill('DynamoDB_20120810.TransactWriteItems'),
  ]);
  expect(connections).toBe(1);
});

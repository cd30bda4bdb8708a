/**
 * How often the executor may send one governed AWS call: a read may go again after a 5xx or a
 * dropped connection (the SDK's retry, two attempts in all); a write goes once, since a write whose
 * answer was lost may have run and a second send could run it twice. The real SDK client against a
 * local service that counts what reaches it, and the twin's STS for the session.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsExecutor } from '../../lambdas/adapters/aws-executor.js';
import type { AwsCall } from '../../lambdas/core/aws-requests.js';
import { startLocalSts, type LocalSts } from '../../lib/local/sts.js';

const ROLE = 'arn:aws:iam::123456789012:role/warden-demo-target';
let sts: LocalSts;
let service: Server;
let url: string;
/** What the service does with each request: answer 500, drop the connection, or throttle the first. */
let mode: 'error' | 'drop' | 'throttle-once' = 'error';
const arrived: string[] = [];

beforeAll(async () => {
  sts = await startLocalSts({ roles: [{ roleArn: ROLE, account: '123456789012', services: ['dynamodb'] }] });
  service = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      arrived.push(String(req.headers['x-amz-target']));
      if (mode === 'drop') {
        req.socket.destroy();
        return;
      }
      if (mode === 'throttle-once' && arrived.length > 1) {
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
        res.end('{}');
        return;
      }
      if (mode === 'throttle-once') {
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(
          JSON.stringify({
            __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
            message: 'slow down',
          }),
        );
        return;
      }
      res.writeHead(500, { 'content-type': 'application/x-amz-json-1.0' });
      res.end(
        JSON.stringify({ __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError', message: 'x' }),
      );
    });
  });
  await new Promise<void>((r) => service.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(service.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((r) => service.close(() => r()));
  await sts.close();
});

const executor = () =>
  createAwsExecutor({
    env: { WARDEN_AWS_ENDPOINT_URL_DYNAMODB: url },
    sts: new STSClient({
      endpoint: sts.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'warden', secretAccessKey: 'warden' },
    }),
  });

function call(action: string, input: Record<string, unknown>, retry: boolean): AwsCall {
  return {
    roleArn: ROLE,
    region: 'us-east-1',
    service: 'dynamodb',
    action,
    input,
    sessionPolicy: JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: `dynamodb:${action}`, Resource: '*' }],
    }),
    durationSeconds: 900,
    identity: {
      roleSessionName: 'alice@r_test',
      sourceIdentity: 'user.alice',
      tags: [{ Key: 'warden:request-id', Value: 'r_test' }],
    },
    maxBodyBytes: 1024,
    retry,
  };
}

async function failsWith5xx(sent: Promise<unknown>): Promise<void> {
  const error = (await sent.then(
    () => undefined,
    (e: unknown) => e,
  )) as { statusCode?: number } | undefined;
  expect(error?.statusCode).toBeGreaterThanOrEqual(500);
}

const put = { TableName: 'inventory', Item: { sku: { S: 'WID-001' }, quantity: { N: '1' } } };
const get = { TableName: 'inventory', Key: { sku: { S: 'WID-001' } } };

describe.each(['error', 'drop'] as const)('the service answers with %s', (how) => {
  it('a write is sent once: its answer was lost, so it may have run', async () => {
    mode = how;
    arrived.length = 0;
    await failsWith5xx(executor().call(call('PutItem', put, false)));
    expect(arrived).toEqual(['DynamoDB_20120810.PutItem']);
  });

  it('a read may be sent a second time', async () => {
    mode = how;
    arrived.length = 0;
    await failsWith5xx(executor().call(call('GetItem', get, true)));
    expect(arrived).toEqual(['DynamoDB_20120810.GetItem', 'DynamoDB_20120810.GetItem']);
  });
});

describe('the service refuses a write for its rate', () => {
  it('sends it once more: a throttled call did not run', async () => {
    mode = 'throttle-once';
    arrived.length = 0;
    const out = await executor().call(call('PutItem', put, false));
    expect(out.output).toEqual({});
    expect(arrived).toEqual(['DynamoDB_20120810.PutItem', 'DynamoDB_20120810.PutItem']);
  });
});

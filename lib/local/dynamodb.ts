/**
 * The local twin's DynamoDB: dynalite, an embedded implementation of the DynamoDB wire protocol,
 * with tables created from the same definitions the CDK stack uses (lib/tables.ts).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
  type CreateTableCommandInput,
} from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import type { TableDefinition } from '../tables.js';

/** CreateTable input for a shared definition: on-demand, like the stack. */
export function createTableInput(def: TableDefinition, tableName: string): CreateTableCommandInput {
  const attributes = new Map<string, string>();
  const add = (k?: { name: string; type: string }) => {
    if (k) attributes.set(k.name, k.type);
  };
  add(def.partitionKey);
  add(def.sortKey);
  for (const gsi of def.globalSecondaryIndexes ?? []) {
    add(gsi.partitionKey);
    add(gsi.sortKey);
  }
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [...attributes].map(([AttributeName, AttributeType]) => ({
      AttributeName,
      AttributeType: AttributeType as 'S' | 'N',
    })),
    KeySchema: [
      { AttributeName: def.partitionKey.name, KeyType: 'HASH' },
      ...(def.sortKey ? [{ AttributeName: def.sortKey.name, KeyType: 'RANGE' as const }] : []),
    ],
    ...(def.globalSecondaryIndexes?.length
      ? {
          GlobalSecondaryIndexes: def.globalSecondaryIndexes.map((gsi) => ({
            IndexName: gsi.indexName,
            KeySchema: [
              { AttributeName: gsi.partitionKey.name, KeyType: 'HASH' as const },
              ...(gsi.sortKey ? [{ AttributeName: gsi.sortKey.name, KeyType: 'RANGE' as const }] : []),
            ],
            Projection: { ProjectionType: 'ALL' as const },
          })),
        }
      : {}),
  };
}

/** Creates each table (if absent) and waits until it is ACTIVE. */
export async function createTables(
  client: DynamoDBClient,
  defs: readonly TableDefinition[],
  nameOf: (def: TableDefinition) => string,
): Promise<void> {
  for (const def of defs) {
    const TableName = nameOf(def);
    try {
      await client.send(new CreateTableCommand(createTableInput(def, TableName)));
    } catch (error) {
      if (!(error instanceof ResourceInUseException)) throw error;
    }
    for (let i = 0; i < 100; i++) {
      const d = await client.send(new DescribeTableCommand({ TableName }));
      if (d.Table?.TableStatus === 'ACTIVE') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    if (def.timeToLiveAttribute) {
      try {
        await client.send(
          new UpdateTimeToLiveCommand({
            TableName,
            TimeToLiveSpecification: { AttributeName: def.timeToLiveAttribute, Enabled: true },
          }),
        );
      } catch {
        // dynalite does not implement TTL; expiry is also enforced by readers (see grants/approvals).
      }
    }
  }
}

export interface LocalDynamo {
  readonly endpoint: string;
  close(): Promise<void>;
}

export async function startDynalite(host = '127.0.0.1', port = 0): Promise<LocalDynamo> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 }) as Server;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const { port: actual } = server.address() as AddressInfo;
  return {
    endpoint: `http://${host}:${actual}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export function localDynamoClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
}

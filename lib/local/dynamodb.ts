/**
 * The local twin's DynamoDB: dynalite, an embedded implementation of the DynamoDB wire protocol,
 * with tables created from the same definitions the CDK stack uses (lib/tables.ts).
 */
// First: memory-level must find its comparator replaced when dynalite loads it.
import './memory-level-compare.js';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ListTablesCommand,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
  type CreateTableCommandInput,
} from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import type { TableDefinition } from '../tables.js';
import { dynaliteDb, withTransactions, type DynaliteStore } from './dynalite-transactions.js';
import { keepAliveWithMargin } from './listen.js';

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

/** Creates each table that is absent (an on-disk store keeps the others) and waits until it is ACTIVE. */
export async function createTables(
  client: DynamoDBClient,
  defs: readonly TableDefinition[],
  nameOf: (def: TableDefinition) => string,
): Promise<void> {
  const existing = new Set<string>();
  let start: string | undefined;
  do {
    const page = await client.send(new ListTablesCommand({ ExclusiveStartTableName: start }));
    for (const name of page.TableNames ?? []) existing.add(name);
    start = page.LastEvaluatedTableName;
  } while (start);
  for (const def of defs) {
    const TableName = nameOf(def);
    if (existing.has(TableName)) continue;
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

/** One data-plane call as the store saw it. */
export interface DynamoCall {
  readonly operation: string;
  readonly tables: readonly string[];
  readonly body: string;
}

export interface LocalDynamo {
  readonly endpoint: string;
  /** Every call from now on is passed to `listener` (store-call counting in tests and benches). */
  onCall(listener: (call: DynamoCall) => void): () => void;
  close(): Promise<void>;
}

/** dynalite with TransactWriteItems (lib/local/dynalite-transactions.ts). */
function dynaliteServer(path: string | undefined): Server {
  // dynalite keeps its store private; capture it as it is created so transactions use the same
  // items, indexes and per-item locks as dynalite's own PutItem and DeleteItem.
  const create = dynaliteDb.create;
  let store: DynaliteStore | undefined;
  dynaliteDb.create = (options: unknown) => (store = create(options));
  let server: Server;
  try {
    server = dynalite({
      createTableMs: 0,
      deleteTableMs: 0,
      updateTableMs: 0,
      ...(path ? { path } : {}),
    }) as Server;
  } finally {
    dynaliteDb.create = create;
  }
  if (!store) throw new Error('dynalite did not create its store');
  return Object.assign(server, { wardenStore: store });
}

export interface DynaliteOptions {
  /** @default 127.0.0.1 */
  readonly host?: string;
  /** @default 0 (any free port) */
  readonly port?: number;
  /**
   * A directory for dynalite's LevelDB store (classic-level, prebuilt binaries): the tables and
   * their items survive a restart. @default in memory
   */
  readonly path?: string;
  /**
   * Sees the calls in place of `onCall`'s listeners, `onCall` before the call is answered (the
   * worker thread's bridge to the main thread, lib/local/dynamo-thread.ts).
   */
  readonly observer?: { observed(): boolean; onCall(call: DynamoCall): void };
}

export async function startDynalite(options: DynaliteOptions = {}): Promise<LocalDynamo> {
  const { host = '127.0.0.1', port = 0, path, observer } = options;
  const server = dynaliteServer(path);
  const store = (server as Server & { wardenStore: DynaliteStore }).wardenStore;
  const listeners = new Set<(call: DynamoCall) => void>();
  const [original] = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  server.removeAllListeners('request');
  server.on(
    'request',
    withTransactions(
      store,
      original,
      observer ?? {
        observed: () => listeners.size > 0,
        onCall: (call) => listeners.forEach((l) => l(call)),
      },
    ),
  );
  // After the swap above, which takes dynalite's own (first) request listener.
  keepAliveWithMargin(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const { port: actual } = server.address() as AddressInfo;
  return {
    endpoint: `http://${host}:${actual}`,
    onCall(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
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

/**
 * The DynamoDB client, created once per container and reused. Endpoints come from the standard
 * AWS_ENDPOINT_URL_DYNAMODB variable, which is how the local twin points it at its embedded store.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { tableEnvVar, type TableDefinition } from '../../lib/tables.js';
import { requestPathClient, withPlainJsonBodies } from './sdk-client.js';

/**
 * Low-level clients for the request path's own writes, by the document client they stand beside.
 * They cache their resolved middleware per command class (`cacheMiddleware`, ~0.1 ms of CPU per
 * call saved), which the document client cannot do: its commands' handlers hold their own input.
 */
const lowLevel = new WeakMap<DynamoDBDocumentClient, DynamoDBClient>();

export function createDocumentClient(client?: DynamoDBClient): DynamoDBDocumentClient {
  const base = client ?? requestPathClient(new DynamoDBClient({ maxAttempts: 3 }));
  const doc = DynamoDBDocumentClient.from(base, {
    // A result can hold an int8 past 2^53 (the SDK has already read it as the nearest double);
    // storing that same double keeps the record's outcome, where refusing it left it `running`.
    marshallOptions: {
      removeUndefinedValues: true,
      convertClassInstanceToMap: true,
      allowImpreciseNumbers: true,
    },
    // …and reads it back as that number (not a BigInt, which JSON cannot answer).
    unmarshallOptions: { wrapNumbers: (value: string) => Number(value) },
  });
  if (!client) {
    // Same HTTP handler, so the same connections: the one the cold start's policy read opened
    // serves the first request's writes (on AWS, one TLS handshake fewer on that request).
    const low = requestPathClient(
      new DynamoDBClient({
        maxAttempts: 3,
        cacheMiddleware: true,
        requestHandler: base.config.requestHandler,
      }),
    );
    // The request path's transactions are marshalled already: their items go out as JSON text.
    lowLevel.set(doc, withPlainJsonBodies(low, { TransactWriteItemsCommand: ['TransactItems'] }));
  }
  return doc;
}

/**
 * The client to send low-level commands (marshalled input) with beside `doc`: the cached-middleware
 * one created with it, or `doc` itself for a document client built elsewhere (tests hand in their
 * own), which sends low-level commands just as well.
 */
export function lowLevelClient(doc: DynamoDBDocumentClient): DynamoDBClient {
  // A document client is a Client over its DynamoDBClient's config and middleware stack: a
  // low-level command sent through it runs exactly as on that client.
  return lowLevel.get(doc) ?? (doc as unknown as DynamoDBClient);
}

let shared: DynamoDBDocumentClient | undefined;
export function defaultDocumentClient(): DynamoDBDocumentClient {
  shared ??= createDocumentClient();
  return shared;
}

/** The physical table name for a definition, from its env var; fails fast when unset. */
export function tableName(def: TableDefinition, env: NodeJS.ProcessEnv = process.env): string {
  const name = env[tableEnvVar(def)];
  if (!name) throw new Error(`${tableEnvVar(def)} is not set`);
  return name;
}

export function isConditionalCheckFailed(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    ((error as { name?: string }).name === 'ConditionalCheckFailedException' ||
      (error as { name?: string }).name === 'TransactionCanceledException')
  );
}

/** RequestStore and PolicyStore on DynamoDB. */
import { GetCommand, PutCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ConditionFailedError } from '../core/errors.js';
import type { PolicyStore, RequestStore, StoredPolicySet } from '../core/ports.js';
import type { RequestRecord, RequestStatus } from '../core/types.js';
import { PoliciesTable, RequestsTable } from '../../lib/tables.js';
import { defaultDocumentClient, isConditionalCheckFailed, tableName } from './dynamodb.js';

export class DynamoRequestStore implements RequestStore {
  private readonly table: string;
  private readonly doc: DynamoDBDocumentClient;

  constructor(options: { client?: DynamoDBDocumentClient; tableName?: string } = {}) {
    this.doc = options.client ?? defaultDocumentClient();
    this.table = options.tableName ?? tableName(RequestsTable);
  }

  async create(record: RequestRecord): Promise<void> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: record,
          ConditionExpression: 'attribute_not_exists(#id)',
          ExpressionAttributeNames: { '#id': 'id' },
        }),
      );
    } catch (error) {
      if (isConditionalCheckFailed(error))
        throw new ConditionFailedError(`request ${record.id} exists`, { cause: error });
      throw error;
    }
  }

  async get(id: string): Promise<RequestRecord | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { id }, ConsistentRead: true }),
    );
    return out.Item as RequestRecord | undefined;
  }

  async update(
    record: RequestRecord,
    expectedVersion: number,
    expectedStatuses?: readonly RequestStatus[],
  ): Promise<RequestRecord> {
    const names: Record<string, string> = { '#v': 'version' };
    const values: Record<string, unknown> = { ':v': expectedVersion };
    let condition = '#v = :v';
    if (expectedStatuses && expectedStatuses.length > 0) {
      names['#s'] = 'status';
      const keys = expectedStatuses.map((s, i) => {
        values[`:s${i}`] = s;
        return `:s${i}`;
      });
      condition += ` AND #s IN (${keys.join(', ')})`;
    }
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: record,
          ConditionExpression: condition,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
      return record;
    } catch (error) {
      if (isConditionalCheckFailed(error)) {
        throw new ConditionFailedError(`request ${record.id} changed concurrently`, { cause: error });
      }
      throw error;
    }
  }

  async listByPrincipal(principal: string, limit = 50): Promise<RequestRecord[]> {
    const out = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: 'byPrincipal',
        KeyConditionExpression: '#p = :p',
        ExpressionAttributeNames: { '#p': 'principal' },
        ExpressionAttributeValues: { ':p': principal },
        ScanIndexForward: false,
        Limit: limit,
      }),
    );
    return (out.Items ?? []) as RequestRecord[];
  }

  async listByStatus(status: RequestStatus, limit = 50): Promise<RequestRecord[]> {
    const out = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: 'byStatus',
        KeyConditionExpression: '#s = :s',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':s': status },
        ScanIndexForward: false,
        Limit: limit,
      }),
    );
    return (out.Items ?? []) as RequestRecord[];
  }
}

const ACTIVE = 'active';

export class DynamoPolicyStore implements PolicyStore {
  private readonly table: string;
  private readonly doc: DynamoDBDocumentClient;

  constructor(options: { client?: DynamoDBDocumentClient; tableName?: string } = {}) {
    this.doc = options.client ?? defaultDocumentClient();
    this.table = options.tableName ?? tableName(PoliciesTable);
  }

  async getActive(): Promise<StoredPolicySet | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { id: ACTIVE }, ConsistentRead: true }),
    );
    if (!out.Item) return undefined;
    const { version, policies, updatedAt, updatedBy } = out.Item as StoredPolicySet & { id: string };
    return { version, policies, updatedAt, updatedBy };
  }

  async putActive(set: StoredPolicySet): Promise<void> {
    // Keep the history beside the active pointer, so a bad push can be rolled back by version.
    await this.doc.send(
      new PutCommand({ TableName: this.table, Item: { id: `version#${set.version}`, ...set } }),
    );
    await this.doc.send(new PutCommand({ TableName: this.table, Item: { id: ACTIVE, ...set } }));
  }
}

/**
 * Just-in-time grants on DynamoDB (Grants table: principal + grantId). Expiry is checked on every
 * read, so a grant stops counting at its `expiresAt` even before DynamoDB's TTL deletes the item.
 */
import {
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { grantPrincipalOf, isActive, type Grant, type GrantStore } from '../core/grants.js';
import { principalKey, type Principal } from '../core/types.js';
import { GrantsTable } from '../../lib/tables.js';
import { defaultDocumentClient, isConditionalCheckFailed, tableName } from './dynamodb.js';

/** Expired grants stay listable for a week, then TTL removes them (the trail keeps the history). */
const TTL_GRACE_SECONDS = 7 * 24 * 3600;

export class DynamoGrantStore implements GrantStore {
  private readonly table: string;
  private readonly doc: DynamoDBDocumentClient;

  constructor(options: { client?: DynamoDBDocumentClient; tableName?: string } = {}) {
    this.doc = options.client ?? defaultDocumentClient();
    this.table = options.tableName ?? tableName(GrantsTable);
  }

  async create(grant: Grant): Promise<void> {
    await this.doc.send(
      new PutCommand({
        TableName: this.table,
        Item: {
          ...grant,
          expiresAtEpoch: Math.floor(Date.parse(grant.expiresAt) / 1000) + TTL_GRACE_SECONDS,
        },
        ConditionExpression: 'attribute_not_exists(grantId)',
      }),
    );
  }

  async get(grantId: string): Promise<Grant | undefined> {
    const principal = grantPrincipalOf(grantId);
    if (!principal) return undefined;
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { principal, grantId }, ConsistentRead: true }),
    );
    return out.Item ? strip(out.Item) : undefined;
  }

  async listByPrincipal(principal: string): Promise<Grant[]> {
    const out = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'principal = :p',
        ExpressionAttributeValues: { ':p': principal },
        ConsistentRead: true,
      }),
    );
    return (out.Items ?? []).map(strip);
  }

  async revoke(grantId: string, by: string, at: string): Promise<Grant | undefined> {
    const principal = grantPrincipalOf(grantId);
    if (!principal) return undefined;
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { principal, grantId },
          UpdateExpression: 'SET revokedAt = :at, revokedBy = :by',
          ConditionExpression: 'attribute_exists(grantId) AND attribute_not_exists(revokedAt)',
          ExpressionAttributeValues: { ':at': at, ':by': by },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return out.Attributes ? strip(out.Attributes) : undefined;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return this.get(grantId);
      throw error;
    }
  }

  async activeGrants(principal: Principal, target: string, now: Date): Promise<string[]> {
    const grants = await this.listByPrincipal(principalKey(principal));
    return [...new Set(grants.filter((g) => g.target === target && isActive(g, now)).map((g) => g.action))];
  }
}

function strip(item: Record<string, unknown>): Grant {
  const { expiresAtEpoch: _ttl, ...grant } = item;
  void _ttl;
  return grant as unknown as Grant;
}

/**
 * Pinned upstream tool definitions on DynamoDB (ToolPins table: target + tool). The first pin of
 * a tool is a conditional put, so two containers seeing a tool at once keep one pin; accepting a
 * changed definition is conditional on the pin the admin reviewed.
 */
import {
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import type { ToolPin, ToolPinStore } from '../core/mcp-upstream.js';
import { ConditionFailedError } from '../core/errors.js';
import { ToolPinsTable } from '../../lib/tables.js';
import { defaultDocumentClient, isConditionalCheckFailed, tableName } from './dynamodb.js';

export class DynamoToolPinStore implements ToolPinStore {
  private readonly table: string;
  private readonly doc: DynamoDBDocumentClient;

  constructor(options: { client?: DynamoDBDocumentClient; tableName?: string } = {}) {
    this.doc = options.client ?? defaultDocumentClient();
    this.table = options.tableName ?? tableName(ToolPinsTable);
  }

  async get(target: string, tool: string): Promise<ToolPin | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { target, tool }, ConsistentRead: true }),
    );
    return out.Item as ToolPin | undefined;
  }

  async list(target: string): Promise<ToolPin[]> {
    const out: ToolPin[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: '#t = :t',
          ExpressionAttributeNames: { '#t': 'target' },
          ExpressionAttributeValues: { ':t': target },
          ExclusiveStartKey: start,
        }),
      );
      out.push(...((page.Items ?? []) as ToolPin[]));
      start = page.LastEvaluatedKey;
    } while (start);
    return out;
  }

  async pinIfAbsent(pin: ToolPin): Promise<ToolPin> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: pin,
          ConditionExpression: 'attribute_not_exists(#tool)',
          ExpressionAttributeNames: { '#tool': 'tool' },
        }),
      );
      return pin;
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
      const existing = await this.get(pin.target, pin.tool);
      if (!existing) throw error;
      return existing;
    }
  }

  async noteChanged(target: string, tool: string, hash: string, at: string): Promise<void> {
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { target, tool },
        UpdateExpression: 'SET changedHash = :h, changedSeenAt = :at',
        ConditionExpression: 'attribute_exists(#tool)',
        ExpressionAttributeNames: { '#tool': 'tool' },
        ExpressionAttributeValues: { ':h': hash, ':at': at },
      }),
    );
  }

  async accept(pin: ToolPin, expectedHash: string): Promise<void> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: pin,
          ConditionExpression: '#hash = :expected',
          ExpressionAttributeNames: { '#hash': 'hash' },
          ExpressionAttributeValues: { ':expected': expectedHash },
        }),
      );
    } catch (error) {
      if (isConditionalCheckFailed(error))
        throw new ConditionFailedError('the pin changed since it was read', { cause: error });
      throw error;
    }
  }
}

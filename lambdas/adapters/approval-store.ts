/** The Approvals table: opaque approval id → the workflow's task token, which never leaves the server. */
import { PutCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ApprovalHandle, ApprovalHandleStore } from '../core/approvals.js';
import { ApprovalsTable } from '../../lib/tables.js';
import { defaultDocumentClient, tableName } from './dynamodb.js';

/** Handles outlive their window by a day, so a late click still finds (and is refused by) the record. */
const TTL_GRACE_SECONDS = 24 * 3600;

export class DynamoApprovalHandleStore implements ApprovalHandleStore {
  private readonly table: string;
  private readonly doc: DynamoDBDocumentClient;

  constructor(options: { client?: DynamoDBDocumentClient; tableName?: string } = {}) {
    this.doc = options.client ?? defaultDocumentClient();
    this.table = options.tableName ?? tableName(ApprovalsTable);
  }

  async put(handle: ApprovalHandle): Promise<void> {
    await this.doc.send(
      new PutCommand({
        TableName: this.table,
        Item: {
          ...handle,
          expiresAtEpoch: Math.floor(Date.parse(handle.expiresAt) / 1000) + TTL_GRACE_SECONDS,
        },
        ConditionExpression: 'attribute_not_exists(approvalId)',
      }),
    );
  }

  async byRequest(requestId: string): Promise<ApprovalHandle | undefined> {
    const out = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: 'byRequest',
        KeyConditionExpression: 'requestId = :r',
        ExpressionAttributeValues: { ':r': requestId },
      }),
    );
    const items = (out.Items ?? []) as (ApprovalHandle & { expiresAtEpoch?: number })[];
    if (items.length === 0) return undefined;
    // A retried Notify stores a second handle; the newest token is the one the workflow waits on.
    const newest = items.reduce((a, b) => (a.createdAt >= b.createdAt ? a : b));
    const { approvalId, taskToken, createdAt, expiresAt } = newest;
    return { approvalId, requestId, taskToken, createdAt, expiresAt };
  }
}

/**
 * RequestStore and PolicyStore on DynamoDB.
 *
 * A record written with trail events goes into the same TransactWriteItems as the events and their
 * session head (DynamoTrailStore.appendWith): the request path's one write before execution and
 * one after, each a single round trip, and never a record without its events or the reverse.
 */
import {
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { ConditionFailedError } from '../core/errors.js';
import { secondLayer } from '../core/masking/second-layer.js';
import { SEALED_STATUSES } from '../core/sealing.js';
import type {
  PendingPage,
  PendingPosition,
  PolicyStore,
  RequestStore,
  StoredPolicySet,
} from '../core/ports.js';
import type { TrailEvent } from '../core/trail.js';
import type { RequestRecord, RequestStatus } from '../core/types.js';
import {
  PENDING_INDEX,
  PENDING_INDEX_PARTITION,
  PENDING_PARTITION_VALUE,
  PoliciesTable,
  RequestsTable,
} from '../../lib/tables.js';
import { defaultDocumentClient, isConditionalCheckFailed, tableName } from './dynamodb.js';
import type { CompanionPut, DynamoTrailStore } from './trail-store.js';

/**
 * The stored item: the record plus the key of the sparse pending index, present only while the
 * request waits for approval (so only those are written to the index, and listing them is exact).
 */
const PENDING_KEY = PENDING_INDEX_PARTITION.name;

function toItem(record: RequestRecord): Record<string, unknown> {
  const { [PENDING_KEY]: _stale, sealed, ...rest } = record as RequestRecord & Record<string, unknown>;
  // The detectors over everything kept (the sealed form is ciphertext, and must stay byte for byte).
  const shown = secondLayer(rest);
  // The sealed exact form is kept only while the request may still run; decided, it is dropped.
  const kept = sealed && SEALED_STATUSES.has(record.status) ? { ...shown, sealed } : shown;
  return record.status === 'pending_approval' ? { ...kept, [PENDING_KEY]: PENDING_PARTITION_VALUE } : kept;
}

function fromItem(item: Record<string, unknown>): RequestRecord {
  const { [PENDING_KEY]: _index, ...record } = item;
  return record as unknown as RequestRecord;
}

export class DynamoRequestStore implements RequestStore {
  private readonly table: string;
  private readonly doc: DynamoDBDocumentClient;
  private readonly trail?: DynamoTrailStore;

  constructor(
    options: { client?: DynamoDBDocumentClient; tableName?: string; trail?: DynamoTrailStore } = {},
  ) {
    this.doc = options.client ?? defaultDocumentClient();
    this.table = options.tableName ?? tableName(RequestsTable);
    this.trail = options.trail;
  }

  private trailFor(events: readonly TrailEvent[] | undefined): DynamoTrailStore | undefined {
    if (!events || events.length === 0) return undefined;
    if (!this.trail) throw new Error('this request store was built without a trail store');
    return this.trail;
  }

  async create(record: RequestRecord, events?: readonly TrailEvent[]): Promise<void> {
    const trail = this.trailFor(events);
    if (trail) {
      await trail.appendWith(record.sessionId, events ?? [], {
        TableName: this.table,
        Item: toItem(record),
        ConditionExpression: 'attribute_not_exists(#id)',
        ExpressionAttributeNames: { '#id': 'id' },
        onConditionFailed: (cause) => new ConditionFailedError(`request ${record.id} exists`, { cause }),
      });
      return;
    }
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: toItem(record),
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
    return out.Item ? fromItem(out.Item) : undefined;
  }

  async update(
    record: RequestRecord,
    expectedVersion: number,
    expectedStatuses?: readonly RequestStatus[],
    events?: readonly TrailEvent[],
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
    const trail = this.trailFor(events);
    if (trail) {
      await trail.appendWith(record.sessionId, events ?? [], {
        TableName: this.table,
        Item: toItem(record),
        ConditionExpression: condition,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        onConditionFailed: (cause) =>
          new ConditionFailedError(`request ${record.id} changed concurrently`, { cause }),
      });
      return record;
    }
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: toItem(record),
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
    return (out.Items ?? []).map(fromItem);
  }

  /**
   * Requests waiting for approval, newest first, from the sparse `pending` index (only pending
   * records carry its key). The status is checked again on the item: the index is eventually
   * consistent, so a request decided a moment ago may still be listed there.
   */
  async listPendingPage(options: { limit: number; after?: PendingPosition }): Promise<PendingPage> {
    const { limit, after } = options;
    const out = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: PENDING_INDEX,
        KeyConditionExpression: '#k = :k',
        ExpressionAttributeNames: { '#k': PENDING_INDEX_PARTITION.name },
        ExpressionAttributeValues: { ':k': PENDING_PARTITION_VALUE },
        ScanIndexForward: false,
        Limit: limit,
        ...(after
          ? {
              ExclusiveStartKey: {
                id: after.id,
                createdAt: after.createdAt,
                [PENDING_INDEX_PARTITION.name]: PENDING_PARTITION_VALUE,
              },
            }
          : {}),
      }),
    );
    const last = out.LastEvaluatedKey;
    const next =
      last && typeof last.id === 'string' && typeof last.createdAt === 'string'
        ? { id: last.id, createdAt: last.createdAt }
        : undefined;
    return {
      records: (out.Items ?? []).map(fromItem).filter((r) => r.status === 'pending_approval'),
      ...(next ? { next } : {}),
    };
  }

  /** The first `limit` requests waiting for approval, newest first. */
  async listPending(limit = 50): Promise<RequestRecord[]> {
    return (await this.listPendingPage({ limit })).records;
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
    const { version, policies, updatedAt, updatedBy, signature } = out.Item as StoredPolicySet & {
      id: string;
    };
    return { version, policies, updatedAt, updatedBy, ...(signature === undefined ? {} : { signature }) };
  }

  /**
   * `policy push`: the set's history entry (a version is written once), then — in ONE transaction —
   * the active pointer, conditional on `expectedVersion` (the version the push is based on; `null`:
   * none active), and the `policy_pushed` trail events: the set is never active unrecorded, and
   * nothing is recorded for a push that lost. Throws ConditionFailedError when the active set is no
   * longer `expectedVersion`.
   */
  async pushWithTrail(
    set: StoredPolicySet,
    expectedVersion: string | null,
    trail: {
      appendWith(sessionId: string, events: readonly TrailEvent[], companion?: CompanionPut): Promise<void>;
    },
    sessionId: string,
    events: readonly TrailEvent[],
  ): Promise<void> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: { id: `version#${set.version}`, ...set },
          ConditionExpression: 'attribute_not_exists(id)',
        }),
      );
    } catch (error) {
      if (isConditionalCheckFailed(error))
        throw new ConditionFailedError(`policy version ${set.version} exists`, { cause: error });
      throw error;
    }
    await trail.appendWith(sessionId, events, {
      TableName: this.table,
      Item: { id: ACTIVE, ...set },
      ...(expectedVersion === null
        ? { ConditionExpression: 'attribute_not_exists(id)' }
        : {
            ConditionExpression: 'version = :expected',
            ExpressionAttributeValues: { ':expected': expectedVersion },
          }),
      onConditionFailed: (cause) =>
        new ConditionFailedError('the active policy set changed since it was read', { cause }),
    });
  }

  async putActive(set: StoredPolicySet, options: { expectedVersion?: string | null } = {}): Promise<void> {
    const expected = options.expectedVersion;
    const active =
      expected === undefined
        ? {}
        : expected === null
          ? { ConditionExpression: 'attribute_not_exists(id)' }
          : {
              ConditionExpression: 'version = :expected',
              ExpressionAttributeValues: { ':expected': expected },
            };
    try {
      // One transaction: the history entry (a version is written once, so a bad push can be rolled
      // back by version) and the active pointer, conditional on the version the pusher started from.
      await this.doc.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.table,
                Item: { id: `version#${set.version}`, ...set },
                ConditionExpression: 'attribute_not_exists(id)',
              },
            },
            { Put: { TableName: this.table, Item: { id: ACTIVE, ...set }, ...active } },
          ],
        }),
      );
    } catch (error) {
      if (isConditionalCheckFailed(error))
        throw new ConditionFailedError('the active policy set changed since it was read', { cause: error });
      throw error;
    }
  }
}

/**
 * The one source of truth for Warden's DynamoDB tables: keys, indexes and TTL.
 * The CDK stack (lib/constructs/tables.ts) and the local twin (lib/local/dynamodb.ts)
 * both build their tables from these definitions, so the two worlds cannot drift.
 * Plain data, no CDK import: the Lambda adapters read the attribute names from here too.
 */
export type AttributeType = 'S' | 'N';

export interface KeyDefinition {
  readonly name: string;
  readonly type: AttributeType;
}

export interface IndexDefinition {
  readonly indexName: string;
  readonly partitionKey: KeyDefinition;
  readonly sortKey?: KeyDefinition;
}

export interface TableDefinition {
  /** Logical name: the construct id in CDK and the env var suffix (`TABLE_<NAME>`). */
  readonly logicalName: string;
  readonly partitionKey: KeyDefinition;
  readonly sortKey?: KeyDefinition;
  readonly globalSecondaryIndexes?: readonly IndexDefinition[];
  /** Attribute holding an epoch-seconds expiry; DynamoDB deletes the item after it. */
  readonly timeToLiveAttribute?: string;
}

/**
 * The sparse index of requests waiting for approval: only a record whose status is
 * `pending_approval` carries its partition key (a constant), so no other request writes to it
 * and `GET /v1/approvals` reads exactly the waiting ones, newest first.
 */
export const PENDING_INDEX = 'pending';
export const PENDING_INDEX_PARTITION: KeyDefinition = { name: 'pendingApproval', type: 'S' };
export const PENDING_PARTITION_VALUE = 'pending';

/** Every governed request: its statement, classification, decision, lifecycle and masked result. */
export const RequestsTable: TableDefinition = {
  logicalName: 'Requests',
  partitionKey: { name: 'id', type: 'S' },
  globalSecondaryIndexes: [
    {
      indexName: 'byPrincipal',
      partitionKey: { name: 'principal', type: 'S' },
      sortKey: { name: 'createdAt', type: 'S' },
    },
    {
      indexName: PENDING_INDEX,
      partitionKey: PENDING_INDEX_PARTITION,
      sortKey: { name: 'createdAt', type: 'S' },
    },
  ],
};

/** Approval handles: opaque id → Step Functions task token (never leaves the server). */
export const ApprovalsTable: TableDefinition = {
  logicalName: 'Approvals',
  partitionKey: { name: 'approvalId', type: 'S' },
  globalSecondaryIndexes: [{ indexName: 'byRequest', partitionKey: { name: 'requestId', type: 'S' } }],
  timeToLiveAttribute: 'expiresAtEpoch',
};

/** Just-in-time grants; they expire on time even if nothing cleans them up. */
export const GrantsTable: TableDefinition = {
  logicalName: 'Grants',
  partitionKey: { name: 'principal', type: 'S' },
  sortKey: { name: 'grantId', type: 'S' },
  timeToLiveAttribute: 'expiresAtEpoch',
};

/** The session trail: ordered, hash-chained events per session. */
export const AuditTable: TableDefinition = {
  logicalName: 'Audit',
  partitionKey: { name: 'sessionId', type: 'S' },
  sortKey: { name: 'seq', type: 'N' },
  globalSecondaryIndexes: [
    {
      indexName: 'byRequest',
      partitionKey: { name: 'requestId', type: 'S' },
      sortKey: { name: 'seq', type: 'N' },
    },
    // Sparse: only session heads (seq 0) carry sessionDay, so auditors list sessions without a scan.
    {
      indexName: 'bySessionDay',
      partitionKey: { name: 'sessionDay', type: 'S' },
      sortKey: { name: 'startedAt', type: 'S' },
    },
  ],
  timeToLiveAttribute: 'expiresAtEpoch',
};

/** Cedar policy sets: the active version and its history. */
export const PoliciesTable: TableDefinition = {
  logicalName: 'Policies',
  partitionKey: { name: 'id', type: 'S' },
};

/** Pinned definitions of upstream MCP tools: a changed definition is refused until an admin accepts it. */
export const ToolPinsTable: TableDefinition = {
  logicalName: 'ToolPins',
  partitionKey: { name: 'target', type: 'S' },
  sortKey: { name: 'tool', type: 'S' },
};

export const ALL_TABLES: readonly TableDefinition[] = [
  RequestsTable,
  ApprovalsTable,
  GrantsTable,
  AuditTable,
  PoliciesTable,
  ToolPinsTable,
];

/** The environment variable that carries a table's physical name into a Lambda. */
export function tableEnvVar(def: TableDefinition): string {
  return `TABLE_${def.logicalName.toUpperCase()}`;
}

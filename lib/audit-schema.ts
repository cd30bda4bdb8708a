/**
 * The shape of an audit event as it lands in the audit lake. DynamoDB's ExportTableToPointInTime
 * (format DYNAMODB_JSON) writes one JSON object per line, `{"Item": {"sessionId": {"S": "…"}, …}}`,
 * so the Glue table has a single column `item`, a struct of attribute-value structs. The same
 * description yields the Glue type (Athena) and the DuckDB type (tests, local analysis).
 * Plain data, no CDK import.
 */

export type DynamoJsonType = 'S' | 'N' | 'BOOL' | 'SL';

export interface AuditAttribute {
  /** Attribute name in the Audit table item (camelCase, as the writer stores it). */
  readonly name: string;
  /** DynamoDB type; `SL` is a list of strings (`{"L": [{"S": "…"}]}`). */
  readonly type: DynamoJsonType;
  readonly description: string;
}

/** Attributes of an audit event (lambdas/core/audit writes them; lib/tables.ts AuditTable keys them). */
export const AUDIT_ATTRIBUTES: readonly AuditAttribute[] = [
  { name: 'sessionId', type: 'S', description: 'session the event belongs to (partition key)' },
  { name: 'seq', type: 'N', description: 'position in the session, from 1 (sort key)' },
  { name: 'requestId', type: 'S', description: 'governed request the event is about' },
  {
    name: 'type',
    type: 'S',
    description:
      'request_received | decided | approval_requested | approval_decided | execution_started | execution_finished | result | error | grant_created | grant_revoked | policy_pushed | request_refused | explained',
  },
  { name: 'at', type: 'S', description: 'ISO-8601 time of the event' },
  { name: 'principal', type: 'S', description: 'caller key, e.g. User::"alice"' },
  { name: 'principalName', type: 'S', description: 'caller display name (never an email)' },
  { name: 'target', type: 'S', description: 'target name' },
  { name: 'action', type: 'S', description: 'Cedar action, e.g. sql:write' },
  {
    name: 'outcome',
    type: 'S',
    description: 'allow | approval_required | deny; approve | deny for approvals',
  },
  { name: 'status', type: 'S', description: 'request status after the event' },
  { name: 'statement', type: 'S', description: 'the SQL text or AWS action as submitted' },
  { name: 'determiningPolicies', type: 'SL', description: 'Cedar policy ids that decided' },
  { name: 'approver', type: 'S', description: 'who approved or denied (approval_decided)' },
  { name: 'unmasked', type: 'BOOL', description: 'the caller saw unmasked data' },
  { name: 'rowCount', type: 'N', description: 'rows returned or affected' },
  { name: 'durationMs', type: 'N', description: 'execution time in milliseconds' },
  {
    name: 'detail',
    type: 'S',
    description: 'masked detail as JSON text: classification, result excerpt, error (json_extract it)',
  },
  { name: 'hash', type: 'S', description: 'hash of this event chained to the previous one' },
  { name: 'prevHash', type: 'S', description: 'hash of the previous event in the session' },
  { name: 'expiresAtEpoch', type: 'N', description: 'TTL of the item in DynamoDB (epoch seconds)' },
];

/** Name of the Glue table (and of the DuckDB table the same queries run against). */
export const AUDIT_LAKE_TABLE = 'audit_export';

/**
 * The partition column: the export's date, `YYYY-MM-DD`, a string (Athena's date projection compares
 * it as text). Exports land under `exports/dt=<date>/`; Hive-style, so DuckDB reads it from paths.
 */
export const AUDIT_LAKE_PARTITION = 'dt';

function glueAttr(t: DynamoJsonType): string {
  switch (t) {
    case 'S':
      return 'struct<S:string>';
    case 'N':
      return 'struct<N:string>';
    case 'BOOL':
      return 'struct<BOOL:boolean>';
    case 'SL':
      return 'struct<L:array<struct<S:string>>>';
  }
}

function duckAttr(t: DynamoJsonType): string {
  switch (t) {
    case 'S':
      return 'STRUCT("S" VARCHAR)';
    case 'N':
      return 'STRUCT("N" VARCHAR)';
    case 'BOOL':
      return 'STRUCT("BOOL" BOOLEAN)';
    case 'SL':
      return 'STRUCT("L" STRUCT("S" VARCHAR)[])';
  }
}

/** Hive/Glue type of the `item` column. */
export function glueItemType(attrs: readonly AuditAttribute[] = AUDIT_ATTRIBUTES): string {
  return `struct<${attrs.map((a) => `${a.name}:${glueAttr(a.type)}`).join(',')}>`;
}

/** DuckDB type of the `item` column, for `read_json(…, columns = {item: …})`. */
export function duckdbItemType(attrs: readonly AuditAttribute[] = AUDIT_ATTRIBUTES): string {
  return `STRUCT(${attrs.map((a) => `"${a.name}" ${duckAttr(a.type)}`).join(', ')})`;
}

/** Glue table columns over the export format. */
export const AUDIT_LAKE_COLUMNS: ReadonlyArray<{ name: string; type: string; comment: string }> = [
  // Lower case: Athena folds identifiers, and the JSON SerDe matches keys case-insensitively.
  { name: 'item', type: glueItemType().toLowerCase(), comment: 'the audit event in DynamoDB JSON' },
];

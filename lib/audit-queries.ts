/**
 * The named Athena queries auditors start from, as plain data so that the same SQL runs in Athena
 * (Trino) over the audit lake and in DuckDB in tests. Portable SQL only: SELECT/WHERE/GROUP BY,
 * CAST, COALESCE, and `?` for parameters (Athena's console prompts for them; DuckDB binds them).
 *
 * Daily exports are full snapshots, so an event appears once per export that saw it; every query
 * reads through `events`, which flattens the DynamoDB JSON and removes those duplicates.
 *
 * The lake is partitioned by export date (`dt=YYYY-MM-DD`), and every query names the export dates
 * it reads (its first two parameters), so Athena scans those partitions only, not every export
 * ever taken. One export holds every event still in the Audit table (its TTL, 400 days by default),
 * so the newest export date alone usually answers; older events are in the exports of their time.
 */
import { AUDIT_LAKE_PARTITION, AUDIT_LAKE_TABLE } from './audit-schema.js';

export interface AuditQuery {
  /** Athena named-query name (unique in the workgroup). */
  readonly name: string;
  readonly description: string;
  readonly sql: string;
  /** Names of the `?` parameters, in order (the export dates first, see EXPORT_DATE_PARAMETERS). */
  readonly parameters: readonly string[];
}

/** Flattened, de-duplicated audit events. Identifiers that are keywords somewhere are quoted. */
export function eventsCte(table: string = AUDIT_LAKE_TABLE): string {
  return `WITH events AS (
  SELECT DISTINCT
    item.sessionId.S AS session_id,
    CAST(item.seq.N AS BIGINT) AS seq,
    item.requestId.S AS request_id,
    item."type".S AS event_type,
    item."at".S AS event_at,
    item.principal.S AS principal,
    item.principalName.S AS principal_name,
    item.target.S AS target,
    item."action".S AS action,
    item.outcome.S AS outcome,
    item.status.S AS status,
    item."statement".S AS statement,
    item.approver.S AS approver,
    item.unmasked."BOOL" AS unmasked,
    CAST(item.rowCount.N AS BIGINT) AS row_count
  FROM ${table}
  -- The partition first: Athena prunes by it. seq 0 is the session head (a summary), not an event.
  WHERE ${AUDIT_LAKE_PARTITION} BETWEEN ? AND ?
    AND item IS NOT NULL AND CAST(item.seq.N AS BIGINT) > 0
)`;
}

/** The parameters every query starts with: the export dates (YYYY-MM-DD, inclusive) it reads. */
export const EXPORT_DATE_PARAMETERS = ['fromExportDate', 'toExportDate'] as const;

function query(
  name: string,
  description: string,
  body: string,
  parameters: readonly string[] = [],
): (table?: string) => AuditQuery {
  return (table) => ({
    name,
    description: `${description} Parameters start with the export dates to read, from and to (YYYY-MM-DD).`,
    sql: `${eventsCte(table)}\n${body.trim()}`,
    parameters: [...EXPORT_DATE_PARAMETERS, ...parameters],
  });
}

const builders = [
  query(
    'who-ran-what',
    'Every executed request: who ran which statement on which target, when, and how it ended.',
    `
SELECT f.event_at AS finished_at, r.principal_name, r.principal, r.target, r.action,
       COALESCE(f.statement, r.statement) AS statement, f.status, f.row_count, f.request_id, f.session_id
FROM events f
LEFT JOIN events r ON r.request_id = f.request_id AND r.event_type = 'request_received'
WHERE f.event_type = 'execution_finished'
ORDER BY f.event_at DESC`,
  ),
  query(
    'blocked-or-denied',
    'Everything policy denied, an approver denied, or that expired waiting for approval (explains, which run nothing, are in explained-decisions).',
    `
SELECT event_at, event_type, principal_name, principal, target, action, outcome, status, statement,
       request_id, session_id
FROM events
WHERE (outcome = 'deny' OR status IN ('denied', 'expired')) AND event_type <> 'explained'
ORDER BY event_at DESC`,
  ),
  query(
    'explained-decisions',
    'What callers asked explain about, by what it revealed: answered explains per principal, target, action and outcome (an agent sweeping policy shows here).',
    `
SELECT principal_name, principal, target, action, outcome, COUNT(*) AS explains,
       MIN(event_at) AS first_at, MAX(event_at) AS last_at
FROM events
WHERE event_type = 'explained'
GROUP BY principal_name, principal, target, action, outcome
ORDER BY explains DESC, principal_name, target, action, outcome`,
  ),
  query(
    'approvals-by-approver',
    'Approval decisions per approver: how many approvals and denials, first and last.',
    `
SELECT approver, outcome AS decision, COUNT(*) AS decisions, MIN(event_at) AS first_at,
       MAX(event_at) AS last_at
FROM events
WHERE event_type = 'approval_decided'
GROUP BY approver, outcome
ORDER BY approver, outcome`,
  ),
  query(
    'unmasked-data',
    'Who saw unmasked data: every result returned without masking.',
    `
SELECT event_at, principal_name, principal, target, action, statement, row_count, request_id, session_id
FROM events
WHERE unmasked = TRUE AND event_type = 'execution_finished'
ORDER BY event_at DESC`,
  ),
  query(
    'session-activity',
    'Everything one agent did in one session, in order (parameter: the session id).',
    `
SELECT seq, event_at, event_type, principal_name, target, action, outcome, status, statement,
       approver, row_count, request_id
FROM events
WHERE session_id = ?
ORDER BY seq`,
    ['sessionId'],
  ),
];

/** The named queries, over `table` (default: the Glue table of the audit lake). */
export function auditQueries(table?: string): AuditQuery[] {
  return builders.map((b) => b(table));
}

export const AUDIT_QUERIES: readonly AuditQuery[] = auditQueries();

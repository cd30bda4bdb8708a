/** Warden's domain vocabulary, shared by core, adapters and handlers. No SDK imports. */
import type { SealedOperation } from './sealing.js';

import type { SqlBlastRadius } from './blast-radius.js';

export type PrincipalType = 'User' | 'Agent';

/** Who is calling, as proved by a verified OIDC token. */
export interface Principal {
  readonly type: PrincipalType;
  /** Stable id: the user's `sub`/username, or the agent's client id. */
  readonly id: string;
  readonly groups: readonly string[];
  /** The token's `client_id`/`azp`, when present. */
  readonly clientId?: string;
  /** Display name (username or client id); never an email or other PII. */
  readonly name: string;
  /**
   * For an Agent: the person it acts for (RFC 8693 token exchange's `act` claim, or a configured
   * owner claim). Policies see it as `principal.onBehalfOf`; the trail records both; that person
   * never approves the agent's requests.
   */
  readonly onBehalfOf?: OnBehalfOf;
}

export interface OnBehalfOf {
  readonly type: 'User';
  readonly id: string;
  readonly name: string;
  /** The person's groups when the token carries them (token exchange); [] otherwise. */
  readonly groups: readonly string[];
}

/** `User::"alice"` — the key used in records, indexes and Cedar. */
export function principalKey(p: Pick<Principal, 'type' | 'id'>): string {
  return `${p.type}::${JSON.stringify(p.id)}`;
}

/**
 * The people on a principal's side: itself and, for an agent, the person it acts for. A request
 * is never approved by anyone on its requester's side.
 */
export function sideOf(p: Pick<Principal, 'type' | 'id' | 'onBehalfOf'>): string[] {
  return p.onBehalfOf ? [principalKey(p), principalKey(p.onBehalfOf)] : [principalKey(p)];
}

/** The requester as recorded when they asked (groups as recorded: the approval re-check uses them). */
export function principalFromRecord(record: RequestRecord): Principal {
  const sep = record.principal.indexOf('::');
  return {
    type: record.principalType,
    id: JSON.parse(record.principal.slice(sep + 2)) as string,
    groups: record.groups,
    name: record.principalName,
    ...(record.onBehalfOf
      ? {
          onBehalfOf: {
            type: 'User',
            id: record.onBehalfOf.id,
            name: record.onBehalfOf.name,
            groups: record.onBehalfOf.groups,
          },
        }
      : {}),
  };
}

export type SqlClass = 'read' | 'write' | 'ddl' | 'privilege' | 'admin';
export type AwsClass = 'read' | 'write' | 'permissions';

export interface SqlStatementClassification {
  /** The parse-tree node type, e.g. `SelectStmt`, `InsertStmt`. */
  readonly type: string;
  readonly class: SqlClass;
  /** Why this class, in words (e.g. "data-modifying CTE", "function pg_read_file is not allowlisted"). */
  readonly reasons: readonly string[];
}

export interface SqlClassification {
  readonly kind: 'sql';
  /** The most dangerous class of any statement in the text. */
  readonly class: SqlClass;
  readonly statements: readonly SqlStatementClassification[];
  /** Relations touched, schema-qualified (`public.customers`); unqualified names get `public.`. */
  readonly tables: readonly string[];
  /** Relations written with their schema (`public.customers`), as written; absent when none. */
  readonly schemaQualified?: readonly string[];
  /** Functions called, lower-case, schema-qualified when written so. */
  readonly functions: readonly string[];
  readonly reasons: readonly string[];
}

export interface AwsClassification {
  readonly kind: 'aws';
  readonly class: AwsClass;
  readonly service: string;
  readonly action: string;
  /** `s3:GetObject` */
  readonly iamAction: string;
  /** AWS's access level: List, Read, Write, Permissions management, Tagging. */
  readonly accessLevel: string;
  readonly resources: readonly string[];
  readonly reasons: readonly string[];
}

export type McpClass = 'read' | 'write' | 'destructive';

export interface McpClassification {
  readonly kind: 'mcp';
  readonly class: McpClass;
  /** The upstream's own tool name (`echo`); the agent sees it namespaced (`everything__echo`). */
  readonly tool: string;
  /** sha256 of the tool's canonical definition when it was decided (the pinned one). */
  readonly definitionHash: string;
  readonly annotations: {
    readonly readOnlyHint?: boolean;
    readonly destructiveHint?: boolean;
    readonly idempotentHint?: boolean;
    readonly openWorldHint?: boolean;
  };
  readonly reasons: readonly string[];
}

export type Classification = SqlClassification | AwsClassification | McpClassification;

export type Outcome = 'allow' | 'approval_required' | 'deny';

export interface Decision {
  readonly outcome: Outcome;
  /** The Cedar action decided, e.g. `sql:read`. */
  readonly action: string;
  /** Ids of the policies that determined the outcome (Cedar's `reason`, or its `errors`). */
  readonly determiningPolicies: readonly string[];
  /** Evaluation errors Cedar reported (they never turn into an allow). */
  readonly errors: readonly string[];
  readonly policyVersion: string;
}

/**
 * Lifecycle of a request. `running` is transient: the record is written before execution and
 * moves to `executed` or `failed` after it.
 */
export type RequestStatus =
  'pending_approval' | 'approved' | 'running' | 'executed' | 'denied' | 'expired' | 'failed';

export interface SqlOperation {
  readonly kind: 'sql';
  readonly sql: string;
  readonly parameters?: readonly SqlParameter[];
}

export interface AwsOperation {
  readonly kind: 'aws';
  readonly service: string;
  readonly action: string;
  readonly input: Record<string, unknown>;
  readonly region?: string;
}

export interface AccessOperation {
  readonly kind: 'access';
  readonly level: 'write' | 'ddl';
  readonly durationSeconds: number;
}

/** A call of an upstream MCP server's tool, exactly as it will be sent. */
export interface McpOperation {
  readonly kind: 'mcp';
  readonly tool: string;
  /** The arguments as canonical JSON: what an approver sees is byte-for-byte what is sent. */
  readonly argumentsJson: string;
}

export type Operation = SqlOperation | AwsOperation | AccessOperation | McpOperation;

/** Named parameter as the Data API takes it (`:name` in the SQL). */
export interface SqlParameter {
  readonly name: string;
  readonly value: string | number | boolean | null;
  /** Optional Data API type hint: DATE, TIME, TIMESTAMP, DECIMAL, UUID, JSON. */
  readonly typeHint?: string;
}

export interface ColumnInfo {
  readonly name: string;
  readonly type: string;
  readonly table?: string;
  readonly schema?: string;
}

export interface SqlResult {
  readonly columns: readonly ColumnInfo[];
  readonly rows: readonly Record<string, unknown>[];
  readonly truncated: boolean;
  /** Rows returned (after truncation) or rows updated by a write. */
  readonly rowCount: number;
}

export interface MaskingSummary {
  readonly byType: Record<string, number>;
  /** True when the caller was allowed `view_unmasked` and nothing was masked. */
  readonly unmasked?: boolean;
}

export interface ApprovalVote {
  readonly by: string;
  readonly byName: string;
  /** When an agent voted for a person: that person's key (they count as one approver). */
  readonly onBehalfOf?: string;
  readonly decision: 'approve' | 'deny';
  readonly at: string;
  readonly comment?: string;
}

export interface RequestRecord {
  readonly id: string;
  readonly target: string;
  /** `principalKey(principal)` */
  readonly principal: string;
  readonly principalName: string;
  readonly principalType: PrincipalType;
  readonly groups: readonly string[];
  /** For an agent acting for a person: that person (`key` is their `principalKey`). */
  readonly onBehalfOf?: {
    readonly key: string;
    readonly id: string;
    readonly name: string;
    readonly groups: readonly string[];
  };
  readonly sessionId: string;
  readonly createdAt: string;
  updatedAt: string;
  status: RequestStatus;
  /** The shown form (lambdas/core/shown.ts): literals, parameters and arguments masked. */
  readonly operation: Operation;
  /** Through the detectors, like the operation. */
  readonly justification?: string;
  /**
   * The exact operation and justification, sealed (lambdas/core/sealing.ts), while a request that
   * waits for approval needs them and they differ from the shown form; dropped once it is decided.
   */
  sealed?: SealedOperation;
  readonly classification?: Classification;
  readonly decision: Decision;
  /** Approval window end (ISO), for approval-required requests. */
  readonly expiresAt?: string;
  requiredApprovals?: number;
  votes?: ApprovalVote[];
  decidedBy?: string;
  decidedAt?: string;
  result?: unknown;
  masking?: MaskingSummary;
  rowCount?: number;
  durationMs?: number;
  error?: { code: string; message: string };
  /** What a SQL write would touch (PostgreSQL's estimate), taken when it started waiting for approval. */
  readonly blastRadius?: SqlBlastRadius;
  /** Optimistic-concurrency counter, bumped on every update. */
  version: number;
}

/**
 * Why a denied operation was denied, for the caller: the forbid that matched, a policy that could
 * not be evaluated (its error stays in the trail: it may quote request values), or no permit.
 */
export function denialReason(decision: Pick<Decision, 'determiningPolicies' | 'errors'>): string {
  const ids = decision.determiningPolicies.join(', ');
  if (decision.errors.length > 0 && ids) {
    return `is denied: policy ${ids} could not be evaluated, and a policy that cannot be evaluated denies`;
  }
  if (ids) return `is forbidden by policy ${ids}`;
  return 'is not permitted by any policy';
}

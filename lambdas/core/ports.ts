/**
 * Ports: what core needs from the outside world. Adapters implement them; handlers wire them.
 */
import type { TrailEvent } from './trail.js';
import type { RequestRecord, RequestStatus, SqlParameter, SqlResult } from './types.js';

/**
 * Where requests are recorded. `events`, when given, are appended to the record's session trail in
 * the same atomic write as the record (one store round trip; both are written or neither is).
 */
export interface RequestStore {
  /** Writes a new record; fails with ConditionFailedError if the id exists. */
  create(record: RequestRecord, events?: readonly TrailEvent[]): Promise<void>;
  get(id: string): Promise<RequestRecord | undefined>;
  /**
   * Replaces the record if its stored `version` is `expectedVersion` (and, when given, its status is
   * one of `expectedStatuses`); throws ConditionFailedError otherwise. Returns the stored record.
   */
  update(
    record: RequestRecord,
    expectedVersion: number,
    expectedStatuses?: readonly RequestStatus[],
    events?: readonly TrailEvent[],
  ): Promise<RequestRecord>;
  listByPrincipal(principal: string, limit?: number): Promise<RequestRecord[]>;
  /**
   * One page of the requests waiting for approval, newest first (a sparse index: only those are
   * indexed), starting after `after` (the position `next` of the previous page named). `next` is
   * absent once the index is exhausted; a page may hold fewer than `limit` records (some were
   * decided a moment ago) and still have a `next`.
   */
  listPendingPage(options: { limit: number; after?: PendingPosition }): Promise<PendingPage>;
}

/** A place in the pending index: the record's creation time and id. */
export interface PendingPosition {
  readonly createdAt: string;
  readonly id: string;
}

export interface PendingPage {
  readonly records: RequestRecord[];
  readonly next?: PendingPosition;
}

export type AccessLevel = 'read' | 'write';

export interface SqlExecutionInput {
  /** The target's name; the executor maps it to the cluster and the secret for `level`. */
  readonly target: string;
  readonly level: AccessLevel;
  /**
   * The masking profile (docs/masking.md): `masked` runs as the target's masked users, whose
   * privileges reach only the masking views (reads) or the non-sensitive columns (writes).
   * @default 'unmasked'
   */
  readonly profile?: 'masked' | 'unmasked';
  readonly sql: string;
  readonly parameters?: readonly SqlParameter[];
  /** Rows kept before `truncated: true`. */
  readonly maxRows: number;
}

export interface SqlExecutor {
  execute(input: SqlExecutionInput): Promise<SqlResult>;
}

export interface StoredPolicySet {
  readonly version: string;
  readonly policies: string;
  readonly updatedAt: string;
  readonly updatedBy?: string;
  /**
   * `warden policy push`'s MAC of the other four (policySetMessage, lambdas/core/policy-signature.ts)
   * under the policy key (KMS GenerateMac; functions hold VerifyMac only): base64url. Functions serve
   * no set without a valid one.
   */
  readonly signature?: string;
}

export interface PolicyStore {
  getActive(): Promise<StoredPolicySet | undefined>;
  /**
   * Makes `set` the active policy set. With `expectedVersion` the write is conditional: it succeeds
   * only while the active set is still that version (`null`: while none is active), and otherwise
   * throws ConditionFailedError, so a concurrent push loses instead of being silently overwritten.
   */
  putActive(set: StoredPolicySet, options?: { expectedVersion?: string | null }): Promise<void>;
}

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/**
 * Just-in-time access: a request for a time-boxed grant goes through the approval workflow like a
 * statement does (Cedar `request_access`); once approved, the grant lets that identity run that
 * class on that target without further approval (Cedar sees it in `context.grants`) until it expires.
 */
import { randomBytes } from 'node:crypto';
import type { CedarValueJson } from '@cedar-policy/cedar-wasm/nodejs';
import { BadRequestError, NotFoundError, PolicyDeniedError } from './errors.js';
import {
  canSeeTarget,
  findTarget,
  newRequestRecord,
  startApprovalWorkflow,
  publicDecision,
  recordBeforeRunning,
  targetRef,
  type CallMeta,
  type GrantLookup,
  type PublicDecision,
  type RequestDeps,
} from './requests.js';
import { principalKey, type Principal, type RequestRecord } from './types.js';
import { traceRefusals } from './refusals.js';
import { approverOn } from './approvals.js';

export interface Grant {
  readonly grantId: string;
  /** `principalKey` of the grantee. */
  readonly principal: string;
  readonly principalName: string;
  readonly target: string;
  /** The operation class it covers, e.g. `sql:write`. */
  readonly action: string;
  readonly requestId: string;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly approvedBy?: string;
  readonly revokedAt?: string;
  readonly revokedBy?: string;
}

export interface GrantStore extends GrantLookup {
  create(grant: Grant): Promise<void>;
  get(grantId: string): Promise<Grant | undefined>;
  listByPrincipal(principal: string): Promise<Grant[]>;
  /** Marks the grant revoked; undefined when it does not exist. Revoking twice keeps the first. */
  revoke(grantId: string, by: string, at: string): Promise<Grant | undefined>;
}

/** Longest grant Warden issues, whatever a policy allows. */
export const MAX_GRANT_SECONDS = 7 * 24 * 3600;

/**
 * Grant ids carry their grantee (so a revoke finds the item by key without a scan) and a random
 * part (so they cannot be guessed).
 */
export function newGrantId(principal: string): string {
  return `g_${randomBytes(12).toString('base64url')}.${Buffer.from(principal, 'utf8').toString('base64url')}`;
}

export function grantPrincipalOf(grantId: string): string | undefined {
  const m = /^g_[A-Za-z0-9_-]{16}\.([A-Za-z0-9_-]{1,400})$/.exec(grantId);
  return m ? Buffer.from(m[1], 'base64url').toString('utf8') : undefined;
}

export function isActive(grant: Grant, now: Date): boolean {
  return !grant.revokedAt && Date.parse(grant.expiresAt) > now.getTime();
}

export interface AccessSubmission {
  readonly level: 'write' | 'ddl';
  readonly durationSeconds: number;
  readonly justification: string;
}

export interface AccessPendingBody {
  requestId: string;
  status: 'pending_approval';
  decision: PublicDecision;
  grant: { target: string; action: string; durationSeconds: number };
  expiresAt?: string;
  approverGroups: string[];
  requiredApprovals: number;
  links: { self: string; review: string };
}

function accessContext(input: AccessSubmission, now: Date): Record<string, CedarValueJson> {
  return {
    level: input.level,
    durationSeconds: input.durationSeconds,
    justification: input.justification,
    hasJustification: input.justification.trim().length > 0,
    now: Math.floor(now.getTime() / 1000),
    hourUtc: now.getUTCHours(),
  };
}

/** `POST /v1/targets/{target}/access-requests`: always through the approval workflow. */
export async function submitAccessRequest(
  deps: RequestDeps,
  principal: Principal,
  targetName: string,
  input: AccessSubmission,
  meta: CallMeta,
): Promise<{ status: 202; record: RequestRecord; body: AccessPendingBody }> {
  const statement = () => `access ${input.level} for ${input.durationSeconds}s`;
  return traceRefusals(deps, { principal, sessionId: meta.sessionId, target: targetName, statement }, () =>
    submitAccessRecorded(deps, principal, targetName, input, meta),
  );
}

async function submitAccessRecorded(
  deps: RequestDeps,
  principal: Principal,
  targetName: string,
  input: AccessSubmission,
  meta: CallMeta,
): Promise<{ status: 202; record: RequestRecord; body: AccessPendingBody }> {
  const target = findTarget(deps.config, targetName);
  if (target.kind !== 'sql') throw new BadRequestError('access requests are offered for SQL targets');
  if (!Number.isInteger(input.durationSeconds) || input.durationSeconds < 60) {
    throw new BadRequestError('duration must be at least 60 seconds');
  }
  if (input.durationSeconds > MAX_GRANT_SECONDS) {
    throw new BadRequestError(`duration is limited to ${MAX_GRANT_SECONDS} seconds`);
  }
  const engine = await deps.policies.engine();
  const now = deps.clock.now();
  const decision = engine.decideOperation(
    principal,
    'request_access',
    targetRef(targetName, target),
    accessContext(input, now),
  );
  if (decision.outcome === 'deny' && !canSeeTarget(engine, principal, targetName, target)) {
    throw new NotFoundError(`unknown target "${targetName}"`);
  }
  const grantAction = `sql:${input.level}`;
  // A grant is never self-service: even a policy that would allow it outright goes to a person.
  const needsApproval = decision.outcome !== 'deny';
  const record = newRequestRecord(
    deps,
    principal,
    targetName,
    target,
    meta,
    needsApproval ? { ...decision, outcome: 'approval_required' } : decision,
    {
      operation: { kind: 'access', level: input.level, durationSeconds: input.durationSeconds },
      justification: input.justification,
    },
  );
  await recordBeforeRunning(deps, record);
  if (!needsApproval) {
    throw new PolicyDeniedError(
      `request_access to ${grantAction} on target "${targetName}" is not permitted`,
      {
        requestId: record.id,
        decision: publicDecision(decision),
      },
    );
  }
  await startApprovalWorkflow(deps, record, 'nothing was granted');
  return {
    status: 202,
    record,
    body: {
      requestId: record.id,
      status: 'pending_approval',
      decision: publicDecision(record.decision),
      grant: { target: targetName, action: grantAction, durationSeconds: input.durationSeconds },
      ...(record.expiresAt ? { expiresAt: record.expiresAt } : {}),
      approverGroups: target.approvals.approverGroups,
      requiredApprovals: target.approvals.requiredApprovals,
      links: { self: `/v1/requests/${record.id}`, review: `/approve/${record.id}` },
    },
  };
}

export function grantView(grant: Grant, now: Date): Record<string, unknown> {
  return {
    grantId: grant.grantId,
    principal: grant.principalName,
    target: grant.target,
    action: grant.action,
    requestId: grant.requestId,
    createdAt: grant.createdAt,
    expiresAt: grant.expiresAt,
    approvedBy: grant.approvedBy,
    revokedAt: grant.revokedAt,
    revokedBy: grant.revokedBy,
    active: isActive(grant, now),
  };
}

/** The caller's grants, newest first; expired and revoked ones only with `all`. */
export async function listGrants(
  deps: { grantStore: GrantStore; clock: RequestDeps['clock'] },
  principal: Principal,
  all = false,
): Promise<Record<string, unknown>[]> {
  const now = deps.clock.now();
  const grants = await deps.grantStore.listByPrincipal(principalKey(principal));
  return grants
    .filter((g) => all || isActive(g, now))
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
    .map((g) => grantView(g, now));
}

/**
 * Revokes a grant: its holder may always give it up; otherwise only someone Cedar allows to
 * `approve` on its target. Anyone else gets the same 404 as for an unknown id.
 */
export async function revokeGrant(
  deps: Pick<RequestDeps, 'policies' | 'clock' | 'config' | 'trail' | 'log'> & { grantStore: GrantStore },
  principal: Principal,
  grantId: string,
): Promise<Record<string, unknown>> {
  if (!grantPrincipalOf(grantId)) throw new NotFoundError(`unknown grant "${grantId.slice(0, 64)}"`);
  const grant = await deps.grantStore.get(grantId);
  if (!grant) throw new NotFoundError(`unknown grant "${grantId}"`);
  if (grant.principal !== principalKey(principal)) {
    const engine = await deps.policies.engine();
    if (!approverOn(engine, deps.config, principal, grant.target))
      throw new NotFoundError(`unknown grant "${grantId}"`);
  }
  const at = deps.clock.now().toISOString();
  const revoked = (await deps.grantStore.revoke(grantId, principal.name, at)) ?? grant;
  if (deps.trail) {
    try {
      await deps.trail.append(`grant_${grant.requestId}`, [
        {
          type: 'grant_revoked',
          at,
          requestId: grant.requestId,
          principal: principalKey(principal),
          principalName: principal.name,
          target: grant.target,
          action: grant.action,
          detail: { grantId, grantee: grant.principalName },
        },
      ]);
    } catch (error) {
      deps.log?.({ level: 'error', msg: 'trail append failed', grantId, error: String(error) });
    }
  }
  return grantView(revoked, deps.clock.now());
}

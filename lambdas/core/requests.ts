/**
 * The governed request: classify → decide → record → execute → mask → record the outcome.
 * Core only: every side effect goes through a port handed in by the handler.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { CedarValueJson } from '@cedar-policy/cedar-wasm/nodejs';
import { sqlBlastRadius, type SqlBlastRadius } from './blast-radius.js';
import type { SqlTargetConfig, TargetConfig, WardenConfig } from './config.js';
import {
  BadRequestError,
  ConditionFailedError,
  ExecutionError,
  NotFoundError,
  PayloadTooLargeError,
  PolicyDeniedError,
  ServiceUnavailableError,
  WardenError,
} from './errors.js';
import { boundableReadBody } from './classify/sql.js';
import { parameterProblem } from './sql-input.js';
import { redactDatabaseMessage } from './db-error-redaction.js';
import { SealError, type OperationSealer, type SealedPayload } from './sealing.js';
import { showOperation, showText } from './shown.js';
import type { PolicyEngine, ResourceRef } from './policy.js';
import type { PolicyProvider } from './policy-provider.js';
import type { Clock, RequestStore, SqlExecutor } from './ports.js';
import { traceRefusals } from './refusals.js';
import type { DirectAnswer, DirectExecution } from './direct-execution.js';
import { approverOn } from './approvals.js';
import { recordActor, type TrailEvent, type TrailWriter } from './trail.js';
import {
  denialReason,
  principalKey,
  type Classification,
  type ColumnInfo,
  type Operation,
  type Decision,
  type MaskingSummary,
  type Principal,
  type RequestRecord,
  type SqlClassification,
  type SqlOperation,
  type SqlParameter,
  type SqlResult,
} from './types.js';

/** What the masking engine offers the request path (lambdas/core/masking). */
export interface ResultMasker {
  maskRows(
    columns: readonly { name: string; table?: string; schema?: string }[],
    rows: readonly Record<string, unknown>[],
    options?: { maskedAtSource?: boolean },
  ): { rows: Record<string, unknown>[]; byType: Record<string, number> };
  maskValue(value: unknown): { value: unknown; byType: Record<string, number> };
  maskText(text: string): { text: string; byType: Record<string, number> };
}

export interface GrantLookup {
  /** Operation classes (`sql:write`) an unexpired grant gives this principal on this target. */
  activeGrants(principal: Principal, target: string, now: Date): Promise<string[]>;
}

export interface ApprovalStarter {
  /** Starts the approval workflow for a freshly recorded pending request. */
  start(record: RequestRecord): Promise<void>;
}

export interface RequestDeps {
  readonly config: WardenConfig;
  readonly policies: PolicyProvider;
  readonly requests: RequestStore;
  readonly sql: SqlExecutor;
  readonly maskerFor: (target: string) => ResultMasker;
  readonly classifySql: (sql: string) => Promise<SqlClassification> | SqlClassification;
  readonly clock: Clock;
  readonly grants?: GrantLookup;
  readonly approvals?: ApprovalStarter;
  readonly trail?: TrailWriter;
  readonly log?: (entry: Record<string, unknown>) => void;
  /** Seals the exact form of requests that wait for approval (absent where nothing is sealed or opened). */
  readonly sealer?: OperationSealer;
  /**
   * Proves, once per target and cold start, that the database enforces the masked profile
   * (`warden db check`); rejects with a 403 `masking_not_enforced` when it does not. Without it,
   * masked statements still run only as the masked users (the executor never falls back).
   */
  readonly dbMasking?: DbMaskingGuard;
  /**
   * Where allowed writes and allowed AWS calls run: the execute function (the API function holds no
   * write secret and no target role). Absent where they run in this function (the execute function).
   */
  readonly dispatch?: ExecutionDispatch;
}

/** Invokes the execute function for a recorded, allowed request (lambdas/core/direct-execution.ts). */
export interface ExecutionDispatch {
  /** Its answer; throws when the invocation itself failed (then it may or may not have taken it). */
  run(request: DirectExecution): Promise<DirectAnswer>;
}

export interface DbMaskingGuard {
  ensure(target: string): Promise<void>;
}

export interface CallMeta {
  /** From X-Warden-Session, the MCP session, or derived from the token. */
  readonly sessionId: string;
  /**
   * The caller's bearer token, for the execute function to verify again when an allowed write or
   * AWS call runs there; never stored or logged.
   */
  readonly token?: string;
}

export interface SqlSubmission {
  readonly sql: string;
  readonly parameters?: readonly SqlParameter[];
  readonly justification?: string;
}

export type SubmitOutcome =
  | { status: 200; record: RequestRecord; body: ExecutedBody }
  | { status: 202; record: RequestRecord; body: PendingBody };

export interface ExecutedBody {
  requestId: string;
  status: 'executed';
  decision: PublicDecision;
  result: SqlResultBody;
}

export interface PendingBody {
  requestId: string;
  status: 'pending_approval';
  decision: PublicDecision;
  expiresAt?: string;
  approverGroups: string[];
  requiredApprovals: number;
  links: { self: string; review: string };
}

export interface SqlResultBody {
  columns: { name: string; type: string }[];
  rows: Record<string, unknown>[];
  truncated: boolean;
  rowCount: number;
  masking: MaskingSummary;
}

export interface PublicDecision {
  outcome: Decision['outcome'];
  action: string;
  determiningPolicies: readonly string[];
  policyVersion: string;
}

export function publicDecision(d: Decision): PublicDecision {
  return {
    outcome: d.outcome,
    action: d.action,
    determiningPolicies: d.determiningPolicies,
    policyVersion: d.policyVersion,
  };
}

export function newRequestId(): string {
  return `r_${randomBytes(12).toString('base64url')}`;
}

/** One session per token unless the client names one: a stable, non-reversible id. */
export function sessionIdForToken(token: string): string {
  return `s_${createHash('sha256').update(token).digest('base64url').slice(0, 22)}`;
}

/** A session name a client sends (`X-Warden-Session`). */
const SESSION_NAME = /^[A-Za-z0-9._:-]{1,128}$/;
/** A stored session id: a name plus the owner's suffix (see clientSessionId), or a derived id. */
const SESSION_ID = /^[A-Za-z0-9._:-]{1,160}$/;
export function isValidSessionId(id: string): boolean {
  return SESSION_ID.test(id);
}
export function isValidSessionName(name: string): boolean {
  return SESSION_NAME.test(name);
}

/**
 * The session a client-named request lands in: the name stays readable for auditors, and a suffix
 * derived from who is calling (the principal and, for an agent, the person it acts for) keeps two
 * callers sending the same name apart, so nobody can write into another principal's session.
 */
export function clientSessionId(principal: Principal, name: string): string {
  const owner =
    principalKey(principal) + (principal.onBehalfOf ? `\n${principalKey(principal.onBehalfOf)}` : '');
  const suffix = createHash('sha256').update(`${owner}\n${name}`).digest('base64url').slice(0, 16);
  return `c_${name}.${suffix}`;
}

export function findTarget(config: WardenConfig, name: string, kind?: TargetConfig['kind']): TargetConfig {
  const target = Object.hasOwn(config.targets, name) ? config.targets[name] : undefined;
  if (!target || (kind && target.kind !== kind)) throw new NotFoundError(`unknown target "${name}"`);
  return target;
}

export function targetRef(name: string, target: TargetConfig): ResourceRef {
  return { type: 'Target', id: name, kind: target.kind };
}

/** The Cedar context for an operation (without `approved`, which the engine sets). */
export function operationContext(
  classification: Classification,
  justification: string | undefined,
  grants: readonly string[],
  now: Date,
  region?: string,
): Record<string, CedarValueJson> {
  const base: Record<string, CedarValueJson> = {
    grants: [...grants],
    justification: justification ?? '',
    hasJustification: Boolean(justification && justification.trim().length > 0),
    now: Math.floor(now.getTime() / 1000),
    hourUtc: now.getUTCHours(),
  };
  if (classification.kind === 'sql') {
    base.sql = {
      statementTypes: [...new Set(classification.statements.map((s) => s.type))],
      tables: [...classification.tables],
      functions: [...classification.functions],
    };
  } else if (classification.kind === 'aws') {
    base.aws = {
      service: classification.service,
      iamAction: classification.iamAction,
      accessLevel: classification.accessLevel,
      resources: [...classification.resources],
      region: region ?? '',
    };
  }
  return base;
}

/**
 * Whether the caller may see this target at all. A caller with no permit of any kind on a target
 * gets the same 404 as for a target that does not exist, so targets are not revealed.
 */
export function canSeeTarget(
  engine: PolicyEngine,
  principal: Principal,
  name: string,
  target: TargetConfig,
): boolean {
  const ref = targetRef(name, target);
  const ctx: Record<string, CedarValueJson> = {
    grants: [],
    justification: '',
    hasJustification: false,
    now: Math.floor(Date.now() / 1000),
    hourUtc: new Date().getUTCHours(),
  };
  if (target.kind === 'mcp') {
    // Tools are the resources of an MCP target: can the caller use any tool of it at all?
    const probe: ResourceRef = {
      type: 'Tool',
      id: `${name}/*`,
      target: name,
      kind: 'mcp',
      name: '*',
      tags: {},
    };
    for (const action of ['mcp:read', 'mcp:write', 'mcp:destructive']) {
      if (engine.decideOperation(principal, action, probe, ctx).outcome !== 'deny') return true;
    }
  }
  const reads = target.kind === 'sql' ? ['sql:read', 'sql:write'] : ['aws:read', 'aws:write'];
  for (const action of reads) {
    if (engine.decideOperation(principal, action, ref, ctx).outcome !== 'deny') return true;
  }
  return (
    engine.authorize(principal, 'approve', ref, {}).allowed ||
    engine.authorize(principal, 'view_unmasked', ref, {}).allowed
  );
}

/** Whether `view_unmasked` lifts masking: on the target, or on every table the statement reads. */
export function mayViewUnmasked(
  engine: PolicyEngine,
  principal: Principal,
  targetName: string,
  tables: readonly string[],
): boolean {
  const onTarget = engine.authorize(
    principal,
    'view_unmasked',
    { type: 'Target', id: targetName, kind: 'sql' },
    {},
  );
  if (onTarget.allowed) return true;
  if (tables.length === 0) return false;
  return tables.every(
    (t) =>
      engine.authorize(
        principal,
        'view_unmasked',
        { type: 'Table', id: `${targetName}/${t}`, target: targetName },
        {},
      ).allowed,
  );
}

/**
 * Whether principals without `view_unmasked` run as the masked profile: when the target masks
 * anything, or has the masked profile's secrets. A target with neither has nothing to mask.
 */
export function hasMaskedProfile(target: SqlTargetConfig): boolean {
  return (
    target.masking.rules.length > 0 ||
    target.secrets.maskedRead !== undefined ||
    target.secrets.maskedWrite !== undefined
  );
}

/** The database user a statement runs as (docs/masking.md): masked unless view_unmasked lifts it. */
export function maskingProfile(unmasked: boolean, target: SqlTargetConfig): 'masked' | 'unmasked' {
  return unmasked || !hasMaskedProfile(target) ? 'unmasked' : 'masked';
}

/** Schemas a masked read may not name: the raw data's and Warden's private one. */
const PRIVATE_SCHEMA = 'warden_private';

/**
 * A masked read that names a raw table with its schema (`public.customers`) is refused before it
 * runs, saying why: it runs as the masked reader, whose unqualified names are the masking views.
 * The database would refuse it too (that user has no privilege on the raw tables); this answer
 * only makes the reason clear.
 */
export function refuseRawReferences(
  targetName: string,
  target: SqlTargetConfig,
  classification: SqlClassification,
): void {
  const raw = new Set([...target.db.schemas, PRIVATE_SCHEMA]);
  const named = (classification.schemaQualified ?? []).filter((rel) => {
    const parts = rel.split('.');
    return parts.length >= 2 && raw.has(parts[parts.length - 2]);
  });
  if (named.length === 0) return;
  const privateNamed = named.filter((rel) => rel.split('.').slice(-2)[0] === PRIVATE_SCHEMA);
  if (privateNamed.length > 0) {
    // Not a raw table with a view of the same name: nothing to rewrite it to.
    throw new ExecutionError(
      403,
      'raw_table_reference',
      `${privateNamed.map((n) => `"${n}"`).join(', ')} is in Warden's private schema of target ` +
        `"${targetName}", which your statements cannot read (they see data only through the masking ` +
        'views). Nothing was run.',
    );
  }
  throw new ExecutionError(
    403,
    'raw_table_reference',
    `${named.map((n) => `"${n}"`).join(', ')} names a raw table of target "${targetName}"; your ` +
      'statements see its data only through the masking views, so write the table without its schema ' +
      `(${named.map((n) => `"${n.split('.').pop()}"`).join(', ')}). Nothing was run.`,
  );
}

export function checkSqlSize(sql: string, config: WardenConfig): void {
  const bytes = Buffer.byteLength(sql, 'utf8');
  if (bytes > config.maxSqlBytes) {
    throw new PayloadTooLargeError(`sql is ${bytes} bytes; the limit is ${config.maxSqlBytes}`);
  }
}

/** Parameters that could not be recorded or sent as given are bad input, before anything is written. */
export function checkParameters(parameters: readonly SqlParameter[] | undefined): void {
  for (const p of parameters ?? []) {
    const problem = parameterProblem(p);
    if (problem) throw new BadRequestError(`parameter ${p.name} ${problem}`, { parameter: p.name });
  }
}

/** The SQL as the trail keeps it (masked later), with its parameters. */
export function sqlStatementText(input: Pick<SqlSubmission, 'sql' | 'parameters'>): string {
  return input.sql + (input.parameters?.length ? ` -- parameters: ${JSON.stringify(input.parameters)}` : '');
}

export async function submitSql(
  deps: RequestDeps,
  principal: Principal,
  targetName: string,
  input: SqlSubmission,
  meta: CallMeta,
): Promise<SubmitOutcome> {
  // Refusals before the record (unparseable, unknown or hidden target) still leave a trail event.
  return traceRefusals(
    deps,
    { principal, sessionId: meta.sessionId, target: targetName, statement: () => sqlStatementText(input) },
    () => submitSqlRecorded(deps, principal, targetName, input, meta),
  );
}

async function submitSqlRecorded(
  deps: RequestDeps,
  principal: Principal,
  targetName: string,
  input: SqlSubmission,
  meta: CallMeta,
): Promise<SubmitOutcome> {
  const target = findTarget(deps.config, targetName, 'sql') as SqlTargetConfig;
  checkSqlSize(input.sql, deps.config);
  checkParameters(input.parameters);
  const engine = await deps.policies.engine();
  const classification = await deps.classifySql(input.sql);
  const now = deps.clock.now();
  const action = `sql:${classification.class}`;
  // Grants are a store read: only when a policy for this action could look at them.
  const grants =
    deps.grants && engine.usesGrants(action)
      ? await deps.grants.activeGrants(principal, targetName, now)
      : [];
  const context = operationContext(classification, input.justification, grants, now);
  const decision = engine.decideOperation(principal, action, targetRef(targetName, target), context);

  if (decision.outcome === 'deny' && !canSeeTarget(engine, principal, targetName, target)) {
    throw new NotFoundError(`unknown target "${targetName}"`);
  }

  const exact: SqlOperation = {
    kind: 'sql',
    sql: input.sql,
    ...(input.parameters ? { parameters: input.parameters } : {}),
  };
  // Approvers see the reach before they decide: PostgreSQL's estimate, planned as a read (runs nothing).
  const blastRadius =
    decision.outcome === 'approval_required' && classification.class !== 'read'
      ? await estimateBlastRadius(
          deps,
          targetName,
          target,
          input,
          maskingProfile(mayViewUnmasked(engine, principal, targetName, classification.tables), target),
        )
      : undefined;
  const record: RequestRecord = {
    ...newRequestRecord(deps, principal, targetName, target, meta, decision, {
      operation: exact,
      justification: input.justification,
      classification,
    }),
    ...(blastRadius ? { blastRadius } : {}),
  };

  // Nothing runs unrecorded: if this write (record + first trail events) fails, nothing runs.
  await recordBeforeRunning(deps, record, {
    startsNow: decision.outcome === 'allow',
    exact: { operation: exact, justification: input.justification },
  });

  if (decision.outcome === 'deny') {
    throw new PolicyDeniedError(denyMessage(decision, action, targetName), {
      requestId: record.id,
      decision: publicDecision(decision),
      classification,
    });
  }

  if (decision.outcome === 'approval_required') {
    await startApprovalWorkflow(deps, record, 'nothing was run');
    return { status: 202, record, body: pendingBody(record, target) };
  }

  const { stored, body } =
    classification.class !== 'read' && deps.dispatch
      ? await runInExecuteFunction<SqlResultBody>(
          deps,
          record,
          { operation: exact, justification: input.justification },
          meta,
        )
      : await executeSql(deps, engine, principal, target, record, classification, {
          startRecorded: true,
          exact,
        });
  return {
    status: 200,
    record: stored,
    body: { requestId: record.id, status: 'executed', decision: publicDecision(decision), result: body },
  };
}

/**
 * Runs a recorded, allowed request in the execute function and returns its outcome, or throws the
 * error it answered. If the invocation itself fails, the record is failed while it is still untaken
 * (then it can never run, and nothing did: 503); once the execute function has taken it, the
 * outcome is unknown here (502, check the request).
 */
export async function runInExecuteFunction<B>(
  deps: RequestDeps,
  record: RequestRecord,
  exact: SealedPayload,
  meta: CallMeta,
): Promise<{ stored: RequestRecord; body: B }> {
  const dispatch = deps.dispatch;
  let answer: DirectAnswer;
  try {
    if (!dispatch || !meta.token) throw new Error('no execute function or no caller token to hand it');
    answer = await dispatch.run({ requestId: record.id, token: meta.token, exact });
  } catch (cause) {
    deps.log?.({
      level: 'error',
      msg: 'execute function invocation failed',
      requestId: record.id,
      error: String(cause),
    });
    const message = 'the execute function could not be reached; nothing was run';
    const failed: RequestRecord = {
      ...record,
      status: 'failed',
      updatedAt: deps.clock.now().toISOString(),
      error: { code: 'execute_unavailable', message },
      version: record.version + 1,
    };
    try {
      await deps.requests.update(
        failed,
        record.version,
        ['running'],
        deps.trail
          ? [
              trailEvent(deps, failed, 'error', {
                status: 'failed',
                detail: { code: 'execute_unavailable', message },
              }),
            ]
          : undefined,
      );
    } catch (error) {
      // Taken (or changed) by the execute function: it may have run.
      throw Object.assign(
        new ExecutionError(
          502,
          'execution_outcome_unknown',
          'the execute function failed after it took the request',
          error,
        ),
        { requestId: record.id },
      );
    }
    throw Object.assign(new ExecutionError(503, 'execute_unavailable', message, cause), {
      requestId: record.id,
    });
  }
  if (!answer.ok) {
    const e = answer.error;
    throw Object.assign(new WardenError(e.statusCode, e.code, e.message, { details: e.details }), {
      requestId: record.id,
    });
  }
  return { stored: answer.record, body: answer.body as B };
}

/** The estimate, or nothing when it fails: an estimate never stands in the way of a request. */
async function estimateBlastRadius(
  deps: RequestDeps,
  targetName: string,
  target: SqlTargetConfig,
  input: SqlSubmission,
  profile: 'masked' | 'unmasked',
): Promise<SqlBlastRadius | undefined> {
  try {
    return await sqlBlastRadius(
      deps,
      targetName,
      input.sql,
      input.parameters,
      target.blastRadiusRows,
      profile,
    );
  } catch (error) {
    deps.log?.({
      level: 'warn',
      msg: 'blast radius not estimated',
      target: targetName,
      error: String(error),
    });
    return undefined;
  }
}

/**
 * A new request record: who, what (in its shown form: literals, parameters, arguments and the
 * justification masked), the decision, and — when approval is required — the window and the
 * approvals the target asks for. The status follows the decision. The exact form is the caller's
 * to pass to recordBeforeRunning (sealed when it must wait) and to the executor (when it runs now).
 */
export function newRequestRecord(
  deps: Pick<RequestDeps, 'clock' | 'maskerFor'>,
  principal: Principal,
  targetName: string,
  target: TargetConfig,
  meta: CallMeta,
  decision: Decision,
  fields: { operation: Operation; justification?: string; classification?: Classification },
): RequestRecord {
  const now = deps.clock.now();
  const masker = deps.maskerFor(targetName);
  const operation = showOperation(fields.operation, { masker, rules: target.masking.rules });
  const justification = showText(fields.justification, masker);
  return {
    id: newRequestId(),
    target: targetName,
    principal: principalKey(principal),
    principalName: principal.name,
    principalType: principal.type,
    groups: [...principal.groups],
    ...(principal.onBehalfOf
      ? {
          onBehalfOf: {
            key: principalKey(principal.onBehalfOf),
            id: principal.onBehalfOf.id,
            name: principal.onBehalfOf.name,
            groups: [...principal.onBehalfOf.groups],
          },
        }
      : {}),
    sessionId: meta.sessionId,
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
    status:
      decision.outcome === 'allow' ? 'running' : decision.outcome === 'deny' ? 'denied' : 'pending_approval',
    operation,
    ...(justification ? { justification } : {}),
    ...(fields.classification ? { classification: fields.classification } : {}),
    decision,
    ...(decision.outcome === 'approval_required'
      ? {
          expiresAt: new Date(now.getTime() + target.approvals.windowSeconds * 1000).toISOString(),
          requiredApprovals: target.approvals.requiredApprovals,
          votes: [],
        }
      : {}),
    version: 1,
  };
}

/** Whether the shown form differs from the exact one (then the exact one must be sealed to run later). */
function differs(record: RequestRecord, exact: SealedPayload): boolean {
  return (
    JSON.stringify(record.operation) !== JSON.stringify(exact.operation) ||
    (record.justification ?? '') !== (exact.justification ?? '')
  );
}

/**
 * The exact form of a recorded request: opened from its seal, or the record's own operation when
 * nothing had to be sealed (shown and exact were the same). Throws SealError when a seal exists
 * but cannot be opened here; the caller must then not run anything.
 */
export async function exactOf(
  deps: Pick<RequestDeps, 'sealer'>,
  record: RequestRecord,
): Promise<SealedPayload> {
  if (!record.sealed) {
    return {
      operation: record.operation,
      ...(record.justification !== undefined ? { justification: record.justification } : {}),
    };
  }
  if (!deps.sealer) throw new SealError('this function cannot open sealed statements');
  return deps.sealer.open(record.id, record.sealed);
}

/** What the caller of a request waiting for approval is told: who must approve, by when, where to look. */
export function pendingBody(record: RequestRecord, target: TargetConfig): PendingBody {
  return {
    requestId: record.id,
    status: 'pending_approval',
    decision: publicDecision(record.decision),
    ...(record.expiresAt ? { expiresAt: record.expiresAt } : {}),
    approverGroups: target.approvals.approverGroups,
    requiredApprovals: target.approvals.requiredApprovals,
    links: { self: `/v1/requests/${record.id}`, review: `/approve/${record.id}` },
  };
}

/** Starts the approval workflow for a recorded pending request; if it cannot start, the request fails. */
export async function startApprovalWorkflow(
  deps: RequestDeps,
  record: RequestRecord,
  nothingHappened: string,
): Promise<void> {
  if (!deps.approvals) {
    // Without a workflow the request can only wait; say so rather than pretend.
    deps.log?.({ level: 'warn', msg: 'no approval workflow configured', requestId: record.id });
    return;
  }
  try {
    await deps.approvals.start(record);
  } catch (cause) {
    await markFailed(deps, record, 'workflow_unavailable', 'the approval workflow could not be started');
    throw new ServiceUnavailableError(
      `the approval workflow could not be started; ${nothingHappened}`,
      cause,
    );
  }
}

/**
 * Writes the request and its first trail events in one atomic store write (the only round trip
 * before execution); if it fails, nothing was written and nothing may run (503).
 */
export async function recordBeforeRunning(
  deps: RequestDeps,
  record: RequestRecord,
  options: { startsNow?: boolean; exact?: SealedPayload } = {},
): Promise<void> {
  // A request that waits keeps its exact form sealed apart from the shown one; without a seal it
  // could not run as approved, so a failure here fails the request before anything is written.
  if (record.decision.outcome === 'approval_required' && options.exact && differs(record, options.exact)) {
    if (!deps.sealer) {
      throw new ServiceUnavailableError(
        'the exact statement cannot be sealed here; nothing was recorded or run',
      );
    }
    try {
      record.sealed = await deps.sealer.seal(record.id, options.exact);
    } catch (cause) {
      deps.log?.({
        level: 'error',
        msg: 'sealing failed; nothing was run',
        requestId: record.id,
        error: String(cause),
      });
      throw new ServiceUnavailableError('the exact statement could not be sealed; nothing was run', cause);
    }
  }
  const events = deps.trail
    ? [
        trailEvent(deps, record, 'request_received', {
          statement: maskedStatement(deps, record),
          detail: {
            classification: record.classification,
            justification: maskedText(deps, record, record.justification),
          },
        }),
        trailEvent(deps, record, 'decided', {
          outcome: record.decision.outcome,
          determiningPolicies: record.decision.determiningPolicies,
          detail: { policyVersion: record.decision.policyVersion, errors: record.decision.errors },
        }),
        // An allowed request runs right after this write, so its start is part of it.
        ...(options.startsNow ? [trailEvent(deps, record, 'execution_started', { status: 'running' })] : []),
      ]
    : undefined;
  try {
    await deps.requests.create(record, events);
  } catch (cause) {
    deps.log?.({
      level: 'error',
      msg: 'audit write failed; nothing was run',
      requestId: record.id,
      error: String(cause),
    });
    throw new ServiceUnavailableError('the audit store is unavailable; nothing was run', cause);
  }
}

export function trailEvent(
  deps: Pick<RequestDeps, 'clock'>,
  record: RequestRecord,
  type: TrailEvent['type'],
  extra: Partial<TrailEvent> = {},
): TrailEvent {
  return {
    type,
    at: deps.clock.now().toISOString(),
    requestId: record.id,
    ...recordActor(record),
    target: record.target,
    action: record.decision.action,
    status: record.status,
    ...extra,
  };
}

/** The statement as the trail keeps it: masked with the target's rules and detectors. */
export function maskedStatement(deps: Pick<RequestDeps, 'maskerFor'>, record: RequestRecord): string {
  const op = record.operation;
  const text =
    op.kind === 'sql'
      ? op.sql + (op.parameters?.length ? ` -- parameters: ${JSON.stringify(op.parameters)}` : '')
      : op.kind === 'aws'
        ? `${op.service}:${op.action} ${JSON.stringify(op.input)}`
        : op.kind === 'mcp'
          ? `${record.target}__${op.tool} ${op.argumentsJson}`
          : `access ${op.level} for ${op.durationSeconds}s`;
  return deps.maskerFor(record.target).maskText(text).text;
}

function maskedText(
  deps: Pick<RequestDeps, 'maskerFor'>,
  record: RequestRecord,
  text?: string,
): string | undefined {
  return text === undefined ? undefined : deps.maskerFor(record.target).maskText(text).text;
}

/** Best-effort trail events after the gate (the request record already holds the outcome). */
export async function appendTrail(
  deps: Pick<RequestDeps, 'trail' | 'log'>,
  record: RequestRecord,
  events: TrailEvent[],
): Promise<void> {
  if (!deps.trail) return;
  try {
    await deps.trail.append(record.sessionId, events);
  } catch (error) {
    deps.log?.({ level: 'error', msg: 'trail append failed', requestId: record.id, error: String(error) });
  }
}

function denyMessage(decision: Decision, action: string, target: string): string {
  return `${action} on target "${target}" ${denialReason(decision)}`;
}

/**
 * Runs the recorded statement with the credentials of the decided level, masks the result, and
 * records the outcome. Shared by the direct path and the approval workflow's Execute step.
 */
export async function executeSql(
  deps: RequestDeps,
  engine: PolicyEngine,
  principal: Principal,
  target: SqlTargetConfig,
  record: RequestRecord,
  classification: SqlClassification,
  options: { startRecorded?: boolean; exact?: Operation } = {},
): Promise<{ stored: RequestRecord; body: SqlResultBody }> {
  // What runs is the exact form (the record holds the shown one).
  const op = options.exact ?? record.operation;
  if (op.kind !== 'sql') throw new Error('not a SQL request');
  if (!options.startRecorded) {
    await appendTrail(deps, record, [trailEvent(deps, record, 'execution_started', { status: 'running' })]);
  }
  const started = Date.now();
  const level = classification.class === 'read' ? 'read' : 'write';
  // Cedar's view_unmasked picks the database user the statement runs as (docs/masking.md).
  const unmasked = mayViewUnmasked(engine, principal, record.target, classification.tables);
  const profile = maskingProfile(unmasked, target);
  let result: SqlResult;
  try {
    if (profile === 'masked') {
      if (level === 'read') refuseRawReferences(record.target, target, classification);
      await deps.dbMasking?.ensure(record.target);
    }
    result = await deps.sql.execute({
      target: record.target,
      level,
      profile,
      sql: level === 'read' ? boundedRead(op.sql, target.maxRows) : op.sql,
      parameters: op.parameters,
      maxRows: target.maxRows,
    });
  } catch (error) {
    const err =
      error instanceof WardenError
        ? error
        : new ExecutionError(502, 'execution_failed', 'the database call failed');
    // Database errors echo values (`invalid input syntax for type integer: "<ssn>"`): never past masking.
    const redact = (t: string) =>
      redactDatabaseMessage(t, (text) => deps.maskerFor(record.target).maskText(text).text);
    let message = err.statusCode < 500 ? redact(err.message) : 'execution failed';
    if (profile === 'masked' && level === 'write' && err.code === 'database_permission_denied') {
      // The database's words name only the table; say what the masked writer may do.
      message +=
        ' (Your statements run as the masked writer: it may write and read only the columns that ' +
        'are not masked for you, so it cannot put a value into a masked column or compare one. A ' +
        'principal with view_unmasked can.)';
    }
    if (err.statusCode < 500) err.message = message;
    scrubCause(err, redact);
    const failedMs = Date.now() - started;
    await markFailed(deps, record, err.code, message, failedMs, [
      trailEvent(deps, record, 'error', {
        status: 'failed',
        durationMs: failedMs,
        detail: { code: err.code, message: deps.maskerFor(record.target).maskText(message).text },
      }),
    ]);
    throw Object.assign(err, { requestId: record.id });
  }
  const durationMs = Date.now() - started;

  const masker = deps.maskerFor(record.target);
  // The second layer: rules and detectors over what the masking views already masked.
  const masked = masker.maskRows(result.columns, result.rows, { maskedAtSource: profile === 'masked' });
  const summary: MaskingSummary = unmasked ? { byType: {}, unmasked: true } : { byType: masked.byType };
  const body: SqlResultBody = {
    columns: result.columns.map(publicColumn),
    rows: unmasked ? [...result.rows] : masked.rows,
    truncated: result.truncated,
    rowCount: result.rowCount,
    masking: summary,
  };

  // The record only ever holds the masked form, whoever asked, bounded in size.
  const excerpt = masked.rows.slice(0, deps.config.recordedRows);
  const updated: RequestRecord = {
    ...record,
    status: 'executed',
    updatedAt: deps.clock.now().toISOString(),
    result: {
      columns: body.columns,
      rows: excerpt,
      truncated: result.truncated || excerpt.length < masked.rows.length,
      rowCount: result.rowCount,
    },
    masking: { byType: masked.byType, ...(unmasked ? { unmasked: true } : {}) },
    rowCount: result.rowCount,
    durationMs,
    version: record.version + 1,
  };
  // The one write after execution: the outcome and its trail events together.
  const stored = await recordOutcome(deps, updated, record.version, [
    trailEvent(deps, updated, 'execution_finished', {
      status: 'executed',
      rowCount: result.rowCount,
      durationMs,
      unmasked,
    }),
    trailEvent(deps, updated, 'result', {
      rowCount: result.rowCount,
      unmasked,
      detail: {
        columns: body.columns,
        // The trail is read by auditors: rows read with view_unmasked stay out of it (the record
        // keeps them for the requester); masked rows are kept.
        ...(unmasked
          ? { rows: [], withheld: RESULT_WITHHELD }
          : { rows: excerpt.slice(0, TRAIL_RESULT_ROWS) }),
        truncated: result.truncated || excerpt.length > TRAIL_RESULT_ROWS,
        masking: masked.byType,
      },
    }),
  ]);
  return { stored, body };
}

/**
 * A read runs once, bounded: a single SELECT is wrapped in `LIMIT maxRows + 1`, so the database
 * stops after one row more than is returned (that row only tells `truncated`). It is never re-run
 * smaller; if even the bounded rows exceed the Data API's 1 MiB, the answer is 422 result_too_large.
 * Reads run as the read-only user, so wrapping cannot change what they do; a write is never wrapped.
 * A read that cannot be wrapped (EXPLAIN, SHOW) runs as sent, and `maxRows` is applied after.
 */
export function boundedRead(sql: string, maxRows: number): string {
  const body = boundableReadBody(sql);
  return body === undefined ? sql : `SELECT * FROM (\n${body}\n) AS warden_bounded LIMIT ${maxRows + 1}`;
}

/**
 * The cause of an execution error is logged for a 5xx (middleware/http.ts); it is the driver's or
 * the SDK's error, which quotes values. Keep only its redacted text.
 */
export function scrubCause(err: Error, redact: (text: string) => string): void {
  if (err.cause === undefined) return;
  const text = err.cause instanceof Error ? `${err.cause.name}: ${err.cause.message}` : String(err.cause);
  Object.defineProperty(err, 'cause', { value: redact(text), writable: true, configurable: true });
}

/** Rows of a result kept in the trail: enough to see what the agent saw, bounded in size. */
const TRAIL_RESULT_ROWS = 5;

function publicColumn(c: ColumnInfo): { name: string; type: string } {
  return { name: c.name, type: c.type };
}

/**
 * Writes a run's outcome and its trail events (one atomic write), retried a little. The statement
 * has run and its start is recorded, so a write that still fails is logged loudly, not thrown.
 */
export async function recordOutcome(
  deps: Pick<RequestDeps, 'requests' | 'trail' | 'log'>,
  next: RequestRecord,
  expectedVersion: number,
  events: TrailEvent[],
): Promise<RequestRecord> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await deps.requests.update(next, expectedVersion, undefined, deps.trail ? events : undefined);
    } catch (error) {
      if (error instanceof ConditionFailedError) {
        // Someone else changed the record (it is no longer this run's to write): keep the events.
        deps.log?.({
          level: 'error',
          msg: 'outcome write refused',
          requestId: next.id,
          error: String(error),
        });
        await appendTrail(deps, next, events);
        return next;
      }
      if (attempt >= 2) {
        deps.log?.({ level: 'error', msg: 'outcome write failed', requestId: next.id, error: String(error) });
        return next;
      }
      await new Promise((r) => setTimeout(r, 25 * (attempt + 1)));
    }
  }
}

/** Records a request as failed (with its trail events in the same write, when given). */
export async function markFailed(
  deps: Pick<RequestDeps, 'requests' | 'clock' | 'log' | 'trail'>,
  record: RequestRecord,
  code: string,
  message: string,
  durationMs?: number,
  events?: TrailEvent[],
): Promise<void> {
  const failed: RequestRecord = {
    ...record,
    status: 'failed',
    updatedAt: deps.clock.now().toISOString(),
    error: { code, message },
    ...(durationMs !== undefined ? { durationMs } : {}),
    version: record.version + 1,
  };
  if (events && deps.trail) {
    await recordOutcome(deps, failed, record.version, events);
    return;
  }
  try {
    await deps.requests.update(failed, record.version);
  } catch (error) {
    deps.log?.({ level: 'error', msg: 'failure write failed', requestId: record.id, error: String(error) });
  }
}

/** What stands for a result read with view_unmasked, for a viewer without it: its shape, no values. */
export const RESULT_WITHHELD =
  'read with view_unmasked: its values are shown only to the requester and to others allowed view_unmasked';

function withheldResult(result: RequestRecord['result']): unknown {
  if (!result || typeof result !== 'object') return result;
  const { rows: _rows, output: _output, ...shape } = result as Record<string, unknown>;
  return { ...shape, rows: [], withheld: RESULT_WITHHELD };
}

function viewerMayViewUnmasked(
  engine: PolicyEngine,
  config: WardenConfig,
  viewer: Principal,
  record: RequestRecord,
): boolean {
  const target = config.targets[record.target];
  if (!target) return false;
  if (target.kind === 'sql') {
    const tables = (record.classification as { tables?: readonly string[] } | undefined)?.tables ?? [];
    return mayViewUnmasked(engine, viewer, record.target, tables);
  }
  return engine.authorize(viewer, 'view_unmasked', targetRef(record.target, target), {}).allowed;
}

/**
 * What the requester (or an auditor, or an approver) sees of a request. `operationForm` says
 * whether `operation` and `justification` are the exact ones or the shown (masked) ones.
 */
export function requestView(
  record: RequestRecord,
  exact?: SealedPayload,
  options: { withholdResult?: boolean } = {},
): Record<string, unknown> {
  return {
    requestId: record.id,
    target: record.target,
    principal: record.principalName,
    principalType: record.principalType,
    ...(record.onBehalfOf ? { onBehalfOf: record.onBehalfOf.name } : {}),
    sessionId: record.sessionId,
    status: record.status,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    operation: exact ? exact.operation : record.operation,
    operationForm: exact ? 'exact' : 'shown',
    justification: exact ? exact.justification : record.justification,
    classification: record.classification,
    decision: publicDecision(record.decision),
    expiresAt: record.expiresAt,
    requiredApprovals: record.requiredApprovals,
    votes: record.votes,
    decidedBy: record.decidedBy,
    decidedAt: record.decidedAt,
    result: options.withholdResult ? withheldResult(record.result) : record.result,
    masking: record.masking,
    rowCount: record.rowCount,
    durationMs: record.durationMs,
    error: record.error,
  };
}

/**
 * One request, for its requester, auditors and approvers of its target (404 for anyone else).
 * Everyone sees the shown form, except while a request waits for approval with a sealed exact
 * form: then the requester and those who may approve it see the exact one they must read.
 */
export async function getRequest(
  deps: Pick<RequestDeps, 'requests' | 'policies' | 'sealer' | 'config'>,
  principal: Principal,
  id: string,
): Promise<Record<string, unknown>> {
  if (!/^r_[A-Za-z0-9_-]{10,40}$/.test(id)) throw new NotFoundError(`unknown request "${id.slice(0, 64)}"`);
  const record = await deps.requests.get(id);
  if (!record) throw new NotFoundError(`unknown request "${id}"`);
  const own = record.principal === principalKey(principal);
  let approver = false;
  const engine = await deps.policies.engine();
  if (!own) {
    const auditor = engine.authorize(principal, 'audit', { type: 'Gateway', id: 'warden' }, {}).allowed;
    approver = approverOn(engine, deps.config, principal, record.target);
    if (!auditor && !approver) throw new NotFoundError(`unknown request "${id}"`);
  }
  // A result read with view_unmasked is raw by design (functions of sensitive columns included,
  // which no detector can recognise): only the requester and others allowed view_unmasked see it.
  // The viewer is held to the rule that lifted masking for the requester.
  const withholdResult =
    !own &&
    record.masking?.unmasked === true &&
    record.result !== undefined &&
    !viewerMayViewUnmasked(engine, deps.config, principal, record);
  if (withholdResult) return requestView(record, undefined, { withholdResult });
  const entitled = own || (approver && record.status === 'pending_approval');
  if (entitled && record.sealed && deps.sealer) {
    try {
      return requestView(record, await exactOf(deps, record));
    } catch {
      // An unreadable seal shows the shown form; the request itself will refuse to run.
    }
  }
  return requestView(record);
}

/**
 * The governed AWS call: classify (IAM action, access level, ARNs) → decide (Cedar) → record →
 * assume the target's role with a session policy naming exactly this call → mask → record the outcome.
 * Core only: STS and the service clients sit behind the AwsExecutor port.
 */
import { classifyAws, partitionOf, UnsupportedAwsCallError, type AwsPlan } from './classify/aws.js';
import { redactAwsMessage } from './aws-error-redaction.js';
import type { AwsTargetConfig } from './config.js';
import {
  BadRequestError,
  ConflictError,
  ExecutionError,
  NotFoundError,
  PolicyDeniedError,
  WardenError,
} from './errors.js';
import type { PolicyEngine } from './policy.js';
import { traceRefusals } from './refusals.js';
import {
  appendTrail,
  canSeeTarget,
  findTarget,
  markFailed,
  newRequestRecord,
  scrubCause,
  pendingBody,
  startApprovalWorkflow,
  operationContext,
  publicDecision,
  recordBeforeRunning,
  RESULT_WITHHELD,
  runInExecuteFunction,
  targetRef,
  trailEvent,
  type CallMeta,
  type PendingBody,
  type PublicDecision,
  type RequestDeps,
} from './requests.js';
import {
  buildSessionPolicy,
  SESSION_DURATION_SECONDS,
  SESSION_POLICY_MAX_CHARS,
  sessionIdentity,
  sessionPolicyJson,
  type SessionIdentity,
  type SessionPolicy,
} from './session-policy.js';
import {
  denialReason,
  principalFromRecord,
  type AwsClassification,
  type AwsOperation,
  type Operation,
  type Decision,
  type MaskingSummary,
  type Principal,
  type RequestRecord,
} from './types.js';

/** One AWS call as the executor makes it: assume `roleArn` with `sessionPolicy`, then call. */
export interface AwsCall {
  readonly roleArn: string;
  readonly region: string;
  readonly service: string;
  readonly action: string;
  readonly input: Readonly<Record<string, unknown>>;
  /** The inline session policy, as JSON. */
  readonly sessionPolicy: string;
  readonly durationSeconds: number;
  readonly identity: SessionIdentity;
  /** Bytes of a streamed body (S3 GetObject) read before `truncated: true`. */
  readonly maxBodyBytes: number;
  /**
   * Whether the SDK may send the call again after a throttle, a 5xx or a dropped connection. Only
   * for reads: a write whose answer was lost may have run, and sending it again could run it twice
   * (an UpdateItem that adds, a SendMessage); such a call fails once and the request is recorded
   * as failed, outcome unknown. A write the service refused for its rate (a throttling error: it
   * did not run) is sent once more.
   */
  readonly retry: boolean;
}

export interface AwsCallResult {
  /** The service's output without `$metadata`, in plain JSON (bytes decoded as text). */
  readonly output: unknown;
  readonly truncated: boolean;
}

export interface AwsExecutor {
  /**
   * Checks, without calling AWS, that the service's SDK has the operation and that the input fits
   * its model (member names and types). Throws BadRequestError naming the offending path.
   */
  check(service: string, action: string, input: Readonly<Record<string, unknown>>): Promise<void>;
  /** Throws WardenError with AWS's code and message mapped to a 4xx/5xx. */
  call(call: AwsCall): Promise<AwsCallResult>;
}

export interface AwsRequestDeps extends RequestDeps {
  readonly aws: AwsExecutor;
}

export interface AwsSubmission {
  readonly service: string;
  readonly action: string;
  readonly input: Record<string, unknown>;
  readonly region?: string;
  readonly justification?: string;
}

export interface AwsResultBody {
  service: string;
  action: string;
  region: string;
  output: unknown;
  truncated: boolean;
  masking: MaskingSummary;
}

export type AwsSubmitOutcome =
  | {
      status: 200;
      record: RequestRecord;
      body: { requestId: string; status: 'executed'; decision: PublicDecision; result: AwsResultBody };
    }
  | { status: 202; record: RequestRecord; body: PendingBody };

/** Bytes of an S3 object (or other streamed body) returned to the agent. */
const MAX_BODY_BYTES = 1024 * 1024;
/** The request record keeps a masked excerpt of the output, bounded to fit a DynamoDB item. */
const RECORDED_OUTPUT_CHARS = 32 * 1024;
const TRAIL_OUTPUT_CHARS = 2 * 1024;

/** Everything decided before anything is recorded: region, plan, session policy, Cedar's decision. */
interface Prepared {
  readonly target: AwsTargetConfig;
  readonly region: string;
  readonly plan: AwsPlan;
  readonly policy: SessionPolicy;
  readonly decision: Decision;
  readonly grants: string[];
}

class AwsCallRefusedError extends WardenError {
  constructor(code: string, message: string) {
    super(403, code, message);
  }
}

async function prepare(
  deps: AwsRequestDeps,
  engine: PolicyEngine,
  principal: Principal,
  targetName: string,
  target: AwsTargetConfig,
  body: AwsSubmission,
): Promise<Prepared> {
  const region = body.region ?? target.regions[0];
  if (!target.regions.includes(region)) {
    throw new AwsCallRefusedError(
      'region_not_allowed',
      `region ${region} is not allowed on target "${targetName}" (allowed: ${target.regions.join(', ')})`,
    );
  }
  const service = body.service.toLowerCase();
  if (!target.services.map((s) => s.toLowerCase()).includes(service)) {
    throw new AwsCallRefusedError(
      'service_not_allowed',
      `service "${body.service}" is not allowed on target "${targetName}" (allowed: ${target.services.join(', ')})`,
    );
  }
  const plan = await classifyAws(
    { service, action: body.action, input: body.input },
    { partition: partitionOf(target.roleArn), account: target.account, region },
  );
  await deps.aws.check(service, body.action, body.input);
  const policy = buildSessionPolicy(plan);
  const size = sessionPolicyJson(policy).length;
  if (size > SESSION_POLICY_MAX_CHARS) {
    throw new BadRequestError(
      `the session policy for this call would be ${size} characters; STS allows ${SESSION_POLICY_MAX_CHARS}. Name fewer resources per request`,
    );
  }
  const now = deps.clock.now();
  const action = `aws:${plan.classification.class}`;
  const grants =
    deps.grants && engine.usesGrants(action)
      ? await deps.grants.activeGrants(principal, targetName, now)
      : [];
  const decision = engine.decideOperation(
    principal,
    action,
    targetRef(targetName, target),
    operationContext(plan.classification, body.justification, grants, now, region),
  );
  return { target, region, plan, policy, decision, grants };
}

export async function submitAws(
  deps: AwsRequestDeps,
  principal: Principal,
  targetName: string,
  body: AwsSubmission,
  meta: CallMeta,
): Promise<AwsSubmitOutcome> {
  const statement = () => `${body.service}:${body.action} ${JSON.stringify(body.input)}`;
  return traceRefusals(deps, { principal, sessionId: meta.sessionId, target: targetName, statement }, () =>
    submitAwsRecorded(deps, principal, targetName, body, meta),
  );
}

async function submitAwsRecorded(
  deps: AwsRequestDeps,
  principal: Principal,
  targetName: string,
  body: AwsSubmission,
  meta: CallMeta,
): Promise<AwsSubmitOutcome> {
  const target = findTarget(deps.config, targetName, 'aws') as AwsTargetConfig;
  const engine = await deps.policies.engine();
  if (!canSeeTarget(engine, principal, targetName, target)) {
    throw new NotFoundError(`unknown target "${targetName}"`);
  }
  const operation: AwsOperation = {
    kind: 'aws',
    service: body.service,
    action: body.action,
    input: body.input,
    region: body.region ?? target.regions[0],
  };

  let prepared: Prepared;
  try {
    prepared = await prepare(deps, engine, principal, targetName, target, body);
  } catch (error) {
    if (!(error instanceof UnsupportedAwsCallError || error instanceof AwsCallRefusedError)) throw error;
    // Refused before Cedar (fail closed): recorded as denied, so refusals are audited too. The
    // message may name parts of the input (a key it could not place): detectors before it is kept.
    error.message = deps.maskerFor(targetName).maskText(error.message).text;
    const decision: Decision = {
      outcome: 'deny',
      action: 'aws:unsupported',
      determiningPolicies: [],
      errors: [error.message],
      policyVersion: engine.version,
    };
    const record = newRequestRecord(deps, principal, targetName, target, meta, decision, {
      operation,
      justification: body.justification,
    });
    await recordBeforeRunning(deps, record);
    throw Object.assign(error, { requestId: record.id });
  }

  const { plan, decision } = prepared;
  const exact: AwsOperation = { ...operation, region: prepared.region };
  const record = newRequestRecord(deps, principal, targetName, target, meta, decision, {
    operation: exact,
    justification: body.justification,
    classification: plan.classification,
  });
  await recordBeforeRunning(deps, record, { exact: { operation: exact, justification: body.justification } });

  if (decision.outcome === 'deny') {
    const action = decision.action;
    throw Object.assign(
      new PolicyDeniedError(
        `${action} (${plan.classification.iamAction}) on target "${targetName}" ${denialReason(decision)}`,
        { decision: publicDecision(decision), classification: plan.classification },
      ),
      { requestId: record.id },
    );
  }

  if (decision.outcome === 'approval_required') {
    await startApprovalWorkflow(deps, record, 'nothing was run');
    return { status: 202, record, body: pendingBody(record, target) };
  }

  // Only the execute function assumes target roles (the API function dispatches there).
  const { stored, body: result } = deps.dispatch
    ? await runInExecuteFunction<AwsResultBody>(
        deps,
        record,
        { operation: exact, justification: body.justification },
        meta,
      )
    : await executeAws(deps, record, principal, exact);
  return {
    status: 200,
    record: stored,
    body: { requestId: record.id, status: 'executed', decision: publicDecision(decision), result },
  };
}

/**
 * Runs a recorded AWS request (status `running`, or `approved` from the approval workflow): the
 * call is re-derived from the recorded operation and must classify exactly as recorded, so what
 * runs is what was decided. Marks the record executed or failed, with trail events.
 */
export async function executeAws(
  deps: AwsRequestDeps,
  record: RequestRecord,
  principal: Principal = principalFromRecord(record),
  /** The exact call (the record holds its shown form). @default the record's operation */
  exact: Operation = record.operation,
): Promise<{ stored: RequestRecord; body: AwsResultBody }> {
  const op = exact;
  if (op.kind !== 'aws') throw new Error('not an AWS request');
  const target = findTarget(deps.config, record.target, 'aws') as AwsTargetConfig;
  const region = op.region ?? target.regions[0];
  const recorded = record.classification;

  let plan: AwsPlan;
  try {
    if (!target.regions.includes(region)) throw new Error(`region ${region} is no longer allowed`);
    plan = await classifyAws(
      { service: op.service.toLowerCase(), action: op.action, input: op.input },
      { partition: partitionOf(target.roleArn), account: target.account, region },
    );
    const same =
      recorded?.kind === 'aws' &&
      recorded.iamAction === plan.classification.iamAction &&
      JSON.stringify(recorded.resources) === JSON.stringify(plan.classification.resources);
    if (!same) throw new Error('the call no longer classifies as recorded');
  } catch (cause) {
    await markFailed(
      deps,
      record,
      'classification_changed',
      'the call no longer classifies as it was decided',
    );
    throw Object.assign(
      new ConflictError(
        'classification_changed',
        'the call no longer classifies as it was decided; nothing was run',
      ),
      { requestId: record.id, cause },
    );
  }

  const policy = sessionPolicyJson(buildSessionPolicy(plan));
  await appendTrail(deps, record, [
    trailEvent(deps, record, 'execution_started', {
      status: 'running',
      detail: { roleArn: target.roleArn, region, sessionPolicy: policy },
    }),
  ]);
  const started = Date.now();
  let result: AwsCallResult;
  try {
    result = await deps.aws.call({
      roleArn: target.roleArn,
      region,
      service: plan.classification.service,
      action: op.action,
      input: op.input,
      sessionPolicy: policy,
      durationSeconds: SESSION_DURATION_SECONDS,
      identity: sessionIdentity(principal, record.id, record.target),
      maxBodyBytes: MAX_BODY_BYTES,
      retry: plan.classification.class === 'read',
    });
  } catch (error) {
    const err =
      error instanceof WardenError ? error : new ExecutionError(502, 'aws_error', 'the AWS call failed');
    // AWS error messages echo input (`…numeric value: <v>`): never past redaction and masking, in
    // the answer (4xx and 5xx alike show it), the record, the trail or the log of the cause.
    const masker = deps.maskerFor(record.target);
    const redact = (text: string) => redactAwsMessage(text, (t) => masker.maskText(t).text);
    err.message = redact(err.message);
    scrubCause(err, redact);
    await markFailed(deps, record, err.code, err.message, Date.now() - started);
    await appendTrail(deps, record, [
      trailEvent(deps, record, 'error', {
        status: 'failed',
        detail: { code: err.code, message: err.message },
      }),
    ]);
    throw Object.assign(err, { requestId: record.id });
  }
  const durationMs = Date.now() - started;

  const engine = await deps.policies.engine();
  const masked = deps.maskerFor(record.target).maskValue(result.output);
  const unmasked = engine.authorize(principal, 'view_unmasked', targetRef(record.target, target), {}).allowed;
  const body: AwsResultBody = {
    service: plan.classification.service,
    action: op.action,
    region,
    output: unmasked ? result.output : masked.value,
    truncated: result.truncated,
    masking: unmasked ? { byType: {}, unmasked: true } : { byType: masked.byType },
  };

  // The record only ever holds the masked form, whoever asked, bounded in size.
  const maskedJson = JSON.stringify(masked.value) ?? 'null';
  const fits = maskedJson.length <= RECORDED_OUTPUT_CHARS;
  const updated: RequestRecord = {
    ...record,
    status: 'executed',
    updatedAt: deps.clock.now().toISOString(),
    result: {
      service: body.service,
      action: body.action,
      region,
      ...(fits ? { output: masked.value } : { outputExcerpt: maskedJson.slice(0, RECORDED_OUTPUT_CHARS) }),
      truncated: result.truncated || !fits,
    },
    masking: { byType: masked.byType, ...(unmasked ? { unmasked: true } : {}) },
    durationMs,
    version: record.version + 1,
  };
  let stored = updated;
  try {
    stored = await deps.requests.update(updated, record.version);
  } catch (error) {
    // The call ran and its start is recorded; the outcome write is what failed. Say so loudly.
    deps.log?.({ level: 'error', msg: 'outcome write failed', requestId: record.id, error: String(error) });
  }
  await appendTrail(deps, updated, [
    trailEvent(deps, updated, 'execution_finished', { status: 'executed', durationMs, unmasked }),
    trailEvent(deps, updated, 'result', {
      unmasked,
      detail: {
        // Output read with view_unmasked stays out of the trail auditors read (see requests.ts).
        ...(unmasked ? { withheld: RESULT_WITHHELD } : {}),
        output: unmasked ? '' : maskedJson.slice(0, TRAIL_OUTPUT_CHARS),
        truncated: result.truncated || maskedJson.length > TRAIL_OUTPUT_CHARS,
        masking: masked.byType,
      },
    }),
  ]);
  return { stored, body };
}

export interface AwsExplanation {
  target: string;
  classification: AwsClassification;
  decision: PublicDecision;
  execution: {
    roleArn: string;
    region: string;
    durationSeconds: number;
    sourceIdentity: string;
    sessionTags: string[];
    sessionPolicy: SessionPolicy;
  } | null;
  grants: string[];
}

/** What `/explain` answers for an AWS body: classification, decision and the session policy; runs nothing. */
export async function explainAws(
  deps: AwsRequestDeps,
  principal: Principal,
  targetName: string,
  body: AwsSubmission,
): Promise<AwsExplanation> {
  const target = findTarget(deps.config, targetName);
  if (target.kind !== 'aws') throw new NotFoundError(`target "${targetName}" does not take AWS calls`);
  const engine = await deps.policies.engine();
  if (!canSeeTarget(engine, principal, targetName, target)) {
    throw new NotFoundError(`unknown target "${targetName}"`);
  }
  const p = await prepare(deps, engine, principal, targetName, target, body);
  const identity = sessionIdentity(principal, 'r_explain', targetName);
  return {
    target: targetName,
    classification: p.plan.classification,
    decision: publicDecision(p.decision),
    execution:
      p.decision.outcome === 'deny'
        ? null
        : {
            roleArn: target.roleArn,
            region: p.region,
            durationSeconds: SESSION_DURATION_SECONDS,
            sourceIdentity: identity.sourceIdentity,
            sessionTags: identity.tags.map((t) => t.Key),
            sessionPolicy: p.policy,
          },
    grants: p.grants,
  };
}

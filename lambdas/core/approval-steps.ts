/**
 * The two steps of the approval workflow, in core: Notify (store the task token server-side, tell
 * the approvers) and Execute (run exactly what was approved, once; or record denied / expired /
 * failed). The Step Functions definition decides which step runs when; these decide what it does.
 */
import { executeAws, type AwsExecutor } from './aws-requests.js';
import { approvedMcpDecision, executeMcp, type ToolPinStore, type UpstreamMcp } from './mcp-upstream.js';
import { randomBytes } from 'node:crypto';
import { approvalView, decisionOutput, statementText, type ApprovalDeps } from './approvals.js';
import type { SqlTargetConfig } from './config.js';
import { ConditionFailedError } from './errors.js';
import type { SealedPayload } from './sealing.js';
import { MAX_GRANT_SECONDS, newGrantId, type Grant, type GrantStore } from './grants.js';
import { buildApprovalMessage, type ApprovalMessage } from './notification-content.js';
import {
  appendTrail,
  exactOf,
  executeSql,
  findTarget,
  maskedStatement,
  markFailed,
  operationContext,
  targetRef,
  trailEvent,
  type RequestDeps,
} from './requests.js';
import type { RequestRecord, RequestStatus, SqlClassification } from './types.js';
import { principalFromRecord } from './types.js';

export interface NotifyEvent {
  readonly requestId: string;
  readonly taskToken: string;
  readonly approvalWindowSeconds: number;
}

export type ExecuteMode = 'execute' | 'deny' | 'expire' | 'fail';

export interface ExecuteEvent {
  readonly requestId: string;
  readonly mode: ExecuteMode;
  /** Step Functions' error object from a Catch (`{ Error, Cause }`). */
  readonly error?: { Error?: string; Cause?: string };
}

export interface DeliveryResult {
  readonly channel: string;
  readonly ok: boolean;
  readonly detail?: string;
}

/** The notification port; lambdas/adapters/notifications.ts implements it. */
export interface ApprovalNotifier {
  send(
    message: ApprovalMessage,
    to: { slackChannel?: string; emails: readonly string[] },
  ): Promise<DeliveryResult[]>;
}

export type StepDeps = RequestDeps &
  ApprovalDeps & {
    readonly grantStore?: GrantStore;
    readonly publicUrl?: string;
    /** Present where AWS targets are configured: runs approved AWS calls. */
    readonly aws?: AwsExecutor;
    /** Present where MCP targets are configured: sends approved upstream tool calls. */
    readonly upstream?: UpstreamMcp;
    readonly pins?: ToolPinStore;
  };

/** Thrown to end the execution in `Failed`; the record already says why. */
export class WorkflowStepError extends Error {
  constructor(
    readonly errorType: string,
    message: string,
  ) {
    super(message);
    this.name = errorType;
  }
}

async function requireRecord(deps: Pick<StepDeps, 'requests'>, requestId: string): Promise<RequestRecord> {
  const record = await deps.requests.get(requestId);
  if (!record) throw new WorkflowStepError('Warden.UnknownRequest', `no request ${requestId}`);
  return record;
}

/**
 * Notify: keeps the task token in the Approvals table under an opaque id (the link carries only the
 * request id), records `approval_requested`, then tells the approvers. A request decided before the
 * token was stored (a very fast approver) is answered here, so it never waits for its timeout.
 */
export async function onNotify(
  deps: StepDeps,
  notifier: ApprovalNotifier,
  event: NotifyEvent,
): Promise<{ approvalId: string; deliveries: readonly DeliveryResult[] }> {
  const record = await requireRecord(deps, event.requestId);
  const now = deps.clock.now();
  const approvalId = `a_${randomBytes(18).toString('base64url')}`;
  await deps.approvalHandles.put({
    approvalId,
    requestId: record.id,
    taskToken: event.taskToken,
    createdAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + event.approvalWindowSeconds * 1000).toISOString(),
  });

  const decided = decisionOutput(record);
  if (decided) {
    await deps.workflow.sendTaskSuccess(event.taskToken, { ...decided, requestId: record.id });
    return { approvalId, deliveries: [] };
  }
  if (record.status !== 'pending_approval') {
    await deps.workflow.sendTaskFailure(
      event.taskToken,
      'Warden.NotPending',
      `the request is ${record.status}`,
    );
    return { approvalId, deliveries: [] };
  }

  const target = Object.hasOwn(deps.config.targets, record.target)
    ? deps.config.targets[record.target]
    : undefined;
  await appendTrail(deps, record, [
    trailEvent(deps, record, 'approval_requested', {
      statement: maskedStatement(deps, record),
      detail: {
        expiresAt: record.expiresAt,
        requiredApprovals: record.requiredApprovals ?? 1,
        approverGroups: target?.approvals.approverGroups ?? [],
      },
    }),
  ]);

  const masker = deps.maskerFor(record.target);
  const base = (deps.publicUrl ?? '').replace(/\/$/, '');
  const message = buildApprovalMessage({
    view: approvalView(record),
    statement: masker.maskText(statementText(record.operation)).text,
    ...(record.justification ? { justification: masker.maskText(record.justification).text } : {}),
    reviewUrl: `${base}/approve/${record.id}`,
  });
  // A notification failing must not fail the request: it still waits, listed in GET /v1/approvals.
  const deliveries = await notifier.send(message, {
    ...(target?.approvals.slackChannel ? { slackChannel: target.approvals.slackChannel } : {}),
    emails: target?.approvals.emails ?? [],
  });
  deps.log?.({
    level: 'info',
    msg: 'approval requested',
    requestId: record.id,
    reviewUrl: message.reviewUrl,
    deliveries,
  });
  return { approvalId, deliveries };
}

/** Moves the record to a terminal status if it is still in one of `from`; first writer wins. */
async function transition(
  deps: StepDeps,
  record: RequestRecord,
  from: readonly RequestStatus[],
  patch: Partial<RequestRecord> & { status: RequestStatus },
): Promise<RequestRecord | undefined> {
  if (!from.includes(record.status)) return undefined;
  const next: RequestRecord = {
    ...record,
    ...patch,
    updatedAt: deps.clock.now().toISOString(),
    version: record.version + 1,
  };
  try {
    return await deps.requests.update(next, record.version, from);
  } catch (error) {
    if (error instanceof ConditionFailedError) return undefined;
    throw error;
  }
}

export interface StepResult {
  readonly requestId: string;
  readonly status: RequestStatus;
  /** True when this invocation changed nothing (the record was already past this step). */
  readonly unchanged?: boolean;
}

/** Execute (and the Record denied / expired / failure steps): idempotent, and never runs twice. */
export async function onExecute(deps: StepDeps, event: ExecuteEvent): Promise<StepResult> {
  const record = await requireRecord(deps, event.requestId);
  switch (event.mode) {
    case 'execute':
      return runApproved(deps, record);
    case 'deny': {
      const now = deps.clock.now().toISOString();
      const stored = await transition(deps, record, ['pending_approval'], {
        status: 'denied',
        decidedBy: record.decidedBy ?? 'unknown',
        decidedAt: record.decidedAt ?? now,
      });
      return { requestId: record.id, status: stored?.status ?? record.status, unchanged: !stored };
    }
    case 'expire': {
      const now = deps.clock.now().toISOString();
      // An approval whose callback never arrived also ends here: it did not run, so it expired.
      const stored = await transition(deps, record, ['pending_approval', 'approved'], {
        status: 'expired',
        decidedBy: 'warden',
        decidedAt: now,
      });
      if (stored) {
        await appendTrail(deps, stored, [
          trailEvent(deps, stored, 'approval_decided', {
            outcome: 'expired',
            status: 'expired',
            detail: { expiresAt: record.expiresAt },
          }),
        ]);
      }
      return { requestId: record.id, status: stored?.status ?? record.status, unchanged: !stored };
    }
    case 'fail': {
      const code = safeErrorName(event.error?.Error);
      const stored = await transition(deps, record, ['pending_approval', 'approved', 'running'], {
        status: 'failed',
        error: {
          code: 'workflow_failed',
          message:
            record.status === 'running'
              ? `the execution step failed (${code}); the statement may or may not have run`
              : `the approval workflow failed (${code}); nothing was run`,
        },
      });
      if (stored) {
        await appendTrail(deps, stored, [
          trailEvent(deps, stored, 'error', {
            status: 'failed',
            detail: { code: 'workflow_failed', error: code },
          }),
        ]);
      }
      return { requestId: record.id, status: stored?.status ?? record.status, unchanged: !stored };
    }
  }
}

function safeErrorName(name: string | undefined): string {
  return name && /^[A-Za-z0-9_.:-]{1,100}$/.test(name) ? name : 'unknown error';
}

async function runApproved(deps: StepDeps, record: RequestRecord): Promise<StepResult> {
  if (record.status === 'running' || record.status === 'executed' || record.status === 'failed') {
    return { requestId: record.id, status: record.status, unchanged: true };
  }
  if (record.status !== 'approved') {
    throw new WorkflowStepError(
      'Warden.NotApproved',
      `request ${record.id} is ${record.status}, not approved`,
    );
  }
  // The one gate against running twice: approved → running, conditionally. A duplicate invocation
  // (or a racing retry) finds it running and does nothing.
  const running = await transition(deps, record, ['approved'], { status: 'running' });
  if (!running) {
    const now = await requireRecord(deps, record.id);
    return { requestId: record.id, status: now.status, unchanged: true };
  }

  const principal = principalFromRecord(running);
  const engine = await deps.policies.engine();
  const now = deps.clock.now();

  const refuse = async (code: string, message: string): Promise<never> => {
    await markFailed(deps, running, code, message);
    await appendTrail(deps, running, [
      trailEvent(deps, running, 'error', { status: 'failed', detail: { code, message } }),
    ]);
    throw new WorkflowStepError(`Warden.${code}`, message);
  };

  // What runs is the exact form, opened from its seal (the record holds the shown one). A seal that
  // does not open (altered, moved from another request, key unavailable) runs nothing.
  let exact: SealedPayload;
  try {
    exact = await exactOf(deps, running);
  } catch (error) {
    deps.log?.({
      level: 'error',
      msg: 'sealed statement not opened',
      requestId: running.id,
      error: String(error),
    });
    return refuse(
      'sealed_statement_unreadable',
      'the sealed exact statement could not be opened; nothing was run',
    );
  }
  const op = exact.operation;
  const justification = exact.justification;

  if (op.kind === 'sql') {
    const target = findTarget(deps.config, running.target, 'sql') as SqlTargetConfig;
    const stored = running.classification;
    if (!stored || stored.kind !== 'sql')
      return refuse('not_classified', 'the request has no SQL classification');
    // What runs is byte-for-byte the stored statement; classifying it again guards the record itself.
    const fresh = await deps.classifySql(op.sql);
    if (fresh.class !== stored.class) {
      return refuse('classification_changed', `the stored statement now classifies as ${fresh.class}`);
    }
    const grants = deps.grants ? await deps.grants.activeGrants(principal, running.target, now) : [];
    const decision = engine.decideApproved(
      principal,
      running.decision.action,
      targetRef(running.target, target),
      operationContext(stored, justification, grants, now),
    );
    if (decision.outcome !== 'allow') {
      return refuse(
        'policy_denied',
        `policy no longer allows ${running.decision.action} on "${running.target}" even with the approval`,
      );
    }
    try {
      const { stored: done } = await executeSql(
        deps,
        engine,
        principal,
        target,
        running,
        stored as SqlClassification,
        { exact: op },
      );
      return { requestId: done.id, status: done.status };
    } catch (error) {
      // executeSql recorded the failure with the database's message; end the execution Failed.
      throw new WorkflowStepError(
        'Warden.ExecutionFailed',
        error instanceof Error ? error.message : 'failed',
      );
    }
  }

  if (op.kind === 'access') {
    const target = findTarget(deps.config, running.target);
    if (!deps.grantStore) return refuse('grants_unavailable', 'the Grants table is not configured');
    const decision = engine.decideApproved(principal, 'request_access', targetRef(running.target, target), {
      level: op.level,
      durationSeconds: op.durationSeconds,
      justification: justification ?? '',
      hasJustification: Boolean(justification?.trim()),
      now: Math.floor(now.getTime() / 1000),
      hourUtc: now.getUTCHours(),
    });
    if (decision.outcome !== 'allow') {
      return refuse('policy_denied', `policy no longer allows request_access on "${running.target}"`);
    }
    const seconds = Math.min(op.durationSeconds, MAX_GRANT_SECONDS);
    // The grant's time starts when it is issued, not when it was asked for.
    const grant: Grant = {
      grantId: newGrantId(running.principal),
      principal: running.principal,
      principalName: running.principalName,
      target: running.target,
      action: `sql:${op.level}`,
      requestId: running.id,
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + seconds * 1000).toISOString(),
      ...(running.decidedBy ? { approvedBy: running.decidedBy } : {}),
    };
    await deps.grantStore.create(grant);
    const done: RequestRecord = {
      ...running,
      status: 'executed',
      updatedAt: deps.clock.now().toISOString(),
      result: { grantId: grant.grantId, action: grant.action, expiresAt: grant.expiresAt },
      version: running.version + 1,
    };
    await deps.requests.update(done, running.version, ['running']);
    await appendTrail(deps, done, [
      trailEvent(deps, done, 'grant_created', {
        status: 'executed',
        detail: { grantId: grant.grantId, action: grant.action, expiresAt: grant.expiresAt },
      }),
    ]);
    return { requestId: done.id, status: 'executed' };
  }

  if (op.kind === 'aws') {
    if (!deps.aws) return refuse('aws_unavailable', 'this gateway has no AWS executor configured');
    const target = findTarget(deps.config, running.target, 'aws');
    const stored = running.classification;
    if (!stored || stored.kind !== 'aws')
      return refuse('not_classified', 'the request has no AWS classification');
    const grants = deps.grants ? await deps.grants.activeGrants(principal, running.target, now) : [];
    const decision = engine.decideApproved(
      principal,
      running.decision.action,
      targetRef(running.target, target),
      operationContext(stored, justification, grants, now, op.region),
    );
    if (decision.outcome !== 'allow') {
      return refuse(
        'policy_denied',
        `policy no longer allows ${running.decision.action} on "${running.target}" even with the approval`,
      );
    }
    try {
      // executeAws re-classifies the stored call and refuses if it no longer matches the record.
      const { stored: done } = await executeAws({ ...deps, aws: deps.aws }, running, principal, op);
      return { requestId: done.id, status: done.status };
    } catch (error) {
      throw new WorkflowStepError(
        'Warden.ExecutionFailed',
        error instanceof Error ? error.message : 'failed',
      );
    }
  }

  if (op.kind === 'mcp') {
    if (!deps.upstream || !deps.pins) {
      return refuse('mcp_unavailable', 'this gateway has no upstream MCP client configured');
    }
    const stored = running.classification;
    if (!stored || stored.kind !== 'mcp')
      return refuse('not_classified', 'the request has no MCP classification');
    const grants = deps.grants ? await deps.grants.activeGrants(principal, running.target, now) : [];
    const decision = approvedMcpDecision(engine, principal, running, stored, grants, now, exact);
    if (decision.outcome !== 'allow') {
      return refuse(
        'policy_denied',
        `policy no longer allows ${running.decision.action} on "${running.target}" even with the approval`,
      );
    }
    try {
      // executeMcp checks the tool's definition is still the decided one, then sends the stored arguments.
      const mcpDeps = { ...deps, upstream: deps.upstream, pins: deps.pins };
      const { stored: done } = await executeMcp(mcpDeps, running, principal, { exact: op });
      return { requestId: done.id, status: done.status };
    } catch (error) {
      throw new WorkflowStepError(
        'Warden.ExecutionFailed',
        error instanceof Error ? error.message : 'failed',
      );
    }
  }

  return refuse('not_supported', `requests of kind ${(op as { kind: string }).kind} cannot run`);
}

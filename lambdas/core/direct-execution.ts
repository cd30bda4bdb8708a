/**
 * Allowed writes and allowed AWS calls run in the execute function, not in the internet-facing API
 * function (issue 13 item 14): the API function holds only what a read and a decision need (the
 * read-only database users, no write secret, no target role). It records the request (record and
 * first trail events, one write), then invokes the execute function synchronously with the request
 * id, the caller's token and the exact form. This is the execute function's side.
 *
 * The execute function trusts none of what it is handed. Before anything runs it:
 * 1. verifies the caller's token itself and holds the record to that principal (a record that
 *    names someone else is refused), so a compromised API function cannot run a write as a person
 *    it merely names;
 * 2. requires the record to say what the direct path may run: decided `allow`, status `running`,
 *    never taken by an execution before (a pending, denied, approved or finished request is refused:
 *    approved ones run only from the approval workflow's Execute step);
 * 3. takes it, once: version 1 → 2, conditionally, so a second invocation with the same id runs nothing;
 * 4. checks that the exact form it was handed is the one the record shows (the record's shown form
 *    is derived from it again), so what runs is what the trail recorded;
 * 5. classifies the statement again and decides again with Cedar, with the verified principal;
 * and only then runs it, recording the outcome with the same code as every other path.
 *
 * Every refusal leaves an `error` trail event with code `execution_refused` in the request's
 * session; a refused request that was still waiting for its execution is marked failed, so it can
 * never run later.
 */
import { classifyAws, partitionOf } from './classify/aws.js';
import { executeAws, type AwsExecutor, type AwsResultBody } from './aws-requests.js';
import type { AwsTargetConfig, SqlTargetConfig } from './config.js';
import { ConditionFailedError, WardenError } from './errors.js';
import type { SealedPayload } from './sealing.js';
import { showOperation, showText } from './shown.js';
import {
  appendTrail,
  executeSql,
  findTarget,
  operationContext,
  targetRef,
  trailEvent,
  type RequestDeps,
  type SqlResultBody,
} from './requests.js';
import { principalKey, type Principal, type RequestRecord, type SqlClassification } from './types.js';

/** What the API function sends the execute function for an allowed request (mode `direct`). */
export interface DirectExecution {
  readonly requestId: string;
  /** The caller's bearer token, verified again by the execute function; never stored or logged. */
  readonly token: string;
  /** The exact form (the record holds the shown one). */
  readonly exact: SealedPayload;
}

/** The execute function's answer: the outcome, or the error the caller is to be given. */
export type DirectAnswer =
  | { readonly ok: true; readonly record: RequestRecord; readonly body: SqlResultBody | AwsResultBody }
  | {
      readonly ok: false;
      readonly error: {
        readonly statusCode: number;
        readonly code: string;
        readonly message: string;
        readonly details?: Record<string, unknown>;
      };
    };

export interface DirectDeps extends RequestDeps {
  readonly verifier: { verify(token: string): Promise<{ principal: Principal }> };
  readonly aws?: AwsExecutor;
}

/** Thrown (and answered as a 403) when the execute function refuses a direct execution. */
export class ExecutionRefusedError extends WardenError {
  constructor(message: string) {
    super(403, 'execution_refused', `${message}; nothing was run`);
  }
}

function samePrincipal(record: RequestRecord, principal: Principal): boolean {
  if (record.principal !== principalKey(principal)) return false;
  const recorded = record.onBehalfOf?.key;
  const verified = principal.onBehalfOf ? principalKey(principal.onBehalfOf) : undefined;
  return recorded === verified;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Runs an allowed request the API function recorded, after checking all of the above. */
export async function runDirect(deps: DirectDeps, event: DirectExecution): Promise<DirectAnswer> {
  const record = await deps.requests.get(event.requestId);
  if (!record) {
    deps.log?.({
      level: 'warn',
      msg: 'direct execution of an unknown request refused',
      requestId: event.requestId,
    });
    return answerOf(new ExecutionRefusedError(`no request ${event.requestId}`));
  }
  let claimed: RequestRecord | undefined;
  const refuse = async (reason: string): Promise<DirectAnswer> => {
    const error = new ExecutionRefusedError(reason);
    deps.log?.({ level: 'warn', msg: 'direct execution refused', requestId: record.id, reason });
    const current = claimed ?? record;
    const event = trailEvent(deps, current, 'error', {
      status: current.status === 'running' ? 'failed' : current.status,
      detail: { code: 'execution_refused', message: error.message },
    });
    // A request still waiting for its one execution can never run now: fail it with the event.
    if (current.status === 'running') {
      const failed: RequestRecord = {
        ...current,
        status: 'failed',
        updatedAt: deps.clock.now().toISOString(),
        error: { code: 'execution_refused', message: error.message },
        version: current.version + 1,
      };
      try {
        await deps.requests.update(failed, current.version, ['running'], deps.trail ? [event] : undefined);
        return answerOf(error);
      } catch (cause) {
        if (!(cause instanceof ConditionFailedError)) {
          deps.log?.({
            level: 'error',
            msg: 'refusal write failed',
            requestId: record.id,
            error: String(cause),
          });
        }
      }
    }
    await appendTrail(deps, current, [event]);
    return answerOf(error);
  };

  let principal: Principal;
  try {
    principal = (await deps.verifier.verify(event.token)).principal;
  } catch {
    return refuse("the caller's token did not verify");
  }
  if (!samePrincipal(record, principal)) return refuse('the request was recorded for another principal');
  if (record.decision.outcome !== 'allow') {
    return refuse(`the request was decided ${record.decision.outcome}, not allow`);
  }
  if (record.status !== 'running' || record.version !== 1) {
    return refuse(`the request is ${record.status} and was not waiting for its execution`);
  }

  // The one gate against running twice: version 1 → 2, conditionally, before anything runs.
  try {
    claimed = await deps.requests.update(
      { ...record, updatedAt: deps.clock.now().toISOString(), version: 2 },
      1,
      ['running'],
    );
  } catch (error) {
    if (error instanceof ConditionFailedError) {
      return answerOf(new ExecutionRefusedError('the request was already taken by an execution'));
    }
    throw error;
  }

  const exact = event.exact;
  // Checked against the record, classified and decided again with the verified principal: a check
  // that cannot be made runs nothing.
  let run: (() => Promise<DirectAnswer>) | string;
  try {
    run = await checkAndPlan(deps, claimed, principal, exact);
  } catch (error) {
    deps.log?.({
      level: 'error',
      msg: 'direct execution check failed',
      requestId: record.id,
      error: String(error),
    });
    run = 'the request could not be checked';
  }
  if (typeof run === 'string') return refuse(run);
  try {
    return await run();
  } catch (error) {
    // The execution paths recorded the failure already (record and trail); pass the answer on.
    if (error instanceof WardenError) return answerOf(error);
    throw error;
  }
}

/** The run of a checked request, or why it may not run. */
async function checkAndPlan(
  deps: DirectDeps,
  claimed: RequestRecord,
  principal: Principal,
  exact: SealedPayload,
): Promise<(() => Promise<DirectAnswer>) | string> {
  const target = findTarget(deps.config, claimed.target);
  const masker = deps.maskerFor(claimed.target);
  // The record shows what runs: its shown form is derived again from the exact form handed in.
  const shown = showOperation(exact.operation, { masker, rules: target.masking.rules });
  if (
    !sameJson(shown, claimed.operation) ||
    (showText(exact.justification, masker) ?? '') !== (claimed.justification ?? '')
  ) {
    return 'the statement handed in is not the one the request recorded';
  }
  const engine = await deps.policies.engine();
  const now = deps.clock.now();
  const grants = deps.grants ? await deps.grants.activeGrants(principal, claimed.target, now) : [];
  const op = exact.operation;
  if (op.kind === 'sql' && target.kind === 'sql') {
    const recorded = claimed.classification;
    const fresh = await deps.classifySql(op.sql);
    if (recorded?.kind !== 'sql' || fresh.class !== recorded.class) {
      return 'the statement no longer classifies as recorded';
    }
    const action = `sql:${fresh.class}`;
    if (action !== claimed.decision.action) return 'the statement no longer classifies as decided';
    const decision = engine.decideOperation(
      principal,
      action,
      targetRef(claimed.target, target),
      operationContext(fresh, exact.justification, grants, now),
    );
    if (decision.outcome !== 'allow') return `policy does not allow ${action} on "${claimed.target}" now`;
    return async () => {
      const { stored, body } = await executeSql(
        deps,
        engine,
        principal,
        target as SqlTargetConfig,
        claimed,
        fresh as SqlClassification,
        { startRecorded: true, exact: op },
      );
      return { ok: true, record: stored, body };
    };
  }
  if (op.kind === 'aws' && target.kind === 'aws') {
    const aws = deps.aws;
    if (!aws) return 'this function has no AWS executor';
    if (claimed.classification?.kind !== 'aws') return 'the call has no AWS classification';
    const awsTarget = target as AwsTargetConfig;
    const region = op.region ?? awsTarget.regions[0];
    const plan = await classifyAws(
      { service: op.service.toLowerCase(), action: op.action, input: op.input },
      { partition: partitionOf(awsTarget.roleArn), account: awsTarget.account, region },
    );
    const action = `aws:${plan.classification.class}`;
    if (action !== claimed.decision.action) return 'the call no longer classifies as decided';
    const decision = engine.decideOperation(
      principal,
      action,
      targetRef(claimed.target, target),
      operationContext(plan.classification, exact.justification, grants, now, region),
    );
    if (decision.outcome !== 'allow') return `policy does not allow ${action} on "${claimed.target}" now`;
    return async () => {
      // executeAws classifies again and refuses a call that no longer matches the record.
      const { stored, body } = await executeAws({ ...deps, aws }, claimed, principal, op);
      return { ok: true, record: stored, body };
    };
  }
  return `requests of kind ${op.kind} do not run here`;
}

function answerOf(error: WardenError): DirectAnswer {
  return {
    ok: false,
    error: {
      statusCode: error.statusCode,
      code: error.code,
      message: error.message,
      ...(error.details ? { details: error.details } : {}),
    },
  };
}

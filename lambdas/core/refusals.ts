/**
 * Every request leaves a trail event, refused ones included. A request refused before it has a
 * record (an unparseable statement, bad input, an unknown target or one the caller may not see)
 * gets one `request_refused` event in the caller's session. The caller's answer is not changed: a
 * target they cannot see still gets exactly the answer of a target that does not exist, and no
 * request id, so the trail (auditors only) is the one place that tells them apart.
 *
 * An explain (classify and decide, run nothing) is recorded too: a refused one as above, an
 * answered one as an `explained` event with the decision it revealed, written before the answer
 * is given. An agent asking what policy would decide about statement after statement leaves that
 * trace; if the event cannot be written the explain answers 503 and reveals nothing.
 */
import { ServiceUnavailableError, WardenError } from './errors.js';
import type { TrailEvent, TrailWriter } from './trail.js';
import { trailActor } from './trail.js';
import type { Principal } from './types.js';

export interface RefusalDeps {
  readonly trail?: TrailWriter;
  readonly clock: { now(): Date };
  readonly maskerFor: (target: string) => { maskText(text: string): { text: string } };
  readonly log?: (entry: Record<string, unknown>) => void;
}

export interface RefusalInput {
  readonly principal: Principal;
  readonly sessionId: string;
  /** The target as the caller named it (it may not exist). */
  readonly target: string;
  /** The statement or call as sent, when there was one. */
  readonly statement?: () => string | undefined;
  /** What was asked when it was not a submission: `explain` (classify and decide, run nothing). */
  readonly asked?: 'explain';
}

/** Longest statement kept in a refusal event (a 413 is refused for its size). */
const MAX_STATEMENT_CHARS = 4096;
/** Errors already in the trail: traced once even when two layers wrap the same call. */
const traced = new WeakSet<object>();

/** Runs `run`; a 4xx it throws before a request record exists is appended to the trail first. */
export async function traceRefusals<T>(
  deps: RefusalDeps,
  input: RefusalInput,
  run: () => Promise<T>,
): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (isUnrecordedRefusal(error)) {
      traced.add(error);
      await appendRefusal(deps, input, error);
    }
    throw error;
  }
}

function isUnrecordedRefusal(error: unknown): error is WardenError {
  if (!(error instanceof WardenError) || error.statusCode < 400 || error.statusCode >= 500) return false;
  if (traced.has(error)) return false;
  // A request with a record already wrote its own events (denied requests, failed executions).
  const recorded = (error as { requestId?: unknown }).requestId ?? error.details?.requestId;
  return recorded === undefined;
}

async function appendRefusal(deps: RefusalDeps, input: RefusalInput, error: WardenError): Promise<void> {
  if (!deps.trail) return;
  const mask = (text: string) => deps.maskerFor(input.target).maskText(text).text;
  let statement: string | undefined;
  try {
    statement = input.statement?.();
  } catch {
    statement = undefined;
  }
  const event: TrailEvent = {
    type: 'request_refused',
    at: deps.clock.now().toISOString(),
    ...trailActor(input.principal),
    target: mask(input.target),
    outcome: 'deny',
    status: 'refused',
    ...(statement === undefined ? {} : { statement: mask(statement.slice(0, MAX_STATEMENT_CHARS)) }),
    detail: {
      code: error.code,
      status: error.statusCode,
      message: mask(error.message),
      ...(input.asked ? { asked: input.asked } : {}),
    },
  };
  try {
    await deps.trail.append(input.sessionId, [event]);
  } catch (cause) {
    deps.log?.({ level: 'error', msg: 'trail append of a refusal failed', error: String(cause) });
  }
}

/** What an answered explain revealed: the decision, and how the statement or call was classified. */
export interface Explained {
  readonly decision: {
    readonly outcome: string;
    readonly action: string;
    readonly determiningPolicies: readonly string[];
    readonly policyVersion: string;
  };
  readonly classification: object;
}

/**
 * Runs an explain: a refusal is traced as by traceRefusals (with `asked: 'explain'`), an answer is
 * appended as an `explained` event before it is returned. A failed append fails the explain (503).
 */
export async function traceExplain<T extends Explained>(
  deps: RefusalDeps,
  input: Omit<RefusalInput, 'asked'>,
  run: () => Promise<T>,
): Promise<T> {
  const explained = await traceRefusals(deps, { ...input, asked: 'explain' }, run);
  if (!deps.trail) return explained;
  const mask = (text: string) => deps.maskerFor(input.target).maskText(text).text;
  const statement = input.statement?.();
  const d = explained.decision;
  const event: TrailEvent = {
    type: 'explained',
    at: deps.clock.now().toISOString(),
    ...trailActor(input.principal),
    target: mask(input.target),
    action: d.action,
    outcome: d.outcome,
    ...(statement === undefined ? {} : { statement: mask(statement.slice(0, MAX_STATEMENT_CHARS)) }),
    determiningPolicies: d.determiningPolicies,
    detail: {
      asked: 'explain',
      policyVersion: d.policyVersion,
      // As request_received keeps it: the class, tables, functions or the IAM action, no values.
      classification: explained.classification,
    },
  };
  try {
    await deps.trail.append(input.sessionId, [event]);
  } catch (cause) {
    deps.log?.({ level: 'error', msg: 'trail append of an explain failed', error: String(cause) });
    throw new ServiceUnavailableError('the audit store is unavailable; nothing was explained', cause);
  }
  return explained;
}

/**
 * The session trail: what happened, in order, per session. Events are masked before they get here
 * (no raw PII, no tokens) and the store chains each event's hash to the previous one of its session.
 */
import { principalKey, type Principal, type RequestRecord } from './types.js';

/** The session `warden policy push` records its `policy_pushed` events in. */
export const POLICY_SESSION = 'warden-policy';

/** What a function logs when the policy set it loaded was not made active by `warden policy push`. */
export const UNRECORDED_POLICY_SET = 'active policy set was not recorded by warden policy push';

/**
 * The `policy_pushed` event of a push (session POLICY_SESSION): written in one transaction with the
 * active pointer (DynamoPolicyStore.pushWithTrail) by `warden policy push` and by the local twin's
 * own push of its demo set.
 */
export function policyPushedEvent(push: {
  readonly version: string;
  readonly previousVersion: string | null;
  readonly at: string;
  /** The pusher as the set's `updatedBy` names it. */
  readonly principal: string;
  readonly principalName: string;
  readonly policyIds: readonly string[];
}): TrailEvent {
  return {
    type: 'policy_pushed',
    at: push.at,
    principal: push.principal,
    principalName: push.principalName,
    target: '*',
    action: 'policy:push',
    outcome: 'allow',
    status: 'executed',
    statement: `policy set ${push.version}`,
    determiningPolicies: [...push.policyIds],
    detail: { version: push.version, previousVersion: push.previousVersion },
  };
}

export type TrailEventType =
  | 'request_received'
  | 'decided'
  | 'approval_requested'
  | 'approval_decided'
  | 'execution_started'
  | 'execution_finished'
  | 'result'
  | 'error'
  | 'grant_created'
  | 'grant_revoked'
  /** `warden policy push` made a new policy set active (session `warden-policy`). */
  | 'policy_pushed'
  /** A request refused before it had a record: bad input, unparseable, unknown or hidden target. */
  | 'request_refused'
  /** An explain answered: what was asked and the decision it revealed (nothing was run). */
  | 'explained';

export interface TrailEvent {
  readonly type: TrailEventType;
  readonly at: string;
  readonly requestId?: string;
  readonly principal: string;
  readonly principalName: string;
  /** For an agent acting for a person: that person's key (`User::"erin"`) and name. */
  readonly onBehalfOf?: string;
  readonly onBehalfOfName?: string;
  readonly target?: string;
  /** Cedar action, e.g. `sql:read`. */
  readonly action?: string;
  readonly outcome?: string;
  readonly status?: string;
  /** The statement (or AWS call) in masked form. */
  readonly statement?: string;
  readonly determiningPolicies?: readonly string[];
  readonly approver?: string;
  readonly unmasked?: boolean;
  readonly rowCount?: number;
  readonly durationMs?: number;
  /** Free-form, masked detail: classification, masked result excerpt, error code and message. */
  readonly detail?: Record<string, unknown>;
}

export interface StoredTrailEvent extends TrailEvent {
  readonly sessionId: string;
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
}

export interface TrailWriter {
  /** Appends events to a session in order; rejects (and writes nothing more) on failure. */
  append(sessionId: string, events: readonly TrailEvent[]): Promise<void>;
}

export function trailActor(
  p: Principal,
): Pick<TrailEvent, 'principal' | 'principalName' | 'onBehalfOf' | 'onBehalfOfName'> {
  return {
    principal: principalKey(p),
    principalName: p.name,
    ...(p.onBehalfOf ? { onBehalfOf: principalKey(p.onBehalfOf), onBehalfOfName: p.onBehalfOf.name } : {}),
  };
}

/** The requester of a recorded request, as trail events name them (the agent and its person). */
export function recordActor(
  record: Pick<RequestRecord, 'principal' | 'principalName' | 'onBehalfOf'>,
): Pick<TrailEvent, 'principal' | 'principalName' | 'onBehalfOf' | 'onBehalfOfName'> {
  return {
    principal: record.principal,
    principalName: record.principalName,
    ...(record.onBehalfOf
      ? { onBehalfOf: record.onBehalfOf.key, onBehalfOfName: record.onBehalfOf.name }
      : {}),
  };
}

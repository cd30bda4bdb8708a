/**
 * Deciding approvals: who may vote, how votes add up, and the one terminal decision.
 *
 * The request record is the single source of truth. Every vote is a conditional write on it
 * (expected version AND status `pending_approval`), so among any number of concurrent clicks exactly
 * one terminal decision is stored; the others re-read the record and get a clear 409. Only the caller
 * whose write made the decision terminal answers the workflow (SendTaskSuccess with the task token,
 * which is looked up server-side and never leaves it).
 */
import type { WardenConfig } from './config.js';
import { awsBlastRadius, type BlastRadius, type SqlBlastRadius } from './blast-radius.js';
import {
  BadRequestError,
  ConditionFailedError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
} from './errors.js';
import { invisibleWarning, revealInvisible } from './invisible.js';
import type { PolicyEngine } from './policy.js';
import type { PolicyProvider } from './policy-provider.js';
import type { OperationSealer, SealedPayload } from './sealing.js';
import type { Clock, PendingPosition, RequestStore } from './ports.js';
import { recordActor, type TrailEvent, type TrailWriter } from './trail.js';
import {
  principalKey,
  sideOf,
  type ApprovalVote,
  type Classification,
  type Operation,
  type Principal,
  type RequestRecord,
  type RequestStatus,
} from './types.js';

/** Server-side handle of one waiting workflow task: an opaque id → the Step Functions task token. */
export interface ApprovalHandle {
  /** Opaque, random; the Approvals table's key. Never derived from the token. */
  readonly approvalId: string;
  readonly requestId: string;
  readonly taskToken: string;
  readonly createdAt: string;
  /** When the workflow's wait ends (ISO); DynamoDB's TTL removes the handle a while after. */
  readonly expiresAt: string;
}

export interface ApprovalHandleStore {
  put(handle: ApprovalHandle): Promise<void>;
  /** The handle of a request's waiting task, if the notify step has stored it yet. */
  byRequest(requestId: string): Promise<ApprovalHandle | undefined>;
}

/** The callback half of the workflow: what answers a waiting task. */
export interface WorkflowCallback {
  sendTaskSuccess(taskToken: string, output: Record<string, unknown>): Promise<void>;
  sendTaskFailure(taskToken: string, error: string, cause?: string): Promise<void>;
  sendTaskHeartbeat(taskToken: string): Promise<void>;
}

export interface ApprovalDeps {
  readonly config: WardenConfig;
  readonly policies: PolicyProvider;
  readonly requests: RequestStore;
  readonly clock: Clock;
  readonly approvalHandles: ApprovalHandleStore;
  readonly workflow: WorkflowCallback;
  readonly trail?: TrailWriter;
  readonly log?: (entry: Record<string, unknown>) => void;
  /** Opens the sealed exact form for those who must read it (absent: everyone sees the shown form). */
  readonly sealer?: OperationSealer;
  /** Vote comments are free text: through the target's detectors before they are kept. */
  readonly maskerFor?: (target: string) => { maskText(text: string): { text: string } };
  /** How long a terminal decision waits for the notify step to store the task token. @default 5000 */
  readonly handleWaitMs?: number;
}

export interface Vote {
  readonly decision: 'approve' | 'deny';
  readonly comment?: string;
}

export interface ApprovalOutcome {
  readonly requestId: string;
  /** `pending_approval` while more approvals are needed; `approved` or `denied` once decided. */
  readonly status: RequestStatus;
  /** True when this vote decided the request. */
  readonly terminal: boolean;
  readonly vote: ApprovalVote;
  readonly votes: readonly ApprovalVote[];
  readonly requiredApprovals: number;
  /** Approvals still needed (0 once decided). */
  readonly remainingApprovals: number;
  readonly decidedBy?: string;
  readonly decidedAt?: string;
  /** Whether the waiting workflow was answered (only meaningful when `terminal`). */
  readonly workflowNotified?: boolean;
}

const REQUEST_ID = /^r_[A-Za-z0-9_-]{10,40}$/;
const MAX_ATTEMPTS = 12;

function notFound(id: string): NotFoundError {
  return new NotFoundError(`unknown approval "${id.slice(0, 64)}"`);
}

/** The record of an approval-required request, or a 404 that tells nothing else. */
async function loadApprovable(deps: Pick<ApprovalDeps, 'requests'>, id: string): Promise<RequestRecord> {
  if (typeof id !== 'string' || !REQUEST_ID.test(id)) throw notFound(String(id));
  const record = await deps.requests.get(id);
  if (!record || record.decision.outcome !== 'approval_required') throw notFound(id);
  return record;
}

export function isExpired(record: RequestRecord, now: Date): boolean {
  return record.expiresAt !== undefined && now.getTime() >= Date.parse(record.expiresAt);
}

/** Whether Cedar allows `approver` to approve requests on the record's target. */
export async function mayApprove(
  deps: Pick<ApprovalDeps, 'policies' | 'config'>,
  approver: Principal,
  record: RequestRecord,
): Promise<boolean> {
  return approverOn(await deps.policies.engine(), deps.config, approver, record.target);
}

/** The one "may approve on this target" check (Cedar action `approve` on the Target, with its kind). */
export function approverOn(
  engine: PolicyEngine,
  config: Pick<WardenConfig, 'targets'>,
  approver: Principal,
  target: string,
): boolean {
  const kind = Object.hasOwn(config.targets, target) ? config.targets[target].kind : undefined;
  return engine.authorize(approver, 'approve', { type: 'Target', id: target, kind }, {}).allowed;
}

/** The requester's side of a record: the requester and, for an agent, the person it acted for. */
export function requesterSide(record: Pick<RequestRecord, 'principal' | 'onBehalfOf'>): string[] {
  return record.onBehalfOf ? [record.principal, record.onBehalfOf.key] : [record.principal];
}

/**
 * Why `approver` may never vote on `record`, or undefined: they are the requester, the person the
 * requesting agent acts for, or an agent acting for the requester.
 */
export function sameSideReason(approver: Principal, record: RequestRecord): string | undefined {
  const mine = sideOf(approver);
  const theirs = requesterSide(record);
  if (!mine.some((k) => theirs.includes(k))) return undefined;
  if (mine.includes(record.principal) && mine[0] === record.principal) {
    return 'a requester never approves their own request';
  }
  if (record.onBehalfOf && mine.includes(record.onBehalfOf.key)) {
    return `a person never approves a request made by an agent acting for them (${record.principalName} acts for ${record.onBehalfOf.name})`;
  }
  return 'an agent never approves a request of the person it acts for';
}

/** The person a vote counts for: the voter, or the person the voting agent acted for. */
function voterPerson(v: ApprovalVote): string {
  return v.onBehalfOf ?? v.by;
}

/** Whether someone on `approver`'s side already voted. */
function voteOfSide(votes: readonly ApprovalVote[], approver: Principal): ApprovalVote | undefined {
  const mine = sideOf(approver);
  return votes.find((v) => mine.includes(v.by) || mine.includes(voterPerson(v)));
}

/** Approvals counted toward the quorum: distinct people, never the requester's side. */
export function countApprovals(
  record: Pick<RequestRecord, 'principal' | 'onBehalfOf'>,
  votes: readonly ApprovalVote[],
): number {
  const theirs = requesterSide(record);
  const people = votes
    .filter((v) => v.decision === 'approve' && !theirs.includes(v.by) && !theirs.includes(voterPerson(v)))
    .map(voterPerson);
  return new Set(people).size;
}

function approvingNames(record: RequestRecord): string {
  const names = (record.votes ?? []).filter((v) => v.decision === 'approve').map((v) => v.byName);
  return names.length > 0 ? names.join(', ') : (record.decidedBy ?? 'an approver');
}

/** The 409 for a request that can no longer take votes, in words a person understands. */
export function alreadyDecidedError(record: RequestRecord): ConflictError {
  const at = record.decidedAt ?? record.updatedAt;
  const details = { requestId: record.id, status: record.status, decidedBy: record.decidedBy, decidedAt: at };
  switch (record.status) {
    case 'approved':
    case 'running':
    case 'executed':
      return new ConflictError(
        'already_decided',
        `already approved by ${approvingNames(record)} at ${at}`,
        details,
      );
    case 'denied':
      return new ConflictError(
        'already_decided',
        `already denied by ${record.decidedBy ?? 'an approver'} at ${at}`,
        details,
      );
    case 'expired':
      return new ConflictError('expired', `expired at ${record.expiresAt ?? at}`, details);
    case 'failed':
      // A failure after an approval still names who approved it.
      return new ConflictError(
        'already_decided',
        record.decidedBy
          ? `already approved by ${approvingNames(record)} at ${at}; it then failed`
          : `the request failed at ${record.updatedAt}; nothing can be decided`,
        details,
      );
    default:
      return new ConflictError('already_decided', `the request is ${record.status}`, details);
  }
}

/**
 * Records `approver`'s vote on request `requestId`.
 *
 * Refuses (403) a requester voting on their own request and anyone Cedar does not allow `approve` on
 * the target; 404 for unknown or forged ids; 409 once the request is decided or expired (checked
 * against the clock, not only the workflow's timeout) and for a second vote by the same person.
 * A deny by an allowed approver is terminal; approvals are terminal once `requiredApprovals`
 * distinct people approved.
 */
export async function decideApproval(
  deps: ApprovalDeps,
  approver: Principal,
  requestId: string,
  vote: Vote,
): Promise<ApprovalOutcome> {
  const me = principalKey(approver);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const record = await loadApprovable(deps, requestId);
    const refused = sameSideReason(approver, record);
    if (refused) throw new ForbiddenError(refused, { requestId: record.id });
    if (!(await mayApprove(deps, approver, record))) {
      throw new ForbiddenError(`you are not allowed to approve requests on target "${record.target}"`, {
        requestId: record.id,
      });
    }
    if (record.status !== 'pending_approval') throw alreadyDecidedError(record);

    const now = deps.clock.now();
    const at = now.toISOString();
    if (isExpired(record, now)) {
      await expireRecord(deps, record, now);
      throw alreadyDecidedError({ ...record, status: 'expired', decidedAt: record.expiresAt });
    }

    const votes = record.votes ?? [];
    const mine = voteOfSide(votes, approver);
    if (mine) {
      throw new ConflictError('already_voted', `you already voted to ${mine.decision} at ${mine.at}`, {
        requestId: record.id,
      });
    }

    const trimmed = vote.comment?.trim() ? vote.comment.trim() : undefined;
    // Kept in the record and sent to the workflow: only in its masked form.
    const comment =
      trimmed && deps.maskerFor ? deps.maskerFor(record.target).maskText(trimmed).text : trimmed;
    const cast: ApprovalVote = {
      by: me,
      byName: approver.name,
      ...(approver.onBehalfOf ? { onBehalfOf: principalKey(approver.onBehalfOf) } : {}),
      decision: vote.decision,
      at,
      ...(comment ? { comment } : {}),
    };
    const nextVotes = [...votes, cast];
    const required = Math.max(1, record.requiredApprovals ?? 1);
    const approvals = countApprovals(record, nextVotes);
    const status: RequestStatus =
      vote.decision === 'deny' ? 'denied' : approvals >= required ? 'approved' : 'pending_approval';
    const terminal = status !== 'pending_approval';
    const next: RequestRecord = {
      ...record,
      status,
      updatedAt: at,
      votes: nextVotes,
      ...(terminal ? { decidedBy: approver.name, decidedAt: at } : {}),
      version: record.version + 1,
    };

    try {
      await deps.requests.update(next, record.version, ['pending_approval']);
    } catch (error) {
      if (!(error instanceof ConditionFailedError)) throw error;
      // Someone else wrote first: re-read and judge again (their vote may have decided it).
      await sleep(5 + Math.floor(Math.random() * 20 * (attempt + 1)));
      continue;
    }

    await trail(deps, next, [
      {
        type: 'approval_decided',
        at,
        requestId: next.id,
        ...recordActor(next),
        target: next.target,
        action: next.decision.action,
        status,
        outcome: vote.decision,
        approver: approver.name,
        detail: {
          terminal,
          approvals,
          requiredApprovals: required,
          // The comment is free text and may hold personal data: the record keeps it, the trail does not.
          hasComment: Boolean(comment),
        },
      },
    ]);

    let workflowNotified: boolean | undefined;
    if (terminal) {
      workflowNotified = await answerWorkflow(deps, next, {
        decision: vote.decision,
        by: approver.name,
        at,
        ...(comment ? { comment } : {}),
      });
    }
    return {
      requestId: next.id,
      status,
      terminal,
      vote: cast,
      votes: nextVotes,
      requiredApprovals: required,
      remainingApprovals: terminal ? 0 : required - approvals,
      ...(terminal ? { decidedBy: approver.name, decidedAt: at } : {}),
      ...(workflowNotified !== undefined ? { workflowNotified } : {}),
    };
  }
  throw new ConflictError('busy', 'the request is being decided by others right now; try again');
}

/** Moves a pending request whose window has passed to `expired` (first writer wins; others no-op). */
async function expireRecord(deps: ApprovalDeps, record: RequestRecord, now: Date): Promise<void> {
  const expired: RequestRecord = {
    ...record,
    status: 'expired',
    updatedAt: now.toISOString(),
    decidedBy: 'warden',
    decidedAt: record.expiresAt ?? now.toISOString(),
    version: record.version + 1,
  };
  try {
    await deps.requests.update(expired, record.version, ['pending_approval']);
  } catch (error) {
    if (!(error instanceof ConditionFailedError)) throw error;
  }
}

/**
 * Answers the waiting workflow task. The notify step stores the task token moments after the
 * request is created, so a very fast approver may arrive first: wait briefly for the handle.
 */
export async function answerWorkflow(
  deps: ApprovalDeps,
  record: RequestRecord,
  output: { decision: 'approve' | 'deny'; by: string; at: string; comment?: string },
): Promise<boolean> {
  const deadline = Date.now() + (deps.handleWaitMs ?? 5000);
  let handle = await deps.approvalHandles.byRequest(record.id);
  while (!handle && Date.now() < deadline) {
    await sleep(100);
    handle = await deps.approvalHandles.byRequest(record.id);
  }
  if (!handle) {
    // The notify step answers decided requests itself when it stores a late handle.
    deps.log?.({ level: 'warn', msg: 'no task token stored yet; notify will answer', requestId: record.id });
    return false;
  }
  try {
    await deps.workflow.sendTaskSuccess(handle.taskToken, { ...output, requestId: record.id });
    return true;
  } catch (error) {
    deps.log?.({
      level: 'error',
      msg: 'workflow callback failed',
      requestId: record.id,
      error: error instanceof Error ? error.name : String(error),
    });
    return false;
  }
}

/** The callback output for a request already decided, or undefined while it waits. */
export function decisionOutput(
  record: RequestRecord,
): { decision: 'approve' | 'deny'; by: string; at: string; comment?: string } | undefined {
  if (!record.decidedAt || !record.decidedBy) return undefined;
  if (record.status === 'denied' || record.status === 'approved') {
    const decision = record.status === 'denied' ? 'deny' : 'approve';
    const last = [...(record.votes ?? [])].reverse().find((v) => v.decision === decision);
    return {
      decision,
      by: record.decidedBy,
      at: record.decidedAt,
      ...(last?.comment ? { comment: last.comment } : {}),
    };
  }
  return undefined;
}

export interface ApprovalView {
  readonly requestId: string;
  readonly status: RequestStatus;
  readonly requester: string;
  readonly requesterType: string;
  /** For an agent's request: the person it acts for (they may not approve it). */
  readonly onBehalfOf?: string;
  readonly target: string;
  readonly action: string;
  /**
   * The statement exactly as it will run, for the requester and those who may approve it while it
   * waits (approvers see what they approve); the shown (masked) form for everyone else.
   */
  readonly statement: string;
  readonly operation: Operation;
  /** Whether `statement`, `operation` and `justification` are the exact form or the shown one. */
  readonly form: 'exact' | 'shown';
  readonly classification?: Classification;
  readonly risk: 'low' | 'medium' | 'high' | 'critical';
  /** What it would touch: PostgreSQL's row estimate for a SQL write, the exact resources of an AWS call. */
  readonly blastRadius?: BlastRadius;
  /** The requester's session, replayed at links.replay: what the agent did just before. */
  readonly sessionId: string;
  readonly justification?: string;
  readonly createdAt: string;
  readonly expiresAt?: string;
  readonly requiredApprovals: number;
  readonly votes: readonly ApprovalVote[];
  readonly decidedBy?: string;
  readonly decidedAt?: string;
  readonly links: { readonly self: string; readonly review: string; readonly replay: string };
  /**
   * The statement and justification as people are shown them: invisible characters (bidi
   * controls, zero-width characters, …) replaced by `⟨U+202E⟩`, with a warning for each that has
   * any. `statement` and `operation` above stay the exact text that runs.
   */
  readonly visible: VisibleText;
}

export interface VisibleText {
  readonly statement: string;
  readonly justification?: string;
  readonly warnings: readonly string[];
}

/** What approvers are shown of a statement and justification (see lambdas/core/invisible.ts). */
export function visibleText(statement: string, justification?: string): VisibleText {
  const s = revealInvisible(statement);
  const j = justification === undefined ? undefined : revealInvisible(justification);
  const warnings = [invisibleWarning('statement', s.found), j && invisibleWarning('justification', j.found)];
  return {
    statement: s.text,
    ...(j ? { justification: j.text } : {}),
    warnings: warnings.filter((w): w is string => typeof w === 'string'),
  };
}

/** One line for the operation: SQL with its parameters, an AWS call, or an access request. */
export function statementText(operation: Operation): string {
  switch (operation.kind) {
    case 'sql':
      return (
        operation.sql +
        (operation.parameters?.length ? `\n-- parameters: ${JSON.stringify(operation.parameters)}` : '')
      );
    case 'aws':
      return `${operation.service}:${operation.action} ${JSON.stringify(operation.input)}`;
    case 'access':
      return `grant ${operation.level} access for ${operation.durationSeconds}s`;
    case 'mcp':
      return `MCP tool ${operation.tool} ${operation.argumentsJson}`;
  }
}

/** A coarse risk level for people skimming a notification; policy, not this, decides. */
export function riskOf(
  record: Pick<RequestRecord, 'decision' | 'operation'> & { blastRadius?: SqlBlastRadius },
): ApprovalView['risk'] {
  const action = record.decision.action;
  if (/privilege|admin|permissions/.test(action)) return 'critical';
  if (/ddl/.test(action)) return 'high';
  // A whole table, more rows than the target's threshold, or a reach PostgreSQL could not estimate.
  if (record.blastRadius?.high) return 'high';
  if (record.operation.kind === 'access') {
    return record.operation.level === 'ddl' ? 'high' : 'medium';
  }
  if (/write/.test(action)) return 'medium';
  return 'low';
}

/** What the approval page and `GET /v1/approvals` show. */
export function approvalView(record: RequestRecord, exact?: SealedPayload): ApprovalView {
  const operation = exact ? exact.operation : record.operation;
  const justification = exact ? exact.justification : record.justification;
  const statement = statementText(operation);
  return {
    requestId: record.id,
    status: record.status,
    requester: record.principalName,
    requesterType: record.principalType,
    ...(record.onBehalfOf ? { onBehalfOf: record.onBehalfOf.name } : {}),
    target: record.target,
    action: record.decision.action,
    statement,
    operation,
    form: exact ? 'exact' : 'shown',
    ...(record.classification ? { classification: record.classification } : {}),
    risk: riskOf(record),
    ...(blastRadiusOf(record) ? { blastRadius: blastRadiusOf(record) } : {}),
    sessionId: record.sessionId,
    ...(justification ? { justification } : {}),
    createdAt: record.createdAt,
    ...(record.expiresAt ? { expiresAt: record.expiresAt } : {}),
    requiredApprovals: record.requiredApprovals ?? 1,
    votes: record.votes ?? [],
    ...(record.decidedBy ? { decidedBy: record.decidedBy } : {}),
    ...(record.decidedAt ? { decidedAt: record.decidedAt } : {}),
    links: {
      self: `/v1/requests/${record.id}`,
      review: `/approve/${record.id}`,
      replay: `/replay/${encodeURIComponent(record.sessionId)}?request=${record.id}`,
    },
    visible: visibleText(statement, justification),
  };
}

function blastRadiusOf(record: RequestRecord): BlastRadius | undefined {
  if (record.blastRadius) return record.blastRadius;
  if (record.classification?.kind === 'aws') return awsBlastRadius(record.classification);
  return undefined;
}

/**
 * The view with the exact form opened, when there is a seal and a sealer; otherwise (or when the
 * seal does not open) the shown form. Opening is for those who must read it: the caller decides.
 */
async function exactView(
  deps: Pick<ApprovalDeps, 'sealer' | 'log'>,
  record: RequestRecord,
): Promise<ApprovalView> {
  if (!record.sealed || !deps.sealer) return approvalView(record);
  try {
    return approvalView(record, await deps.sealer.open(record.id, record.sealed));
  } catch (error) {
    deps.log?.({
      level: 'error',
      msg: 'sealed statement not opened',
      requestId: record.id,
      error: String(error),
    });
    return approvalView(record);
  }
}

/**
 * The request an approver is looking at (the page's GET): 404 for unknown ids and for people who
 * may neither approve on its target nor asked for it. Reads only.
 */
export async function getApprovalFor(
  deps: Pick<ApprovalDeps, 'requests' | 'policies' | 'config' | 'clock' | 'sealer' | 'log'>,
  viewer: Principal,
  requestId: string,
): Promise<{ view: ApprovalView; canVote: boolean; reason?: string }> {
  const record = await loadApprovable(deps, requestId);
  const sameSide = sameSideReason(viewer, record);
  const allowed = await mayApprove(deps, viewer, record);
  if (!sameSide && !allowed) throw notFound(requestId);
  // The exact form goes to the requester's side and, while it waits, to those who may approve it.
  const view =
    sameSide || record.status === 'pending_approval' ? await exactView(deps, record) : approvalView(record);
  if (sameSide) return { view, canVote: false, reason: sameSide };
  if (record.status !== 'pending_approval') {
    return { view, canVote: false, reason: alreadyDecidedError(record).message };
  }
  if (isExpired(record, deps.clock.now())) {
    return { view, canVote: false, reason: `expired at ${record.expiresAt}` };
  }
  const mine = voteOfSide(record.votes ?? [], viewer);
  if (mine) return { view, canVote: false, reason: `you already voted to ${mine.decision} at ${mine.at}` };
  return { view, canVote: true };
}

/**
 * Whether `viewer` may read the session replay of request `requestId` as its approver (issue 17:
 * the approver sees what the agent did just before): the request waits for approval in exactly
 * that session, has not expired, is on a target Cedar lets `viewer` approve, and is not their own
 * side's. Anything else is false, whichever part failed, so the answer names no other session.
 */
export async function mayReplayForApproval(
  deps: Pick<ApprovalDeps, 'requests' | 'policies' | 'config' | 'clock'>,
  viewer: Principal,
  requestId: string,
  sessionId: string,
): Promise<boolean> {
  if (typeof requestId !== 'string' || !REQUEST_ID.test(requestId)) return false;
  const record = await deps.requests.get(requestId);
  if (!record || record.decision.outcome !== 'approval_required') return false;
  if (record.sessionId !== sessionId || record.status !== 'pending_approval') return false;
  if (isExpired(record, deps.clock.now()) || sameSideReason(viewer, record)) return false;
  return mayApprove(deps, viewer, record);
}

export interface ApprovalListing {
  readonly approvals: ApprovalView[];
  /** Present when there may be more: pass it back as `cursor` for the next page. */
  readonly cursor?: string;
}

/** Records read from the store per listing call at most; a cursor continues after them. */
const MAX_SCANNED = 2000;
const STORE_PAGE = 100;
export const MAX_LISTING_LIMIT = 500;

/**
 * What awaits `approver`: pending, unexpired requests on targets they may approve, not their own
 * (nor, for an agent, its person's) and not yet voted on by them. Reads the pending index page by
 * page until `limit` such requests are found or the index ends, so none is missed however many
 * others wait; a `cursor` in the answer continues where this one stopped.
 */
export async function listPendingForApprover(
  deps: Pick<ApprovalDeps, 'requests' | 'policies' | 'config' | 'clock' | 'sealer' | 'log'>,
  approver: Principal,
  options: { limit?: number; cursor?: string } = {},
): Promise<ApprovalListing> {
  const limit = options.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LISTING_LIMIT) {
    throw new BadRequestError(`limit must be an integer from 1 to ${MAX_LISTING_LIMIT}`);
  }
  let after = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
  const now = deps.clock.now();
  const engine = await deps.policies.engine();
  const allowedOn = new Map<string, boolean>();
  const out: RequestRecord[] = [];
  let scanned = 0;
  // Each is awaiting this approver, who must read what they would approve: the exact form.
  const done = async (cursor?: PendingPosition): Promise<ApprovalListing> => ({
    approvals: await Promise.all(out.map((record) => exactView(deps, record))),
    ...(cursor ? { cursor: encodeCursor(cursor) } : {}),
  });
  for (;;) {
    const page = await deps.requests.listPendingPage({ limit: STORE_PAGE, after });
    for (const record of page.records) {
      scanned++;
      after = { createdAt: record.createdAt, id: record.id };
      if (sameSideReason(approver, record) || isExpired(record, now)) continue;
      if (record.decision.outcome !== 'approval_required') continue;
      if (voteOfSide(record.votes ?? [], approver)) continue;
      let allowed = allowedOn.get(record.target);
      if (allowed === undefined) {
        allowed = approverOn(engine, deps.config, approver, record.target);
        allowedOn.set(record.target, allowed);
      }
      if (!allowed) continue;
      out.push(record);
      if (out.length >= limit) return done(after);
    }
    if (!page.next) return done();
    after = page.next;
    if (scanned >= MAX_SCANNED) return done(after);
  }
}

/** Listing calls one `listEveryPendingForApprover` makes at most (each scans up to MAX_SCANNED). */
const MAX_LISTING_CALLS = 25;

/**
 * Up to `max` requests awaiting `approver`, following the listing's cursor (one call stops after
 * MAX_SCANNED records even when it found fewer), so a request behind thousands of others this
 * person may not decide is still found. `more` says some may remain unlisted.
 */
export async function listEveryPendingForApprover(
  deps: Parameters<typeof listPendingForApprover>[0],
  approver: Principal,
  max: number,
): Promise<{ approvals: ApprovalView[]; more: boolean }> {
  const approvals: ApprovalView[] = [];
  let cursor: string | undefined;
  for (let call = 0; call < MAX_LISTING_CALLS && approvals.length < max; call++) {
    const page = await listPendingForApprover(deps, approver, {
      limit: Math.min(MAX_LISTING_LIMIT, max - approvals.length),
      ...(cursor === undefined ? {} : { cursor }),
    });
    approvals.push(...page.approvals);
    cursor = page.cursor;
    if (cursor === undefined) return { approvals, more: false };
  }
  return { approvals, more: true };
}

/** The cursor is only a position in the pending index; whatever it names, every record is judged. */
function encodeCursor(position: PendingPosition): string {
  return Buffer.from(JSON.stringify([position.createdAt, position.id]), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): PendingPosition {
  const bad = () => new BadRequestError('cursor is not one this API gave out');
  if (typeof cursor !== 'string' || cursor.length > 200 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw bad();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (!Array.isArray(value) || value.length !== 2) throw bad();
  const [createdAt, id] = value as unknown[];
  if (typeof createdAt !== 'string' || Number.isNaN(Date.parse(createdAt)) || createdAt.length > 40)
    throw bad();
  if (typeof id !== 'string' || !REQUEST_ID.test(id)) throw bad();
  return { createdAt, id };
}

async function trail(
  deps: Pick<ApprovalDeps, 'trail' | 'log'>,
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

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

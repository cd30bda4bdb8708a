/**
 * Auditors' view of the session trail: sessions, their events in order, and the chain check.
 * Only principals Cedar allows `audit` on Gateway::"warden" get anything; everyone else a 403.
 */
import { BadRequestError, ForbiddenError, NotFoundError } from './errors.js';
import type { PolicyProvider } from './policy-provider.js';
import { isValidSessionId } from './requests.js';
import { verifyChain, type ChainHead, type ChainVerification } from './trail-chain.js';
import type { StoredTrailEvent } from './trail.js';
import type { Principal } from './types.js';

/** What the store keeps per session besides its events (seq 0 in the Audit table). */
export interface SessionSummary extends ChainHead {
  readonly sessionId: string;
  readonly startedAt: string;
  readonly lastAt: string;
  /** `principalKey`s and display names of everyone who acted in the session. */
  readonly principals: readonly string[];
  readonly principalNames: readonly string[];
  readonly targets: readonly string[];
  /** Decision and approval outcomes seen (allow, deny, approval_required, approve). */
  readonly outcomes: readonly string[];
  /** Request statuses seen (executed, denied, failed, …). */
  readonly statuses: readonly string[];
}

export interface SessionFilter {
  /** Matches a principal key (`User::"alice"`) or a display name. */
  readonly principal?: string;
  readonly target?: string;
  /** Matches an outcome or a status. */
  readonly outcome?: string;
  /** Sessions started in [from, to]. */
  readonly from: Date;
  readonly to: Date;
  readonly limit: number;
}

export interface TrailReader {
  head(sessionId: string): Promise<SessionSummary | undefined>;
  /** Every event of the session, by seq. */
  events(sessionId: string): Promise<StoredTrailEvent[]>;
  /** Sessions started in [from, to] that match the filter, newest first, at most `limit`. */
  sessions(filter: SessionFilter): Promise<SessionSummary[]>;
}

export interface SessionDeps {
  readonly policies: PolicyProvider;
  readonly trailReader: TrailReader;
  readonly clock: { now(): Date };
}

/** Longest time range one listing covers; the store reads one index partition per day. */
export const MAX_RANGE_DAYS = 92;
const DEFAULT_RANGE_DAYS = 7;
const MAX_LIMIT = 500;

export async function requireAuditor(
  deps: Pick<SessionDeps, 'policies'>,
  principal: Principal,
): Promise<void> {
  const engine = await deps.policies.engine();
  const allowed = engine.authorize(principal, 'audit', { type: 'Gateway', id: 'warden' }, {}).allowed;
  if (!allowed) throw new ForbiddenError('the session trail is for auditors (Cedar action "audit")');
}

export interface SessionQueryInput {
  readonly principal?: string;
  readonly target?: string;
  readonly outcome?: string;
  readonly from?: string;
  readonly to?: string;
  readonly limit?: string;
}

function parseTime(name: string, value: string | undefined): Date | undefined {
  if (value === undefined || value === '') return undefined;
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new BadRequestError(`${name} must be an ISO-8601 time`);
  return new Date(t);
}

/** Validates the listing's query string into a filter (default: the last 7 days, 100 sessions). */
export function sessionFilter(input: SessionQueryInput, now: Date): SessionFilter {
  const to = parseTime('to', input.to) ?? now;
  const from = parseTime('from', input.from) ?? new Date(to.getTime() - DEFAULT_RANGE_DAYS * 86_400_000);
  if (from > to) throw new BadRequestError('from must not be after to');
  if (to.getTime() - from.getTime() > MAX_RANGE_DAYS * 86_400_000) {
    throw new BadRequestError(`a listing covers at most ${MAX_RANGE_DAYS} days; narrow from/to`);
  }
  const limit = input.limit === undefined ? 100 : Number(input.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new BadRequestError(`limit must be an integer from 1 to ${MAX_LIMIT}`);
  }
  const short = (name: string, v: string | undefined) => {
    if (v !== undefined && v.length > 200) throw new BadRequestError(`${name} is too long`);
    return v === '' ? undefined : v;
  };
  return {
    from,
    to,
    limit,
    ...(short('principal', input.principal) ? { principal: input.principal } : {}),
    ...(short('target', input.target) ? { target: input.target } : {}),
    ...(short('outcome', input.outcome) ? { outcome: input.outcome } : {}),
  };
}

/** Whether a session matches the filter's principal, target and outcome (the store applies it too). */
export function matchesFilter(s: SessionSummary, f: Omit<SessionFilter, 'limit'>): boolean {
  if (s.startedAt < f.from.toISOString() || s.startedAt > f.to.toISOString()) return false;
  if (f.principal && !s.principals.includes(f.principal) && !s.principalNames.includes(f.principal)) {
    return false;
  }
  if (f.target && !s.targets.includes(f.target)) return false;
  if (f.outcome && !s.outcomes.includes(f.outcome) && !s.statuses.includes(f.outcome)) return false;
  return true;
}

export function sessionView(s: SessionSummary): Record<string, unknown> {
  return {
    sessionId: s.sessionId,
    startedAt: s.startedAt,
    lastAt: s.lastAt,
    events: s.lastSeq,
    principals: s.principalNames,
    principalKeys: s.principals,
    targets: s.targets,
    outcomes: s.outcomes,
    statuses: s.statuses,
  };
}

export function eventView(e: StoredTrailEvent): Record<string, unknown> {
  // Stored events are already masked; the view is the event as stored, hash included.
  return { ...e };
}

export async function listSessions(
  deps: SessionDeps,
  principal: Principal,
  input: SessionQueryInput,
): Promise<{ sessions: Record<string, unknown>[]; from: string; to: string }> {
  await requireAuditor(deps, principal);
  const filter = sessionFilter(input, deps.clock.now());
  const found = await deps.trailReader.sessions(filter);
  return {
    sessions: found.map(sessionView),
    from: filter.from.toISOString(),
    to: filter.to.toISOString(),
  };
}

function checkId(sessionId: string): void {
  if (!isValidSessionId(sessionId)) throw new NotFoundError(`unknown session "${sessionId.slice(0, 64)}"`);
}

export interface SessionDetail {
  readonly session: SessionSummary;
  readonly events: StoredTrailEvent[];
}

/** One session and its events in order; 404 when it has neither head nor events. */
export async function loadSession(
  deps: SessionDeps,
  principal: Principal,
  sessionId: string,
): Promise<SessionDetail> {
  await requireAuditor(deps, principal);
  return readSessionDetail(deps, sessionId);
}

/**
 * One session and its events, for a caller already authorized for this session (an auditor, or an
 * approver of a pending request made in it: `mayReplayForApproval`). Events are stored masked.
 */
export async function readSessionDetail(
  deps: Pick<SessionDeps, 'trailReader'>,
  sessionId: string,
): Promise<SessionDetail> {
  checkId(sessionId);
  const [head, events] = await Promise.all([
    deps.trailReader.head(sessionId),
    deps.trailReader.events(sessionId),
  ]);
  if (!head && events.length === 0) throw new NotFoundError(`unknown session "${sessionId}"`);
  return { session: head ?? summaryFromEvents(sessionId, events), events };
}

export async function getSession(
  deps: SessionDeps,
  principal: Principal,
  sessionId: string,
): Promise<Record<string, unknown>> {
  const { session, events } = await loadSession(deps, principal, sessionId);
  return { session: sessionView(session), events: events.map(eventView) };
}

export async function verifySession(
  deps: SessionDeps,
  principal: Principal,
  sessionId: string,
): Promise<{ sessionId: string } & ChainVerification> {
  await requireAuditor(deps, principal);
  checkId(sessionId);
  const [head, events] = await Promise.all([
    deps.trailReader.head(sessionId),
    deps.trailReader.events(sessionId),
  ]);
  if (!head && events.length === 0) throw new NotFoundError(`unknown session "${sessionId}"`);
  return { sessionId, ...verifyChain(events, head) };
}

const uniq = (values: (string | undefined)[]): string[] =>
  [...new Set(values.filter((v): v is string => typeof v === 'string' && v.length > 0))].sort();

/** A summary rebuilt from the events themselves (a head that was lost, or tests). */
export function summaryFromEvents(sessionId: string, events: readonly StoredTrailEvent[]): SessionSummary {
  const sorted = [...events].sort((a, b) => a.seq - b.seq);
  const last = sorted.at(-1);
  return {
    sessionId,
    startedAt: sorted[0]?.at ?? '',
    lastAt: last?.at ?? '',
    lastSeq: last?.seq ?? 0,
    lastHash: last?.hash ?? '',
    principals: uniq(sorted.map((e) => e.principal)),
    principalNames: uniq(sorted.map((e) => e.principalName)),
    targets: uniq(sorted.map((e) => e.target)),
    outcomes: uniq(sorted.map((e) => e.outcome)),
    statuses: uniq(sorted.map((e) => e.status)),
  };
}

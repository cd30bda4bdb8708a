/**
 * Auditors' routes: the session trail (`GET /v1/sessions`, `/v1/sessions/{id}`,
 * `/v1/sessions/{id}/verify`) and the replay page (`GET /replay/{sessionId}`). Every one of them
 * answers 403 to a principal without Cedar `audit` on Gateway::"warden".
 */
import { ForbiddenError, ServiceUnavailableError, WardenError } from '../../core/errors.js';
import { mayReplayForApproval, type ApprovalDeps } from '../../core/approvals.js';
import {
  getSession,
  listSessions,
  readSessionDetail,
  requireAuditor,
  verifySession,
  type SessionDeps,
} from '../../core/sessions.js';
import { verifyChain } from '../../core/trail-chain.js';
import type { Principal, PrincipalType } from '../../core/types.js';
import { header, json, type HttpResult } from '../../middleware/http.js';
import { baseUrl, type ApiRoute, type Ctx } from '../context.js';
import { startSignIn } from './approve-page.js';
import { cookieName, isLoopbackHttp, openCookie, readCookie } from '../pages/cookies.js';
import { replayMessagePage, replayPage } from '../pages/replay-view.js';

function sessionDeps(ctx: Ctx): SessionDeps {
  const reader = ctx.rt.trailReader;
  if (!reader) throw new ServiceUnavailableError('the session trail is not configured');
  return { policies: ctx.rt.policies, trailReader: reader, clock: ctx.rt.clock };
}

function query(ctx: Ctx): Record<string, string | undefined> {
  return ctx.event.queryStringParameters ?? {};
}

/** The approval page's session cookie (routes/approve-page.ts): who signed in, nothing secret. */
interface SignedInCookie {
  exp: number;
  type: PrincipalType;
  id: string;
  name: string;
  groups: string[];
}

/** A bearer token when one is sent; otherwise the person signed in at the gateway, if any. */
async function pageViewer(ctx: Ctx): Promise<Principal | undefined> {
  if (header(ctx.event, 'authorization') !== undefined) return (await ctx.caller()).principal;
  const signer = ctx.rt.signer;
  if (!signer) return undefined;
  const settings = { secure: !isLoopbackHttp(baseUrl(ctx.event, ctx.rt)) };
  const value = readCookie(ctx.event, cookieName('session', settings));
  const s = await openCookie<SignedInCookie>(signer, 'session', value, ctx.rt.clock.now());
  if (!s || !Array.isArray(s.groups)) return undefined;
  return { type: s.type, id: s.id, name: s.name, groups: s.groups };
}

const REQUEST_PARAM = /^r_[A-Za-z0-9_-]{10,40}$/;

/**
 * Whether `principal` may see this session: an auditor, or (with `?request=`) an approver of a
 * request waiting in it for their decision. One 403 for every other case, so a non-auditor learns
 * nothing about sessions they may not read.
 */
async function authorizeReplay(
  ctx: Ctx,
  principal: Principal,
  sessionId: string,
  requestId: string | undefined,
): Promise<'auditor' | 'approver'> {
  try {
    await requireAuditor(sessionDeps(ctx), principal);
    return 'auditor';
  } catch (error) {
    if (!(error instanceof ForbiddenError) || requestId === undefined) throw error;
    const rt = ctx.rt as Ctx['rt'] & Partial<ApprovalDeps>;
    if (!rt.requests || !rt.config) throw error;
    const deps = { requests: rt.requests, policies: rt.policies, config: rt.config, clock: rt.clock };
    if (await mayReplayForApproval(deps, principal, requestId, sessionId)) return 'approver';
    throw new ForbiddenError(
      'the session replay is for auditors, and for approvers of a request waiting in this session',
    );
  }
}

/**
 * The replay page: a person signed in at the gateway (the approval page's session cookie) or a
 * bearer token; the page shows the same (masked) data as the API, to auditors, and read-only to
 * an approver deciding a request of this session (the approval page links here with `?request=`).
 */
async function replay(ctx: Ctx, sessionId: string): Promise<HttpResult> {
  const requested = query(ctx).request;
  const requestId = requested !== undefined && REQUEST_PARAM.test(requested) ? requested : undefined;
  let principal: Principal | undefined;
  try {
    principal = await pageViewer(ctx);
  } catch (error) {
    if (!(error instanceof WardenError && error.statusCode === 401)) throw error;
  }
  if (!principal) {
    // A person in a browser signs in with the organisation's IdP and comes straight back here.
    if (/^[A-Za-z0-9._:-]{1,140}$/.test(sessionId) && ctx.rt.approvalLogin && ctx.rt.signer) {
      return startSignIn(ctx, `/replay/${sessionId}${requestId ? `?request=${requestId}` : ''}`);
    }
    return replayMessagePage(
      401,
      'Sign-in required',
      'The replay page is for signed-in auditors: sign in at this gateway in this browser, or send a bearer token.',
      { 'www-authenticate': 'Bearer' },
    );
  }
  try {
    const as = await authorizeReplay(ctx, principal, sessionId, requestId);
    const detail = await readSessionDetail(sessionDeps(ctx), sessionId);
    return replayPage({
      ...detail,
      verification: verifyChain(detail.events, detail.session),
      viewer: principal.name,
      ...(as === 'approver' && requestId ? { forRequest: requestId } : {}),
    });
  } catch (error) {
    if (error instanceof WardenError && error.statusCode < 500) {
      const title =
        error.statusCode === 403
          ? 'Not allowed'
          : error.statusCode === 404
            ? 'Session not found'
            : 'Cannot show this session';
      return replayMessagePage(error.statusCode, title, error.message);
    }
    throw error;
  }
}

export const sessionRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/v1/sessions',
    handle: async (ctx) => {
      const { principal } = await ctx.caller();
      const q = query(ctx);
      return json(
        200,
        await listSessions(sessionDeps(ctx), principal, {
          principal: q.principal,
          target: q.target,
          outcome: q.outcome,
          from: q.from,
          to: q.to,
          limit: q.limit,
        }),
      );
    },
  },
  {
    method: 'GET',
    path: '/v1/sessions/{id}',
    handle: async (ctx, { id }) => {
      const { principal } = await ctx.caller();
      return json(200, await getSession(sessionDeps(ctx), principal, id));
    },
  },
  {
    method: 'GET',
    path: '/v1/sessions/{id}/verify',
    handle: async (ctx, { id }) => {
      const { principal } = await ctx.caller();
      return json(200, await verifySession(sessionDeps(ctx), principal, id));
    },
  },
  { method: 'GET', path: '/replay/{sessionId}', handle: (ctx, { sessionId }) => replay(ctx, sessionId) },
];

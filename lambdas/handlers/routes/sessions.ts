/**
 * Auditors' routes: the session trail (`GET /v1/sessions`, `/v1/sessions/{id}`,
 * `/v1/sessions/{id}/verify`) and the replay page (`GET /replay/{sessionId}`). Every one of them
 * answers 403 to a principal without Cedar `audit` on Gateway::"warden".
 */
import { ServiceUnavailableError, WardenError } from '../../core/errors.js';
import {
  getSession,
  listSessions,
  loadSession,
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

/**
 * The replay page: a person signed in at the gateway (the approval page's session cookie) or a
 * bearer token; the page shows the same data as the API, to auditors only.
 */
async function replay(ctx: Ctx, sessionId: string): Promise<HttpResult> {
  let principal: Principal | undefined;
  try {
    principal = await pageViewer(ctx);
  } catch (error) {
    if (!(error instanceof WardenError && error.statusCode === 401)) throw error;
  }
  if (!principal) {
    // A person in a browser signs in with the organisation's IdP and comes straight back here.
    if (/^[A-Za-z0-9._:-]{1,140}$/.test(sessionId) && ctx.rt.approvalLogin && ctx.rt.signer) {
      return startSignIn(ctx, `/replay/${sessionId}`);
    }
    return replayMessagePage(
      401,
      'Sign-in required',
      'The replay page is for signed-in auditors: sign in at this gateway in this browser, or send a bearer token.',
      { 'www-authenticate': 'Bearer' },
    );
  }
  try {
    const deps = sessionDeps(ctx);
    const detail = await loadSession(deps, principal, sessionId);
    return replayPage({
      ...detail,
      verification: verifyChain(detail.events, detail.session),
      viewer: principal.name,
    });
  } catch (error) {
    if (error instanceof WardenError && error.statusCode < 500) {
      const title =
        error.statusCode === 403
          ? 'Not an auditor'
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

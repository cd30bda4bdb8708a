/**
 * The approver's web page: `GET /approve/{id}` (sign in with OIDC, then read the request) and
 * `POST /approve/{id}` (Approve / Deny with a CSRF token). A GET never changes anything — a link
 * preview or a mail scanner that follows the review link at most starts a sign-in.
 *
 * Sign-in is authorization code + PKCE; the verifier, `state` and `nonce` wait in a signed,
 * short-lived cookie. The access token is verified by the API's own verifier and then dropped: the
 * session cookie holds only who signed in (id, name, groups) and when that ends.
 */
import { randomBytes } from 'node:crypto';
import type { Signer } from '../../adapters/signing.js';
import type { OidcLoginClient } from '../../adapters/oidc-client.js';
import {
  decideApproval,
  getApprovalFor,
  listEveryPendingForApprover,
  type ApprovalDeps,
  type ApprovalOutcome,
} from '../../core/approvals.js';
import { NotFoundError, WardenError } from '../../core/errors.js';
import type { Principal, PrincipalType } from '../../core/types.js';
import { header, rawBody, SECURITY_HEADERS, type HttpResult } from '../../middleware/http.js';
import { baseUrl, type ApiRoute, type Ctx } from '../context.js';
import { approvalsListBody, reviewPageBody, signedInAs, type Notice } from '../pages/approve-view.js';
import {
  clearCookie,
  cookieName,
  isLoopbackHttp,
  openCookie,
  readCookie,
  sealCookie,
  serializeCookie,
  type CookieSettings,
} from '../pages/cookies.js';
import { htmlPage, messagePage } from '../pages/html.js';

/** What the page needs beyond the request path's wiring; absent pieces answer 503. */
export interface ApprovalPageDeps {
  readonly signer?: Signer;
  readonly approvalLogin?: OidcLoginClient;
}

const REQUEST_ID = /^r_[A-Za-z0-9_-]{10,40}$/;
/** A signed-in approver is asked to sign in again after this. */
const SESSION_SECONDS = 15 * 60;
/** Time to finish signing in at the IdP. */
const LOGIN_SECONDS = 10 * 60;
const MAX_FORM_BYTES = 8 * 1024;
const MAX_COMMENT = 1000;
const MAX_GROUPS = 50;
/** The /approvals page lists at most this many requests. */
const MAX_LISTED = 500;

interface SessionCookie {
  exp: number;
  /** Random per sign-in: CSRF tokens are bound to it, so a token dies with its session. */
  sid: string;
  type: PrincipalType;
  id: string;
  name: string;
  groups: string[];
}

interface LoginCookie {
  exp: number;
  state: string;
  nonce: string;
  verifier: string;
  returnTo: string;
}

type PageRuntime = Ctx['rt'] & ApprovalPageDeps & Partial<ApprovalDeps>;

function runtime(ctx: Ctx): PageRuntime {
  return ctx.rt as PageRuntime;
}

function settings(ctx: Ctx): CookieSettings {
  return { secure: !isLoopbackHttp(baseUrl(ctx.event, ctx.rt)) };
}

function redirect(location: string, cookies: string[] = []): HttpResult {
  return {
    statusCode: 303,
    headers: { ...SECURITY_HEADERS, location },
    ...(cookies.length ? { cookies } : {}),
    body: '',
  };
}

function notFoundPage(): HttpResult {
  return messagePage(
    404,
    'Approval not found',
    'No approval request with this id is waiting for you. The link may be mistyped, or you are not an approver for it.',
  );
}

function unavailable(what: string): HttpResult {
  return messagePage(
    503,
    'Approval page unavailable',
    `${what} Use \`npx warden approve|deny <id>\` meanwhile.`,
  );
}

function csrfData(session: SessionCookie, requestId: string): string {
  return `csrf.${session.sid}.${requestId}`;
}

async function readSession(ctx: Ctx, signer: Signer): Promise<SessionCookie | undefined> {
  const value = readCookie(ctx.event, cookieName('session', settings(ctx)));
  return openCookie<SessionCookie>(signer, 'session', value, ctx.rt.clock.now());
}

function principalOf(session: SessionCookie): Principal {
  return { type: session.type, id: session.id, name: session.name, groups: session.groups };
}

function approvalDeps(rt: PageRuntime): ApprovalDeps | undefined {
  return rt.approvalHandles && rt.workflow ? (rt as ApprovalDeps) : undefined;
}

/** Where a sign-in may return: an approval page or an auditor's replay page, nothing else. */
const RETURN_PATH =
  /^\/(approvals|approve\/r_[A-Za-z0-9_-]{10,40}|replay\/[A-Za-z0-9._:-]{1,140}(\?request=r_[A-Za-z0-9_-]{10,40})?)$/;

/** Starts the OIDC sign-in and comes back to `returnPath` (an /approve/… or /replay/… path). */
export async function startSignIn(ctx: Ctx, returnPath: string): Promise<HttpResult> {
  if (!RETURN_PATH.test(returnPath)) throw new Error(`refusing to return to ${returnPath.slice(0, 80)}`);
  const rt = runtime(ctx);
  const signer = rt.signer!;
  const login = rt.approvalLogin;
  if (!login) return unavailable('Sign-in for approvers is not configured (OIDC_APPROVAL_CLIENT_ID).');
  const start = await login.start(`${baseUrl(ctx.event, ctx.rt)}/approve/callback`);
  const exp = Math.floor(ctx.rt.clock.now().getTime() / 1000) + LOGIN_SECONDS;
  const cookie = await sealCookie(signer, 'login', {
    exp,
    state: start.state,
    nonce: start.nonce,
    verifier: start.codeVerifier,
    returnTo: returnPath,
  } satisfies LoginCookie);
  const s = settings(ctx);
  return redirect(start.url, [serializeCookie(cookieName('login', s), cookie, s, LOGIN_SECONDS)]);
}

async function callback(ctx: Ctx): Promise<HttpResult> {
  const rt = runtime(ctx);
  if (!rt.signer) return unavailable('No signing key is configured (HMAC_KEY_ID or WARDEN_SIGNING_KEY).');
  if (!rt.approvalLogin)
    return unavailable('Sign-in for approvers is not configured (OIDC_APPROVAL_CLIENT_ID).');
  const s = settings(ctx);
  const q = ctx.event.queryStringParameters ?? {};
  const pending = await openCookie<LoginCookie>(
    rt.signer,
    'login',
    readCookie(ctx.event, cookieName('login', s)),
    ctx.rt.clock.now(),
  );
  const clearLogin = clearCookie(cookieName('login', s), s);
  if (!pending || !RETURN_PATH.test(pending.returnTo)) {
    return messagePage(
      400,
      'Sign-in expired',
      'This sign-in took too long or was started in another browser. Open the review link again.',
      { cookies: [clearLogin] },
    );
  }
  const back = pending.returnTo;
  if (typeof q.error === 'string') {
    return messagePage(401, 'Sign-in failed', `The identity provider said: ${q.error.slice(0, 100)}.`, {
      cookies: [clearLogin],
    });
  }
  if (typeof q.code !== 'string' || q.state !== pending.state) {
    return messagePage(
      400,
      'Sign-in failed',
      'The sign-in answer does not match this browser. Open the review link again.',
      {
        cookies: [clearLogin],
      },
    );
  }
  let principal: Principal;
  let tokenExp: number | undefined;
  try {
    const result = await rt.approvalLogin.exchange({
      code: q.code,
      redirectUri: `${baseUrl(ctx.event, ctx.rt)}/approve/callback`,
      codeVerifier: pending.verifier,
      nonce: pending.nonce,
      ...(typeof q.iss === 'string' ? { iss: q.iss } : {}),
    });
    // The API's verifier decides who this is: same issuer, same audience, same group mapping.
    const verified = await ctx.rt.verifier.verify(result.accessToken);
    if (result.idClaims?.sub !== undefined && result.idClaims.sub !== verified.claims.sub) {
      throw new WardenError(401, 'unauthorized', 'the ID token and the access token name different people');
    }
    principal = verified.principal;
    tokenExp = typeof verified.claims.exp === 'number' ? verified.claims.exp : undefined;
  } catch (error) {
    if (!(error instanceof WardenError) || error.statusCode >= 500) throw error;
    return messagePage(401, 'Sign-in failed', error.message, { cookies: [clearLogin] });
  }
  if (principal.type !== 'User') {
    return messagePage(403, 'Not a person', 'Approvals are decided by people, not by agents.', {
      cookies: [clearLogin],
    });
  }
  const now = Math.floor(ctx.rt.clock.now().getTime() / 1000);
  const exp = Math.min(now + SESSION_SECONDS, tokenExp ?? Number.POSITIVE_INFINITY);
  const session = await sealCookie(rt.signer, 'session', {
    exp,
    sid: randomBytes(16).toString('base64url'),
    type: principal.type,
    id: principal.id,
    name: principal.name,
    groups: principal.groups.slice(0, MAX_GROUPS),
  } satisfies SessionCookie);
  ctx.rt.log?.({ level: 'info', msg: 'approver signed in', approver: principal.name });
  return redirect(back, [clearLogin, serializeCookie(cookieName('session', s), session, s, exp - now)]);
}

async function renderReview(
  ctx: Ctx,
  deps: Parameters<typeof getApprovalFor>[0],
  session: SessionCookie,
  requestId: string,
  notice?: Notice,
  statusCode = 200,
): Promise<HttpResult> {
  const viewer = principalOf(session);
  let found;
  try {
    found = await getApprovalFor(deps, viewer, requestId);
  } catch (error) {
    if (error instanceof NotFoundError) {
      // Refused and then unable to see it (not an approver): say why instead of a bare 404.
      return notice ? messagePage(statusCode, 'Not decided', notice.text) : notFoundPage();
    }
    throw error;
  }
  const csrfToken = found.canVote ? await runtime(ctx).signer!.sign(csrfData(session, requestId)) : undefined;
  return htmlPage(statusCode, {
    title: `Approval ${found.view.requestId}`,
    header: signedInAs(session.name),
    body: reviewPageBody({
      view: found.view,
      canVote: found.canVote,
      ...(found.reason ? { reason: found.reason } : {}),
      viewerName: session.name,
      ...(csrfToken ? { csrfToken } : {}),
      ...(notice ? { notice } : {}),
      now: ctx.rt.clock.now(),
    }),
  });
}

async function showReview(ctx: Ctx, requestId: string): Promise<HttpResult> {
  if (!REQUEST_ID.test(requestId)) return notFoundPage();
  const rt = runtime(ctx);
  if (!rt.signer) return unavailable('No signing key is configured (HMAC_KEY_ID or WARDEN_SIGNING_KEY).');
  const session = await readSession(ctx, rt.signer);
  if (!session) return startSignIn(ctx, `/approve/${requestId}`);
  return renderReview(ctx, rt, session, requestId);
}

/** `/approvals`: what the signed-in person may decide, each linking to its page. Reads only. */
async function showList(ctx: Ctx): Promise<HttpResult> {
  const rt = runtime(ctx);
  if (!rt.signer) return unavailable('No signing key is configured (HMAC_KEY_ID or WARDEN_SIGNING_KEY).');
  const session = await readSession(ctx, rt.signer);
  if (!session) return startSignIn(ctx, '/approvals');
  const { approvals, more } = await listEveryPendingForApprover(rt, principalOf(session), MAX_LISTED);
  return htmlPage(200, {
    title: 'Approvals',
    header: signedInAs(session.name),
    body: approvalsListBody({ approvals, now: ctx.rt.clock.now(), more }),
  });
}

/** Same-origin check on top of the CSRF token: browsers send Origin on every form POST. */
function crossOrigin(ctx: Ctx): boolean {
  const origin = header(ctx.event, 'origin');
  if (origin !== undefined && origin !== 'null' && origin !== new URL(baseUrl(ctx.event, ctx.rt)).origin) {
    return true;
  }
  return header(ctx.event, 'sec-fetch-site') === 'cross-site';
}

function outcomeNotice(outcome: ApprovalOutcome): Notice {
  if (outcome.status === 'denied') return { tone: 'bad', text: 'You denied this request. It will not run.' };
  if (outcome.terminal) {
    return { tone: 'ok', text: 'You approved this request. It runs now; the requester sees the result.' };
  }
  const n = outcome.remainingApprovals;
  return {
    tone: 'pending',
    text: `Your approval is recorded; ${n} more approval${n === 1 ? '' : 's'} from other people needed.`,
  };
}

async function decide(ctx: Ctx, requestId: string): Promise<HttpResult> {
  if (!REQUEST_ID.test(requestId)) return notFoundPage();
  const rt = runtime(ctx);
  if (!rt.signer) return unavailable('No signing key is configured (HMAC_KEY_ID or WARDEN_SIGNING_KEY).');
  const deps = approvalDeps(rt);
  if (!deps) return unavailable('The approval workflow is not configured.');

  const forbidden = (text: string) => messagePage(403, 'Not decided', text);
  if (crossOrigin(ctx)) return forbidden('This form was submitted from another site.');
  const session = await readSession(ctx, rt.signer);
  if (!session) {
    return forbidden('Your sign-in has expired. Open the review link again; nothing was decided.');
  }
  const type = (header(ctx.event, 'content-type') ?? '').split(';')[0].trim().toLowerCase();
  const body = rawBody(ctx.event);
  if (type !== 'application/x-www-form-urlencoded' || Buffer.byteLength(body) > MAX_FORM_BYTES) {
    return messagePage(400, 'Not decided', 'The form could not be read; nothing was decided.');
  }
  const form = new URLSearchParams(body);
  const csrf = form.get('csrf') ?? '';
  if (!(await rt.signer.verify(csrfData(session, requestId), csrf))) {
    return forbidden(
      'The form is missing its security token or it does not match. Reload the page; nothing was decided.',
    );
  }
  const decision = form.get('decision');
  if (decision !== 'approve' && decision !== 'deny') {
    return messagePage(400, 'Not decided', 'Choose Approve or Deny; nothing was decided.');
  }
  const comment = (form.get('comment') ?? '').trim();
  if (comment.length > MAX_COMMENT) {
    return messagePage(
      400,
      'Not decided',
      `Keep the comment under ${MAX_COMMENT} characters; nothing was decided.`,
    );
  }

  let outcome: ApprovalOutcome;
  try {
    outcome = await decideApproval(deps, principalOf(session), requestId, {
      decision,
      ...(comment ? { comment } : {}),
    });
  } catch (error) {
    if (error instanceof NotFoundError) return notFoundPage();
    if (!(error instanceof WardenError) || error.statusCode >= 500) throw error;
    return renderReview(
      ctx,
      deps,
      session,
      requestId,
      { tone: 'bad', text: error.message },
      error.statusCode,
    );
  }
  ctx.rt.log?.({ level: 'info', msg: 'approval decided from the page', requestId, status: outcome.status });
  return renderReview(ctx, deps, session, requestId, outcomeNotice(outcome));
}

export const approvePageRoutes: ApiRoute[] = [
  // Listed before /approve/{id} so the callback is never taken for an approval id.
  { method: 'GET', path: '/approve/callback', handle: (ctx) => callback(ctx) },
  { method: 'GET', path: '/approve/{id}', handle: (ctx, { id }) => showReview(ctx, id) },
  { method: 'GET', path: '/approvals', handle: (ctx) => showList(ctx) },
  { method: 'POST', path: '/approve/{id}', handle: (ctx, { id }) => decide(ctx, id) },
];

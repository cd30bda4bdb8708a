/** What every route receives: the event, the runtime wiring, and authentication on demand. */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { BadRequestError } from '../core/errors.js';
import { traceRefusals } from '../core/refusals.js';
import { clientSessionId, isValidSessionName, sessionIdForToken, type CallMeta } from '../core/requests.js';
import type { Caller } from '../middleware/auth.js';
import { header, json, type HttpResult } from '../middleware/http.js';
import type { Route } from './router.js';
import type { Runtime } from './runtime.js';

export interface Ctx {
  readonly event: APIGatewayProxyEventV2;
  readonly rt: Runtime;
  /** Authenticates on demand: public routes never call it. */
  caller(): Promise<Caller>;
}

export type ApiRoute = Route<Ctx>;

export function baseUrl(event: APIGatewayProxyEventV2, rt: Runtime): string {
  if (rt.publicUrl) return rt.publicUrl.replace(/\/$/, '');
  return `https://${event.requestContext.domainName}`;
}

/**
 * The caller's session: X-Warden-Session when given (validated; scoped to the caller, so the same
 * name from two principals is two sessions), else one per token.
 */
export function sessionId(event: APIGatewayProxyEventV2, caller: Caller): string {
  const given = header(event, 'x-warden-session');
  if (given !== undefined) {
    if (!isValidSessionName(given)) {
      throw new BadRequestError('invalid X-Warden-Session: 1-128 characters of A-Z a-z 0-9 . _ : -');
    }
    return clientSessionId(caller.principal, given);
  }
  return sessionIdForToken(caller.token);
}

/**
 * Runs a submission route's body under the refusal trail: input the route itself refuses (a body
 * that is not JSON or fails the schema) leaves a `request_refused` event like the core's refusals.
 */
export function withRefusalTrail<T>(
  ctx: Ctx,
  caller: Caller,
  target: string,
  meta: CallMeta,
  run: () => Promise<T>,
): Promise<T> {
  return traceRefusals(ctx.rt, { principal: caller.principal, sessionId: meta.sessionId, target }, run);
}

/** A submission's answer: 200 with the result, or 202 with absolute links to follow and review it. */
export function submissionResult(ctx: Ctx, outcome: { status: 200 | 202; body: unknown }): HttpResult {
  if (outcome.status !== 202) return json(200, outcome.body);
  const body = outcome.body as { links: { self: string; review: string } };
  const base = baseUrl(ctx.event, ctx.rt);
  return json(202, {
    ...body,
    links: { self: `${base}${body.links.self}`, review: `${base}${body.links.review}` },
  });
}

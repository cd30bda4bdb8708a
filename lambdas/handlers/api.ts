/**
 * The API Lambda: every HTTP route of the public contract. Thin: parse, call core, map the result.
 */
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { NotFoundError } from '../core/errors.js';
import {
  canSeeTarget,
  checkSqlSize,
  findTarget,
  getRequest,
  isValidSessionId,
  mayViewUnmasked,
  operationContext,
  publicDecision,
  requestView,
  sessionIdForToken,
  submitSql,
  targetRef,
} from '../core/requests.js';
import { principalKey } from '../core/types.js';
import { authenticate, type Caller } from '../middleware/auth.js';
import { errorResult, header, json, logJson, parseJsonBody, type HttpResult } from '../middleware/http.js';
import { Router, type Route } from './router.js';
import { createRuntime, type Runtime } from './runtime.js';
import { explainBodySchema, sqlBodySchema } from './schemas.js';

const runtime: Runtime = await createRuntime();

interface Ctx {
  readonly event: APIGatewayProxyEventV2;
  readonly rt: Runtime;
  /** Authenticates on demand: public routes never call it. */
  caller(): Promise<Caller>;
}

function baseUrl(event: APIGatewayProxyEventV2, rt: Runtime): string {
  if (rt.publicUrl) return rt.publicUrl.replace(/\/$/, '');
  return `https://${event.requestContext.domainName}`;
}

function sessionId(event: APIGatewayProxyEventV2, caller: Caller): string {
  const given = header(event, 'x-warden-session');
  if (given !== undefined) {
    if (!isValidSessionId(given)) {
      throw new NotFoundError('invalid X-Warden-Session: 1-128 characters of A-Z a-z 0-9 . _ : -');
    }
    return `c_${given}`;
  }
  return sessionIdForToken(caller.token);
}

const routes: Route<Ctx>[] = [
  {
    method: 'GET',
    path: '/healthz',
    handle: async () => json(200, { status: 'ok' }),
  },
  {
    method: 'GET',
    path: '/v1/targets',
    handle: async (ctx) => {
      const { principal } = await ctx.caller();
      const engine = await ctx.rt.policies.engine();
      const targets = Object.entries(ctx.rt.config.targets)
        .filter(([name, t]) => canSeeTarget(engine, principal, name, t))
        .map(([name, t]) => ({ name, kind: t.kind, description: t.description }));
      return json(200, { targets });
    },
  },
  {
    method: 'POST',
    path: '/v1/targets/{target}/sql',
    handle: async (ctx, { target }) => {
      const caller = await ctx.caller();
      const body = parseJsonBody(ctx.event, sqlBodySchema, ctx.rt.config.maxBodyBytes);
      const outcome = await submitSql(ctx.rt, caller.principal, target, body, {
        sessionId: sessionId(ctx.event, caller),
      });
      if (outcome.status === 202) {
        const base = baseUrl(ctx.event, ctx.rt);
        return json(202, {
          ...outcome.body,
          links: { self: `${base}${outcome.body.links.self}`, review: `${base}${outcome.body.links.review}` },
        });
      }
      return json(200, outcome.body);
    },
  },
  {
    method: 'POST',
    path: '/v1/targets/{target}/explain',
    handle: async (ctx, { target: name }) => {
      const { principal } = await ctx.caller();
      const body = parseJsonBody(ctx.event, explainBodySchema, ctx.rt.config.maxBodyBytes);
      const engine = await ctx.rt.policies.engine();
      const target = findTarget(ctx.rt.config, name);
      if (!canSeeTarget(engine, principal, name, target)) throw new NotFoundError(`unknown target "${name}"`);
      if (!('sql' in body)) throw new NotFoundError(`target "${name}" does not take AWS calls`);
      if (target.kind !== 'sql') throw new NotFoundError(`target "${name}" does not take SQL`);
      checkSqlSize(body.sql, ctx.rt.config);
      const classification = await ctx.rt.classifySql(body.sql);
      const now = ctx.rt.clock.now();
      const grants = ctx.rt.grants ? await ctx.rt.grants.activeGrants(principal, name, now) : [];
      const action = `sql:${classification.class}`;
      const decision = engine.decideOperation(
        principal,
        action,
        targetRef(name, target),
        operationContext(classification, body.justification, grants, now),
      );
      return json(200, {
        target: name,
        classification,
        decision: publicDecision(decision),
        execution:
          decision.outcome === 'deny'
            ? null
            : {
                accessLevel: classification.class === 'read' ? 'read' : 'write',
                secret:
                  classification.class === 'read' ? 'read-only database user' : 'read-write database user',
                maxRows: target.maxRows,
                masked: !mayViewUnmasked(engine, principal, name, classification.tables),
              },
        grants,
      });
    },
  },
  {
    method: 'GET',
    path: '/v1/requests',
    handle: async (ctx) => {
      const { principal } = await ctx.caller();
      const records = await ctx.rt.requests.listByPrincipal(principalKey(principal), 50);
      return json(200, {
        requests: records.map((r) => ({
          requestId: r.id,
          target: r.target,
          status: r.status,
          createdAt: r.createdAt,
          action: r.decision.action,
        })),
      });
    },
  },
  {
    method: 'GET',
    path: '/v1/requests/{id}',
    handle: async (ctx, { id }) => {
      const { principal } = await ctx.caller();
      return json(200, await getRequest(ctx.rt, principal, id));
    },
  },
];

const router = new Router<Ctx>(routes);

export async function route(event: APIGatewayProxyEventV2): Promise<HttpResult> {
  const { route: r, params } = router.match(event);
  let caller: Promise<Caller> | undefined;
  const resourceMetadata = `${baseUrl(event, runtime)}/.well-known/oauth-protected-resource`;
  const ctx: Ctx = {
    event,
    rt: runtime,
    caller: () => (caller ??= authenticate(event, runtime.verifier, resourceMetadata)),
  };
  return (await r.handle(ctx, params)) as HttpResult;
}

export const handler = middy<APIGatewayProxyEventV2, HttpResult, Error, Context>()
  .use({
    onError: async (request) => {
      request.response = errorResult(request.error, request.event.requestContext?.requestId ?? '-', logJson);
    },
  })
  .use({
    after: async (request) => {
      request.response!.headers['x-request-id'] = request.event.requestContext.requestId;
    },
  })
  .handler(route);

export { requestView };

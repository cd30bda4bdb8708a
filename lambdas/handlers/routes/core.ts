/** The core routes: health, targets, SQL, explain, and a caller's requests. */
import { NotFoundError } from '../../core/errors.js';
import { explainSql } from '../../core/mcp/explain.js';
import { explainAws } from '../../core/aws-requests.js';
import { traceExplain } from '../../core/refusals.js';
import { canSeeTarget, findTarget, getRequest, submitSql } from '../../core/requests.js';
import { principalKey, type RequestStatus } from '../../core/types.js';
import { isSettled, parseWaitParam, waitForSettled } from '../../core/wait.js';
import { json, parseJsonBody } from '../../middleware/http.js';
import { sessionId, withRefusalTrail, type ApiRoute } from '../context.js';
import { explainBodySchema, sqlBodySchema } from '../schemas.js';
import { submissionWithWait } from './wait.js';

export const coreRoutes: ApiRoute[] = [
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
      const started = Date.now();
      const caller = await ctx.caller();
      const meta = { sessionId: sessionId(ctx.event, caller), token: caller.token };
      return withRefusalTrail(ctx, caller, target, meta, async () => {
        const body = parseJsonBody(ctx.event, sqlBodySchema, ctx.rt.config.maxBodyBytes);
        // A bad ?wait is refused before anything is recorded.
        parseWaitParam(ctx.event.queryStringParameters?.wait);
        const outcome = await submitSql(ctx.rt, caller.principal, target, body, meta);
        return submissionWithWait(ctx, outcome, started);
      });
    },
  },
  {
    method: 'POST',
    path: '/v1/targets/{target}/explain',
    handle: async (ctx, { target: name }) => {
      const caller = await ctx.caller();
      const { principal } = caller;
      const meta = { sessionId: sessionId(ctx.event, caller) };
      let statement: string | undefined;
      // Explaining runs nothing. An answered explain leaves an `explained` event (the decision it
      // revealed) before the answer; a refused one (unparseable, bad input, a hidden or unknown
      // target, an unsupported AWS call) a request_refused event like a refused submission.
      const explained = await traceExplain(
        ctx.rt,
        { principal, sessionId: meta.sessionId, target: name, statement: () => statement },
        async () => {
          const body = parseJsonBody(ctx.event, explainBodySchema, ctx.rt.config.maxBodyBytes);
          statement = 'sql' in body ? body.sql : `${body.service}:${body.action}`;
          const engine = await ctx.rt.policies.engine();
          const target = findTarget(ctx.rt.config, name);
          if (!canSeeTarget(engine, principal, name, target)) {
            throw new NotFoundError(`unknown target "${name}"`);
          }
          if (!('sql' in body)) return explainAws(ctx.rt, principal, name, body);
          return explainSql(ctx.rt, principal, name, body);
        },
      );
      return json(200, explained);
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
      const started = Date.now();
      const { principal } = await ctx.caller();
      const wait = parseWaitParam(ctx.event.queryStringParameters?.wait);
      // Access is checked first: nobody can wait on (or learn about) a request they may not see.
      const view = await getRequest(ctx.rt, principal, id);
      if (wait === 0 || isSettled(view.status as RequestStatus)) return json(200, view);
      const record = await waitForSettled(ctx.rt.requests, id, started + wait * 1000);
      // Settled meanwhile: the same view, with the same access rules, as without waiting.
      return json(200, record ? await getRequest(ctx.rt, principal, id) : view);
    },
  },
];

/**
 * The approvers' API (CLI, automation) and just-in-time access: what awaits me, decide, request a
 * time-boxed grant, list and revoke grants. Every decision goes through lambdas/core/approvals.ts,
 * the same function the approval page calls.
 */
import { decideApproval, getApprovalFor, listPendingForApprover } from '../../core/approvals.js';
import { ServiceUnavailableError } from '../../core/errors.js';
import { listGrants, revokeGrant, submitAccessRequest, type GrantStore } from '../../core/grants.js';
import { json, parseJsonBody } from '../../middleware/http.js';
import { baseUrl, sessionId, withRefusalTrail, type ApiRoute, type Ctx } from '../context.js';
import { accessRequestBodySchema, decisionBodySchema, durationSeconds } from '../schemas.js';

function grantStore(ctx: Ctx): GrantStore {
  if (!ctx.rt.grantStore) throw new ServiceUnavailableError('grants are not configured');
  return ctx.rt.grantStore;
}

export const approvalRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/v1/approvals',
    handle: async (ctx) => {
      const { principal } = await ctx.caller();
      const query = ctx.event.queryStringParameters ?? {};
      const limit = query.limit === undefined ? undefined : Number(query.limit);
      return json(200, await listPendingForApprover(ctx.rt, principal, { limit, cursor: query.cursor }));
    },
  },
  {
    method: 'GET',
    path: '/v1/approvals/{id}',
    handle: async (ctx, { id }) => {
      const { principal } = await ctx.caller();
      const { view, canVote, reason } = await getApprovalFor(ctx.rt, principal, id);
      return json(200, { ...view, canVote, ...(reason ? { reason } : {}) });
    },
  },
  {
    method: 'POST',
    path: '/v1/approvals/{id}/decision',
    handle: async (ctx, { id }) => {
      const { principal } = await ctx.caller();
      const body = parseJsonBody(ctx.event, decisionBodySchema, 16 * 1024);
      const outcome = await decideApproval(ctx.rt, principal, id, body);
      return json(200, outcome);
    },
  },
  {
    method: 'POST',
    path: '/v1/targets/{target}/access-requests',
    handle: async (ctx, { target }) => {
      const caller = await ctx.caller();
      const meta = { sessionId: sessionId(ctx.event, caller) };
      return withRefusalTrail(ctx, caller, target, meta, async () => {
        const body = parseJsonBody(ctx.event, accessRequestBodySchema, 16 * 1024);
        const outcome = await submitAccessRequest(
          ctx.rt,
          caller.principal,
          target,
          {
            level: body.level,
            durationSeconds: durationSeconds(body.duration),
            justification: body.justification,
          },
          meta,
        );
        const base = baseUrl(ctx.event, ctx.rt);
        return json(202, {
          ...outcome.body,
          links: { self: `${base}${outcome.body.links.self}`, review: `${base}${outcome.body.links.review}` },
        });
      });
    },
  },
  {
    method: 'GET',
    path: '/v1/grants',
    handle: async (ctx) => {
      const { principal } = await ctx.caller();
      const all = ctx.event.queryStringParameters?.all === 'true';
      return json(200, {
        grants: await listGrants({ grantStore: grantStore(ctx), clock: ctx.rt.clock }, principal, all),
      });
    },
  },
  {
    method: 'DELETE',
    path: '/v1/grants/{id}',
    handle: async (ctx, { id }) => {
      const { principal } = await ctx.caller();
      return json(200, await revokeGrant({ ...ctx.rt, grantStore: grantStore(ctx) }, principal, id));
    },
  },
];

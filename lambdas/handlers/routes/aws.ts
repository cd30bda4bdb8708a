/** AWS calls through the target's role: `POST /v1/targets/{target}/aws` and the AWS half of explain. */
import { explainAws, submitAws, type AwsSubmission } from '../../core/aws-requests.js';
import type { Principal } from '../../core/types.js';
import { json, parseJsonBody, type HttpResult } from '../../middleware/http.js';
import { parseWaitParam } from '../../core/wait.js';
import { sessionId, withRefusalTrail, type ApiRoute, type Ctx } from '../context.js';
import { submissionWithWait } from './wait.js';
import { awsBodySchema } from '../schemas.js';

export const awsRoutes: ApiRoute[] = [
  {
    method: 'POST',
    path: '/v1/targets/{target}/aws',
    handle: async (ctx, { target }) => {
      const started = Date.now();
      const caller = await ctx.caller();
      const meta = { sessionId: sessionId(ctx.event, caller), token: caller.token };
      return withRefusalTrail(ctx, caller, target, meta, async () => {
        const body = parseJsonBody(ctx.event, awsBodySchema, ctx.rt.config.maxBodyBytes);
        parseWaitParam(ctx.event.queryStringParameters?.wait);
        const outcome = await submitAws(ctx.rt, caller.principal, target, body, meta);
        return submissionWithWait(ctx, outcome, started);
      });
    },
  },
];

/** `/explain` with an AWS body (routes/core.ts dispatches here): the session policy, nothing run. */
export async function explainAwsCall(
  ctx: Ctx,
  principal: Principal,
  target: string,
  body: AwsSubmission,
): Promise<HttpResult> {
  return json(200, await explainAws(ctx.rt, principal, target, body));
}

/** AWS calls through the target's role: `POST /v1/targets/{target}/aws` (explain is in routes/core.ts). */
import { submitAws } from '../../core/aws-requests.js';
import { parseJsonBody } from '../../middleware/http.js';
import { parseWaitParam } from '../../core/wait.js';
import { sessionId, withRefusalTrail, type ApiRoute } from '../context.js';
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

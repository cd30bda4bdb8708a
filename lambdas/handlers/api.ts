/**
 * The API Lambda: every HTTP route of the public contract. Thin: parse, call core, map the result.
 * Routes live in ./routes/, one file per area; this file composes them.
 */
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { authenticate, type Caller } from '../middleware/auth.js';
import { errorResult, logJson, type HttpResult } from '../middleware/http.js';
import { type ApiRoute, type Ctx } from './context.js';
import { Router } from './router.js';
import { approvePageRoutes } from './routes/approve-page.js';
import { awsRoutes } from './routes/aws.js';
import { approvalRoutes } from './routes/approvals.js';
import { coreRoutes } from './routes/core.js';
import { sessionRoutes } from './routes/sessions.js';
import { authChallenge, mcpRoutes } from './routes/mcp.js';
import { mcpToolRoutes } from './routes/mcp-tools.js';
import { createRuntime, type Runtime } from './runtime.js';

// Reads and decisions only: allowed writes and AWS calls run in the execute function (runtime.ts).
const runtime: Runtime = await createRuntime(process.env, { warmUp: true, role: 'api' });
/** Resolves when this instance's cold start has nothing left running (Runtime.settled). */
export const settled: Promise<void> = runtime.settled;
/** Cold-start phase timings (read by bench/cold-start.ts). */
export { COLD_START_PHASES } from './runtime.js';

const routes: ApiRoute[] = [
  ...coreRoutes,
  ...sessionRoutes,
  ...approvePageRoutes,
  ...mcpRoutes,
  ...awsRoutes,
  ...approvalRoutes,
  ...mcpToolRoutes,
  // (route groups of other areas are added here, one line each)
];

const router = new Router<Ctx>(routes);

export async function route(event: APIGatewayProxyEventV2): Promise<HttpResult> {
  const { route: r, params } = router.match(event);
  let caller: Promise<Caller> | undefined;
  const ctx: Ctx = {
    event,
    rt: runtime,
    caller: () => (caller ??= authenticate(event, runtime.verifier, authChallenge(event, runtime, r.path))),
  };
  return (await r.handle(ctx, params)) as HttpResult;
}

export const handler = middy<APIGatewayProxyEventV2, HttpResult, Error, Context>()
  .use({
    onError: async (request) => {
      const requestId = request.event.requestContext?.requestId ?? '-';
      request.response = errorResult(request.error, requestId, logJson);
      // The id a 5xx's message names, also on error answers: what an operator looks up in the logs.
      request.response.headers['x-request-id'] = requestId;
    },
  })
  .use({
    after: async (request) => {
      request.response!.headers['x-request-id'] = request.event.requestContext.requestId;
    },
  })
  .handler(route);

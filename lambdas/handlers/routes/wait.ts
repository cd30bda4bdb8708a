/** `?wait=N` on the REST submissions (SQL and AWS): the HTTP half of core/wait.ts. */
import { requestView } from '../../core/requests.js';
import type { RequestRecord } from '../../core/types.js';
import { isSettled, parseWaitParam, waitForSettled } from '../../core/wait.js';
import { json, type HttpResult } from '../../middleware/http.js';
import { submissionResult, type Ctx } from '../context.js';

/**
 * `?wait=N` on a submission: a request that needs approval is held up to N seconds (at most
 * MAX_WAIT_SECONDS); settled in time, the answer is its view (200, as `GET /v1/requests/{id}`
 * gives it: executed with the masked result, denied, expired or failed); else the usual 202.
 */
export async function submissionWithWait(
  ctx: Ctx,
  outcome: { status: 200 | 202; body: unknown; record: RequestRecord },
  started: number,
): Promise<HttpResult> {
  const wait = parseWaitParam(ctx.event.queryStringParameters?.wait);
  if (outcome.status !== 202 || wait === 0) return submissionResult(ctx, outcome);
  const record = await waitForSettled(ctx.rt.requests, outcome.record.id, started + wait * 1000);
  if (record && isSettled(record.status)) return json(200, requestView(record));
  const pending = submissionResult(ctx, outcome);
  if (!record || record.status === 'pending_approval') return pending;
  // Approved in time, not finished yet: say so; the result is one GET away.
  return { ...pending, body: JSON.stringify({ ...JSON.parse(pending.body ?? '{}'), status: record.status }) };
}

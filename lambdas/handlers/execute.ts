/**
 * The execute function. Two callers:
 * - the approval workflow's Execute step and its Record denied / expired / failure steps: runs
 *   exactly what was approved (once), or records the terminal status. Errors end the execution
 *   `Failed`; the request record already holds the reason;
 * - the API function (`mode: 'direct'`), for allowed writes and allowed AWS calls, which only this
 *   function may run: it checks the request again before anything runs (core/direct-execution.ts)
 *   and answers the outcome or the error for the caller.
 */
import { z } from 'zod';
import { onExecute, type ExecuteEvent, type StepResult } from '../core/approval-steps.js';
import { runDirect, type DirectAnswer, type DirectExecution } from '../core/direct-execution.js';
import { createRuntime } from './runtime.js';

const runtime = await createRuntime();

const requestId = z.string().regex(/^r_[A-Za-z0-9_-]{10,40}$/);

const eventSchema = z.object({
  requestId,
  mode: z.enum(['execute', 'deny', 'expire', 'fail']),
  error: z.object({ Error: z.string().optional(), Cause: z.string().optional() }).passthrough().optional(),
});

const directSchema = z.object({
  mode: z.literal('direct'),
  requestId,
  token: z.string().min(1).max(16_384),
  exact: z.object({
    operation: z.discriminatedUnion('kind', [
      z.object({
        kind: z.literal('sql'),
        sql: z.string(),
        parameters: z
          .array(
            z.object({
              name: z.string(),
              value: z.union([z.string(), z.number(), z.boolean(), z.null()]),
              typeHint: z.string().optional(),
            }),
          )
          .optional(),
      }),
      z.object({
        kind: z.literal('aws'),
        service: z.string(),
        action: z.string(),
        input: z.record(z.string(), z.unknown()),
        region: z.string().optional(),
      }),
    ]),
    justification: z.string().optional(),
  }),
});

export const handler = async (
  event: ExecuteEvent | { mode: 'direct' },
): Promise<StepResult | DirectAnswer> => {
  if (event.mode === 'direct') {
    const parsed = directSchema.safeParse(event);
    if (!parsed.success) {
      return {
        ok: false,
        error: { statusCode: 400, code: 'bad_request', message: 'not a direct execution' },
      };
    }
    return runDirect(runtime, parsed.data as DirectExecution);
  }
  return onExecute(runtime, eventSchema.parse(event));
};

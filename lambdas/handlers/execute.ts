/**
 * The workflow's Execute step and its Record denied / expired / failure steps: runs exactly what was
 * approved (once), or records the terminal status. Errors end the execution `Failed`; the request
 * record already holds the reason.
 */
import { z } from 'zod';
import { onExecute, type ExecuteEvent, type StepResult } from '../core/approval-steps.js';
import { createRuntime } from './runtime.js';

const runtime = await createRuntime();

const eventSchema = z.object({
  requestId: z.string().regex(/^r_[A-Za-z0-9_-]{10,40}$/),
  mode: z.enum(['execute', 'deny', 'expire', 'fail']),
  error: z.object({ Error: z.string().optional(), Cause: z.string().optional() }).passthrough().optional(),
});

export const handler = async (event: ExecuteEvent): Promise<StepResult> =>
  onExecute(runtime, eventSchema.parse(event));

/**
 * The workflow's Notify step (waitForTaskToken): stores the task token server-side and tells the
 * approvers. Its return value is ignored; the execution waits until the API answers the token.
 */
import { z } from 'zod';
import { notifierFromEnv } from '../adapters/notifications.js';
import { onNotify, type NotifyEvent } from '../core/approval-steps.js';
import { logJson } from '../middleware/http.js';
import { createRuntime } from './runtime.js';

// Notify shows stored (already masked) statements and masks free text: it never hashes, seals or opens.
const runtime = await createRuntime(process.env, { hashing: false, sealing: false });
const notifier = notifierFromEnv(process.env, logJson);

const eventSchema = z.object({
  requestId: z.string().regex(/^r_[A-Za-z0-9_-]{10,40}$/),
  taskToken: z.string().min(1).max(1024),
  approvalWindowSeconds: z.number().int().positive(),
});

export const handler = async (event: NotifyEvent): Promise<{ approvalId: string }> => {
  const parsed = eventSchema.parse(event);
  const { approvalId } = await onNotify(runtime, notifier, parsed);
  return { approvalId };
};

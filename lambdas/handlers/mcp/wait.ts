/**
 * `wait_seconds` on run_sql and call_aws: the call holds while its request waits for a person, and
 * answers with whatever happened in time — the executed (masked) result, the denial, the expiry or
 * the failure — or, when nobody decided, the usual pending answer. While it holds it sends progress
 * notifications if the client asked for them (a `progressToken`) and the response streams.
 */
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { CallToolResult, ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import { publicDecision, type PendingBody } from '../../core/requests.js';
import type { RequestRecord } from '../../core/types.js';
import { isSettled, waitForSettled } from '../../core/wait.js';
import { callAwsOutput, runSqlOutput, toolResult } from './outputs.js';
import { pendingResult } from './results.js';
import type { McpCall } from './server.js';

type SqlResult = NonNullable<z.input<typeof runSqlOutput>['result']>;
type AwsResult = NonNullable<z.input<typeof callAwsOutput>['result']>;

export type ToolExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** Holds until the request is settled or `deadlineMs`; then the answer the model can act on. */
export async function awaitDecision(
  call: McpCall,
  kind: 'sql' | 'aws',
  pending: PendingBody,
  waitSeconds: number,
  deadlineMs: number,
  extra: ToolExtra,
): Promise<CallToolResult> {
  const token = extra._meta?.progressToken;
  const record = await waitForSettled(call.rt.requests, pending.requestId, deadlineMs, {
    signal: extra.signal,
    onPoll:
      token === undefined
        ? undefined
        : async (rec, elapsedMs) => {
            // A notification that cannot be delivered must not end the wait.
            await extra
              .sendNotification({
                method: 'notifications/progress',
                params: {
                  progressToken: token,
                  progress: Math.min(waitSeconds, Math.round(elapsedMs / 100) / 10),
                  total: waitSeconds,
                  message: `request ${rec.id}: ${rec.status.replace('_', ' ')}`,
                },
              })
              .catch(() => undefined);
          },
  });
  if (!record || !isSettled(record.status)) {
    if (record && record.status !== 'pending_approval') {
      return running(kind, record, `${call.baseUrl}${pending.links.review}`);
    }
    return pendingResult(pending, call.baseUrl, waitSeconds);
  }
  return settled(kind, record);
}

const schemaOf = (kind: 'sql' | 'aws') => (kind === 'sql' ? runSqlOutput : callAwsOutput);

function base(record: RequestRecord) {
  return {
    requestId: record.id,
    decision: publicDecision(record.decision),
    ...(record.decidedBy ? { decidedBy: record.decidedBy } : {}),
  };
}

/** Approved in time, still running when the wait ended: the result is one get_request away. */
function running(kind: 'sql' | 'aws', record: RequestRecord, review: string): CallToolResult {
  return toolResult(
    schemaOf(kind),
    { ...base(record), status: record.status },
    `request ${record.id} was approved${record.decidedBy ? ` by ${record.decidedBy}` : ''} and is ${record.status === 'running' ? 'running' : 'about to run'}; call get_request with this id in a moment for its result (review link: ${review}).`,
    { isError: true, textOnly: true },
  );
}

function settled(kind: 'sql' | 'aws', record: RequestRecord): CallToolResult {
  const by = record.decidedBy ? ` by ${record.decidedBy}` : '';
  switch (record.status) {
    case 'executed': {
      // What the workflow kept: the masked form (whoever asked), cut at the recorded rows.
      const masking = { byType: record.masking?.byType ?? {} };
      const result = { ...(record.result as object), masking } as SqlResult & AwsResult;
      const rows = kind === 'sql' ? ` ${String(record.rowCount ?? '?')} row(s);` : '';
      const summary = `Approved${by} and executed (request ${record.id}):${rows} the masked result is included${result.truncated ? ', truncated' : ''}.`;
      return kind === 'sql'
        ? toolResult(runSqlOutput, { ...base(record), status: 'executed', result }, summary)
        : toolResult(callAwsOutput, { ...base(record), status: 'executed', result }, summary);
    }
    case 'denied':
      return toolResult(
        schemaOf(kind),
        { ...base(record), status: 'denied' },
        `denied${by} (request ${record.id}): an approver refused it; it will not run. Do not resubmit it unchanged; ask the user what the approver needs.`,
        { isError: true, textOnly: true },
      );
    case 'expired':
      return toolResult(
        schemaOf(kind),
        { ...base(record), status: 'expired' },
        `expired (request ${record.id}): nobody approved it in its window; it will not run.`,
        { isError: true, textOnly: true },
      );
    default:
      return toolResult(
        schemaOf(kind),
        { ...base(record), status: 'failed', ...(record.error ? { error: record.error } : {}) },
        `failed (request ${record.id}, approved${by}): ${record.error?.message ?? 'the execution failed'}.`,
        { isError: true, textOnly: true },
      );
  }
}

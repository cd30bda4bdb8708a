/**
 * Tool results an LLM can act on. A denial, a pending approval, bad SQL or a database error is a
 * tool result with `isError: true` and a message saying what happened and what to do next, never
 * a protocol error: the model reads tool results, not JSON-RPC errors.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import { publicMessage, WardenError } from '../../core/errors.js';
import { secondLayerText } from '../../core/masking/second-layer.js';
import type { AccessPendingBody } from '../../core/grants.js';
import type { PendingBody } from '../../core/requests.js';
import type { Runtime } from '../runtime.js';
import { pendingOutput, requestAccessOutput, toolResult } from './outputs.js';

function waitingFor(groups: readonly string[]): string {
  if (groups.length === 0) return 'an approver';
  if (groups.length === 1) return `the ${groups[0]} group`;
  return `the ${groups.slice(0, -1).join(', ')} or ${groups[groups.length - 1]} groups`;
}

/** Approval required: nothing ran; the id is what the model needs to follow the request. */
export function pendingResult(body: PendingBody, baseUrl: string, waited?: number): CallToolResult {
  const review = `${baseUrl}${body.links.review}`;
  const approvals = body.requiredApprovals > 1 ? ` (${body.requiredApprovals} approvals needed)` : '';
  const until = body.expiresAt ? `; if nobody decides by ${body.expiresAt} it expires` : '';
  const after = waited ? ` (nobody decided within the ${waited} s waited)` : '';
  const text = `approval required: request ${body.requestId} is waiting for ${waitingFor(body.approverGroups)}${approvals}${after}${until}. Nothing has run yet. Tell the user, then call get_request with this id to follow it; once approved it runs exactly as submitted. Review link for approvers: ${review}`;
  return toolResult(
    pendingOutput,
    {
      requestId: body.requestId,
      status: 'pending_approval',
      decision: body.decision,
      approval: approvalOf(body, review),
    },
    text,
    { isError: true, textOnly: true },
  );
}

function approvalOf(
  body: Pick<PendingBody, 'approverGroups' | 'requiredApprovals' | 'expiresAt'>,
  review: string,
): NonNullable<z.input<typeof pendingOutput>['approval']> {
  return {
    approverGroups: body.approverGroups,
    requiredApprovals: body.requiredApprovals,
    ...(body.expiresAt ? { expiresAt: body.expiresAt } : {}),
    review,
  };
}

/**
 * An access request always waits for a person; that is the tool doing its job, so it is not an
 * error result (an error would invite the model to file it again).
 */
export function accessPendingResult(body: AccessPendingBody, baseUrl: string): CallToolResult {
  const review = `${baseUrl}${body.links.review}`;
  const text = `access request ${body.requestId} for ${body.grant.action} on "${body.grant.target}" (${body.grant.durationSeconds} s) is waiting for ${waitingFor(body.approverGroups)}. Nothing is granted yet. Tell the user, then call get_request with this id to follow it; once approved, your ${body.grant.action} statements on this target are allowed until the grant expires. Review link for approvers: ${review}`;
  return toolResult(
    requestAccessOutput,
    {
      requestId: body.requestId,
      status: 'pending_approval',
      decision: body.decision,
      grant: body.grant,
      approval: approvalOf(body, review),
    },
    text,
    { textOnly: true },
  );
}

function hint(error: WardenError): string {
  switch (error.code) {
    case 'denied':
      return 'This is a policy decision: do not retry the same call. Use explain to see what is allowed, change the statement (a read-only SELECT is often enough), or ask a human for access.';
    case 'not_found':
      return 'Call list_targets for the targets you may use (or check the request id).';
    case 'sql_parse_error':
      return 'Fix the statement (one PostgreSQL statement, values as :named parameters) and call again.';
    case 'bad_request':
      return 'Fix the arguments and call again.';
    case 'payload_too_large':
      return 'Send a shorter statement.';
    default:
      return error.statusCode >= 500
        ? 'This is a problem on the gateway or behind it, not with your call. Before calling again anything that may write, check with get_request (the request id above) whether it ran.'
        : 'The database refused the statement; fix it and call again.';
  }
}

/** Maps whatever a use case threw to an error result; unexpected errors are logged, not shown. */
export function errorResult(error: unknown, rt: Pick<Runtime, 'log'>): CallToolResult {
  if (error instanceof WardenError) {
    const requestId =
      (error as { requestId?: string }).requestId ??
      (typeof error.details?.requestId === 'string' ? error.details.requestId : undefined);
    if (error.statusCode >= 500) {
      rt.log?.({
        level: 'error',
        msg: 'mcp tool failed',
        code: error.code,
        requestId,
        error: error.message,
        cause: String(error.cause ?? ''),
      });
    }
    const label = error.code === 'denied' ? 'denied' : error.code.replace(/_/g, ' ');
    const recorded = requestId ? ` (request ${requestId}, recorded)` : '';
    return {
      // A 5xx says what kind of fault it was, never the dependency's own words (core/errors.ts); the
      // detectors are the last layer: a message may quote what the agent sent or a dependency echoed.
      content: [
        {
          type: 'text',
          text: secondLayerText(`${label}${recorded}: ${publicMessage(error)}. ${hint(error)}`),
        },
      ],
      isError: true,
    };
  }
  rt.log?.({
    level: 'error',
    msg: 'mcp tool failed',
    error: error instanceof Error ? (error.stack ?? error.message) : String(error),
  });
  return {
    content: [
      { type: 'text', text: 'internal error on the gateway; nothing is known to have run. Try again later.' },
    ],
    isError: true,
  };
}

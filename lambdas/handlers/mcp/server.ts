/**
 * Warden's MCP server: the governed request path offered as MCP tools. A fresh server is built for
 * every HTTP request (stateless transport) with the authenticated caller closed over, so nothing of
 * one client can reach another. Tools call the same core use cases as the REST routes, so every
 * call is decided, recorded and masked exactly like its REST twin.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { explainAws, submitAws } from '../../core/aws-requests.js';
import { submitAccessRequest } from '../../core/grants.js';
import { DescribeNotRunError, describeTarget } from '../../core/mcp/describe.js';
import { explainSql } from '../../core/mcp/explain.js';
import { traceExplain, type Explained } from '../../core/refusals.js';
import { canSeeTarget, getRequest, submitSql, type CallMeta } from '../../core/requests.js';
import type { Principal } from '../../core/types.js';
import { MAX_WAIT_SECONDS } from '../../core/wait.js';
import type { Runtime } from '../runtime.js';
import { durationSeconds, justificationSchema, sqlParameterSchema, sqlTextSchema } from '../schemas.js';
import {
  callAwsOutput,
  describeTargetOutput,
  explainOutput,
  getRequestOutput,
  listTargetsOutput,
  requestAccessOutput,
  runSqlOutput,
} from './outputs.js';
import { toolResult } from './outputs.js';
import { accessPendingResult, errorResult, pendingResult } from './results.js';
import { installUpstreamTools } from './upstream-tools.js';
import { awaitDecision } from './wait.js';

export const SERVER_INFO = { name: 'warden', version: '1.0.0' } as const;

export interface McpCall {
  readonly rt: Runtime;
  readonly principal: Principal;
  readonly meta: CallMeta;
  /** Public base URL: links in results are absolute. */
  readonly baseUrl: string;
}

export const INSTRUCTIONS = `Warden is the gateway between you and production data. You never hold database or AWS credentials: Warden runs each call for you with credentials scoped to that one call.
Every call is classified (a SQL statement is parsed with PostgreSQL's own parser; anything not provably read-only counts as a write), decided by the organisation's Cedar policies (allow, approval required, or deny), recorded in an audit trail before it runs, and its result is masked (emails, card numbers, SSNs, IBANs, phone numbers, keys and tokens) unless your identity may see values in clear.
Start with list_targets, then describe_target to learn tables and columns. Use explain to see how a statement would be classified and decided without running it. When a call needs approval nothing runs: you get a request id; tell the user who has to approve and follow it with get_request. A denial is final for that statement: do not retry it unchanged. Give a short justification with anything beyond a routine read: approvers and auditors read it.`;

const targetArg = z.string().min(1).max(63).describe('Target name, as list_targets returns it (e.g. "demo")');
const requestIdArg = z
  .string()
  .regex(/^r_[A-Za-z0-9_-]{10,40}$/, 'a request id looks like r_…')
  .describe('Request id returned by run_sql, call_aws or request_access (r_…)');
const waitArg = z
  .number()
  .int()
  .min(0)
  .max(MAX_WAIT_SECONDS)
  .optional()
  .describe(
    `If the call needs approval, hold up to this many seconds (at most ${MAX_WAIT_SECONDS}) for an approver: decided in time, the answer is the executed result or the denial; otherwise the usual pending answer`,
  );
const justificationArg = justificationSchema.describe(
  'Why you need this, in a sentence: recorded with the request and shown to approvers',
);

export function createWardenMcpServer(call: McpCall): McpServer {
  const { rt, principal, meta } = call;
  const server = new McpServer(SERVER_INFO, {
    instructions: INSTRUCTIONS,
    capabilities: { tools: { listChanged: false } },
  });

  server.registerTool(
    'list_targets',
    {
      title: 'List targets',
      description:
        'The databases and AWS accounts you may use through Warden, with a description of each. Targets your identity has no permission on are not listed.',
      inputSchema: {},
      outputSchema: listTargetsOutput,
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    async () => {
      try {
        const engine = await rt.policies.engine();
        const targets = Object.entries(rt.config.targets)
          .filter(([name, t]) => canSeeTarget(engine, principal, name, t))
          .map(([name, t]) => ({ name, kind: t.kind, description: t.description }));
        const summary =
          targets.length === 0
            ? 'You may not use any target through this gateway.'
            : `You may use ${targets.map((t) => `${t.name} (${t.kind})`).join(', ')}.`;
        return toolResult(listTargetsOutput, { targets }, summary);
      } catch (error) {
        return errorResult(error, rt);
      }
    },
  );

  server.registerTool(
    'describe_target',
    {
      title: 'Describe a target',
      description:
        'Tables and columns of a SQL target (from its information_schema, read through Warden like any read and recorded), or the services and regions of an AWS target. Columns marked `masked: true` always come back masked for you (strategy: redact, partial, hash or null); every other value is still scanned for personal data and secrets, which are masked where found.',
      inputSchema: { target: targetArg },
      outputSchema: describeTargetOutput,
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    async ({ target }) => {
      try {
        const described = await describeTarget(rt, principal, target, meta);
        const summary =
          described.kind === 'sql'
            ? `${described.tables?.length ?? 0} tables in ${target}; ${described.masking}.`
            : `AWS target ${target}: services ${described.services?.join(', ')}.`;
        return toolResult(describeTargetOutput, described, summary);
      } catch (error) {
        if (error instanceof DescribeNotRunError) {
          return pendingText(
            error.requestId,
            `reading the schema of "${target}" needs approval for you`,
            call.baseUrl,
          );
        }
        return errorResult(error, rt);
      }
    },
  );

  server.registerTool(
    'run_sql',
    {
      title: 'Run SQL',
      description:
        'Run one PostgreSQL statement on a SQL target through Warden. Warden parses and classifies it (read, write, ddl, privilege, admin: anything not provably read-only is a write), then the policies allow it, require a human approval, or deny it. Allowed reads run as a read-only database user; rows are capped at the target limit (`truncated: true` beyond it); sensitive values are masked unless your identity may see them in clear (`masking.byType` counts what was masked). When approval is required nothing runs now: the result is an error naming the request id and who must approve; follow it with get_request (once approved, the statement runs exactly as submitted), or pass `wait_seconds` (up to 25) to hold this call for the approver and get the executed result or the denial in the same answer. Pass values as named parameters (`:id` in the SQL, `parameters: [{name: "id", value: 7}]`) rather than inlining them. Everything, including the justification, is recorded in the audit trail.',
      inputSchema: {
        target: targetArg,
        sql: sqlTextSchema.describe('One PostgreSQL statement'),
        parameters: z
          .array(sqlParameterSchema)
          .max(200)
          .optional()
          .describe('Named parameters: [{name, value, typeHint?}] for :name placeholders'),
        justification: justificationArg.optional(),
        wait_seconds: waitArg,
      },
      outputSchema: runSqlOutput,
      annotations: {
        title: 'Run SQL',
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: false,
        openWorldHint: false,
      },
    },
    async ({ target, sql, parameters, justification, wait_seconds }, extra) => {
      const started = Date.now();
      try {
        const outcome = await submitSql(rt, principal, target, { sql, parameters, justification }, meta);
        if (outcome.status === 202) {
          if (!wait_seconds) return pendingResult(outcome.body, call.baseUrl);
          return await awaitDecision(
            call,
            'sql',
            outcome.body,
            wait_seconds,
            started + wait_seconds * 1000,
            extra,
          );
        }
        const { result } = outcome.body;
        const masked = maskedSummary(result.masking.byType);
        const summary = `Executed (request ${outcome.body.requestId}): ${result.rowCount} row(s)${result.truncated ? ', truncated at the target limit' : ''}${masked ? `; masked: ${masked}` : result.masking.unmasked ? '; shown unmasked' : ''}.`;
        return toolResult(
          runSqlOutput,
          { requestId: outcome.body.requestId, status: 'executed', decision: outcome.body.decision, result },
          summary,
        );
      } catch (error) {
        return errorResult(error, rt);
      }
    },
  );

  server.registerTool(
    'call_aws',
    {
      title: 'Call an AWS API',
      description:
        'Call one AWS API action (e.g. service "s3", action "ListBuckets") on an AWS target through Warden. The action is classified by its IAM access level (read, write, permissions); unknown actions are denied. Allowed calls run with credentials scoped to exactly this action and resource for this one call; the response is masked. Approval and denial work as for run_sql: when approval is required nothing runs and you get a request id to follow with get_request, or pass `wait_seconds` (up to 25) to wait for the approver in this call.',
      inputSchema: {
        target: targetArg,
        service: z
          .string()
          .min(1)
          .max(64)
          .describe('AWS service, as in the SDK client name: s3, dynamodb, ec2, …'),
        action: z
          .string()
          .min(1)
          .max(128)
          .describe('API action, e.g. ListBuckets, GetItem, DescribeInstances'),
        input: z
          .record(z.string(), z.unknown())
          .default({})
          .describe('The action input, as the AWS SDK takes it'),
        region: z
          .string()
          .regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/)
          .optional(),
        justification: justificationArg.optional(),
        wait_seconds: waitArg,
      },
      outputSchema: callAwsOutput,
      annotations: {
        title: 'Call an AWS API',
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: false,
        openWorldHint: true,
      },
    },
    async ({ target, service, action, input, region, justification, wait_seconds }, extra) => {
      const started = Date.now();
      try {
        if (!hasAwsTarget(call)) return textError('AWS targets are not configured on this gateway');
        const outcome = await submitAws(
          rt,
          principal,
          target,
          { service, action, input, region, justification },
          meta,
        );
        if (outcome.status === 202) {
          if (!wait_seconds) return pendingResult(outcome.body, call.baseUrl);
          return await awaitDecision(
            call,
            'aws',
            outcome.body,
            wait_seconds,
            started + wait_seconds * 1000,
            extra,
          );
        }
        const { result } = outcome.body;
        const masked = maskedSummary(result.masking.byType);
        const summary = `Executed ${result.service}:${result.action} in ${result.region} (request ${outcome.body.requestId})${result.truncated ? ', output truncated' : ''}${masked ? `; masked: ${masked}` : ''}.`;
        return toolResult(
          callAwsOutput,
          { requestId: outcome.body.requestId, status: 'executed', decision: outcome.body.decision, result },
          summary,
        );
      } catch (error) {
        return errorResult(error, rt);
      }
    },
  );

  server.registerTool(
    'explain',
    {
      title: 'Explain a call without running it',
      description:
        'How Warden would classify and decide a SQL statement (give `sql`) or an AWS call (give `service`, `action`, `input`) for you, with the determining policies, the credentials it would run with and whether the result would be masked. Runs nothing (the question and the answer are recorded in your session): use it before run_sql when unsure whether a statement will be allowed, need approval or be denied.',
      inputSchema: {
        target: targetArg,
        sql: sqlTextSchema.optional().describe('A PostgreSQL statement to explain'),
        service: z.string().min(1).max(64).optional(),
        action: z.string().min(1).max(128).optional(),
        input: z.record(z.string(), z.unknown()).optional(),
        justification: justificationArg.optional(),
      },
      outputSchema: explainOutput,
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    async ({ target, sql, service, action, input, justification }) => {
      // Explaining runs nothing; an answered explain leaves an `explained` event before the answer,
      // a refused one a request_refused event.
      const traced = <T extends Explained>(statement: string, run: () => Promise<T>) =>
        traceExplain(rt, { principal, sessionId: meta.sessionId, target, statement: () => statement }, run);
      try {
        if (sql !== undefined) {
          const explained = await traced(sql, () =>
            explainSql(rt, principal, target, { sql, justification }),
          );
          const d = explained.decision;
          const summary = `${explained.classification.class} statement (${d.action}): ${d.outcome}${d.determiningPolicies.length ? ` by ${d.determiningPolicies.join(', ')}` : ''}${explained.execution ? `; would run as the ${explained.execution.secret}${explained.execution.masked ? ', masked' : ', unmasked'}` : ''}. Nothing was run.`;
          return toolResult(explainOutput, explained, summary);
        }
        if (service === undefined || action === undefined) {
          return textError('give either `sql`, or `service` and `action` (with `input`) to explain');
        }
        if (!hasAwsTarget(call)) return textError('AWS targets are not configured on this gateway');
        const explained = await traced(`${service}:${action}`, () =>
          explainAws(rt, principal, target, { service, action, input: input ?? {}, justification }),
        );
        const d = explained.decision;
        const summary = `${explained.classification.iamAction} (${d.action}): ${d.outcome}${d.determiningPolicies.length ? ` by ${d.determiningPolicies.join(', ')}` : ''}. Nothing was run.`;
        return toolResult(explainOutput, explained, summary);
      } catch (error) {
        return errorResult(error, rt);
      }
    },
  );

  server.registerTool(
    'request_access',
    {
      title: 'Request time-boxed access',
      description:
        'Ask for a time-boxed grant (write or ddl) on a target, for work that needs many statements of that class. The request goes to the target approvers with your justification; once approved, your statements of that class are allowed until the grant expires, and each is still recorded and masked. Nothing is granted until a human approves: follow the request with get_request.',
      inputSchema: {
        target: targetArg,
        level: z.enum(['write', 'ddl']).describe('Class of statements the grant allows'),
        duration: z
          .union([z.number().int().positive(), z.string().regex(/^\d+\s*[smh]$/)])
          .describe('How long: seconds, or "30m", "2h"'),
        justification: justificationSchema.min(1).describe('Why you need this access: shown to approvers'),
      },
      outputSchema: requestAccessOutput,
      annotations: {
        title: 'Request time-boxed access',
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: false,
      },
    },
    async ({ target, level, duration, justification }) => {
      try {
        const outcome = await submitAccessRequest(
          rt,
          principal,
          target,
          { level, durationSeconds: durationSeconds(duration), justification },
          meta,
        );
        return accessPendingResult(outcome.body, call.baseUrl);
      } catch (error) {
        return errorResult(error, rt);
      }
    },
  );

  server.registerTool(
    'get_request',
    {
      title: 'Follow a request',
      description:
        'The lifecycle of one of your requests: status (pending_approval, approved, running, executed, denied, expired, failed), the decision and the policies behind it, approvers’ votes, and, once it ran, its masked result. Use it after run_sql, call_aws or request_access answered that approval is required.',
      inputSchema: { requestId: requestIdArg },
      outputSchema: getRequestOutput,
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    async ({ requestId }) => {
      try {
        const view = await getRequest(rt, principal, requestId);
        return toolResult(getRequestOutput, view as z.input<typeof getRequestOutput>, requestSummary(view));
      } catch (error) {
        return errorResult(error, rt);
      }
    },
  );

  installUpstreamTools(server, call);
  // The SDK declares `listChanged: true` once tools are registered; a stateless server never sends
  // that notification (there is no stream to send it on), so it must not advertise it.
  server.server.registerCapabilities({ tools: { listChanged: false } });
  return server;
}

function requestSummary(view: Record<string, unknown>): string {
  const id = String(view.requestId);
  switch (view.status) {
    case 'pending_approval':
      return `Request ${id} is still waiting for approval${view.expiresAt ? ` (until ${String(view.expiresAt)})` : ''}; nothing has run. Ask again later.`;
    case 'approved':
    case 'running':
      return `Request ${id} was approved and is running; ask again in a moment for its result.`;
    case 'executed':
      return `Request ${id} was executed${typeof view.rowCount === 'number' ? ` (${view.rowCount} row(s))` : ''}; its masked result is included.`;
    case 'denied':
      return `Request ${id} was denied${view.decidedBy ? ` by ${String(view.decidedBy)}` : ''}; it will not run. Do not resubmit it unchanged.`;
    case 'expired':
      return `Request ${id} expired before anyone approved it; it will not run.`;
    case 'failed': {
      const err = view.error as { message?: string } | undefined;
      return `Request ${id} failed: ${err?.message ?? 'unknown error'}.`;
    }
    default:
      return `Request ${id}: ${String(view.status)}.`;
  }
}

function hasAwsTarget(call: McpCall): boolean {
  return Object.values(call.rt.config.targets).some((t) => t.kind === 'aws');
}

function textError(text: string): CallToolResult {
  return { content: [{ type: 'text', text }], isError: true };
}

function pendingText(requestId: string, what: string, baseUrl: string): CallToolResult {
  return textError(
    `approval required: ${what}; request ${requestId} was recorded and nothing has run. Call get_request with this id to follow it (review link: ${baseUrl}/approve/${requestId}).`,
  );
}

/** "3 EMAIL, 1 CARD": what a result had masked, for the model to read. */
function maskedSummary(byType: Record<string, number>): string {
  return Object.entries(byType)
    .map(([type, n]) => `${n} ${type}`)
    .join(', ');
}

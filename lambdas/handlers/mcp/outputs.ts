/**
 * The structured results of Warden's MCP tools, as zod schemas. Each tool registers its schema as
 * its `outputSchema` (the SDK turns it into JSON Schema with zod's own `toJSONSchema`, output
 * mode, so objects say `additionalProperties: false`), and every result is built by parsing the
 * body through the same schema ({@link toolResult}): a field the schema does not name is dropped,
 * a field of the wrong type is a gateway bug surfaced as an internal error, never a result a
 * client would reject. The schema and what is sent cannot drift apart.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

const decision = z.object({
  outcome: z.enum(['allow', 'approval_required', 'deny']),
  action: z.string().describe('The Cedar action decided, e.g. sql:read'),
  determiningPolicies: z.array(z.string()),
  policyVersion: z.string(),
});

const masking = z.object({
  byType: z.record(z.string(), z.number()).describe('How many values of each kind were masked'),
  unmasked: z.boolean().optional().describe('True when your identity may see values in clear'),
});

const approval = z
  .object({
    approverGroups: z.array(z.string()),
    requiredApprovals: z.number(),
    expiresAt: z.string().optional(),
    review: z.string().describe('The review page approvers open'),
  })
  .describe('Present while the call waits for approval');

/** How a request ended when it did not run: after a wait, or seen through get_request. */
const status = z
  .enum(['executed', 'pending_approval', 'approved', 'running', 'denied', 'expired', 'failed'])
  .describe(
    'executed, or pending_approval; after wait_seconds also approved/running (ask get_request), denied, expired or failed',
  );

const failure = z.object({ code: z.string(), message: z.string() });

const sqlResult = z
  .object({
    columns: z.array(z.object({ name: z.string(), type: z.string() })),
    rows: z.array(z.record(z.string(), z.unknown())),
    truncated: z.boolean(),
    rowCount: z.number(),
    masking,
  })
  .describe('Present when the statement ran');

const awsResult = z
  .object({
    service: z.string(),
    action: z.string(),
    region: z.string(),
    output: z.unknown().optional(),
    outputExcerpt: z
      .string()
      .optional()
      .describe('After an approval: the start of an output too large to keep whole'),
    truncated: z.boolean(),
    masking,
  })
  .describe('Present when the call ran');

/** Fields every governed call (run_sql, call_aws) answers with, whatever happened. */
const governed = {
  requestId: z.string(),
  status,
  decision,
  approval: approval.optional(),
  decidedBy: z.string().optional().describe('Who approved or denied, after a wait'),
  error: failure.optional(),
};

export const listTargetsOutput = z.object({
  targets: z.array(
    z.object({ name: z.string(), kind: z.enum(['sql', 'aws', 'mcp']), description: z.string() }),
  ),
});

export const describeTargetOutput = z.object({
  target: z.string(),
  kind: z.enum(['sql', 'aws', 'mcp']),
  description: z.string(),
  tables: z
    .array(
      z.object({
        schema: z.string(),
        name: z.string(),
        type: z.string(),
        columns: z.array(
          z.object({
            name: z.string(),
            type: z.string(),
            nullable: z.boolean(),
            masked: z.boolean(),
            strategy: z.string().optional(),
          }),
        ),
      }),
    )
    .optional(),
  maxRows: z.number().optional(),
  services: z.array(z.string()).optional(),
  regions: z.array(z.string()).optional(),
  truncated: z.boolean().optional(),
  requestId: z.string().optional(),
  masking: z.string(),
});

/** A governed call waiting for approval (run_sql, call_aws, and upstream tools alike). */
export const pendingOutput = z.object(governed);

export const runSqlOutput = z.object({ ...governed, result: sqlResult.optional() });

export const callAwsOutput = z.object({ ...governed, result: awsResult.optional() });

const sqlClassification = z.object({
  kind: z.literal('sql'),
  class: z.string(),
  statements: z.array(z.object({ type: z.string(), class: z.string(), reasons: z.array(z.string()) })),
  tables: z.array(z.string()),
  functions: z.array(z.string()),
  reasons: z.array(z.string()),
});

const awsClassification = z.object({
  kind: z.literal('aws'),
  class: z.string(),
  service: z.string(),
  action: z.string(),
  iamAction: z.string(),
  accessLevel: z.string(),
  resources: z.array(z.string()),
  reasons: z.array(z.string()),
});

export const explainOutput = z.object({
  target: z.string(),
  classification: z.union([sqlClassification, awsClassification]),
  decision,
  execution: z
    .record(z.string(), z.unknown())
    .nullable()
    .describe('The credentials the call would run with; null when it would be denied'),
  grants: z.array(z.string()).describe('Your active time-boxed grants the decision saw'),
});

export const requestAccessOutput = z.object({
  requestId: z.string(),
  status: z.literal('pending_approval'),
  decision,
  grant: z.object({ target: z.string(), action: z.string(), durationSeconds: z.number() }),
  approval,
});

export const getRequestOutput = z.object({
  requestId: z.string(),
  target: z.string(),
  principal: z.string(),
  principalType: z.string(),
  sessionId: z.string(),
  status: z.string().describe('pending_approval, approved, running, executed, denied, expired or failed'),
  createdAt: z.string(),
  updatedAt: z.string(),
  operation: z
    .object({ kind: z.string() })
    .catchall(z.unknown())
    .describe('What was asked: kind sql, aws, access or mcp, with its details'),
  operationForm: z
    .enum(['exact', 'shown'])
    .optional()
    .describe('exact for the requester and approvers while it waits; otherwise shown (values masked)'),
  justification: z.string().optional(),
  classification: z.record(z.string(), z.unknown()).optional(),
  decision,
  expiresAt: z.string().optional(),
  requiredApprovals: z.number().optional(),
  votes: z.array(z.record(z.string(), z.unknown())).optional(),
  decidedBy: z.string().optional(),
  decidedAt: z.string().optional(),
  result: z.unknown().optional().describe('The masked result, once it ran'),
  masking: masking.optional(),
  rowCount: z.number().optional(),
  durationMs: z.number().optional(),
  error: failure.optional(),
});

export type RunSqlOutput = z.input<typeof runSqlOutput>;
export type CallAwsOutput = z.input<typeof callAwsOutput>;

/** The core's types are read-only; the schemas' inferred types are not. */
type ReadonlyDeep<T> = T extends (infer U)[]
  ? readonly ReadonlyDeep<U>[]
  : T extends object
    ? { readonly [K in keyof T]: ReadonlyDeep<T[K]> }
    : T;

/** JSON drops `undefined`; so does the result, so that what the schema checked is what is sent. */
function withoutUndefined(value: Record<string, unknown>): Record<string, unknown> {
  return JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
}

/**
 * A tool result whose structured content is `body` parsed through the tool's output schema, and the
 * same as text for clients that only read text (the summary first, for the model; `textOnly` when
 * the summary already says everything the model needs).
 */
export function toolResult<S extends z.ZodObject>(
  schema: S,
  body: ReadonlyDeep<z.input<S>>,
  summary: string,
  options: { isError?: boolean; textOnly?: boolean } = {},
): CallToolResult {
  const structuredContent = withoutUndefined(schema.parse(body) as Record<string, unknown>);
  const text = options.textOnly ? summary : `${summary}\n${JSON.stringify(structuredContent)}`;
  return {
    content: [{ type: 'text', text }],
    structuredContent,
    ...(options.isError ? { isError: true } : {}),
  };
}

/**
 * Upstream MCP servers behind Warden: each tool call is classified from the tool's annotations,
 * decided by Cedar with the tool as the resource and its arguments in the context, recorded before
 * it runs, held for approval when policy says so (what runs is byte-for-byte the approved
 * arguments), and its result masked before it reaches the agent or the trail.
 *
 * Tool definitions are pinned: the first definition Warden sees of a tool is recorded (its hash);
 * a later, different definition is refused until an admin accepts it, so an upstream cannot change
 * what a tool says or does under an agent's feet ("rug pull"). Core only: the upstream client and
 * the pin store are ports.
 */
import type { CedarValueJson } from '@cedar-policy/cedar-wasm/nodejs';
import {
  canonicalJson,
  classifyMcpTool,
  definitionHash,
  namespacedToolName,
  splitToolName,
  type UpstreamToolDefinition,
} from './classify/mcp.js';
import type { McpTargetConfig } from './config.js';
import { BadRequestError, ConflictError, NotFoundError, PolicyDeniedError, WardenError } from './errors.js';
import type { PolicyEngine, ResourceRef } from './policy.js';
import {
  appendTrail,
  markFailed,
  newRequestRecord,
  operationContext,
  pendingBody,
  publicDecision,
  recordBeforeRunning,
  recordOutcome,
  startApprovalWorkflow,
  trailEvent,
  type CallMeta,
  type PendingBody,
  type PublicDecision,
  type RequestDeps,
} from './requests.js';
import {
  denialReason,
  principalFromRecord,
  type Decision,
  type McpClassification,
  type McpOperation,
  type Operation,
  type Principal,
  type RequestRecord,
} from './types.js';
import { traceRefusals } from './refusals.js';

/** What an upstream answered to `tools/call`, as plain JSON. */
export interface UpstreamCallResult {
  readonly content: readonly Record<string, unknown>[];
  readonly structuredContent?: Record<string, unknown>;
  readonly isError?: boolean;
}

/** The upstream MCP servers, one client per target (lambdas/adapters/mcp-upstream.ts). */
export interface UpstreamMcp {
  listTools(target: string): Promise<UpstreamToolDefinition[]>;
  /** One attempt, never retried: a call that may have run is not sent twice. */
  callTool(
    target: string,
    tool: string,
    args: Record<string, unknown>,
    options: { timeoutMs: number },
  ): Promise<UpstreamCallResult>;
}

export interface ToolPin {
  readonly target: string;
  readonly tool: string;
  /** The accepted definition's hash. */
  readonly hash: string;
  readonly pinnedAt: string;
  /** `first-use`, or the admin who accepted a changed definition. */
  readonly pinnedBy: string;
  /** A different definition seen since, waiting for an admin (hash and when it was first seen). */
  readonly changedHash?: string;
  readonly changedSeenAt?: string;
}

export interface ToolPinStore {
  get(target: string, tool: string): Promise<ToolPin | undefined>;
  list(target: string): Promise<ToolPin[]>;
  /** Writes the pin unless one exists; returns what is stored afterwards. */
  pinIfAbsent(pin: ToolPin): Promise<ToolPin>;
  /** Notes a changed definition on an existing pin (the pin itself stays). */
  noteChanged(target: string, tool: string, hash: string, at: string): Promise<void>;
  /** Replaces the pin with an accepted definition, if the stored one is still `expectedHash`. */
  accept(pin: ToolPin, expectedHash: string): Promise<void>;
}

export interface McpRequestDeps extends RequestDeps {
  readonly upstream: UpstreamMcp;
  readonly pins: ToolPinStore;
}

/** Raised as a tool error: the model reads the message. */
export class UpstreamError extends WardenError {
  constructor(statusCode: number, code: string, message: string, cause?: unknown) {
    super(statusCode, code, message, { cause });
  }
}

export class ToolDefinitionChangedError extends WardenError {
  constructor(target: string, tool: string, pinnedAt: string) {
    super(
      409,
      'tool_definition_changed',
      `the upstream tool ${namespacedToolName(target, tool)} changed its definition since it was pinned (${pinnedAt}); ` +
        `Warden refuses it until an admin reviews and accepts the new definition (npx warden mcp accept ${target} ${tool}). Nothing was sent upstream`,
    );
  }
}

export const MCP_ACTIONS = ['mcp:read', 'mcp:write', 'mcp:destructive'] as const;

/** Characters of a masked result kept in the request record / trail. */
const RECORDED_RESULT_CHARS = 32 * 1024;
const TRAIL_RESULT_CHARS = 2 * 1024;

/** The tools of a target, cached per container for the target's listCacheSeconds. */
const toolCache = new Map<string, { at: number; tools: UpstreamToolDefinition[] }>();

export function clearUpstreamToolCache(): void {
  toolCache.clear();
  confirmedPins.clear();
}

async function upstreamTools(
  deps: McpRequestDeps,
  targetName: string,
  target: McpTargetConfig,
  fresh = false,
): Promise<UpstreamToolDefinition[]> {
  const now = Date.now();
  const hit = toolCache.get(targetName);
  if (!fresh && hit && now - hit.at < target.listCacheSeconds * 1000) return hit.tools;
  const tools = await deps.upstream.listTools(targetName);
  toolCache.set(targetName, { at: now, tools });
  return tools;
}

function mcpTargets(deps: Pick<RequestDeps, 'config'>): [string, McpTargetConfig][] {
  return Object.entries(deps.config.targets).filter(
    (e): e is [string, McpTargetConfig] => e[1].kind === 'mcp',
  );
}

/** The Cedar resource for one tool: `Tool::"target/tool"` in its Target, arguments as tags. */
export function toolRef(targetName: string, tool: string, args?: Record<string, unknown>): ResourceRef {
  return {
    type: 'Tool',
    id: `${targetName}/${tool}`,
    target: targetName,
    kind: 'mcp',
    name: tool,
    ...(args ? { tags: argumentTags(args) } : {}),
  };
}

/**
 * Top-level arguments as Cedar tags (strings as they are, anything else as canonical JSON), so
 * a policy can say `resource.hasTag("repo") && resource.getTag("repo") like "org/prod-*"`.
 */
export function argumentTags(args: Record<string, unknown>): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const [k, v] of Object.entries(args)) tags[k] = typeof v === 'string' ? v : canonicalJson(v);
  return tags;
}

function mcpContext(
  classification: McpClassification,
  targetName: string,
  argumentsJson: string,
  justification: string | undefined,
  grants: readonly string[],
  now: Date,
): Record<string, CedarValueJson> {
  const ctx = operationContext(classification, justification, grants, now);
  ctx.mcp = {
    target: targetName,
    tool: classification.tool,
    arguments: argumentsJson,
    readOnlyHint: classification.annotations.readOnlyHint ?? false,
    destructiveHint: classification.annotations.destructiveHint ?? true,
    openWorldHint: classification.annotations.openWorldHint ?? true,
  };
  return ctx;
}

/** A listed upstream tool: namespaced, with the upstream's input schema and annotations. */
export interface GovernedTool {
  readonly name: string;
  readonly target: string;
  readonly tool: string;
  readonly title?: string;
  readonly description: string;
  readonly inputSchema: Record<string, unknown>;
  readonly annotations: Record<string, unknown>;
  readonly classification: McpClassification;
  readonly outcome: Decision['outcome'];
}

/**
 * Every upstream tool the caller may call (allowed or with approval), across every MCP target.
 * A tool the caller may never call, a hidden tool and a tool whose definition changed since it was
 * pinned are not listed. An upstream that cannot be reached contributes nothing (and is logged).
 */
export async function listGovernedTools(deps: McpRequestDeps, principal: Principal): Promise<GovernedTool[]> {
  const engine = await deps.policies.engine();
  const out: GovernedTool[] = [];
  await Promise.all(
    mcpTargets(deps).map(async ([targetName, target]) => {
      let tools: UpstreamToolDefinition[];
      try {
        tools = await upstreamTools(deps, targetName, target);
      } catch (error) {
        deps.log?.({
          level: 'warn',
          msg: 'upstream MCP listing failed',
          target: targetName,
          error: String(error),
        });
        return;
      }
      const now = deps.clock.now();
      for (const tool of tools) {
        if (target.tools[tool.name]?.hidden) continue;
        if (!isValidToolName(tool.name)) continue;
        const classification = classifyMcpTool(tool, target);
        const decision = engine.decideOperation(
          principal,
          `mcp:${classification.class}`,
          toolRef(targetName, tool.name, {}),
          mcpContext(classification, targetName, '{}', undefined, [], now),
        );
        if (decision.outcome === 'deny') continue;
        const pin = await pinFor(deps, targetName, tool.name, classification.definitionHash, now);
        if (pin.hash !== classification.definitionHash) continue;
        out.push({
          name: namespacedToolName(targetName, tool.name),
          target: targetName,
          tool: tool.name,
          ...(tool.title ? { title: tool.title } : {}),
          description: describeForAgent(tool, targetName, classification, decision.outcome),
          inputSchema: tool.inputSchema,
          annotations: { ...(tool.annotations ?? {}) },
          classification,
          outcome: decision.outcome,
        });
      }
    }),
  );
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

const TOOL_NAME = /^[A-Za-z0-9_.-]{1,128}$/;
function isValidToolName(name: string): boolean {
  return TOOL_NAME.test(name);
}

function describeForAgent(
  tool: UpstreamToolDefinition,
  targetName: string,
  classification: McpClassification,
  outcome: Decision['outcome'],
): string {
  const via = `[via Warden, target ${targetName}; ${classification.class}${outcome === 'approval_required' ? '; needs approval: the call returns a request id' : ''}]`;
  return `${tool.description ?? ''} ${via}`.trim();
}

/**
 * Pins confirmed to match a definition, per container, for a few seconds: a changed definition is
 * still refused at once (its hash is not the confirmed one); only the store read is saved.
 */
const confirmedPins = new Map<string, { pin: ToolPin; at: number }>();
const CONFIRMED_PIN_MS = 5_000;

/** The stored pin for a tool, pinning the definition seen now when there is none (first use). */
async function pinFor(
  deps: McpRequestDeps,
  targetName: string,
  tool: string,
  hash: string,
  now: Date,
): Promise<ToolPin> {
  const key = `${targetName}\u0000${tool}\u0000${hash}`;
  const hit = confirmedPins.get(key);
  if (hit && Date.now() - hit.at < CONFIRMED_PIN_MS) return hit.pin;
  const pin = await readOrPin(deps, targetName, tool, hash, now);
  if (pin.hash === hash) confirmedPins.set(key, { pin, at: Date.now() });
  return pin;
}

async function readOrPin(
  deps: McpRequestDeps,
  targetName: string,
  tool: string,
  hash: string,
  now: Date,
): Promise<ToolPin> {
  const existing = await deps.pins.get(targetName, tool);
  if (existing) {
    if (existing.hash !== hash && existing.changedHash !== hash) {
      await deps.pins.noteChanged(targetName, tool, hash, now.toISOString());
      deps.log?.({ level: 'warn', msg: 'upstream tool definition changed', target: targetName, tool });
    }
    return existing;
  }
  return deps.pins.pinIfAbsent({
    target: targetName,
    tool,
    hash,
    pinnedAt: now.toISOString(),
    pinnedBy: 'first-use',
  });
}

export interface McpCallSubmission {
  /** The namespaced name (`everything__echo`). */
  readonly name: string;
  readonly arguments: Record<string, unknown>;
  readonly justification?: string;
}

export interface McpResultBody {
  target: string;
  tool: string;
  content: Record<string, unknown>[];
  structuredContent?: Record<string, unknown>;
  isError: boolean;
  masking: { byType: Record<string, number>; unmasked?: boolean };
}

export type McpSubmitOutcome =
  | {
      status: 200;
      record: RequestRecord;
      body: { requestId: string; status: 'executed'; decision: PublicDecision; result: McpResultBody };
    }
  | { status: 202; record: RequestRecord; body: PendingBody };

const MAX_ARGUMENT_BYTES = 64 * 1024;

function unknownTool(name: string): NotFoundError {
  return new NotFoundError(`unknown tool "${name.slice(0, 160)}"`);
}

/** Whether a name is one of the upstream tools Warden governs (namespaced by an MCP target). */
export function isUpstreamToolName(deps: Pick<RequestDeps, 'config'>, name: string): boolean {
  const split = splitToolName(name);
  return Boolean(
    split &&
    Object.hasOwn(deps.config.targets, split.target) &&
    deps.config.targets[split.target].kind === 'mcp',
  );
}

export async function submitMcpCall(
  deps: McpRequestDeps,
  principal: Principal,
  input: McpCallSubmission,
  meta: CallMeta,
): Promise<McpSubmitOutcome> {
  const target = splitToolName(input.name)?.target ?? '';
  const statement = () => `${input.name} ${canonicalJson(input.arguments ?? {})}`;
  return traceRefusals(deps, { principal, sessionId: meta.sessionId, target, statement }, () =>
    submitMcpCallRecorded(deps, principal, input, meta),
  );
}

async function submitMcpCallRecorded(
  deps: McpRequestDeps,
  principal: Principal,
  input: McpCallSubmission,
  meta: CallMeta,
): Promise<McpSubmitOutcome> {
  const split = splitToolName(input.name);
  if (!split || !isUpstreamToolName(deps, input.name)) throw unknownTool(input.name);
  const targetName = split.target;
  const target = deps.config.targets[targetName] as McpTargetConfig;
  if (target.tools[split.tool]?.hidden) throw unknownTool(input.name);

  const argumentsJson = canonicalJson(input.arguments ?? {});
  if (Buffer.byteLength(argumentsJson, 'utf8') > MAX_ARGUMENT_BYTES) {
    throw new BadRequestError(`the arguments are over ${MAX_ARGUMENT_BYTES} bytes as JSON`);
  }
  const engine = await deps.policies.engine();
  const operation: McpOperation = { kind: 'mcp', tool: split.tool, argumentsJson };

  let tools: UpstreamToolDefinition[];
  try {
    tools = await upstreamTools(deps, targetName, target);
  } catch (cause) {
    throw new UpstreamError(
      502,
      'upstream_unavailable',
      `the upstream MCP server of target "${targetName}" could not list its tools; nothing was sent`,
      cause,
    );
  }
  const tool = tools.find((t) => t.name === split.tool);
  const now = deps.clock.now();
  if (!tool) {
    // Hidden targets and unknown tools answer alike; a visible target's refusal is still recorded.
    if (!visibleTo(engine, principal, targetName)) throw unknownTool(input.name);
    await recordRefusal(
      deps,
      engine,
      principal,
      targetName,
      target,
      meta,
      operation,
      input.justification,
      'mcp:unknown_tool',
      `the upstream has no tool "${split.tool}"`,
    );
    throw unknownTool(input.name);
  }

  const classification = classifyMcpTool(tool, target);
  const grants = deps.grants ? await deps.grants.activeGrants(principal, targetName, now) : [];
  const action = `mcp:${classification.class}`;
  const decision = engine.decideOperation(
    principal,
    action,
    toolRef(targetName, tool.name, input.arguments),
    mcpContext(classification, targetName, argumentsJson, input.justification, grants, now),
  );
  if (decision.outcome === 'deny' && !visibleTo(engine, principal, targetName)) {
    // Trail only (traceRefusals): a request record would list the hidden target in the caller's
    // own GET /v1/requests.
    throw unknownTool(input.name);
  }

  const pin = await pinFor(deps, targetName, tool.name, classification.definitionHash, now);
  if (pin.hash !== classification.definitionHash) {
    const record = await recordRefusal(
      deps,
      engine,
      principal,
      targetName,
      target,
      meta,
      operation,
      input.justification,
      'mcp:definition_changed',
      `definition ${classification.definitionHash} differs from the pinned ${pin.hash}`,
      classification,
    );
    throw Object.assign(new ToolDefinitionChangedError(targetName, tool.name, pin.pinnedAt), {
      requestId: record.id,
    });
  }

  const record = newRequestRecord(deps, principal, targetName, target, meta, decision, {
    operation,
    justification: input.justification,
    classification,
  });
  // Nothing is sent unrecorded: the record and its first trail events are one write.
  await recordBeforeRunning(deps, record, {
    startsNow: decision.outcome === 'allow',
    exact: { operation, justification: input.justification },
  });

  if (decision.outcome === 'deny') {
    throw Object.assign(
      new PolicyDeniedError(`${action} (${input.name}) ${denialReason(decision)}`, {
        decision: publicDecision(decision),
        classification,
      }),
      { requestId: record.id },
    );
  }
  if (decision.outcome === 'approval_required') {
    await startApprovalWorkflow(deps, record, 'nothing was sent upstream');
    return { status: 202, record, body: pendingBody(record, target) };
  }
  const { stored, body } = await executeMcp(deps, record, principal, {
    checked: tool,
    startRecorded: true,
    exact: operation,
  });
  return {
    status: 200,
    record: stored,
    body: { requestId: record.id, status: 'executed', decision: publicDecision(decision), result: body },
  };
}

/** The re-check right before an approved call is sent: the same Cedar request, with `approved`. */
export function approvedMcpDecision(
  engine: PolicyEngine,
  principal: Principal,
  record: RequestRecord,
  classification: McpClassification,
  grants: readonly string[],
  now: Date,
  /** The exact arguments and justification (the record holds the shown ones). */
  exact: { operation: Operation; justification?: string } = record,
): Decision {
  const op = exact.operation;
  if (op.kind !== 'mcp') throw new Error('not an MCP request');
  const args = JSON.parse(op.argumentsJson) as Record<string, unknown>;
  return engine.decideApproved(
    principal,
    record.decision.action,
    toolRef(record.target, op.tool, args),
    mcpContext(classification, record.target, op.argumentsJson, exact.justification, grants, now),
  );
}

function visibleTo(engine: PolicyEngine, principal: Principal, targetName: string): boolean {
  const probe = toolRef(targetName, '*', {});
  const ctx: Record<string, CedarValueJson> = {
    grants: [],
    justification: '',
    hasJustification: false,
    now: Math.floor(Date.now() / 1000),
    hourUtc: new Date().getUTCHours(),
  };
  for (const action of MCP_ACTIONS) {
    if (engine.decideOperation(principal, action, probe, ctx).outcome !== 'deny') return true;
  }
  const ref: ResourceRef = { type: 'Target', id: targetName, kind: 'mcp' };
  return (
    engine.authorize(principal, 'approve', ref, {}).allowed ||
    engine.authorize(principal, 'view_unmasked', ref, {}).allowed
  );
}

/** A call refused before Cedar could decide it (unknown tool, changed definition): recorded as denied. */
async function recordRefusal(
  deps: McpRequestDeps,
  engine: PolicyEngine,
  principal: Principal,
  targetName: string,
  target: McpTargetConfig,
  meta: CallMeta,
  operation: McpOperation,
  justification: string | undefined,
  action: string,
  reason: string,
  classification?: McpClassification,
): Promise<RequestRecord> {
  const decision: Decision = {
    outcome: 'deny',
    action,
    determiningPolicies: [],
    errors: [reason],
    policyVersion: engine.version,
  };
  const record = newRequestRecord(deps, principal, targetName, target, meta, decision, {
    operation,
    justification,
    ...(classification ? { classification } : {}),
  });
  await recordBeforeRunning(deps, record);
  return record;
}

/**
 * Sends a recorded call (status `running`, or from the approval workflow): exactly the recorded
 * arguments, and only while the tool's definition is still the one that was decided. One attempt;
 * an upstream fault is a failed request and a tool error, never a retry.
 */
export async function executeMcp(
  deps: McpRequestDeps,
  record: RequestRecord,
  principal: Principal = principalFromRecord(record),
  options: { checked?: UpstreamToolDefinition; startRecorded?: boolean; exact?: Operation } = {},
): Promise<{ stored: RequestRecord; body: McpResultBody }> {
  // What is sent is the exact form (the record holds the shown one).
  const op = options.exact ?? record.operation;
  if (op.kind !== 'mcp') throw new Error('not an MCP request');
  const target = deps.config.targets[record.target] as McpTargetConfig;
  const recorded = record.classification;
  const name = namespacedToolName(record.target, op.tool);

  // The definition may have changed while the call waited for approval: check it again, fresh.
  // A call decided just now passes the definition it was decided on; an approved one looks again.
  let current: UpstreamToolDefinition | undefined = options.checked;
  try {
    current ??= (await upstreamTools(deps, record.target, target, true)).find((t) => t.name === op.tool);
  } catch (cause) {
    await failBeforeSending(
      deps,
      record,
      'upstream_unavailable',
      'the upstream could not list its tools; nothing was sent',
    );
    throw Object.assign(
      new UpstreamError(
        502,
        'upstream_unavailable',
        `the upstream MCP server of target "${record.target}" could not be reached; nothing was sent`,
        cause,
      ),
      { requestId: record.id },
    );
  }
  if (!current || recorded?.kind !== 'mcp' || definitionHash(current) !== recorded.definitionHash) {
    await failBeforeSending(
      deps,
      record,
      'tool_definition_changed',
      'the tool definition changed after the decision; nothing was sent',
    );
    throw Object.assign(
      new ConflictError(
        'tool_definition_changed',
        `the definition of ${name} changed after this call was decided; nothing was sent upstream`,
      ),
      { requestId: record.id },
    );
  }

  if (!options.startRecorded) {
    await appendTrail(deps, record, [trailEvent(deps, record, 'execution_started', { status: 'running' })]);
  }
  const started = Date.now();
  let result: UpstreamCallResult;
  try {
    result = await deps.upstream.callTool(
      record.target,
      op.tool,
      JSON.parse(op.argumentsJson) as Record<string, unknown>,
      {
        timeoutMs: target.timeoutMs,
      },
    );
  } catch (error) {
    const err =
      error instanceof WardenError
        ? error
        : new UpstreamError(502, 'upstream_error', `the upstream MCP server failed the call`);
    const message = deps.maskerFor(record.target).maskText(err.message).text;
    err.message = message;
    await markFailed(deps, record, err.code, message, Date.now() - started, [
      trailEvent(deps, record, 'error', { status: 'failed', detail: { code: err.code, message } }),
    ]);
    throw Object.assign(err, { requestId: record.id });
  }
  const durationMs = Date.now() - started;

  const engine = await deps.policies.engine();
  const unmasked = engine.authorize(
    principal,
    'view_unmasked',
    { type: 'Target', id: record.target, kind: 'mcp' },
    {},
  ).allowed;
  const masked = deps.maskerFor(record.target).maskValue({
    content: result.content,
    ...(result.structuredContent ? { structuredContent: result.structuredContent } : {}),
  }) as {
    value: { content: Record<string, unknown>[]; structuredContent?: Record<string, unknown> };
    byType: Record<string, number>;
  };
  const shown = unmasked
    ? { content: [...result.content], structuredContent: result.structuredContent }
    : masked.value;
  const body: McpResultBody = {
    target: record.target,
    tool: op.tool,
    content: [...shown.content],
    ...(shown.structuredContent ? { structuredContent: shown.structuredContent } : {}),
    isError: result.isError === true,
    masking: unmasked ? { byType: {}, unmasked: true } : { byType: masked.byType },
  };

  // The record and the trail only ever hold the masked form, bounded in size.
  const maskedJson = JSON.stringify(masked.value);
  const fits = maskedJson.length <= RECORDED_RESULT_CHARS;
  const updated: RequestRecord = {
    ...record,
    status: result.isError ? 'failed' : 'executed',
    updatedAt: deps.clock.now().toISOString(),
    result: fits
      ? { ...masked.value, isError: result.isError === true }
      : { excerpt: maskedJson.slice(0, RECORDED_RESULT_CHARS), truncated: true },
    ...(result.isError
      ? { error: { code: 'tool_error', message: 'the upstream tool answered with an error' } }
      : {}),
    masking: { byType: masked.byType, ...(unmasked ? { unmasked: true } : {}) },
    durationMs,
    version: record.version + 1,
  };
  // The one write after the call: the outcome and its trail events together.
  const stored = await recordOutcome(deps, updated, record.version, [
    trailEvent(deps, updated, 'execution_finished', { status: updated.status, durationMs, unmasked }),
    trailEvent(deps, updated, 'result', {
      unmasked,
      detail: {
        output: maskedJson.slice(0, TRAIL_RESULT_CHARS),
        truncated: maskedJson.length > TRAIL_RESULT_CHARS,
        masking: masked.byType,
        isError: result.isError === true,
      },
    }),
  ]);
  return { stored, body };
}

async function failBeforeSending(deps: McpRequestDeps, record: RequestRecord, code: string, message: string) {
  await markFailed(deps, record, code, message, undefined, [
    trailEvent(deps, record, 'error', { status: 'failed', detail: { code, message } }),
  ]);
}

/** Admins: the pins of a target, with the tools whose definition changed. */
export async function listPins(
  deps: McpRequestDeps,
  principal: Principal,
  targetName: string,
): Promise<ToolPin[]> {
  await requireAdmin(deps, principal, targetName);
  return deps.pins.list(targetName);
}

/**
 * An admin accepts the definition a tool has now (after reviewing it): the pin moves to its hash.
 * `expectedHash` is the hash the admin reviewed; if the upstream changed again since, it is refused.
 */
export async function acceptToolDefinition(
  deps: McpRequestDeps,
  principal: Principal,
  targetName: string,
  tool: string,
  expectedHash: string | undefined,
): Promise<ToolPin> {
  const target = await requireAdmin(deps, principal, targetName);
  const current = (await upstreamTools(deps, targetName, target, true)).find((t) => t.name === tool);
  if (!current) throw new NotFoundError(`the upstream of target "${targetName}" has no tool "${tool}"`);
  const hash = definitionHash(current);
  if (expectedHash && expectedHash !== hash) {
    throw new ConflictError(
      'definition_moved',
      `the tool's definition is now ${hash}, not the reviewed ${expectedHash}; review it again`,
    );
  }
  const existing = await deps.pins.get(targetName, tool);
  const pin: ToolPin = {
    target: targetName,
    tool,
    hash,
    pinnedAt: deps.clock.now().toISOString(),
    pinnedBy: principal.name,
  };
  if (!existing) return deps.pins.pinIfAbsent(pin);
  await deps.pins.accept(pin, existing.hash);
  return pin;
}

async function requireAdmin(
  deps: McpRequestDeps,
  principal: Principal,
  targetName: string,
): Promise<McpTargetConfig> {
  const target = Object.hasOwn(deps.config.targets, targetName) ? deps.config.targets[targetName] : undefined;
  if (!target || target.kind !== 'mcp') throw new NotFoundError(`unknown MCP target "${targetName}"`);
  const engine = await deps.policies.engine();
  if (
    !engine.authorize(principal, 'manage_tools', { type: 'Target', id: targetName, kind: 'mcp' }, {}).allowed
  ) {
    throw new NotFoundError(`unknown MCP target "${targetName}"`);
  }
  return target;
}

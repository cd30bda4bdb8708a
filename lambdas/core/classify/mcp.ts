/**
 * Classifies a call of an upstream MCP server's tool from what the tool says about itself (its
 * annotations) and what the target's configuration says over it. Annotations are hints written by
 * the upstream's author, so the reading is fail-closed: only a tool that says `readOnlyHint: true`
 * is a read, only one that also says `destructiveHint: false` is a non-destructive write, and
 * anything unannotated, contradictory or unknown is destructive.
 */
import { createHash } from 'node:crypto';
import type { McpTargetConfig } from '../config.js';
import type { McpClass, McpClassification } from '../types.js';

/** A tool as an upstream lists it (`tools/list`), reduced to what Warden reads and pins. */
export interface UpstreamToolDefinition {
  readonly name: string;
  readonly title?: string;
  readonly description?: string;
  readonly inputSchema: Record<string, unknown>;
  readonly outputSchema?: Record<string, unknown>;
  readonly annotations?: Record<string, unknown>;
}

/** Separator between a target's name and its tool's name in the names Warden lists (`everything__echo`). */
export const TOOL_NAMESPACE_SEPARATOR = '__';

/** JSON with object keys sorted at every level: equal definitions hash equally whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
}

/**
 * sha256 over everything of a definition that tells a model or Warden what the tool does: name,
 * title, description, both schemas and the annotations. A change to any of them is a new definition.
 */
export function definitionHash(tool: UpstreamToolDefinition): string {
  const pinned = {
    name: tool.name,
    title: tool.title,
    description: tool.description,
    inputSchema: tool.inputSchema,
    outputSchema: tool.outputSchema,
    annotations: tool.annotations,
  };
  return `sha256:${createHash('sha256').update(canonicalJson(pinned)).digest('hex')}`;
}

function hint(annotations: Record<string, unknown> | undefined, name: string): boolean | undefined {
  const v = annotations?.[name];
  return typeof v === 'boolean' ? v : undefined;
}

export function classifyMcpTool(
  tool: UpstreamToolDefinition,
  target: Pick<McpTargetConfig, 'tools'>,
): McpClassification {
  const a = tool.annotations;
  const annotations = {
    ...(hint(a, 'readOnlyHint') !== undefined ? { readOnlyHint: hint(a, 'readOnlyHint') } : {}),
    ...(hint(a, 'destructiveHint') !== undefined ? { destructiveHint: hint(a, 'destructiveHint') } : {}),
    ...(hint(a, 'idempotentHint') !== undefined ? { idempotentHint: hint(a, 'idempotentHint') } : {}),
    ...(hint(a, 'openWorldHint') !== undefined ? { openWorldHint: hint(a, 'openWorldHint') } : {}),
  };
  const reasons: string[] = [];
  let cls: McpClass;
  if (annotations.readOnlyHint === true) {
    cls = 'read';
    reasons.push('the tool is annotated readOnlyHint: true');
  } else if (annotations.destructiveHint === false) {
    cls = 'write';
    reasons.push('the tool may change state (not readOnlyHint) and is annotated destructiveHint: false');
  } else {
    cls = 'destructive';
    reasons.push(
      annotations.readOnlyHint === undefined && annotations.destructiveHint === undefined
        ? 'the tool has no readOnlyHint or destructiveHint annotation: counted as destructive'
        : 'the tool may change state and does not say destructiveHint: false: counted as destructive',
    );
  }
  const override = Object.hasOwn(target.tools, tool.name) ? target.tools[tool.name] : undefined;
  if (override?.class && override.class !== cls) {
    reasons.push(`the target's configuration classifies ${tool.name} as ${override.class}`);
    cls = override.class;
  }
  return {
    kind: 'mcp',
    class: cls,
    tool: tool.name,
    definitionHash: definitionHash(tool),
    annotations,
    reasons,
  };
}

/** `everything__echo` → {target: everything, tool: echo}; undefined when it is not namespaced. */
export function splitToolName(name: string): { target: string; tool: string } | undefined {
  const at = name.indexOf(TOOL_NAMESPACE_SEPARATOR);
  if (at <= 0) return undefined;
  const tool = name.slice(at + TOOL_NAMESPACE_SEPARATOR.length);
  if (tool.length === 0) return undefined;
  return { target: name.slice(0, at), tool };
}

export function namespacedToolName(target: string, tool: string): string {
  return `${target}${TOOL_NAMESPACE_SEPARATOR}${tool}`;
}

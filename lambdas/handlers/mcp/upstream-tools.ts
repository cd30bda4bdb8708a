/**
 * Upstream MCP tools on Warden's own `/mcp`: `tools/list` adds every upstream tool the caller may
 * call (namespaced `target__tool`, with the upstream's input schema and annotations) to Warden's
 * own tools, and `tools/call` of such a name takes the governed path (classify → decide → record →
 * approval → send → mask → record). Every other call goes to Warden's own tools unchanged.
 *
 * The upstream's output schema is not passed on: masking may change a value's shape (a card number
 * becomes `****1111`), so Warden cannot promise the upstream's schema to the client.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import {
  CallToolRequestSchema,
  ListToolsRequestSchema,
  type CallToolResult,
  type ListToolsResult,
} from '@modelcontextprotocol/sdk/types.js';
import {
  isUpstreamToolName,
  listGovernedTools,
  submitMcpCall,
  type McpRequestDeps,
} from '../../core/mcp-upstream.js';
import { errorResult, pendingResult } from './results.js';
import type { McpCall } from './server.js';

type RawHandler = (request: unknown, extra: unknown) => Promise<unknown>;

function sdkHandler(server: McpServer, method: string): RawHandler {
  // The SDK keeps its handlers in a map; Warden wraps McpServer's own tools/list and tools/call.
  const handlers = (server.server as unknown as { _requestHandlers?: Map<string, RawHandler> })
    ._requestHandlers;
  const handler = handlers?.get(method);
  if (!handler) throw new Error(`the MCP SDK has no ${method} handler to extend`);
  return handler;
}

/** Adds the upstream tools to a Warden MCP server whose own tools are already registered. */
export function installUpstreamTools(server: McpServer, call: McpCall): void {
  const { rt, principal, meta } = call;
  if (!rt.upstream || !rt.pins) return;
  const deps: McpRequestDeps = { ...rt, upstream: rt.upstream, pins: rt.pins };
  const ownList = sdkHandler(server, 'tools/list');
  const ownCall = sdkHandler(server, 'tools/call');

  server.server.setRequestHandler(ListToolsRequestSchema, async (request, extra) => {
    const own = (await ownList(request, extra)) as ListToolsResult;
    const upstream = await listGovernedTools(deps, principal).catch((error: unknown) => {
      rt.log?.({ level: 'error', msg: 'upstream tool listing failed', error: String(error) });
      return [];
    });
    return {
      ...own,
      tools: [
        ...own.tools,
        ...upstream.map((t) => ({
          name: t.name,
          ...(t.title ? { title: t.title } : {}),
          description: t.description,
          inputSchema: t.inputSchema as ListToolsResult['tools'][number]['inputSchema'],
          annotations: t.annotations,
        })),
      ],
    };
  });

  server.server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const name = request.params.name;
    if (!isUpstreamToolName(rt, name)) return (await ownCall(request, extra)) as CallToolResult;
    const args = request.params.arguments ?? {};
    // `_justification` is Warden's, not the upstream's: taken out before the arguments are recorded.
    const { _justification, ...rest } = args as Record<string, unknown>;
    try {
      const outcome = await submitMcpCall(
        deps,
        principal,
        {
          name,
          arguments: rest,
          ...(typeof _justification === 'string' ? { justification: _justification } : {}),
        },
        meta,
      );
      if (outcome.status === 202) return pendingResult(outcome.body, call.baseUrl);
      const { result, requestId } = outcome.body;
      const masked = Object.entries(result.masking.byType)
        .map(([k, v]) => `${v} ${k}`)
        .join(', ');
      return {
        content: [
          ...result.content,
          {
            type: 'text',
            text: `[Warden: request ${requestId}${masked ? `; masked: ${masked}` : ''}]`,
          },
        ],
        ...(result.structuredContent ? { structuredContent: result.structuredContent } : {}),
        ...(result.isError ? { isError: true } : {}),
        _meta: { 'warden/requestId': requestId },
      } as unknown as CallToolResult;
    } catch (error) {
      return errorResult(error, rt);
    }
  });
}

/**
 * Admins' routes for upstream MCP targets: the pinned tool definitions (`GET
 * /v1/targets/{target}/tools`) and accepting a changed one after review (`POST
 * /v1/targets/{target}/tools/{tool}/accept {hash}`). Both need Cedar `manage_tools` on the target;
 * everyone else gets the same 404 as for a target that does not exist.
 */
import { z } from 'zod';
import { ServiceUnavailableError } from '../../core/errors.js';
import { acceptToolDefinition, listPins, type McpRequestDeps } from '../../core/mcp-upstream.js';
import { json, parseJsonBody } from '../../middleware/http.js';
import type { ApiRoute, Ctx } from '../context.js';

function deps(ctx: Ctx): McpRequestDeps {
  if (!ctx.rt.upstream || !ctx.rt.pins) throw new ServiceUnavailableError('no MCP targets are configured');
  return { ...ctx.rt, upstream: ctx.rt.upstream, pins: ctx.rt.pins };
}

const acceptSchema = z
  .object({
    /** The definition hash the admin reviewed (from GET …/tools, `changedHash`). */
    hash: z
      .string()
      .regex(/^sha256:[0-9a-f]{64}$/, 'hash looks like sha256:<64 hex digits>')
      .optional(),
  })
  .strict();

export const mcpToolRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/v1/targets/{target}/tools',
    handle: async (ctx, { target }) => {
      const caller = await ctx.caller();
      const pins = await listPins(deps(ctx), caller.principal, target);
      return json(200, { target, pins });
    },
  },
  {
    method: 'POST',
    path: '/v1/targets/{target}/tools/{tool}/accept',
    handle: async (ctx, { target, tool }) => {
      const caller = await ctx.caller();
      const body = parseJsonBody(ctx.event, acceptSchema, ctx.rt.config.maxBodyBytes);
      const pin = await acceptToolDefinition(deps(ctx), caller.principal, target, tool, body.hash);
      ctx.rt.log?.({
        level: 'info',
        msg: 'upstream tool definition accepted',
        target,
        tool,
        by: caller.principal.name,
      });
      return json(200, { target, pin });
    },
  },
];

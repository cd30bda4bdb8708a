/**
 * `warden mcp tools <target>` (the pinned definitions of an upstream MCP target's tools, with any
 * changed one) and `warden mcp accept <target> <tool> [--hash H]` (accept a changed definition
 * after reviewing it). Both need Cedar `manage_tools` on the target.
 */
import { call, type CliContext } from './cli-client.js';

export const MCP_USAGE = `usage: warden mcp tools <target>
       warden mcp accept <target> <tool> [--hash sha256:…]   (the hash you reviewed, from "mcp tools")`;

export async function mcpCommand(
  ctx: CliContext,
  args: readonly string[],
  options: { hash?: string },
): Promise<{ status: number; body: unknown }> {
  const [sub, target, tool] = args;
  if (sub === 'tools' && target) {
    return call(ctx, 'GET', `/v1/targets/${encodeURIComponent(target)}/tools`);
  }
  if (sub === 'accept' && target && tool) {
    return call(
      ctx,
      'POST',
      `/v1/targets/${encodeURIComponent(target)}/tools/${encodeURIComponent(tool)}/accept`,
      options.hash ? { hash: options.hash } : {},
    );
  }
  throw new Error(MCP_USAGE);
}

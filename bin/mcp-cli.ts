/**
 * `warden mcp tools <target>` (the pinned definitions of an upstream MCP target's tools, with any
 * changed one) and `warden mcp accept <target> <tool> [--hash H]` (accept a changed definition
 * after reviewing it). Both need Cedar `manage_tools` on the target.
 */
import type { Command } from 'commander';
import { examples, request } from './cli-common.js';
import { jsonText } from './cli-format.js';

const enc = encodeURIComponent;

export function register(program: Command): void {
  const mcp = program.command('mcp').description('admins: upstream MCP tool pins');
  examples(
    mcp
      .command('tools')
      .description("an upstream MCP target's pinned tool definitions, and any that changed")
      .argument('<target>', 'the MCP target name')
      .action(async (target: string, _o: unknown, cmd: Command) => {
        await request(cmd, 'GET', `/v1/targets/${enc(target)}/tools`, undefined, jsonText);
      }),
    ['npx warden mcp tools everything --as bob'],
  );
  examples(
    mcp
      .command('accept')
      .description('accept a changed upstream tool definition after reviewing it')
      .argument('<target>', 'the MCP target name')
      .argument('<tool>', 'the tool name')
      .option('--hash <sha256>', 'the hash you reviewed, from "mcp tools"')
      .action(async (target: string, tool: string, o: { hash?: string }, cmd: Command) => {
        const path = `/v1/targets/${enc(target)}/tools/${enc(tool)}/accept`;
        await request(cmd, 'POST', path, o.hash ? { hash: o.hash } : {}, jsonText);
      }),
    ['npx warden mcp accept everything echo --hash sha256:… --as bob'],
  );
}

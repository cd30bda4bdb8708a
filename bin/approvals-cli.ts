/** `warden approvals | approve <id> | deny <id> | access … | grants [revoke <id>]`: the approvers' API. */
import { call, type CliContext } from './cli-client.js';

export async function approvalCommand(
  ctx: CliContext,
  command: string,
  args: readonly string[],
  options: { comment?: string; justification?: string },
): Promise<{ status: number; body: unknown }> {
  switch (command) {
    case 'approvals':
      return call(ctx, 'GET', '/v1/approvals');
    case 'approve':
    case 'deny': {
      const id = args[0];
      if (!id) throw new Error(`usage: warden ${command} <request id> [--comment TEXT]`);
      return call(ctx, 'POST', `/v1/approvals/${encodeURIComponent(id)}/decision`, {
        decision: command,
        ...(options.comment ? { comment: options.comment } : {}),
      });
    }
    case 'access': {
      const [target, level, duration] = args;
      if (!target || !level || !duration || !options.justification) {
        throw new Error('usage: warden access <target> <write|ddl> <duration e.g. 30m> --justification TEXT');
      }
      return call(ctx, 'POST', `/v1/targets/${encodeURIComponent(target)}/access-requests`, {
        level,
        duration: /^\d+$/.test(duration) ? Number(duration) : duration,
        justification: options.justification,
      });
    }
    case 'grants': {
      if (args[0] === 'revoke') {
        if (!args[1]) throw new Error('usage: warden grants revoke <grant id>');
        return call(ctx, 'DELETE', `/v1/grants/${encodeURIComponent(args[1])}`);
      }
      return call(ctx, 'GET', '/v1/grants');
    }
    default:
      throw new Error(`unknown command ${command}`);
  }
}

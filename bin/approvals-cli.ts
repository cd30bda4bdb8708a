/** `warden approvals | approve <id> | deny <id> | access … | grants [revoke <id>]`: the approvers' API. */
import type { Command } from 'commander';
import { call, UsageError } from './cli-client.js';
import { context, emit, examples, request } from './cli-common.js';
import { approvalsText, grantsText, jsonText, pendingText, voteText } from './cli-format.js';

const enc = encodeURIComponent;
/** `warden approvals` lists at most this many, reading at most MAX_LISTING_CALLS pages. */
const MAX_LISTED = 500;
const MAX_LISTING_CALLS = 25;

export function register(program: Command): void {
  examples(
    program
      .command('approvals')
      .description('what awaits your approval, newest first, with risk and expiry')
      .action(async (_o: unknown, cmd: Command) => {
        // One listing call stops after a few thousand scanned records with a cursor (possibly with
        // none found yet): follow it, so nothing waiting behind others is missed.
        const ctx = await context(cmd);
        let res = await call(ctx, 'GET', '/v1/approvals');
        const approvals: unknown[] = [];
        for (let n = 0; n < MAX_LISTING_CALLS && res.status === 200; n++) {
          const body = res.body as { approvals?: unknown[]; cursor?: string };
          approvals.push(...(body.approvals ?? []));
          if (!body.cursor || approvals.length >= MAX_LISTED) break;
          res = await call(ctx, 'GET', `/v1/approvals?cursor=${enc(body.cursor)}`);
        }
        const cursor = (res.body as { cursor?: string } | undefined)?.cursor;
        const merged = res.status === 200 ? { approvals, ...(cursor ? { cursor } : {}) } : res.body;
        emit(cmd, { status: res.status, body: merged }, (body) => approvalsText(body, ctx.url));
      }),
    ['npx warden approvals --as bob'],
  );

  for (const decision of ['approve', 'deny'] as const) {
    examples(
      program
        .command(decision)
        .description(`${decision} a pending request (your vote; N-of-M needs N approvals)`)
        .argument('<id>', 'the request id (r_…)')
        .option('--comment <text>', 'kept with your vote in the trail')
        .action(async (id: string, o: { comment?: string }, cmd: Command) => {
          const body = { decision, ...(o.comment !== undefined ? { comment: o.comment } : {}) };
          await request(cmd, 'POST', `/v1/approvals/${enc(id)}/decision`, body, voteText);
        }),
      [`npx warden ${decision} r_0123456789abcdef --as bob --comment "checked with the team"`],
    );
  }

  examples(
    program
      .command('access')
      .description('ask for a time-boxed grant (waits for approval)')
      .argument('<target>', 'the target name')
      .argument('<level>', 'write or ddl')
      .argument('<duration>', 'how long, e.g. 30m, 2h, or seconds')
      .requiredOption('--justification <text>', 'why you need it (required)')
      .action(
        async (
          target: string,
          level: string,
          duration: string,
          o: { justification: string },
          cmd: Command,
        ) => {
          if (level !== 'write' && level !== 'ddl') {
            throw new UsageError(`<level>: expected write or ddl, got ${JSON.stringify(level)}`);
          }
          const body = {
            level,
            duration: /^\d+$/.test(duration) ? Number(duration) : duration,
            justification: o.justification,
          };
          await request(cmd, 'POST', `/v1/targets/${enc(target)}/access-requests`, body, pendingText);
        },
      ),
    ['npx warden access demo write 30m --justification "backfill INC-42"'],
  );

  const grants = examples(
    program
      .command('grants')
      .description('your grants (time-boxed access), or revoke one')
      .option('--all', 'include expired and revoked ones')
      .action(async (o: { all?: boolean }, cmd: Command) => {
        await request(cmd, 'GET', `/v1/grants${o.all ? '?all=true' : ''}`, undefined, grantsText);
      }),
    ['npx warden grants', 'npx warden grants revoke g_0123456789'],
  );
  grants
    .command('revoke')
    .description('revoke a grant')
    .argument('<id>', 'the grant id')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      await request(cmd, 'DELETE', `/v1/grants/${enc(id)}`, undefined, jsonText);
    });
}

/** `warden dev` (the local twin, same as npm start), `warden token <user>` and `warden mask`. */
import type { Command } from 'commander';
import { devToken, gatewayUrl } from './cli-client.js';
import { examples, globals } from './cli-common.js';

export const DEV_USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'agent-demo'];

export function register(program: Command): void {
  examples(
    program
      .command('dev')
      .description(
        'run the local twin in the foreground (same as npm start); its state persists under WARDEN_DATA_DIR (default .warden)',
      )
      .option('--reset', 'start clean: delete the state kept under the data directory first')
      .action(async (o: { reset?: boolean }) => {
        const { runDev } = await import('../lib/local/dev.js');
        await runDev({ reset: o.reset === true });
      }),
    ['npx warden dev', 'npx warden dev --reset', 'PORT=9000 WARDEN_DATA_DIR=/tmp/w npx warden dev'],
  );

  examples(
    program
      .command('token')
      .description(`local twin only: print a bearer token for a dev user (${DEV_USERS.join(', ')})`)
      .argument('<user>', 'the dev user, or agent-demo for the agent client')
      .action(async (user: string, _o: unknown, cmd: Command) => {
        console.log(await devToken(gatewayUrl(globals(cmd).url), user));
      }),
    [
      'npx warden token alice',
      'curl -H "Authorization: Bearer $(npx warden token bob)" http://127.0.0.1:8080/v1/approvals',
    ],
  );

  examples(
    program
      .command('mask')
      .description('JSON lines on stdin -> masked JSON lines on stdout, counts on stderr')
      .action(async () => {
        const { maskJsonLines } = await import('../lambdas/core/masking/index.js');
        const counts = await maskJsonLines(process.stdin, process.stdout);
        process.stderr.write(`${JSON.stringify({ masked: counts })}\n`);
      }),
    [`printf '{"note":"mail ada@example.com"}\\n' | npx warden mask`],
  );
}

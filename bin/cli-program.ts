/**
 * The Warden CLI's program: every area's commands (bin/*-cli.ts) registered on one commander
 * program, and `main`, which runs it and turns errors into the exit codes of docs/cli.md.
 * bin/warden.ts runs it; tests call `main` in-process.
 */
import { Command, CommanderError, Option } from 'commander';
import { register as registerApprovals } from './approvals-cli.js';
import { CliError, EXIT } from './cli-client.js';
import { register as registerDb } from './db-cli.js';
import { register as registerDev } from './dev-cli.js';
import { register as registerLogin } from './login-cli.js';
import { register as registerMcp } from './mcp-cli.js';
import { register as registerPolicy } from './policy-cli.js';
import { register as registerSessions } from './sessions-cli.js';
import { register as registerSql } from './sql-cli.js';
import { VERSION } from './version.js';

export function buildProgram(): Command {
  const program = new Command('warden')
    .description('Warden: the identity-aware gateway between AI agents and production data')
    .version(VERSION, '-V, --version', 'print the version')
    .addOption(
      new Option('--url <url>', 'the gateway').env('WARDEN_URL').default(undefined, 'http://127.0.0.1:8080'),
    )
    .option('--token <token>', 'a bearer token (or WARDEN_TOKEN)')
    .option(
      '--as <user>',
      'local twin only: act as this dev user (alice, bob, carol, dave, erin, agent-demo)',
    )
    .option('--session <id>', 'the session to record this request in (X-Warden-Session)')
    .option('--json', 'print JSON (the default when stdout is not a terminal)')
    .showHelpAfterError('(add --help for usage and examples)')
    .exitOverride()
    .addHelpText(
      'after',
      `
Examples:
  $ npx warden sql demo "SELECT id, name FROM customers LIMIT 3"
  $ npx warden login --url https://warden.example.com
  $ npx warden approvals --as bob
  $ npx warden sql --help

Exit codes: 0 ok · 1 refused or failed · 2 bad command line · 3 waiting for approval · 4 gateway unreachable or not signed in`,
    );
  registerDev(program);
  registerLogin(program);
  registerSql(program);
  registerApprovals(program);
  registerSessions(program);
  registerPolicy(program);
  registerDb(program);
  registerMcp(program);
  return program;
}

export async function main(argv: readonly string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and --version exit 0; commander already printed usage errors (naming the argument).
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return;
      process.exitCode = EXIT.usage;
      return;
    }
    const code = error instanceof CliError ? error.exitCode : EXIT.refused;
    console.error(`warden: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = code;
  }
}

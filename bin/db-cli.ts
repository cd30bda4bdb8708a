/**
 * `warden db setup|check <target>`: the database side of masking (docs/masking.md).
 * - `setup` prints the SQL generated from the target's configuration and its catalogue; with
 *   `--apply` it runs it in one Data API transaction with the target's `db.adminSecret`.
 * - `check` proves each masked user cannot read a raw sensitive column and that every Warden user
 *   has its role settings; exit code 1 when anything fails.
 * The configuration is `--config <file>` (the WARDEN_CONFIG JSON), else WARDEN_CONFIG, else the
 * local twin's. The Data API endpoint is AWS's (region and credentials from the usual AWS
 * settings), or `--endpoint`, AWS_ENDPOINT_URL_RDS_DATA, or the running local twin's.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { CliError, UsageError } from './cli-client.js';
import { examples } from './cli-common.js';
import type { SqlTargetConfig } from '../lambdas/core/config.js';

interface DbOptions {
  readonly config?: string;
  readonly endpoint?: string;
  readonly apply?: boolean;
}

export function register(program: Command): void {
  const db = program.command('db').description("a SQL target's database side of masking: setup, check");
  const common = (cmd: Command) =>
    cmd
      .option('--config <file>', 'the Warden configuration (JSON, as WARDEN_CONFIG); default: the local twin')
      .option(
        '--endpoint <url>',
        'the Data API endpoint (AWS_ENDPOINT_URL_RDS_DATA; default: AWS, or the twin)',
      );
  examples(
    common(
      db
        .command('setup')
        .description('print the masking SQL (roles, views, grants, role settings); --apply runs it')
        .argument('<target>', 'a SQL target')
        .option('--apply', "run it in one transaction with the target's db.adminSecret"),
    ).action(async (target: string, options: DbOptions) => {
      process.exitCode = await dbCommand('setup', target, options);
    }),
    [
      'npx warden db setup demo',
      'npx warden db setup demo --apply',
      'npx warden db setup orders --config warden.config.json > orders-masking.sql',
    ],
  );
  examples(
    common(
      db
        .command('check')
        .description('prove the masked users cannot read raw sensitive columns; exit 1 if not')
        .argument('<target>', 'a SQL target'),
    ).action(async (target: string, options: DbOptions) => {
      process.exitCode = await dbCommand('check', target, options);
    }),
    ['npx warden db check demo', 'npx warden db check orders --config warden.config.json'],
  );
}

function dataDir(): string {
  return resolve(process.env.WARDEN_DATA_DIR ?? '.warden');
}

/** The running local twin's Data API endpoint, if it wrote one. */
function twinEndpoint(): string | undefined {
  const file = join(dataDir(), 'endpoints.json');
  if (!existsSync(file)) return undefined;
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { dataApi?: string }).dataApi;
  } catch {
    return undefined;
  }
}

async function loadTarget(
  name: string,
  options: DbOptions,
): Promise<{ target: SqlTargetConfig; local: boolean }> {
  const { parseConfig } = await import('../lambdas/core/config.js');
  let input: unknown;
  let local = false;
  if (options.config) {
    if (!existsSync(options.config)) throw new UsageError(`--config: no such file: ${options.config}`);
    try {
      input = JSON.parse(readFileSync(options.config, 'utf8'));
    } catch (error) {
      throw new UsageError(`--config: ${options.config} is not JSON (${String(error)})`);
    }
  } else if (process.env.WARDEN_CONFIG) {
    input = JSON.parse(process.env.WARDEN_CONFIG);
  } else {
    const { demoConfig } = await import('../lib/local/demo-config.js');
    input = demoConfig();
    local = true;
  }
  const config = parseConfig(input);
  const target = Object.hasOwn(config.targets, name) ? config.targets[name] : undefined;
  if (!target) throw new UsageError(`<target>: no target "${name}" in the configuration`);
  if (target.kind !== 'sql') throw new UsageError(`<target>: "${name}" is not a SQL target`);
  return { target, local };
}

/** Runs `db setup` or `db check`; returns the exit code. */
export async function dbCommand(
  sub: 'setup' | 'check',
  name: string,
  options: DbOptions,
  io: { out?: (line: string) => void; err?: (line: string) => void } = {},
): Promise<number> {
  const out = io.out ?? ((line: string) => console.log(line));
  const err = io.err ?? ((line: string) => console.error(line));
  const { target, local } = await loadTarget(name, options);
  const { RDSDataClient } = await import('@aws-sdk/client-rds-data');
  const endpoint =
    options.endpoint ?? process.env.AWS_ENDPOINT_URL_RDS_DATA ?? (local ? twinEndpoint() : undefined);
  if (local && !endpoint) {
    throw new CliError('the local twin is not running (start it with `npm start`), or pass --endpoint');
  }
  const client = new RDSDataClient({
    maxAttempts: 1,
    ...(endpoint ? { endpoint } : {}),
    ...(local
      ? { region: 'us-east-1', credentials: { accessKeyId: 'local-twin', secretAccessKey: 'local-twin' } }
      : {}),
  });
  const { applySetup, runDbCheck, setupStatements } = await import('../lambdas/adapters/db-masking.js');
  if (sub === 'setup') {
    const secret = target.db.adminSecret;
    if (options.apply) {
      if (!secret)
        throw new UsageError(`--apply: target "${name}" has no db.adminSecret in its configuration`);
      const n = await applySetup(client, target, secret);
      out(
        `applied ${n} statements to target "${name}" in one transaction; now run \`npx warden db check ${name}\``,
      );
      return 0;
    }
    // Printing needs only the catalogue, which any Warden user may read.
    const statements = await setupStatements(client, target, secret ?? target.secrets.read);
    out(`-- warden db setup ${name}: generated from its configuration and catalogue; run as one transaction`);
    out('BEGIN;');
    for (const s of statements) out(`${s};`);
    out('COMMIT;');
    return 0;
  }
  const report = await runDbCheck(client, name, target, {
    ...(target.db.adminSecret ? { catalogueSecret: target.db.adminSecret } : {}),
  });
  for (const line of report.passed) out(`ok    ${line}`);
  for (const line of report.problems) err(`FAIL  ${line}`);
  out(
    report.ok
      ? `target "${name}": database masking holds (${report.passed.length} checks)`
      : `target "${name}": ${report.problems.length} check(s) failed; masked principals are refused until it passes`,
  );
  return report.ok ? 0 : 1;
}

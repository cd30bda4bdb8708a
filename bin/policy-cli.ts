/** `warden policy validate|push|schema`: policies live as files in your repo. */
import { existsSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { CliError, UsageError } from './cli-client.js';
import { examples } from './cli-common.js';

export function register(program: Command): void {
  const policy = program.command('policy').description('Cedar policy files: validate, push, schema');
  examples(
    policy
      .command('validate')
      .description("validate Cedar policy files against Warden's schema")
      .argument('[dir]', 'the directory of .cedar files', 'policies')
      .action((dir: string) => policyCommand('validate', dir)),
    ['npx warden policy validate', 'npx warden policy validate ./my-policies'],
  );
  examples(
    policy
      .command('push')
      .description('validate, then make them the active policy set (DynamoDB, TABLE_POLICIES)')
      .argument('[dir]', 'the directory of .cedar files', 'policies')
      .action((dir: string) => policyCommand('push', dir)),
    ['TABLE_POLICIES=warden-policies npx warden policy push ./policies'],
  );
  policy
    .command('schema')
    .description("print Warden's Cedar schema")
    .action(() => policyCommand('schema', ''));
}

export async function policyCommand(sub: 'validate' | 'push' | 'schema', dir: string): Promise<void> {
  // Loaded here, not at start-up: Cedar and the AWS SDK are only needed by these commands.
  const { CEDAR_SCHEMA } = await import('../lambdas/core/policy-schema.js');
  if (sub === 'schema') {
    console.log(CEDAR_SCHEMA);
    return;
  }
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new UsageError(`[dir]: no such directory: ${dir}`);
  const { loadPolicyFiles } = await import('../lib/local/policy-files.js');
  const { PolicyValidationError } = await import('../lambdas/core/policy.js');
  const { encodePolicySources, validatePolicySources } = await import('../lambdas/core/policy-provider.js');
  const sources = loadPolicyFiles(dir);
  if (sources.length === 0) throw new CliError(`no .cedar files in ${dir}`);
  const version = `v${new Date()
    .toISOString()
    .replace(/[-:.TZ]/g, '')
    .slice(0, 14)}`;
  let engine;
  try {
    engine = validatePolicySources(sources, version);
    console.log(`valid: ${engine.policyIds.length} policies (${engine.policyIds.join(', ')})`);
  } catch (error) {
    if (error instanceof PolicyValidationError) {
      for (const m of error.messages) console.error(`  ${m}`);
      throw new CliError('policy set refused; the active set is unchanged');
    }
    throw error;
  }
  if (sub === 'push') {
    // Needs TABLE_POLICIES and AWS credentials (or AWS_ENDPOINT_URL_DYNAMODB for a local store).
    const { DynamoPolicyStore } = await import('../lambdas/adapters/request-store.js');
    await new DynamoPolicyStore().putActive({
      version,
      policies: encodePolicySources(sources, engine),
      updatedAt: new Date().toISOString(),
      updatedBy: process.env.USER ?? 'cli',
    });
    console.log(`pushed as ${version}; Lambdas pick it up within their cache TTL`);
  }
}

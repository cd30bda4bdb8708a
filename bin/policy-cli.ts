/** `warden policy validate|push|schema`: policies live as files in your repo. */
import { randomBytes } from 'node:crypto';
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
      .description(
        'validate, then make them the active policy set (DynamoDB, TABLE_POLICIES), as the person WARDEN_TOKEN names',
      )
      .argument('[dir]', 'the directory of .cedar files', 'policies')
      .action((dir: string) => policyCommand('push', dir)),
    [
      'WARDEN_TOKEN=… OIDC_ISSUER=https://… OIDC_AUDIENCE=warden TABLE_POLICIES=warden-policies TABLE_AUDIT=warden-audit npx warden policy push ./policies',
    ],
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
  // Time-ordered and unique: two pushes in the same second are two versions.
  const version = `v${new Date()
    .toISOString()
    .replace(/[-:.TZ]/g, '')
    .slice(0, 14)}-${randomBytes(3).toString('hex')}`;
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
  if (sub === 'push') await push(version, encodePolicySources(sources, engine), engine.policyIds);
}

/** The trail session every policy push is appended to. */
export const POLICY_SESSION = 'warden-policy';

/**
 * Pushes a validated set: as the person a verified token names (WARDEN_TOKEN, checked against
 * OIDC_ISSUER / OIDC_AUDIENCE like the gateway checks it), conditional on the active version read
 * first, so of two concurrent pushes one loses with a clear error instead of overwriting the other;
 * then records `policy_pushed` in the trail. Needs TABLE_POLICIES, TABLE_AUDIT and AWS credentials
 * (or AWS_ENDPOINT_URL_DYNAMODB for a local store).
 */
async function push(version: string, policies: string, policyIds: readonly string[]): Promise<void> {
  const token = process.env.WARDEN_TOKEN;
  const issuer = process.env.OIDC_ISSUER;
  const audience = process.env.OIDC_AUDIENCE;
  if (!token || !issuer || !audience)
    throw new CliError(
      'policy push records who pushed from a verified token: set WARDEN_TOKEN (yours) and the ' +
        "gateway's OIDC_ISSUER and OIDC_AUDIENCE",
    );
  const { createTokenVerifier } = await import('../lambdas/adapters/jwt-verifier.js');
  const { principalKey } = await import('../lambdas/core/types.js');
  const verifier = createTokenVerifier({
    issuer,
    audience: audience.split(',').map((a) => a.trim()),
    ...(process.env.OIDC_JWKS_URI ? { jwksUri: process.env.OIDC_JWKS_URI } : {}),
    groupsClaim: process.env.GROUPS_CLAIM ?? 'groups',
  });
  let principal;
  try {
    principal = (await verifier.verify(token)).principal;
  } catch (error) {
    throw new CliError(`WARDEN_TOKEN was refused: ${error instanceof Error ? error.message : String(error)}`);
  }
  const { DynamoPolicyStore } = await import('../lambdas/adapters/request-store.js');
  const { ConditionFailedError } = await import('../lambdas/core/errors.js');
  const store = new DynamoPolicyStore();
  const previous = await store.getActive();
  const pushedAt = new Date().toISOString();
  try {
    await store.putActive(
      { version, policies, updatedAt: pushedAt, updatedBy: principalKey(principal) },
      { expectedVersion: previous?.version ?? null },
    );
  } catch (error) {
    if (error instanceof ConditionFailedError) {
      const now = await store.getActive();
      throw new CliError(
        `someone else pushed while you did (the active set is now ${now?.version ?? 'none'}, by ` +
          `${now?.updatedBy ?? 'unknown'}); nothing was changed. Check their set, then push again.`,
      );
    }
    throw error;
  }
  const { DynamoTrailStore } = await import('../lambdas/adapters/trail-store.js');
  await new DynamoTrailStore({ ttlDays: Number(process.env.AUDIT_TTL_DAYS ?? 400) }).append(POLICY_SESSION, [
    {
      type: 'policy_pushed',
      at: pushedAt,
      principal: principalKey(principal),
      principalName: principal.name,
      target: '*',
      action: 'policy:push',
      outcome: 'allow',
      status: 'executed',
      statement: `policy set ${version}`,
      determiningPolicies: [...policyIds],
      detail: { version, previousVersion: previous?.version ?? null },
    },
  ]);
  console.log(`pushed as ${version} by ${principal.name}; Lambdas pick it up within their cache TTL`);
}

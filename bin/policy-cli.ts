/** `warden policy validate|push|verify|schema`: policies live as files in your repo. */
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { CliError, UsageError } from './cli-client.js';
import { examples } from './cli-common.js';
import { POLICY_SESSION, policyPushedEvent } from '../lambdas/core/trail.js';

export function register(program: Command): void {
  const policy = program
    .command('policy')
    .description('Cedar policy files: validate, push, verify the active set, schema');
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
      .option(
        '--expect-version <version>',
        'the active version your change is based on: the push is refused if another has been pushed since',
      )
      .action((dir: string, opts: { expectVersion?: string }) =>
        policyCommand(
          'push',
          dir,
          opts.expectVersion !== undefined ? { expectVersion: opts.expectVersion } : {},
        ),
      ),
    [
      'WARDEN_TOKEN=… … npx warden policy push ./policies --expect-version v20261202170000-a1b2c3',
      'WARDEN_TOKEN=… OIDC_ISSUER=https://… OIDC_AUDIENCE=warden TABLE_POLICIES=warden-policies TABLE_AUDIT=warden-audit npx warden policy push ./policies',
    ],
  );
  examples(
    policy
      .command('verify')
      .description(
        'check the ACTIVE set (TABLE_POLICIES): its sources validate, the compiled form the functions serve is ' +
          'what they compile to, and a policy_pushed event in the trail (TABLE_AUDIT) names its version',
      )
      .action(() => policyVerify()),
    ['TABLE_POLICIES=warden-policies TABLE_AUDIT=warden-audit npx warden policy verify'],
  );
  policy
    .command('schema')
    .description("print Warden's Cedar schema")
    .action(() => policyCommand('schema', ''));
}

export async function policyCommand(
  sub: 'validate' | 'push' | 'schema',
  dir: string,
  options: { expectVersion?: string } = {},
): Promise<void> {
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
  if (sub === 'push') await push(version, encodePolicySources(sources, engine), engine, options);
}

/** The trail session every policy push is appended to. */
export { POLICY_SESSION };

/** The resource `push_policy` is decided on (policies/*.cedar). */
const GATEWAY = { type: 'Gateway', id: 'warden' } as const;

/**
 * Pushes a validated set: as the person a verified token names (WARDEN_TOKEN, checked against
 * OIDC_ISSUER / OIDC_AUDIENCE like the gateway checks it), never $USER.
 *
 * Who may push: whoever the ACTIVE policy set permits `push_policy` on `Gateway::"warden"` (so
 * the authority to change the policy comes from the policy), and the new set must permit them too
 * (no push locks its pusher out). With no active set yet (the first push), or one that does not
 * load (written around push), IAM alone decides.
 * IAM (write access to the Policies table) stays the hard boundary: no Warden function has it.
 *
 * No lost update: the push is conditional on the version it is based on (`--expect-version`, else
 * the active version read first); a push based on a stale version is refused with who pushed what.
 * The active pointer and the `policy_pushed` trail event are one DynamoDB transaction.
 */
async function push(
  version: string,
  policies: string,
  candidate: import('../lambdas/core/policy.js').PolicyEngine,
  options: { expectVersion?: string },
): Promise<void> {
  const token = process.env.WARDEN_TOKEN;
  const issuer = process.env.OIDC_ISSUER;
  const audience = process.env.OIDC_AUDIENCE;
  if (!token || !issuer || !audience)
    throw new CliError(
      'policy push records who pushed from a verified token: set WARDEN_TOKEN (yours) and the ' +
        "gateway's OIDC_ISSUER and OIDC_AUDIENCE",
    );
  const { audienceClaimFromEnv, createTokenVerifier } = await import('../lambdas/adapters/jwt-verifier.js');
  let audienceClaim: 'aud' | 'client_id';
  try {
    audienceClaim = audienceClaimFromEnv(process.env);
  } catch (error) {
    throw new CliError(error instanceof Error ? error.message : String(error));
  }
  const { principalKey } = await import('../lambdas/core/types.js');
  const verifier = createTokenVerifier({
    issuer,
    audience: audience.split(',').map((a) => a.trim()),
    audienceClaim,
    ...(process.env.OIDC_JWKS_URI ? { jwksUri: process.env.OIDC_JWKS_URI } : {}),
    groupsClaim: process.env.GROUPS_CLAIM ?? 'groups',
    ...(process.env.AGENT_OWNER_CLAIM ? { ownerClaim: process.env.AGENT_OWNER_CLAIM } : {}),
  });
  let principal;
  try {
    principal = (await verifier.verify(token)).principal;
  } catch (error) {
    throw new CliError(`WARDEN_TOKEN was refused: ${error instanceof Error ? error.message : String(error)}`);
  }
  const { DynamoPolicyStore } = await import('../lambdas/adapters/request-store.js');
  const { ConditionFailedError } = await import('../lambdas/core/errors.js');
  const { engineFor } = await import('../lambdas/core/policy-provider.js');
  const { signPolicySet, verifyPolicySet } = await import('../lambdas/core/policy-signature.js');
  const policyMac = await policyKey();
  const store = new DynamoPolicyStore();
  const previous = await store.getActive();
  const stale = () =>
    new CliError(
      `your push is based on ${options.expectVersion ?? previous?.version ?? 'none'}, but the active set is ` +
        `${current?.version ?? 'none'} (pushed by ${current?.updatedBy ?? 'unknown'} at ${current?.updatedAt ?? '?'}); ` +
        'nothing was changed. Merge their set into yours, then push again with --expect-version ' +
        `${current?.version ?? '<version>'}.`,
    );
  let current = previous;
  if (options.expectVersion !== undefined && options.expectVersion !== (previous?.version ?? 'none'))
    throw stale();
  let active;
  try {
    // A set without the policy key's signature decides nothing here either (functions do not
    // serve it): it cannot lock everyone out of the fix, nor let its writer in.
    if (previous && !(await verifyPolicySet(policyMac, previous)))
      throw new Error('it is not signed by warden policy push');
    active = previous ? engineFor(previous) : undefined;
  } catch (error) {
    // A set that does not load (a write that bypassed push) decides nothing, so it cannot lock
    // everyone out of the fix: as with no set at all, IAM alone decides this push.
    console.error(
      `warning: the active set ${previous?.version} does not load (${error instanceof Error ? error.message : String(error)}); ` +
        'only IAM decides this push',
    );
  }
  if (active) {
    if (!active.authorize(principal, 'push_policy', GATEWAY, {}).allowed)
      throw new CliError(
        `${principal.name} may not push policies: the active set (${previous?.version}) permits push_policy ` +
          'on Gateway::"warden" to others only; nothing was changed',
      );
  }
  if (!candidate.authorize(principal, 'push_policy', GATEWAY, {}).allowed)
    throw new CliError(
      `the new set does not permit ${principal.name} push_policy on Gateway::"warden"; pushing it would lock ` +
        'you out of the next push. Nothing was changed.',
    );
  const pushedAt = new Date().toISOString();
  const { DynamoTrailStore } = await import('../lambdas/adapters/trail-store.js');
  const trail = new DynamoTrailStore({ ttlDays: Number(process.env.AUDIT_TTL_DAYS ?? 400) });
  try {
    await store.pushWithTrail(
      await signPolicySet(policyMac, {
        version,
        policies,
        updatedAt: pushedAt,
        updatedBy: principalKey(principal),
      }),
      previous?.version ?? null,
      trail,
      POLICY_SESSION,
      [
        policyPushedEvent({
          version,
          previousVersion: previous?.version ?? null,
          at: pushedAt,
          principal: principalKey(principal),
          principalName: principal.name,
          policyIds: candidate.policyIds,
        }),
      ],
    );
  } catch (error) {
    if (error instanceof ConditionFailedError) {
      current = await store.getActive();
      throw stale();
    }
    throw error;
  }
  console.log(`pushed as ${version} by ${principal.name}; Lambdas pick it up within their cache TTL`);
}

/** The policy key (POLICY_MAC_KEY_ID on AWS, WARDEN_POLICY_MAC_KEY on the twin), or a CliError naming both. */
async function policyKey(): Promise<import('../lambdas/adapters/signing.js').Signer> {
  const { PolicyKeyError, policyMacFromEnv } = await import('../lambdas/adapters/signing.js');
  try {
    return policyMacFromEnv(process.env);
  } catch (error) {
    if (error instanceof PolicyKeyError) throw new CliError(error.message);
    throw error;
  }
}

/**
 * What an auditor runs to trust the active set: the functions serve its compiled form without
 * validating again (cold start), so a write of the Policies table that bypassed `policy push`
 * (anyone with the IAM permission and their own tools) could store sources that read well beside
 * a compiled form that enforces something else, or an unvalidated set, and leave no trail event.
 * This re-validates the stored sources, compares the compiled form with what they compile to, and
 * looks for the policy_pushed event of the active version. Exits non-zero on any finding.
 */
export async function policyVerify(): Promise<void> {
  const { DynamoPolicyStore } = await import('../lambdas/adapters/request-store.js');
  const { DynamoTrailStore } = await import('../lambdas/adapters/trail-store.js');
  const { PolicyValidationError } = await import('../lambdas/core/policy.js');
  const { compiledDifferences, decodePolicySources, pushRecordOf, validatePolicySources } =
    await import('../lambdas/core/policy-provider.js');
  const { verifyPolicySet } = await import('../lambdas/core/policy-signature.js');
  const policyMac = await policyKey();
  const active = await new DynamoPolicyStore().getActive();
  if (!active) throw new CliError('no active policy set: every request is denied until one is pushed');
  const findings: string[] = [];
  if (!(await verifyPolicySet(policyMac, active))) {
    findings.push(
      "its signature is not the policy key's (none, or not one made for what it holds): functions do not serve it; it was not written by warden policy push",
    );
  }
  let engine;
  try {
    engine = validatePolicySources(decodePolicySources(active), active.version);
  } catch (error) {
    if (!(error instanceof PolicyValidationError) && !(error instanceof Error)) throw error;
    const messages = error instanceof PolicyValidationError ? error.messages : [error.message];
    findings.push(...messages.map((m) => `the stored sources do not validate: ${m}`));
  }
  if (engine) findings.push(...compiledDifferences(active, engine));
  const trail = new DynamoTrailStore({ ttlDays: Number(process.env.AUDIT_TTL_DAYS ?? 400) });
  const { pushed, finding } = pushRecordOf(active, await trail.events(POLICY_SESSION));
  if (finding) findings.push(finding);
  const who = pushed
    ? `pushed by ${pushed.principalName ?? pushed.principal} at ${pushed.at}`
    : 'pusher unknown';
  if (findings.length > 0) {
    for (const f of findings) console.error(`  ${f}`);
    throw new CliError(`active policy set ${active.version} (${who}) failed verification`);
  }
  console.log(
    `verified: active set ${active.version}, ${engine?.policyIds.length ?? 0} policies, ${who}; ` +
      "its signature is the policy key's, its sources validate and its compiled form is theirs",
  );
}

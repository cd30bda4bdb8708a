/** `warden policy validate|push|schema`: policies live as files in your repo. */
import { DynamoPolicyStore } from '../lambdas/adapters/request-store.js';
import { PolicyValidationError } from '../lambdas/core/policy.js';
import { encodePolicySources, validatePolicySources } from '../lambdas/core/policy-provider.js';
import { CEDAR_SCHEMA } from '../lambdas/core/policy-schema.js';
import { loadPolicyFiles } from '../lib/local/policy-files.js';

export async function policyCommand(args: string[]): Promise<void> {
  const [sub, dir = 'policies'] = args;
  if (sub === 'schema') {
    console.log(CEDAR_SCHEMA);
    return;
  }
  if (sub !== 'validate' && sub !== 'push')
    throw new Error('usage: warden policy validate|push [dir] | schema');
  const sources = loadPolicyFiles(dir);
  if (sources.length === 0) throw new Error(`no .cedar files in ${dir}`);
  const version = `v${new Date()
    .toISOString()
    .replace(/[-:.TZ]/g, '')
    .slice(0, 14)}`;
  try {
    const engine = validatePolicySources(sources, version);
    console.log(`valid: ${engine.policyIds.length} policies (${engine.policyIds.join(', ')})`);
  } catch (error) {
    if (error instanceof PolicyValidationError) {
      for (const m of error.messages) console.error(`  ${m}`);
      throw new Error('policy set refused; the active set is unchanged');
    }
    throw error;
  }
  if (sub === 'push') {
    // Needs TABLE_POLICIES and AWS credentials (or AWS_ENDPOINT_URL_DYNAMODB for a local store).
    await new DynamoPolicyStore().putActive({
      version,
      policies: encodePolicySources(sources),
      updatedAt: new Date().toISOString(),
      updatedBy: process.env.USER ?? 'cli',
    });
    console.log(`pushed as ${version}; Lambdas pick it up within their cache TTL`);
  }
}

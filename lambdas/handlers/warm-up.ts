/**
 * Cold-start warm-up: the first calls into WebAssembly cost many times the later ones (V8 compiles
 * each function on its first call; Cedar also preparses a policy slice per action on first use), so
 * init makes them instead of the first request. Lambda runs init with boosted CPU, and on a
 * provisioned-concurrency instance before any request arrives.
 *
 * Everything here is a throwaway: a statement classified, and the Cedar decisions of a SQL read by a
 * synthetic principal, nothing stored or recorded. Decisions are pure and the caches they fill are
 * keyed by their exact inputs (answers) or by request shape (schema checks), so every real request
 * is decided exactly as without the warm-up, only sooner.
 */
import type { SqlTargetConfig, WardenConfig } from '../core/config.js';
import type { PolicyProvider } from '../core/policy-provider.js';
import { mayViewUnmasked, operationContext, targetRef } from '../core/requests.js';
import type { Principal, SqlClassification } from '../core/types.js';

/** The synthetic caller of the warm-up decisions (in a group, like real callers). */
export const WARM_UP_PRINCIPAL: Principal = {
  type: 'User',
  id: 'warden:warm-up',
  name: 'warden:warm-up',
  groups: ['warden:warm-up'],
};

/** A statement like the ones agents send: projection, a table, a filter. */
const WARM_UP_SQL = 'SELECT id, name FROM warden_warm_up WHERE id = 1';

export async function warmUp(deps: {
  readonly config: WardenConfig;
  readonly policies: PolicyProvider;
  readonly classifySql: (sql: string) => Promise<SqlClassification> | SqlClassification;
}): Promise<void> {
  const classification = await deps.classifySql(WARM_UP_SQL);
  const sqlTarget = Object.entries(deps.config.targets).find(
    (entry): entry is [string, SqlTargetConfig] => entry[1].kind === 'sql',
  );
  if (!sqlTarget) return;
  const [name, target] = sqlTarget;
  const engine = await deps.policies.engine();
  const action = `sql:${classification.class}`;
  engine.usesGrants(action);
  const context = operationContext(classification, undefined, [], new Date());
  engine.decideOperation(WARM_UP_PRINCIPAL, action, targetRef(name, target), context);
  mayViewUnmasked(engine, WARM_UP_PRINCIPAL, name, classification.tables);
}

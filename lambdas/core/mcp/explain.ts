/**
 * Explain without running: the classification Warden would give a SQL statement, the decision the
 * active policies would take for this caller, and how it would run. Nothing is run; an explain is
 * recorded by its callers (REST route and MCP tool, traceExplain): answered as `explained`, refused
 * as `request_refused`.
 */
import type { SqlTargetConfig } from '../config.js';
import { NotFoundError } from '../errors.js';
import {
  canSeeTarget,
  checkSqlSize,
  findTarget,
  mayViewUnmasked,
  operationContext,
  publicDecision,
  targetRef,
  type PublicDecision,
  type RequestDeps,
} from '../requests.js';
import type { Principal, SqlClassification } from '../types.js';

export interface SqlExplanation {
  target: string;
  classification: SqlClassification;
  decision: PublicDecision;
  execution: {
    accessLevel: 'read' | 'write';
    secret: string;
    maxRows: number;
    masked: boolean;
  } | null;
  grants: string[];
}

export async function explainSql(
  deps: RequestDeps,
  principal: Principal,
  name: string,
  input: { sql: string; justification?: string },
): Promise<SqlExplanation> {
  const engine = await deps.policies.engine();
  const target = findTarget(deps.config, name);
  if (!canSeeTarget(engine, principal, name, target)) throw new NotFoundError(`unknown target "${name}"`);
  if (target.kind !== 'sql') throw new NotFoundError(`target "${name}" does not take SQL`);
  checkSqlSize(input.sql, deps.config);
  const classification = await deps.classifySql(input.sql);
  const now = deps.clock.now();
  const grants = deps.grants ? await deps.grants.activeGrants(principal, name, now) : [];
  const decision = engine.decideOperation(
    principal,
    `sql:${classification.class}`,
    targetRef(name, target),
    operationContext(classification, input.justification, grants, now),
  );
  const sqlTarget: SqlTargetConfig = target;
  return {
    target: name,
    classification,
    decision: publicDecision(decision),
    execution:
      decision.outcome === 'deny'
        ? null
        : {
            accessLevel: classification.class === 'read' ? 'read' : 'write',
            secret: classification.class === 'read' ? 'read-only database user' : 'read-write database user',
            maxRows: sqlTarget.maxRows,
            masked: !mayViewUnmasked(engine, principal, name, classification.tables),
          },
    grants,
  };
}

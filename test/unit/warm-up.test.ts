/**
 * The cold-start warm-up (lambdas/handlers/warm-up.ts) makes throwaway calls only: it reads the
 * active policy set and nothing else from the store, and every real decision after it is the
 * decision a fresh engine makes without it (allow, approval required, deny, masked or not).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { classifySql, initSqlClassifier } from '../../lambdas/core/classify/sql.js';
import { parseConfig } from '../../lambdas/core/config.js';
import { encodePolicySources, PolicyProvider } from '../../lambdas/core/policy-provider.js';
import { PolicyEngine, type PolicySource } from '../../lambdas/core/policy.js';
import { CEDAR_SCHEMA } from '../../lambdas/core/policy-schema.js';
import type { PolicyStore } from '../../lambdas/core/ports.js';
import { mayViewUnmasked, operationContext } from '../../lambdas/core/requests.js';
import type { Principal } from '../../lambdas/core/types.js';
import { warmUp, WARM_UP_PRINCIPAL } from '../../lambdas/handlers/warm-up.js';
import { demoConfig } from '../../lib/local/demo-config.js';

const demo: PolicySource = { source: 'demo.cedar', text: readFileSync('policies/demo.cedar', 'utf8') };
const user = (id: string, groups: string[]): Principal => ({ type: 'User', id, name: id, groups });
const callers = [
  user('alice', ['engineers']),
  user('bob', ['dba']),
  user('carol', ['support']),
  user('dave', ['auditors']),
  // The warm-up's own identity, should a token ever carry it: decided like anyone else.
  { ...WARM_UP_PRINCIPAL },
];
const statements = [
  'SELECT id, name FROM customers WHERE id = 1',
  "UPDATE customers SET name = 'x' WHERE id = 1",
  'DROP TABLE customers',
];

async function decisions(engine: PolicyEngine) {
  const out: unknown[] = [];
  for (const sql of statements) {
    const c = await classifySql(sql);
    const context = operationContext(c, undefined, [], new Date('2026-01-01T12:00:00Z'));
    for (const p of callers) {
      const d = engine.decideOperation(
        p,
        `sql:${c.class}`,
        { type: 'Target', id: 'demo', kind: 'sql' },
        context,
      );
      out.push([sql, p.id, d.outcome, d.determiningPolicies, mayViewUnmasked(engine, p, 'demo', c.tables)]);
    }
  }
  return out;
}

describe('cold-start warm-up', () => {
  it('only reads the active policy set, and leaves every decision as a fresh engine makes it', async () => {
    await initSqlClassifier();
    const calls: string[] = [];
    const stored = {
      version: 'v1',
      policies: encodePolicySources([demo], PolicyEngine.load(CEDAR_SCHEMA, [demo], 'v1')),
    };
    const store = new Proxy({} as PolicyStore, {
      get: (_t, name: string) => async () => {
        calls.push(name);
        if (name !== 'getActive') throw new Error(`warm-up called ${name}`);
        return stored;
      },
    });
    const policies = new PolicyProvider(store);
    await warmUp({ config: parseConfig(demoConfig()), policies, classifySql });
    expect(calls).toEqual(['getActive']);

    const warmed = await decisions(await policies.engine());
    const fresh = await decisions(PolicyEngine.load(CEDAR_SCHEMA, [demo], 'v1'));
    expect(warmed).toEqual(fresh);
    // The comparison means something: the callers are decided differently.
    expect(new Set(fresh.map((d) => JSON.stringify((d as unknown[]).slice(2)))).size).toBeGreaterThan(2);
  });
});

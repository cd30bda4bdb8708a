/**
 * The /approvals page's listing (listEveryPendingForApprover): one listing call stops after a few
 * thousand scanned records and hands back a cursor; the page follows it, so a request bob may
 * decide behind 4,500 he may not is still shown, and `more` tells when the page could not list all.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listEveryPendingForApprover, listPendingForApprover } from '../../lambdas/core/approvals.js';
import { parseConfig } from '../../lambdas/core/config.js';
import { encodePolicySources, PolicyProvider } from '../../lambdas/core/policy-provider.js';
import type { PendingPosition } from '../../lambdas/core/ports.js';
import { principalKey, type Principal, type RequestRecord } from '../../lambdas/core/types.js';
import { demoConfig } from '../../lib/local/demo-config.js';
import { loadPolicyFiles } from '../../lib/local/policy-files.js';

const user = (id: string, groups: string[]): Principal => ({ type: 'User', id, name: id, groups });
const alice = user('alice', ['engineers']);
const bob = user('bob', ['dba']);
const now = new Date('2026-03-01T12:00:00.000Z');
const policies = new PolicyProvider({
  getActive: async () => ({
    version: 'test',
    policies: encodePolicySources(loadPolicyFiles(join(import.meta.dirname, '../../policies'))),
    updatedAt: '',
  }),
  putActive: async () => undefined,
});
const config = parseConfig(demoConfig());

function record(i: number, by: Principal): RequestRecord {
  const at = new Date(now.getTime() - 1000 - i).toISOString();
  return {
    id: `r_every${String(i).padStart(10, '0')}`,
    target: 'demo',
    principal: principalKey(by),
    principalName: by.name,
    principalType: 'User',
    groups: [...by.groups],
    sessionId: 's_every',
    createdAt: at,
    updatedAt: at,
    status: 'pending_approval',
    operation: { kind: 'sql', sql: `UPDATE orders SET status = 'x' WHERE id = ${i}` },
    decision: {
      outcome: 'approval_required',
      action: 'sql:write',
      determiningPolicies: ['demo-writes-need-approval'],
      errors: [],
      policyVersion: 'test',
    },
    expiresAt: new Date(now.getTime() + 3_600_000).toISOString(),
    requiredApprovals: 1,
    votes: [],
    version: 1,
  };
}

/** The pending index newest first, in pages, as the store port promises. */
function storeOf(records: RequestRecord[]) {
  const sorted = [...records].sort(
    (a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id),
  );
  return {
    async listPendingPage({ limit, after }: { limit: number; after?: PendingPosition }) {
      const start = after ? sorted.findIndex((r) => r.id === after.id) + 1 : 0;
      const page = sorted.slice(start, start + limit);
      const last = page.at(-1);
      return {
        records: page,
        ...(start + limit < sorted.length && last
          ? { next: { createdAt: last.createdAt, id: last.id } }
          : {}),
      };
    },
    get: async () => undefined,
  } as unknown as Parameters<typeof listPendingForApprover>[0]['requests'];
}

describe('listing every pending request for the page', () => {
  // bob's own 4,500 requests (he never decides them) in front of three of alice's.
  const records = [
    ...Array.from({ length: 4500 }, (_, i) => record(i, bob)),
    ...[4500, 4501, 4502].map((i) => record(i, alice)),
  ];
  const deps = { requests: storeOf(records), policies, config, clock: { now: () => now } };

  it('finds requests behind more records than one listing call scans', async () => {
    const single = await listPendingForApprover(deps, bob, { limit: 500 });
    expect(single.approvals).toHaveLength(0);
    expect(single.cursor).toBeDefined();
    const every = await listEveryPendingForApprover(deps, bob, 500);
    expect(every.approvals.map((a) => a.requestId)).toEqual(
      [4500, 4501, 4502].map((i) => record(i, alice).id),
    );
    expect(every.more).toBe(false);
  });

  it('says when there are more than it lists', async () => {
    const many = { ...deps, requests: storeOf(Array.from({ length: 30 }, (_, i) => record(i, alice))) };
    const out = await listEveryPendingForApprover(many, bob, 10);
    expect(out.approvals).toHaveLength(10);
    expect(out.more).toBe(true);
  });
});

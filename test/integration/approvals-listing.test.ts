/**
 * `GET /v1/approvals` over many pending requests: the listing reads the pending index page by page
 * (real DynamoDB wire protocol: dynalite and AWS's DynamoDB Local), so an approver sees every
 * request they may decide however many others wait in front of them, in pages with a cursor.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDocumentClient } from '../../lambdas/adapters/dynamodb.js';
import { DynamoRequestStore } from '../../lambdas/adapters/request-store.js';
import { listPendingForApprover } from '../../lambdas/core/approvals.js';
import { parseConfig } from '../../lambdas/core/config.js';
import { BadRequestError } from '../../lambdas/core/errors.js';
import { encodePolicySources, PolicyProvider } from '../../lambdas/core/policy-provider.js';
import { principalKey, type Principal, type RequestRecord } from '../../lambdas/core/types.js';
import { demoConfig } from '../../lib/local/demo-config.js';
import { createTables } from '../../lib/local/dynamodb.js';
import { loadPolicyFiles } from '../../lib/local/policy-files.js';
import { ALL_TABLES } from '../../lib/tables.js';
import { withDynalite, withDynamoDbLocal, type TestDynamo } from '../support/dynamo.js';

const user = (id: string, groups: string[]): Principal => ({ type: 'User', id, name: id, groups });
const alice = user('alice', ['engineers']);
const bob = user('bob', ['dba']);
const erin = user('erin', ['engineers', 'dba']);

const sources = loadPolicyFiles(join(import.meta.dirname, '../../policies'));
const policies = new PolicyProvider({
  getActive: async () => ({ version: 'test', policies: encodePolicySources(sources), updatedAt: '' }),
  putActive: async () => undefined,
});
const config = parseConfig(demoConfig());
const now = new Date('2026-03-01T12:00:00.000Z');

let n = 0;
function pending(by: Principal, createdAt: Date, extra: Partial<RequestRecord> = {}): RequestRecord {
  const id = `r_list${String(++n).padStart(10, '0')}`;
  return {
    id,
    target: 'demo',
    principal: principalKey(by),
    principalName: by.name,
    principalType: 'User',
    groups: [...by.groups],
    sessionId: 's_listing',
    createdAt: createdAt.toISOString(),
    updatedAt: createdAt.toISOString(),
    status: 'pending_approval',
    operation: { kind: 'sql', sql: `UPDATE orders SET status = 'x' WHERE id = ${n}` },
    decision: {
      outcome: 'approval_required',
      action: 'sql:write',
      determiningPolicies: ['demo-writes-need-approval'],
      errors: [],
      policyVersion: 'test',
    },
    expiresAt: new Date(now.getTime() + 3_600_000).toISOString(),
    requiredApprovals: 2,
    votes: [],
    version: 1,
    ...extra,
  };
}

for (const start of [withDynalite, withDynamoDbLocal]) {
  describe(`the approvers' listing on ${start === withDynalite ? 'dynalite' : 'DynamoDB Local'}`, () => {
    let db: TestDynamo;
    let deps: Parameters<typeof listPendingForApprover>[0];
    const decidable: string[] = [];

    beforeAll(async () => {
      db = await start();
      const names = (logical: string) => `t-${logical.toLowerCase()}`;
      await createTables(db.client, ALL_TABLES, (d) => names(d.logicalName));
      const requests = new DynamoRequestStore({
        client: createDocumentClient(db.client),
        tableName: names('Requests'),
      });
      deps = { requests, policies, config, clock: { now: () => now } };
      const records: RequestRecord[] = [];
      // The newest 150 are nothing bob may decide: his own, on a target nobody approves on, expired,
      // or already carrying his vote. Behind them wait 130 he may decide, 40 of them created in the
      // same millisecond (the index's sort key ties; its position still tells them apart).
      for (let i = 0; i < 150; i++) {
        const at = new Date(now.getTime() - 1000 - i);
        const kind = i % 4;
        records.push(
          kind === 0
            ? pending(bob, at)
            : kind === 1
              ? pending(alice, at, { target: 'elsewhere' })
              : kind === 2
                ? pending(alice, at, { expiresAt: new Date(now.getTime() - 1).toISOString() })
                : pending(alice, at, {
                    votes: [
                      { by: principalKey(bob), byName: 'bob', decision: 'approve', at: at.toISOString() },
                    ],
                  }),
        );
      }
      for (let i = 0; i < 130; i++) {
        const at = new Date(now.getTime() - 10_000 - (i < 40 ? 0 : i));
        const r = pending(i % 2 ? alice : erin, at);
        records.push(r);
        decidable.push(r.id);
      }
      // A decided one stays out of the index.
      records.push(pending(alice, new Date(now.getTime() - 20_000), { status: 'approved' }));
      for (let i = 0; i < records.length; i += 25) {
        await Promise.all(records.slice(i, i + 25).map((r) => requests.create(r)));
      }
    }, 180_000);

    afterAll(async () => {
      await db?.close();
    });

    it('finds every request bob may decide behind 150 he may not, in pages with a cursor', async () => {
      const first = await listPendingForApprover(deps, bob);
      expect(first.approvals).toHaveLength(100);
      expect(first.cursor).toEqual(expect.any(String));
      const second = await listPendingForApprover(deps, bob, { cursor: first.cursor });
      expect(second.cursor).toBeUndefined();
      const ids = [...first.approvals, ...second.approvals].map((v) => v.requestId);
      expect(ids).toHaveLength(130);
      expect(new Set(ids)).toEqual(new Set(decidable));
      // Newest first across the page boundary.
      const created = [...first.approvals, ...second.approvals].map((v) => v.createdAt);
      expect(created).toEqual([...created].sort().reverse());
    });

    it('walks small pages to the same set, with no duplicates', async () => {
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await listPendingForApprover(deps, bob, { limit: 7, ...(cursor ? { cursor } : {}) });
        expect(page.approvals.length).toBeLessThanOrEqual(7);
        seen.push(...page.approvals.map((v) => v.requestId));
        cursor = page.cursor;
        pages++;
      } while (cursor && pages < 100);
      expect(seen).toHaveLength(130);
      expect(new Set(seen)).toEqual(new Set(decidable));
    });

    it('leaves out erin’s own requests for erin', async () => {
      const all = await listPendingForApprover(deps, erin, { limit: 500 });
      expect(all.cursor).toBeUndefined();
      expect(all.approvals.some((v) => v.requester === 'erin')).toBe(false);
      expect(all.approvals.filter((v) => v.requester === 'alice').length).toBeGreaterThanOrEqual(65);
    });

    it('refuses a cursor it did not give out and a limit out of range with 400', async () => {
      for (const cursor of ['nope!', Buffer.from('{"id":"x"}').toString('base64url'), 'A'.repeat(300)]) {
        await expect(listPendingForApprover(deps, bob, { cursor })).rejects.toBeInstanceOf(BadRequestError);
      }
      for (const limit of [0, 501, 1.5, Number.NaN]) {
        await expect(listPendingForApprover(deps, bob, { limit })).rejects.toBeInstanceOf(BadRequestError);
      }
    });
  });
}

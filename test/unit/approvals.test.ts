/**
 * decideApproval and friends against an in-memory request store with the same conditional-write
 * contract as DynamoDB's, the real Cedar engine with the demo policies, and a recording workflow.
 */
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  approvalView,
  decideApproval,
  getApprovalFor,
  listPendingForApprover,
  type ApprovalDeps,
  type ApprovalHandle,
} from '../../lambdas/core/approvals.js';
import { parseConfig } from '../../lambdas/core/config.js';
import {
  ConditionFailedError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
} from '../../lambdas/core/errors.js';
import { encodePolicySources, PolicyProvider } from '../../lambdas/core/policy-provider.js';
import type { RequestStore } from '../../lambdas/core/ports.js';
import {
  principalKey,
  type Principal,
  type RequestRecord,
  type RequestStatus,
} from '../../lambdas/core/types.js';
import { demoConfig } from '../../lib/local/demo-config.js';
import { loadPolicyFiles } from '../../lib/local/policy-files.js';

class MemoryStore implements RequestStore {
  readonly items = new Map<string, RequestRecord>();
  async create(r: RequestRecord) {
    if (this.items.has(r.id)) throw new ConditionFailedError();
    this.items.set(r.id, structuredClone(r));
  }
  async get(id: string) {
    const r = this.items.get(id);
    return r ? structuredClone(r) : undefined;
  }
  async update(r: RequestRecord, expectedVersion: number, statuses?: readonly RequestStatus[]) {
    // Yield first, so concurrent callers interleave as they would against a real store.
    await new Promise((res) => setImmediate(res));
    const cur = this.items.get(r.id);
    if (!cur || cur.version !== expectedVersion || (statuses && !statuses.includes(cur.status))) {
      throw new ConditionFailedError();
    }
    this.items.set(r.id, structuredClone(r));
    return r;
  }
  async listByPrincipal() {
    return [];
  }
  async listPendingPage({ limit, after }: { limit: number; after?: { createdAt: string; id: string } }) {
    const key = (r: { createdAt: string; id: string }) => `${r.createdAt}\n${r.id}`;
    const all = [...this.items.values()]
      .filter((r) => r.status === 'pending_approval')
      .sort((a, b) => (key(a) < key(b) ? 1 : -1))
      .filter((r) => !after || key(r) < key(after));
    const records = all.slice(0, limit);
    const last = records.at(-1);
    return {
      records,
      ...(all.length > limit && last ? { next: { createdAt: last.createdAt, id: last.id } } : {}),
    };
  }
}

const user = (id: string, groups: string[]): Principal => ({ type: 'User', id, name: id, groups });
const alice = user('alice', ['engineers']);
const bob = user('bob', ['dba']);
const erin = user('erin', ['engineers', 'dba']);
const carol = user('carol', ['support']);

const sources = loadPolicyFiles(join(import.meta.dirname, '../../policies'));
const policies = new PolicyProvider({
  getActive: async () => ({ version: 'test', policies: encodePolicySources(sources), updatedAt: '' }),
  putActive: async () => undefined,
});

let now: Date;
let store: MemoryStore;
let callbacks: { token: string; output: Record<string, unknown> }[];
let handles: ApprovalHandle[];
let deps: ApprovalDeps;
let seq = 0;

function pending(by: Principal = alice, extra: Partial<RequestRecord> = {}): RequestRecord {
  const id = `r_test${String(++seq).padStart(12, '0')}`;
  const r: RequestRecord = {
    id,
    target: 'demo',
    principal: principalKey(by),
    principalName: by.name,
    principalType: 'User',
    groups: [...by.groups],
    sessionId: 's_test',
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
    status: 'pending_approval',
    operation: { kind: 'sql', sql: "UPDATE orders SET status = 'x' WHERE id = 1" },
    decision: {
      outcome: 'approval_required',
      action: 'sql:write',
      determiningPolicies: ['demo-writes-need-approval'],
      errors: [],
      policyVersion: 'test',
    },
    expiresAt: new Date(now.getTime() + 600_000).toISOString(),
    requiredApprovals: 1,
    votes: [],
    version: 1,
    ...extra,
  };
  store.items.set(id, r);
  handles.push({
    approvalId: `a_${id}`,
    requestId: id,
    taskToken: `token-${id}`,
    createdAt: '',
    expiresAt: '',
  });
  return r;
}

beforeEach(() => {
  now = new Date('2026-01-01T10:00:00Z');
  store = new MemoryStore();
  callbacks = [];
  handles = [];
  deps = {
    config: parseConfig(demoConfig()),
    policies,
    requests: store,
    clock: { now: () => now },
    approvalHandles: {
      put: async (h) => void handles.push(h),
      byRequest: async (id) => handles.find((h) => h.requestId === id),
    },
    workflow: {
      sendTaskSuccess: async (token, output) => void callbacks.push({ token, output }),
      sendTaskFailure: async () => undefined,
      sendTaskHeartbeat: async () => undefined,
    },
    handleWaitMs: 0,
  };
});

describe('approvals', () => {
  it('approves, records the vote, and answers the workflow with decision, by, at and comment', async () => {
    const r = pending();
    const out = await decideApproval(deps, bob, r.id, { decision: 'approve', comment: ' ok ' });
    expect(out).toMatchObject({
      status: 'approved',
      terminal: true,
      decidedBy: 'bob',
      workflowNotified: true,
    });
    expect(store.items.get(r.id)).toMatchObject({ status: 'approved', decidedBy: 'bob', version: 2 });
    expect(callbacks).toEqual([
      {
        token: `token-${r.id}`,
        output: { decision: 'approve', by: 'bob', at: now.toISOString(), comment: 'ok', requestId: r.id },
      },
    ]);
  });

  it('refuses a requester approving their own request', async () => {
    const r = pending(erin);
    await expect(decideApproval(deps, erin, r.id, { decision: 'approve' })).rejects.toBeInstanceOf(
      ForbiddenError,
    );
    expect(store.items.get(r.id)!.votes).toEqual([]);
  });

  it('refuses someone Cedar does not allow to approve on the target', async () => {
    const r = pending();
    await expect(decideApproval(deps, carol, r.id, { decision: 'approve' })).rejects.toBeInstanceOf(
      ForbiddenError,
    );
    expect(callbacks).toEqual([]);
  });

  it('answers 404 for unknown, malformed and non-approval ids', async () => {
    const direct = pending(alice, { decision: { ...pending().decision, outcome: 'allow' } });
    for (const id of ['r_doesnotexist000000', '../r_x', '', direct.id]) {
      await expect(decideApproval(deps, bob, id, { decision: 'approve' })).rejects.toBeInstanceOf(
        NotFoundError,
      );
    }
  });

  it('refuses a vote once the window has passed, even before the workflow times out', async () => {
    const r = pending();
    now = new Date(Date.parse(r.expiresAt!) + 1);
    const err = await decideApproval(deps, bob, r.id, { decision: 'approve' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError).code).toBe('expired');
    expect((err as Error).message).toBe(`expired at ${r.expiresAt}`);
    expect(store.items.get(r.id)!.status).toBe('expired');
    expect(callbacks).toEqual([]);
  });

  it('needs N distinct approvers and treats a deny as terminal', async () => {
    const r = pending(alice, { requiredApprovals: 2 });
    const first = await decideApproval(deps, bob, r.id, { decision: 'approve' });
    expect(first).toMatchObject({ status: 'pending_approval', terminal: false, remainingApprovals: 1 });
    await expect(decideApproval(deps, bob, r.id, { decision: 'approve' })).rejects.toMatchObject({
      code: 'already_voted',
    });
    expect(callbacks).toEqual([]);
    const second = await decideApproval(deps, erin, r.id, { decision: 'approve' });
    expect(second).toMatchObject({ status: 'approved', terminal: true });

    const d = pending(alice, { requiredApprovals: 2 });
    await decideApproval(deps, bob, d.id, { decision: 'approve' });
    const denied = await decideApproval(deps, erin, d.id, { decision: 'deny' });
    expect(denied.status).toBe('denied');
    expect(callbacks.at(-1)!.output).toMatchObject({ decision: 'deny', by: 'erin' });
  });

  it('lets exactly one of many concurrent votes decide, and tells the rest who did', async () => {
    const r = pending();
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        decideApproval(deps, i % 2 ? bob : erin, r.id, { decision: i % 3 ? 'approve' : 'deny' }),
      ),
    );
    const ok = results.filter((x) => x.status === 'fulfilled');
    expect(ok).toHaveLength(1);
    expect(callbacks).toHaveLength(1);
    const winner = (ok[0] as PromiseFulfilledResult<{ status: string; decidedBy: string }>).value;
    for (const x of results.filter((y) => y.status === 'rejected')) {
      const e = (x as PromiseRejectedResult).reason as ConflictError;
      expect(e.statusCode).toBe(409);
      expect(e.message).toMatch(
        new RegExp(
          `^already ${winner.status === 'approved' ? 'approved' : 'denied'} by ${winner.decidedBy} at `,
        ),
      );
    }
  });

  it('shows approvers what awaits them, never their own or expired requests', async () => {
    const a = pending(alice);
    const e = pending(erin);
    const old = pending(alice, { expiresAt: new Date(now.getTime() - 1).toISOString() });
    const forBob = (await listPendingForApprover(deps, bob)).approvals.map((v) => v.requestId);
    expect(forBob).toEqual(expect.arrayContaining([a.id, e.id]));
    expect(forBob).not.toContain(old.id);
    expect((await listPendingForApprover(deps, erin)).approvals.map((v) => v.requestId)).not.toContain(e.id);
    expect(await listPendingForApprover(deps, carol)).toEqual({ approvals: [] });
  });

  it('gives the page a view with requester, statement, expiry and whether the viewer may vote', async () => {
    const r = pending(alice, { justification: 'OPS-1' });
    const view = approvalView(r);
    expect(view).toMatchObject({
      requester: 'alice',
      target: 'demo',
      statement: "UPDATE orders SET status = 'x' WHERE id = 1",
      justification: 'OPS-1',
      risk: 'medium',
      expiresAt: r.expiresAt,
      links: { review: `/approve/${r.id}` },
    });
    expect((await getApprovalFor(deps, bob, r.id)).canVote).toBe(true);
    expect((await getApprovalFor(deps, alice, r.id)).canVote).toBe(false);
    await expect(getApprovalFor(deps, carol, r.id)).rejects.toBeInstanceOf(NotFoundError);
  });
});

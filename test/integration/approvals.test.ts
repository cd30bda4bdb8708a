/**
 * Human approval end to end on the local twin: the synthesized state machine running in the Step
 * Functions twin, the notify and execute handlers in process, the approvers' API, and JIT grants.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthApprovalDefinition } from '../../lib/local/synth-definition.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';
import { waitFor } from '../support/wait.js';
import { submittedSql } from '../../lib/local/invariants.js';

let twin: TestTwin;
let alice: string;
let bob: string;
let carol: string;
let erin: string;
let dave: string;

beforeAll(async () => {
  twin = await startTestTwin();
  [alice, bob, carol, erin, dave] = await Promise.all(
    ['alice', 'bob', 'carol', 'erin', 'dave'].map((u) => twin.token(u)),
  );
}, 180_000);

afterAll(async () => {
  await twin?.close();
});

let counter = 0;
/** A write that needs approval, unique per call so the statement log tells runs apart. */
async function pendingWrite(token = alice): Promise<{ id: string; sql: string }> {
  const text = `UPDATE orders SET status = 'shipped' WHERE id = ${++counter}`;
  const res = await twin.api('POST', '/v1/targets/demo/sql', {
    token,
    body: { sql: text, justification: `ticket OPS-${counter}` },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return { id: res.body.requestId as string, sql: text };
}

const decide = (token: string, id: string, decision: 'approve' | 'deny', comment?: string) =>
  twin.api('POST', `/v1/approvals/${id}/decision`, {
    token,
    body: { decision, ...(comment ? { comment } : {}) },
  });

const requestOf = async (id: string) => (await twin.api('GET', `/v1/requests/${id}`, { token: alice })).body;

const ran = (text: string) => twin.statementLog.filter((s) => submittedSql(s.sql) === text).length;

async function settled(id: string, statuses: string[]): Promise<Record<string, any>> {
  return waitFor(async () => {
    const r = await requestOf(id);
    return statuses.includes(r.status) ? r : undefined;
  }, 30_000);
}

/** Waits until the notify step stored the task token (the outbox shows its message). */
async function notified(id: string): Promise<Record<string, any>> {
  return waitFor(async () => twin.outbox.find((m) => m.requestId === id), 60_000);
}

describe('the approval workflow', () => {
  it('follows pending_approval → approved → executed, with the masked result for the requester', async () => {
    const { id, sql } = await pendingWrite();
    expect((await requestOf(id)).status).toBe('pending_approval');
    const message = await notified(id);
    expect(message.reviewUrl).toBe(`${twin.url}/approve/${id}`);
    expect(message.text).toContain(sql);
    expect(JSON.stringify(message)).not.toMatch(/taskToken|Task\.Token/);

    const res = await decide(bob, id, 'approve', 'looks right');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({
      status: 'approved',
      terminal: true,
      decidedBy: 'bob',
      workflowNotified: true,
    });

    const done = await settled(id, ['executed', 'failed']);
    expect(done.status).toBe('executed');
    expect(done.decidedBy).toBe('bob');
    expect(done.votes).toMatchObject([{ byName: 'bob', decision: 'approve', comment: 'looks right' }]);
    expect(done.rowCount).toBe(1);
    expect(ran(sql)).toBe(1);
    const exec = await waitFor(async () => {
      const e = (await twin.stepFunctions.runner()).list().find((x) => x.name === id);
      return e && e.status !== 'RUNNING' ? e : undefined;
    }, 10_000);
    expect(exec.status).toBe('SUCCEEDED');
  }, 90_000);

  it('records a deny with who and when, and runs nothing', async () => {
    const { id, sql } = await pendingWrite();
    await notified(id);
    const res = await decide(bob, id, 'deny', 'not during the freeze');
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('denied');
    const done = await settled(id, ['denied']);
    expect(done).toMatchObject({ status: 'denied', decidedBy: 'bob' });
    expect(done.decidedAt).toBeTruthy();
    const again = await decide(erin, id, 'approve');
    expect(again.status).toBe(409);
    expect(again.body.error.message).toMatch(/^already denied by bob at /);
    expect(ran(sql)).toBe(0);
  }, 90_000);
});

describe('approval rules', () => {
  it('refuses a requester approving their own request', async () => {
    const { id } = await pendingWrite(erin); // erin is in engineers and dba
    const res = await decide(erin, id, 'approve');
    expect(res.status).toBe(403);
    expect(res.body.error.message).toMatch(/own request/);
    const r = (await twin.api('GET', `/v1/requests/${id}`, { token: erin })).body;
    expect(r).toMatchObject({ status: 'pending_approval', votes: [] });
  }, 60_000);

  it('refuses an approver Cedar does not allow, and changes nothing', async () => {
    const { id } = await pendingWrite();
    for (const token of [carol, dave, alice]) {
      const res = await decide(token, id, 'approve');
      expect(res.status).toBe(403);
    }
    const r = await requestOf(id);
    expect(r.status).toBe('pending_approval');
    expect(r.votes).toEqual([]);
  }, 60_000);

  it('answers 404 for forged or unknown approval ids', async () => {
    for (const id of ['r_AAAAAAAAAAAAAAAAAAAAAAAA', 'nope', 'r_../../etc', 'a_' + 'x'.repeat(30)]) {
      const res = await decide(bob, encodeURIComponent(id), 'approve');
      expect(res.status, id).toBe(404);
    }
  });

  it('gives exactly one decision and at most one execution to 20 concurrent approve/deny calls', async () => {
    const { id, sql } = await pendingWrite();
    await notified(id);
    const calls = Array.from({ length: 20 }, (_, i) =>
      decide(i % 2 ? bob : erin, id, i % 3 === 0 ? 'deny' : 'approve'),
    );
    const results = await Promise.all(calls);
    const ok = results.filter((r) => r.status === 200);
    expect(ok).toHaveLength(1);
    expect(results.filter((r) => r.status === 409)).toHaveLength(19);
    const winner = ok[0].body;
    for (const r of results.filter((x) => x.status === 409)) {
      expect(r.body.error.message).toMatch(
        winner.status === 'approved'
          ? /^already approved by (bob|erin) at /
          : /^already denied by (bob|erin) at /,
      );
    }
    const done = await settled(id, winner.status === 'approved' ? ['executed', 'failed'] : ['denied']);
    expect(done.votes).toHaveLength(1);
    expect(ran(sql)).toBe(winner.status === 'approved' ? 1 : 0);
  }, 90_000);

  it('lists what awaits an approver, not their own nor decided ones', async () => {
    const { id } = await pendingWrite();
    const mine = await pendingWrite(erin);
    const bobs = await twin.api('GET', '/v1/approvals', { token: bob });
    expect(bobs.status).toBe(200);
    const ids = bobs.body.approvals.map((a: { requestId: string }) => a.requestId);
    expect(ids).toContain(id);
    expect(ids).toContain(mine.id);
    const first = bobs.body.approvals.find((a: { requestId: string }) => a.requestId === id);
    expect(first).toMatchObject({
      requester: 'alice',
      target: 'demo',
      action: 'sql:write',
      status: 'pending_approval',
    });
    const erins = await twin.api('GET', '/v1/approvals', { token: erin });
    expect(erins.body.approvals.map((a: { requestId: string }) => a.requestId)).not.toContain(mine.id);
    const carols = await twin.api('GET', '/v1/approvals', { token: carol });
    expect(carols.body.approvals).toEqual([]);
  }, 60_000);
});

describe('just-in-time access', () => {
  it('lets alice write without approval while an approved grant lasts, until it is revoked', async () => {
    const reqRes = await twin.api('POST', '/v1/targets/demo/access-requests', {
      token: alice,
      body: { level: 'write', duration: '30m', justification: 'incident INC-7 cleanup' },
    });
    expect(reqRes.status, JSON.stringify(reqRes.body)).toBe(202);
    const id = reqRes.body.requestId as string;
    await notified(id);
    expect((await decide(bob, id, 'approve')).status).toBe(200);
    const done = await settled(id, ['executed', 'failed']);
    expect(done.status, JSON.stringify(done)).toBe('executed');
    expect(done.result).toMatchObject({ action: 'sql:write' });

    const grants = await twin.api('GET', '/v1/grants', { token: alice });
    expect(grants.body.grants).toHaveLength(1);
    expect(grants.body.grants[0]).toMatchObject({
      target: 'demo',
      action: 'sql:write',
      active: true,
      approvedBy: 'bob',
    });

    const text = "UPDATE orders SET status = 'cancelled' WHERE id = 200";
    const direct = await twin.api('POST', '/v1/targets/demo/sql', { token: alice, body: { sql: text } });
    expect(direct.status, JSON.stringify(direct.body)).toBe(200);
    expect(direct.body.status).toBe('executed');

    const grantId = grants.body.grants[0].grantId as string;
    expect((await twin.api('DELETE', `/v1/grants/${grantId}`, { token: carol })).status).toBe(404);
    const revoked = await twin.api('DELETE', `/v1/grants/${grantId}`, { token: alice });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ active: false, revokedBy: 'alice' });

    const after = await twin.api('POST', '/v1/targets/demo/sql', { token: alice, body: { sql: text } });
    expect(after.status).toBe(202);
  }, 90_000);
});

// Last: synthesizing the stack keeps this process busy for a while.
describe('the local Step Functions twin', () => {
  it('runs the very definition CDK synthesizes', async () => {
    const runner = await twin.stepFunctions.runner();
    expect(runner.definition).toEqual(await synthApprovalDefinition());
  }, 120_000);
});

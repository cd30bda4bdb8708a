/** N-of-M approvals on the local twin: the demo target asks for two distinct approvers (bob, erin). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTwin, type TestTwin } from '../support/twin.js';
import { waitFor } from '../support/wait.js';
import { submittedSql } from '../../lib/local/invariants.js';

let twin: TestTwin;
let alice: string;
let bob: string;
let erin: string;

beforeAll(async () => {
  twin = await startTestTwin({ requiredApprovals: 2 });
  [alice, bob, erin] = await Promise.all(['alice', 'bob', 'erin'].map((u) => twin.token(u)));
}, 180_000);

afterAll(async () => {
  await twin?.close();
});

let n = 0;
async function pendingWrite(): Promise<{ id: string; sql: string }> {
  const sql = `UPDATE orders SET status = 'shipped' WHERE id = ${3000 + ++n}`;
  const res = await twin.api('POST', '/v1/targets/demo/sql', { token: alice, body: { sql } });
  expect(res.status).toBe(202);
  expect(res.body.requiredApprovals).toBe(2);
  await waitFor(async () => twin.outbox.find((m) => m.requestId === res.body.requestId), 60_000);
  return { id: res.body.requestId, sql };
}

const decide = (token: string, id: string, decision: 'approve' | 'deny') =>
  twin.api('POST', `/v1/approvals/${id}/decision`, { token, body: { decision } });

const statusOf = async (id: string) => (await twin.api('GET', `/v1/requests/${id}`, { token: alice })).body;

describe('N-of-M approvals', () => {
  it('runs only once two distinct people approved, and counts one vote per person', async () => {
    const { id, sql } = await pendingWrite();
    const first = await decide(bob, id, 'approve');
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ status: 'pending_approval', terminal: false, remainingApprovals: 1 });

    const twice = await decide(bob, id, 'approve');
    expect(twice.status).toBe(409);
    expect(twice.body.error.code).toBe('already_voted');
    expect((await statusOf(id)).status).toBe('pending_approval');
    expect(twin.statementLog.filter((s) => submittedSql(s.sql) === sql)).toHaveLength(0);

    const second = await decide(erin, id, 'approve');
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ status: 'approved', terminal: true, remainingApprovals: 0 });
    const done = await waitFor(async () => {
      const r = await statusOf(id);
      return ['executed', 'failed'].includes(r.status) ? r : undefined;
    }, 30_000);
    expect(done.status).toBe('executed');
    expect(done.votes.map((v: { byName: string }) => v.byName)).toEqual(['bob', 'erin']);
    expect(twin.statementLog.filter((s) => submittedSql(s.sql) === sql)).toHaveLength(1);
  }, 90_000);

  it('ends the request on a deny even after an approval', async () => {
    const { id, sql } = await pendingWrite();
    expect((await decide(bob, id, 'approve')).status).toBe(200);
    const deny = await decide(erin, id, 'deny');
    expect(deny.status).toBe(200);
    expect(deny.body.status).toBe('denied');
    const late = await decide(bob, id, 'approve');
    expect(late.status).toBe(409);
    expect(late.body.error.message).toMatch(/^already denied by erin at /);
    expect(twin.statementLog.filter((s) => submittedSql(s.sql) === sql)).toHaveLength(0);
  }, 90_000);
});

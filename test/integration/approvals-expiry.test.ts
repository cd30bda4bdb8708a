/** Expiry on the local twin: a 10-second approval window, the workflow's timeout, and a late click. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTwin, type TestTwin } from '../support/twin.js';
import { waitFor } from '../support/wait.js';
import { submittedSql } from '../../lib/local/invariants.js';

let twin: TestTwin;
let alice: string;
let bob: string;

beforeAll(async () => {
  twin = await startTestTwin({ approvalWindowSeconds: 10 });
  [alice, bob] = await Promise.all(['alice', 'bob'].map((u) => twin.token(u)));
}, 180_000);

afterAll(async () => {
  await twin?.close();
});

describe('approval expiry', () => {
  it('expires an undecided request, refuses a late approval with 409, and runs nothing', async () => {
    const sql = "UPDATE orders SET status = 'shipped' WHERE id = 4242";
    const res = await twin.api('POST', '/v1/targets/demo/sql', { token: alice, body: { sql } });
    expect(res.status).toBe(202);
    const id = res.body.requestId as string;
    expect(Date.parse(res.body.expiresAt) - Date.now()).toBeLessThanOrEqual(10_000);

    const expired = await waitFor(
      async () => {
        const r = (await twin.api('GET', `/v1/requests/${id}`, { token: alice })).body;
        return r.status === 'expired' ? r : undefined;
      },
      60_000,
      500,
    );
    expect(expired).toMatchObject({ status: 'expired', decidedBy: 'warden' });
    expect(expired.decidedAt).toBeTruthy();

    const late = await twin.api('POST', `/v1/approvals/${id}/decision`, {
      token: bob,
      body: { decision: 'approve' },
    });
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('expired');
    expect(late.body.error.message).toMatch(/^expired at /);

    const execution = await waitFor(async () => {
      const e = (await twin.stepFunctions.runner()).list().find((x) => x.name === id);
      return e && e.status !== 'RUNNING' ? e : undefined;
    }, 10_000);
    expect(execution.status).toBe('SUCCEEDED');
    expect(execution.history.some((h) => h.state === 'Record expired')).toBe(true);
    expect(twin.statementLog.filter((s) => submittedSql(s.sql) === sql)).toHaveLength(0);
    expect((await twin.api('GET', '/v1/approvals', { token: bob })).body.approvals).toEqual([]);
  }, 120_000);
});

/**
 * A result read with view_unmasked is raw by design, and a function of a sensitive column (here
 * reverse(ssn)) is something no detector recognises. So such a result is shown only to its
 * requester and to others allowed view_unmasked: an auditor without it sees the result's shape,
 * never its values, in `GET /v1/requests/{id}` (waiting or not) and in the session trail.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTwin, type TestTwin } from '../support/twin.js';

let twin: TestTwin;
let bob: string;
let dave: string;
let reversed: string[];
let requestId: string;
let sessionId: string;

beforeAll(async () => {
  twin = await startTestTwin();
  bob = await twin.token('bob');
  dave = await twin.token('dave');
  const raw = await twin.db.query<{ ssn: string }>('SELECT ssn FROM customers ORDER BY id LIMIT 3');
  reversed = raw.rows.map((r) => [...r.ssn].reverse().join(''));
  const res = await twin.api('POST', '/v1/targets/demo/sql', {
    token: bob,
    body: { sql: 'SELECT id, reverse(ssn) AS r FROM customers ORDER BY id LIMIT 3' },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  requestId = res.body.requestId as string;
  // bob (dba, view_unmasked) gets his raw answer: that is what view_unmasked is for.
  expect(JSON.stringify(res.body)).toContain(reversed[0]);
  const own = await twin.api('GET', `/v1/requests/${requestId}`, { token: bob });
  sessionId = own.body.sessionId as string;
  expect(JSON.stringify(own.body)).toContain(reversed[0]);
}, 300_000);

afterAll(async () => {
  await twin?.close();
});

describe('results read with view_unmasked', () => {
  it('are withheld from an auditor without view_unmasked in GET /v1/requests/{id}, with or without ?wait', async () => {
    for (const path of [`/v1/requests/${requestId}`, `/v1/requests/${requestId}?wait=1`]) {
      const res = await twin.api('GET', path, { token: dave });
      expect(res.status).toBe(200);
      const text = JSON.stringify(res.body);
      for (const r of reversed) expect(text).not.toContain(r);
      expect(res.body.result).toMatchObject({ rows: [], withheld: expect.stringContaining('view_unmasked') });
      expect(res.body.rowCount).toBe(3);
    }
  });

  it('stay out of the session trail auditors read, whose chain still verifies', async () => {
    const res = await twin.api('GET', `/v1/sessions/${sessionId}`, { token: dave });
    expect(res.status).toBe(200);
    const text = JSON.stringify(res.body);
    for (const r of reversed) expect(text).not.toContain(r);
    const result = (res.body.events as { type: string; detail?: Record<string, unknown> }[]).find(
      (e) => e.type === 'result',
    );
    expect(result?.detail).toMatchObject({ rows: [], withheld: expect.stringContaining('view_unmasked') });
    const verified = await twin.api('GET', `/v1/sessions/${sessionId}/verify`, { token: dave });
    expect(verified.body).toMatchObject({ ok: true, problems: [] });
  });
});

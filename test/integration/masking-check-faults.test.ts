/**
 * The database masking guard under faults, on the local twin: when the Data API fails the guard's
 * own probes (throttled, a 5xx), a masked principal's request is refused as 503
 * `masking_check_unavailable` with nothing run, the failure is not kept (the next request checks
 * again), and unmasked principals are unaffected. The faults are injected by the twin's fault layer
 * in front of the Data API endpoints (lib/local/faults.ts), so the SDK and the guard see exactly
 * what the service would send.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submittedSql } from '../../lib/local/invariants.js';
import type { FaultKind } from '../../lib/local/faults.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';

let twin: TestTwin;
let alice: string;
let erin: string;
let seq = 0;

/** Only the guard's probes carry the check's mark (CHECK_MARK in lambdas/core/masking/db-profiles.ts). */
const probeFaults = (fault: FaultKind) => ({
  rules: [
    {
      service: 'rds-data' as const,
      operation: 'ExecuteStatement',
      bodyIncludes: 'warden db check',
      fault,
      probability: 1,
    },
  ],
});
const failProbes = (fault: FaultKind) => twin.faults!.configure(probeFaults(fault));

beforeAll(async () => {
  // Failing from the start: the check the API function starts during its cold start meets the fault
  // (and, as nothing was learnt, is not kept), so the first masked request checks again and meets it.
  twin = await startTestTwin({ faults: probeFaults('error') });
  [alice, erin] = await Promise.all([twin.token('alice'), twin.token('erin')]);
}, 180_000);

afterAll(async () => {
  await twin?.close();
});

/** A statement no other request sends (so the statement log maps back to it), of customer `id`. */
function uniqueRead(id = 1): string {
  seq += 1;
  return `SELECT id, email, 'mcf-${seq}-${Date.now()}' AS tag FROM customers WHERE id = ${id}`;
}
const sql = (token: string, text: string) =>
  twin.api('POST', '/v1/targets/demo/sql', { token, body: { sql: text } });
const ran = (text: string) => twin.statementLog.filter((s) => submittedSql(s.sql) === text);

describe('the database masking check when the Data API fails its probes', () => {
  it('refuses a masked read as 503 masking_check_unavailable, runs nothing, and records the refusal', async () => {
    const text = uniqueRead();
    const res = await sql(alice, text);
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('masking_check_unavailable');
    expect(JSON.stringify(res.body)).not.toMatch(/@/);
    expect(ran(text)).toHaveLength(0);
    const injected = twin.faults!.stats().injected;
    expect(injected['rds-data ExecuteStatement error']).toBeGreaterThan(0);
    const id = res.body.requestId ?? res.body.error.requestId;
    expect(typeof id).toBe('string');
    const record = await twin.api('GET', `/v1/requests/${id}`, { token: alice });
    expect(record.status).toBe(200);
    expect(record.body.status).not.toBe('executed');
    expect(JSON.stringify(record.body)).toContain('masking_check_unavailable');
  });

  it('keeps refusing, never as 403 and never by running it, while the probes keep failing (throttled too)', async () => {
    for (const fault of ['error', 'throttle', 'error'] as const) {
      failProbes(fault);
      const text = uniqueRead();
      const res = await sql(alice, text);
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('masking_check_unavailable');
      expect(ran(text)).toHaveLength(0);
    }
  });

  it('leaves unmasked principals unaffected while the check cannot run', async () => {
    failProbes('error');
    const text = uniqueRead();
    const res = await sql(erin, text);
    expect(res.status).toBe(200);
    expect(res.body.result.rows[0].email).toMatch(/@/);
    expect(ran(text)).toHaveLength(1);
  });

  it('checks again on the next masked request once the Data API answers, and then masks', async () => {
    twin.faults!.configure({ rules: [] });
    const raw = await sql(erin, uniqueRead(7));
    expect(raw.status).toBe(200);
    const email = raw.body.result.rows[0].email as string;
    expect(email).toMatch(/@/);
    const text = uniqueRead(7);
    const res = await sql(alice, text);
    expect(res.status).toBe(200);
    expect(ran(text)).toHaveLength(1);
    expect(res.body.result.rows).toHaveLength(1);
    expect(res.body.result.rows[0].email).not.toBe(email);
    expect(JSON.stringify(res.body)).not.toContain(email);
  });
});

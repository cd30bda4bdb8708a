/**
 * An instance that is up finds a privilege granted by hand after its database masking check passed:
 * with DB_MASKING_RECHECK_SECONDS=1 the pass is checked again beside the requests it serves, and
 * once the re-check finds the masked reader able to read a base table, masked principals are refused
 * (403, nothing runs) without a restart, while unmasked ones are served. Meanwhile, as an agent that
 * knows of the grant, a masked principal gets no raw value by naming the base table.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTwin, type TestTwin } from '../support/twin.js';

let twin: TestTwin;
const saved = process.env.DB_MASKING_RECHECK_SECONDS;

beforeAll(async () => {
  // Read by the handlers when they initialise (each test file runs in a process of its own).
  process.env.DB_MASKING_RECHECK_SECONDS = '1';
  twin = await startTestTwin();
}, 120_000);

afterAll(async () => {
  if (saved === undefined) delete process.env.DB_MASKING_RECHECK_SECONDS;
  else process.env.DB_MASKING_RECHECK_SECONDS = saved;
  await twin?.close();
});

const SSN = /\b\d{3}-\d{2}-\d{4}\b/;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a privilege granted after the masking check passed', () => {
  it('is found by the running instance, which then refuses masked principals', async () => {
    const carol = await twin.token('carol');
    const read = (sql: string) => twin.api('POST', '/v1/targets/demo/sql', { token: carol, body: { sql } });

    const before = await read('SELECT id, ssn FROM customers ORDER BY id LIMIT 2');
    expect(before.status).toBe(200);
    expect(JSON.stringify(before.body.result.rows)).not.toMatch(SSN);

    // The mistake an administrator could make by hand, with this instance up.
    await twin.db.exec('GRANT SELECT ON public.customers TO warden_masked_ro');
    try {
      const answers: { status: number; body: any }[] = [];
      let refused: { status: number; body: any } | undefined;
      for (let i = 0; i < 60 && !refused; i++) {
        // A prompt-injected agent that has heard of the grant names the base table outright…
        const raw = await read('SELECT id, ssn FROM public.customers ORDER BY id LIMIT 2');
        answers.push(raw);
        // …and asks the usual way.
        const text = `SELECT id, ssn FROM customers WHERE id > ${i} ORDER BY id LIMIT 2`;
        const usual = await read(text);
        answers.push(usual);
        if (usual.status === 403) {
          refused = usual;
          // Refused before it ran.
          expect(twin.statementLog.filter((s) => s.sql.includes(text))).toHaveLength(0);
        } else await sleep(250);
      }
      expect(refused?.body.error.code).toBe('masking_not_enforced');
      expect(refused?.body.error.message).toMatch(/warden db setup demo --apply/);
      // Nothing raw at any point: the base table is refused by name, the views mask.
      for (const a of answers) expect(JSON.stringify(a.body)).not.toMatch(SSN);
      expect(answers.some((a) => a.status === 200)).toBe(true);

      // Unmasked principals are unaffected.
      const bob = await twin.api('POST', '/v1/targets/demo/sql', {
        token: await twin.token('bob'),
        body: { sql: 'SELECT id, ssn FROM customers ORDER BY id LIMIT 1' },
      });
      expect(bob.status).toBe(200);
      expect(bob.body.result.rows[0].ssn).toMatch(SSN);
    } finally {
      await twin.db.exec('REVOKE SELECT ON public.customers FROM warden_masked_ro');
    }
  }, 60_000);
});

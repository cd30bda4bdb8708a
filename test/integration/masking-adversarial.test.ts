/**
 * Issue 12's adversarial masking suite against the twin (PGlite behind the Data API twin), as
 * carol over HTTP. The cases live in test/support/masking-attacks.ts, shared with the run
 * against a real PostgreSQL server (masking-adversarial-postgres.test.ts).
 */
import { afterAll, beforeAll } from 'vitest';
import { DEMO_TARGET } from '../../lib/local/demo-data.js';
import { maskingAdversarialSuite } from '../support/masking-attacks.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';

let twin: TestTwin;

beforeAll(async () => {
  twin = await startTestTwin();
}, 120_000);

afterAll(async () => {
  await twin?.close();
});

maskingAdversarialSuite('twin (PGlite)', () => ({ twin, adminSecret: DEMO_TARGET.adminSecret }));

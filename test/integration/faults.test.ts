/**
 * Warden under partial failure, on the local twin with its fault-injection layer
 * (lib/local/faults.ts): throttled, failing, silent or lost AWS answers, and API invocations killed
 * mid-request. After each scenario the database's own statement log is compared with the audit
 * store by the same checker `npm run load` uses (lib/local/invariants.ts).
 */
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localDynamoClient } from '../../lib/local/dynamodb.js';
import { captureLogs, demoSecrets, type LogCapture, submittedSql } from '../../lib/local/invariants.js';
import type { FaultConfig } from '../../lib/local/faults.js';
import { DEFAULT_FAULTS, checkTwinInvariants, runLoad, settle, type LoadTokens } from '../../bench/load.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';

let twin: TestTwin;
let logs: LogCapture;
let tokens: LoadTokens;
let seq = 0;

beforeAll(async () => {
  // Everything the handlers print is kept for the leak scan (and off the test output).
  logs = captureLogs({ passThrough: false });
  twin = await startTestTwin({ faults: { rules: [] } });
  const [alice, carol, bob, erin, agent] = await Promise.all(
    ['alice', 'carol', 'bob', 'erin', 'agent-demo'].map((u) => twin.token(u)),
  );
  tokens = { alice, carol, bob, erin, agent };
}, 180_000);

afterAll(async () => {
  await twin?.close();
  logs?.restore();
});

function faults(config: FaultConfig): void {
  twin.faults!.configure(config);
}

/** A statement no other test sends, so the statement log maps back to this one request. */
function uniqueRead(): string {
  seq += 1;
  return `SELECT id, name, 'faults-${seq}-${Date.now()}' AS tag FROM customers WHERE id = ${seq}`;
}

const sql = (token: string, text: string) =>
  twin.api('POST', '/v1/targets/demo/sql', { token, body: { sql: text } });
const ran = (text: string) => twin.statementLog.filter((s) => submittedSql(s.sql) === text);

async function record(id: string): Promise<Record<string, any>> {
  const res = await twin.api('GET', `/v1/requests/${id}`, { token: tokens.alice });
  expect(res.status).toBe(200);
  return res.body;
}

async function expectInvariantsHold(): Promise<void> {
  await settle(twin, 20_000);
  const results = await checkTwinInvariants(twin, logs.lines, Object.values(tokens));
  for (const r of results) expect(r.violations, r.name).toEqual([]);
}

describe('faults on the audit write (the record and its trail events, one transaction)', () => {
  it.each([
    ['throttled (ProvisionedThroughputExceededException)', 'throttle' as const],
    ['failing with a 500', 'error' as const],
    ['timing out (socket dropped)', 'timeout' as const],
  ])('answers 503 and runs nothing when the first write is %s', async (_label, fault) => {
    faults({
      rules: [
        {
          service: 'dynamodb',
          operation: 'TransactWriteItems',
          table: 'Requests',
          bodyIncludes: 'attribute_not_exists(#id)',
          fault,
          probability: 1,
          holdMs: 200,
        },
      ],
    });
    const before = twin.statementLog.length;
    const text = uniqueRead();
    const res = await sql(tokens.alice, text);
    faults({ rules: [] });
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('service_unavailable');
    expect(twin.statementLog.length).toBe(before);
    expect(ran(text)).toHaveLength(0);
    const injected = Object.entries(twin.faults!.stats().injected);
    expect(injected.some(([k, n]) => k === `dynamodb TransactWriteItems ${fault}` && n > 0)).toBe(true);
  });

  it('leaves neither the record nor any trail event when the combined first write fails', async () => {
    faults({
      rules: [
        {
          service: 'dynamodb',
          operation: 'TransactWriteItems',
          bodyIncludes: 'attribute_not_exists(#id)',
          fault: 'error',
          probability: 1,
        },
      ],
    });
    const text = uniqueRead();
    const res = await sql(tokens.alice, text);
    faults({ rules: [] });
    expect(res.status).toBe(503);
    expect(ran(text)).toHaveLength(0);
    const list = await twin.api('GET', '/v1/requests', { token: tokens.alice });
    const mine = (list.body.requests as { requestId: string }[]).map((r) => r.requestId);
    const stored = await Promise.all(mine.map((id) => record(id)));
    expect(stored.some((r) => r.operation.sql === text)).toBe(false);
    const audit = await DynamoDBDocumentClient.from(localDynamoClient(twin.dynamoEndpoint)).send(
      new ScanCommand({ TableName: twin.tableNames.Audit }),
    );
    const tag = text.match(/'(faults-[^']+)'/)![1];
    expect(audit.Items!.some((e) => JSON.stringify(e).includes(tag))).toBe(false);
    await expectInvariantsHold();
  });

  it('runs the statement once when the answer to the first write is lost (the retry is idempotent)', async () => {
    faults({
      rules: [
        {
          service: 'dynamodb',
          operation: 'TransactWriteItems',
          bodyIncludes: 'attribute_not_exists(#id)',
          fault: 'lost-response',
          probability: 1,
          maxCount: 1,
        },
      ],
    });
    const text = uniqueRead();
    const res = await sql(tokens.alice, text);
    faults({ rules: [] });
    // The SDK retries with the same ClientRequestToken: DynamoDB answers the first write's result
    // instead of writing twice (or failing on the record's own condition).
    expect(res.status).toBe(200);
    expect(ran(text)).toHaveLength(1);
    const stored = await record(res.body.requestId);
    expect(stored.status).toBe('executed');
    await expectInvariantsHold();
  });
});

describe('faults on the Data API', () => {
  it('records a statement that timed out before reaching the database as failed, never executed', async () => {
    faults({
      rules: [
        { service: 'rds-data', operation: 'ExecuteStatement', fault: 'timeout', holdMs: 300, probability: 1 },
      ],
    });
    const text = uniqueRead();
    const res = await sql(tokens.alice, text);
    faults({ rules: [] });
    expect(res.status).toBeGreaterThanOrEqual(500);
    expect(ran(text)).toHaveLength(0);
    const stored = await record(res.body.error.requestId);
    expect(stored.status).toBe('failed');
    expect(stored.result).toBeUndefined();
  });

  it('answers 504 for the service StatementTimeoutException and records the request failed', async () => {
    faults({
      rules: [
        {
          service: 'rds-data',
          fault: 'error',
          errorType: 'StatementTimeoutException',
          probability: 1,
        },
      ],
    });
    const text = uniqueRead();
    const res = await sql(tokens.alice, text);
    faults({ rules: [] });
    expect(res.status).toBe(504);
    expect(res.body.error.code).toBe('statement_timeout');
    expect((await record(res.body.error.requestId)).status).toBe('failed');
  });

  it('records a statement whose answer was lost as failed, and never runs it a second time', async () => {
    faults({
      rules: [{ service: 'rds-data', operation: 'ExecuteStatement', fault: 'lost-response', probability: 1 }],
    });
    const text = uniqueRead();
    const res = await sql(tokens.alice, text);
    faults({ rules: [] });
    expect(res.status).toBeGreaterThanOrEqual(500);
    // The database did run it, exactly once; the audit record says it failed rather than executed.
    expect(ran(text)).toHaveLength(1);
    expect((await record(res.body.error.requestId)).status).toBe('failed');
    await expectInvariantsHold();
  });
});

describe('faults on the outcome write', () => {
  it('keeps the response and the record consistent when the executed-write is throttled and retried', async () => {
    faults({
      rules: [
        {
          service: 'dynamodb',
          operation: 'TransactWriteItems',
          table: 'Requests',
          bodyIncludes: '"S":"executed"',
          fault: 'throttle',
          probability: 1,
          maxCount: 2,
        },
      ],
    });
    const text = uniqueRead();
    const res = await sql(tokens.alice, text);
    faults({ rules: [] });
    expect(res.status).toBe(200);
    expect(ran(text)).toHaveLength(1);
    const stored = await record(res.body.requestId);
    expect(stored.status).toBe('executed');
    expect(stored.rowCount).toBe(res.body.result.rowCount);
  });

  it('never loses the record when every outcome write is throttled: it stays running, the statement ran once', async () => {
    faults({
      rules: [
        {
          service: 'dynamodb',
          operation: 'TransactWriteItems',
          table: 'Requests',
          bodyIncludes: '"S":"executed"',
          fault: 'throttle',
          probability: 1,
        },
      ],
    });
    const text = uniqueRead();
    const res = await sql(tokens.alice, text);
    faults({ rules: [] });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('executed');
    expect(ran(text)).toHaveLength(1);
    const stored = await record(res.body.requestId);
    expect(stored.status).toBe('running');
    expect(stored.operation.sql).toBe(text);
    await expectInvariantsHold();
  });
});

describe('an API invocation killed mid-request', () => {
  it('leaves every statement that ran recorded and none run twice', async () => {
    faults({ seed: 7, rules: [], kill: { probability: 1, maxDelayMs: 120, paths: ['/v1/targets/'] } });
    const texts = Array.from({ length: 6 }, () => uniqueRead());
    const answers = await Promise.all(
      texts.map((text) =>
        sql(tokens.alice, text)
          .then((r) => r.status)
          .catch(() => 'network' as const),
      ),
    );
    faults({ rules: [] });
    expect(twin.faults!.stats().killed).toBeGreaterThan(0);
    expect(answers.filter((a) => a === 'network').length).toBe(twin.faults!.stats().killed);
    for (const text of texts) expect(ran(text).length).toBeLessThanOrEqual(1);
    await expectInvariantsHold();
  });
});

describe('a short mixed burst with faults everywhere', () => {
  it('holds every invariant after 8 clients × 10 requests', async () => {
    faults({ ...DEFAULT_FAULTS, seed: 42 });
    const report = await runLoad(twin.url, tokens, {
      clients: 8,
      phases: [8],
      maxRequests: 80,
      durationMs: 60_000,
      customers: 300,
      seed: 42,
      forbidden: await demoSecrets(twin.db),
    });
    faults({ rules: [] });
    expect(Object.values(report.sent).reduce((a, b) => a + b, 0)).toBe(80);
    expect(report.unexpected).toEqual([]);
    await settle(twin, 20_000);
    const results = await checkTwinInvariants(twin, logs.lines, report.tokensUsed, report.answeredExplains);
    for (const r of results) expect(r.violations, r.name).toEqual([]);
    expect(results[0].checked).toBeGreaterThan(0);
  });
});

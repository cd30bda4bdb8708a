/**
 * Issue 13 item 14 on the twin: allowed writes and allowed AWS calls run in the execute function,
 * reached by Lambda Invoke as on AWS, and the execute function checks the request itself. The
 * attacker is a compromised API runtime: it can write request records and invoke the execute
 * function with whatever it likes. It still cannot run a write the record, the caller's token and
 * the policy do not all allow, and every refusal is recorded.
 */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import {
  BatchExecuteStatementCommand,
  BeginTransactionCommand,
  CommitTransactionCommand,
  ExecuteStatementCommand,
  RDSDataClient,
  RollbackTransactionCommand,
} from '@aws-sdk/client-rds-data';
import { DEMO_TARGET } from '../../lib/local/demo-data.js';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoRequestStore } from '../../lambdas/adapters/request-store.js';
import { newRequestId } from '../../lambdas/core/requests.js';
import type { RequestRecord } from '../../lambdas/core/types.js';
import { localDynamoClient } from '../../lib/local/dynamodb.js';
import { EXECUTE_FUNCTION } from '../../lib/local/twin.js';
import { submittedSql } from '../../lib/local/invariants.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';
import { waitFor } from '../support/wait.js';

// bob (dba) may write orders directly; engineers still need approval (policies/demo.cedar).
const POLICY = `
@id("test-dba-writes-orders")
permit (principal in Group::"dba", action == Action::"sql:write", resource == Target::"demo")
when { context has sql && context.sql.tables.containsAll(["public.orders"]) };
`;

let twin: TestTwin;
let store: DynamoRequestStore;
let lambda: LambdaClient;
let counter = 0;

beforeAll(async () => {
  twin = await startTestTwin({ extraPolicies: [{ source: 'split.cedar', text: POLICY }] });
  store = new DynamoRequestStore({
    client: DynamoDBDocumentClient.from(localDynamoClient(twin.dynamoEndpoint)),
    tableName: twin.tableNames.Requests,
  });
  lambda = new LambdaClient({
    endpoint: twin.lambda.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local-twin', secretAccessKey: 'local-twin' },
    maxAttempts: 1,
  });
}, 180_000);

afterAll(async () => {
  await twin?.close();
});

const ran = (text: string) => twin.statementLog.filter((s) => submittedSql(s.sql) === text);
const nextWrite = () => `UPDATE orders SET status = 'shipped' WHERE id = ${++counter}`;
/** A Data API client as the twin's runtimes hold one, for `endpoint` (no retries). */
const dataApiClient = (endpoint: string) =>
  new RDSDataClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local-twin', secretAccessKey: 'local-twin' },
    maxAttempts: 1,
  });

/** What a compromised API runtime can do: invoke the execute function with anything. */
async function invokeDirect(payload: Record<string, unknown>): Promise<any> {
  const out = await lambda.send(
    new InvokeCommand({
      FunctionName: EXECUTE_FUNCTION,
      Payload: new TextEncoder().encode(JSON.stringify({ mode: 'direct', ...payload })),
    }),
  );
  expect(out.FunctionError).toBeUndefined();
  return JSON.parse(new TextDecoder().decode(out.Payload));
}

async function trailOf(requestId: string, token: string): Promise<any[]> {
  const r = await twin.api('GET', `/v1/requests/${requestId}`, { token });
  expect(r.status).toBe(200);
  const dave = await twin.token('dave');
  const events = await twin.api('GET', `/v1/sessions/${encodeURIComponent(r.body.sessionId)}`, {
    token: dave,
  });
  expect(events.status).toBe(200);
  return (events.body.events as any[]).filter((e) => e.requestId === requestId);
}

describe('allowed writes run in the execute function', () => {
  it('runs an allowed write there, as the write user, recorded before and after', async () => {
    const bob = await twin.token('bob');
    const sql = nextWrite();
    const before = twin.lambda.invocations.length;
    const r = await twin.api('POST', '/v1/targets/demo/sql', { token: bob, body: { sql } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.status).toBe('executed');
    expect(r.body.result.rowCount).toBe(1);
    expect(twin.lambda.invocations.slice(before)).toEqual([
      expect.objectContaining({ functionName: EXECUTE_FUNCTION, ok: true }),
    ]);
    expect(ran(sql).map((s) => s.role)).toEqual(['warden_rw']);
    const types = (await trailOf(r.body.requestId, bob)).map((e) => e.type);
    expect(types.slice(0, 3)).toEqual(['request_received', 'decided', 'execution_started']);
    expect(types).toContain('execution_finished');
  });

  it('runs allowed reads in the API function: no invocation', async () => {
    const bob = await twin.token('bob');
    const before = twin.lambda.invocations.length;
    const r = await twin.api('POST', '/v1/targets/demo/sql', {
      token: bob,
      body: { sql: 'SELECT id FROM orders ORDER BY id LIMIT 1' },
    });
    expect(r.status).toBe(200);
    expect(twin.lambda.invocations.length).toBe(before);
  });

  it('runs an allowed AWS call there too (the API function assumes no role)', async () => {
    const alice = await twin.token('alice');
    const before = twin.lambda.invocations.length;
    const sessions = twin.aws.registry.all().length;
    const r = await twin.api('POST', '/v1/targets/demo-aws/aws', {
      token: alice,
      body: {
        service: 'dynamodb',
        action: 'GetItem',
        input: { TableName: 'demo-inventory', Key: { sku: { S: 'WID-001' } } },
      },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(twin.lambda.invocations.slice(before).map((i) => i.functionName)).toEqual([EXECUTE_FUNCTION]);
    expect(twin.aws.registry.all().length).toBe(sessions + 1);
  });
});

describe('a compromised API runtime cannot run a write past the execute function', () => {
  it('is refused a request waiting for approval, and the refusal is recorded', async () => {
    const alice = await twin.token('alice');
    const sql = nextWrite();
    const pending = await twin.api('POST', '/v1/targets/demo/sql', { token: alice, body: { sql } });
    expect(pending.status).toBe(202);
    const answer = await invokeDirect({
      requestId: pending.body.requestId,
      token: alice,
      exact: { operation: { kind: 'sql', sql } },
    });
    expect(answer).toMatchObject({ ok: false, error: { statusCode: 403, code: 'execution_refused' } });
    expect(ran(sql)).toEqual([]);
    expect((await store.get(pending.body.requestId))?.status).toBe('pending_approval');
    const refusal = (await trailOf(pending.body.requestId, alice)).find(
      (e) => e.type === 'error' && e.detail?.code === 'execution_refused',
    );
    expect(refusal).toBeDefined();
  });

  it('is refused a denied request', async () => {
    const carol = await twin.token('carol');
    const sql = nextWrite();
    const denied = await twin.api('POST', '/v1/targets/demo/sql', { token: carol, body: { sql } });
    expect(denied.status).toBe(403);
    const answer = await invokeDirect({
      requestId: denied.body.error?.requestId ?? denied.body.requestId,
      token: carol,
      exact: { operation: { kind: 'sql', sql } },
    });
    expect(answer).toMatchObject({ ok: false, error: { code: 'execution_refused' } });
    expect(ran(sql)).toEqual([]);
  });

  /** A record the attacker writes itself: "allowed", running, never taken, for `who`. */
  async function forged(like: RequestRecord, sql: string): Promise<RequestRecord> {
    const record: RequestRecord = {
      ...like,
      id: newRequestId(),
      status: 'running',
      operation: { kind: 'sql', sql },
      decision: { ...like.decision, outcome: 'allow', action: 'sql:write' },
      version: 1,
    };
    delete (record as { sealed?: unknown }).sealed;
    delete (record as { expiresAt?: unknown }).expiresAt;
    await store.create(record);
    return record;
  }

  it('cannot run a forged "allowed" record: the policy, decided again for the verified caller, says no', async () => {
    const alice = await twin.token('alice');
    const sql = nextWrite();
    const pending = await twin.api('POST', '/v1/targets/demo/sql', { token: alice, body: { sql } });
    const record = await forged((await store.get(pending.body.requestId))!, sql);
    const answer = await invokeDirect({
      requestId: record.id,
      token: alice,
      exact: { operation: { kind: 'sql', sql } },
    });
    expect(answer).toMatchObject({ ok: false, error: { code: 'execution_refused' } });
    expect(answer.error.message).toMatch(/policy does not allow sql:write/);
    expect(ran(sql)).toEqual([]);
    // It can never run later either.
    expect((await store.get(record.id))?.status).toBe('failed');
  });

  it('cannot run a record as someone whose token it does not hand over, nor with a bad token', async () => {
    const alice = await twin.token('alice');
    const bob = await twin.token('bob');
    const sql = nextWrite();
    const pending = await twin.api('POST', '/v1/targets/demo/sql', { token: alice, body: { sql } });
    const like = (await store.get(pending.body.requestId))!;
    // Recorded as alice, handed bob's token (who may write): refused.
    const asAlice = await forged(like, sql);
    const wrongPerson = await invokeDirect({
      requestId: asAlice.id,
      token: bob,
      exact: { operation: { kind: 'sql', sql } },
    });
    expect(wrongPerson.error.message).toMatch(/another principal/);
    const asAlice2 = await forged(like, sql);
    const badToken = await invokeDirect({
      requestId: asAlice2.id,
      token: `${alice.slice(0, -4)}AAAA`,
      exact: { operation: { kind: 'sql', sql } },
    });
    expect(badToken.error.message).toMatch(/token did not verify/);
    expect(ran(sql)).toEqual([]);
  });

  it('cannot run something other than what the record shows, nor run a request twice', async () => {
    const bob = await twin.token('bob');
    const sql = nextWrite();
    const done = await twin.api('POST', '/v1/targets/demo/sql', { token: bob, body: { sql } });
    expect(done.status).toBe(200);
    // The same id again, even with the same statement: it was taken once.
    const again = await invokeDirect({
      requestId: done.body.requestId,
      token: bob,
      exact: { operation: { kind: 'sql', sql } },
    });
    expect(again).toMatchObject({ ok: false, error: { code: 'execution_refused' } });
    expect(ran(sql)).toHaveLength(1);

    // A record showing one write, handed another (both of which bob may run).
    const shown = nextWrite();
    const other = "DELETE FROM orders WHERE id = -1 AND status = 'x'";
    const record = await forged((await store.get(done.body.requestId))!, shown);
    const swapped = await invokeDirect({
      requestId: record.id,
      token: bob,
      exact: { operation: { kind: 'sql', sql: other } },
    });
    expect(swapped.error.message).toMatch(/not the one the request recorded/);
    expect(ran(other)).toEqual([]);
    await waitFor(async () => (await store.get(record.id))?.status === 'failed');
  });

  it('cannot reach the write credentials: its Data API endpoint refuses the write secrets, as its IAM policy does', async () => {
    const client = dataApiClient(twin.secretGate.url);
    const call = (secretArn: string, sql: string) =>
      client.send(
        new ExecuteStatementCommand({
          resourceArn: DEMO_TARGET.resourceArn,
          secretArn,
          database: DEMO_TARGET.database,
          sql,
        }),
      );
    const sql = nextWrite();
    for (const secret of [DEMO_TARGET.secrets.write, DEMO_TARGET.secrets.maskedWrite]) {
      await expect(call(secret, sql)).rejects.toMatchObject({ name: 'ForbiddenException' });
    }
    expect(ran(sql)).toEqual([]);
    expect(twin.secretGate.refused).toContain(DEMO_TARGET.secrets.write);
    // The readers' secrets pass: the API function's reads run through this endpoint.
    await expect(call(DEMO_TARGET.secrets.read, 'SELECT 1 AS one')).resolves.toMatchObject({
      records: [[{ longValue: 1 }]],
    });
  });

  it('refuses a write secret on every Data API operation of its endpoint, and a call naming no secret, before anything runs', async () => {
    const client = dataApiClient(twin.secretGate.url);
    const target = { resourceArn: DEMO_TARGET.resourceArn, database: DEMO_TARGET.database };
    const sql = nextWrite();
    const before = twin.secretGate.refused.length;
    await expect(
      client.send(
        new BatchExecuteStatementCommand({
          ...target,
          secretArn: DEMO_TARGET.secrets.write,
          sql,
          parameterSets: [[{ name: 'x', value: { longValue: 1 } }]],
        }),
      ),
    ).rejects.toMatchObject({ name: 'ForbiddenException' });
    await expect(
      client.send(new BeginTransactionCommand({ ...target, secretArn: DEMO_TARGET.secrets.maskedWrite })),
    ).rejects.toMatchObject({ name: 'ForbiddenException' });
    // Raw bodies an SDK would not send: no secret, a secret that is not a string.
    for (const body of [
      { ...target, sql },
      { ...target, sql, secretArn: [DEMO_TARGET.secrets.read] },
    ]) {
      const res = await fetch(`${twin.secretGate.url}/Execute`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(res.status).toBe(403);
      expect(res.headers.get('x-amzn-errortype')).toBe('ForbiddenException');
    }
    expect(ran(sql)).toEqual([]);
    expect(twin.secretGate.refused.slice(before)).toEqual([
      DEMO_TARGET.secrets.write,
      DEMO_TARGET.secrets.maskedWrite,
      '',
      '',
    ]);
  });

  it('cannot join a write transaction opened with the write secret by naming a reader secret, nor end one', async () => {
    // The execute function's endpoint (unrestricted) holds a write transaction open...
    const executeSide = dataApiClient(twin.dataApiUrl);
    const apiSide = dataApiClient(twin.secretGate.url);
    const target = { resourceArn: DEMO_TARGET.resourceArn, database: DEMO_TARGET.database };
    const write = { ...target, secretArn: DEMO_TARGET.secrets.write };
    const { transactionId } = await executeSide.send(new BeginTransactionCommand(write));
    expect(transactionId).toBeTruthy();
    try {
      const sql = nextWrite();
      // ...the API runtime's endpoint, given its id: with a reader's secret it is another login.
      for (const secretArn of [DEMO_TARGET.secrets.read, DEMO_TARGET.secrets.maskedRead]) {
        await expect(
          apiSide.send(new ExecuteStatementCommand({ ...target, secretArn, sql, transactionId })),
        ).rejects.toMatchObject({
          name: 'BadRequestException',
          message: expect.stringMatching(/another secret/),
        });
      }
      // With the write secret it is refused before anything is looked at.
      const before = twin.secretGate.refused.length;
      await expect(
        apiSide.send(new ExecuteStatementCommand({ ...write, sql, transactionId })),
      ).rejects.toMatchObject({ name: 'ForbiddenException' });
      await expect(
        apiSide.send(new CommitTransactionCommand({ ...write, transactionId })),
      ).rejects.toMatchObject({
        name: 'ForbiddenException',
      });
      await expect(
        apiSide.send(new RollbackTransactionCommand({ ...write, transactionId })),
      ).rejects.toMatchObject({
        name: 'ForbiddenException',
      });
      expect(twin.secretGate.refused.slice(before)).toEqual([
        DEMO_TARGET.secrets.write,
        DEMO_TARGET.secrets.write,
        DEMO_TARGET.secrets.write,
      ]);
      // The endpoint logs the two attempts that reached it, each refused; none ran, none under the write role.
      expect(
        ran(sql).map((e) => [e.ok, e.role, /another secret/.test((e as { error?: string }).error ?? '')]),
      ).toEqual([
        [false, 'warden_ro', true],
        [false, 'warden_masked_ro', true],
      ]);
      // The transaction is still the execute function's own, untouched: it runs there.
      await expect(
        executeSide.send(new ExecuteStatementCommand({ ...write, sql: 'SELECT 1 AS one', transactionId })),
      ).resolves.toMatchObject({ records: [[{ longValue: 1 }]] });
    } finally {
      await executeSide.send(new RollbackTransactionCommand({ ...write, transactionId: transactionId! }));
    }
  });
});

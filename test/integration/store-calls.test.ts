/**
 * The request path's store budget, counted where it is spent: every call that reaches the twin's
 * DynamoDB during one governed request. An allowed read costs two round trips (the record with its
 * first trail events before execution, the outcome with its events after); a denied or
 * approval-required request costs one, recorded the same way.
 */
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoTrailStore } from '../../lambdas/adapters/trail-store.js';
import { verifyChain } from '../../lambdas/core/trail-chain.js';
import type { StoredTrailEvent } from '../../lambdas/core/trail.js';
import { localDynamoClient, type DynamoCall } from '../../lib/local/dynamodb.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';

let twin: TestTwin;
let alice: string;

beforeAll(async () => {
  twin = await startTestTwin();
  alice = await twin.token('alice');
}, 180_000);

afterAll(async () => {
  await twin?.close();
});

/**
 * The store calls one request makes on the request path's tables (Requests, Audit, Grants). Set
 * apart: policy refreshes (a TTL cache, not per request) and the approval workflow's own handle
 * bookkeeping (Approvals), which runs in this process too and may overlap a later request.
 */
async function counted(
  send: () => Promise<{ status: number; body: any }>,
): Promise<{ status: number; body: any; calls: DynamoCall[] }> {
  const calls: DynamoCall[] = [];
  const stop = twin.onStoreCall((c) => calls.push(c));
  try {
    const res = await send();
    const path = [twin.tableNames.Requests, twin.tableNames.Audit, twin.tableNames.Grants];
    const elsewhere = calls.filter((c) => !c.tables.some((t) => path.includes(t)));
    for (const c of elsewhere) {
      expect([twin.tableNames.Policies, twin.tableNames.Approvals]).toEqual(
        expect.arrayContaining([...c.tables]),
      );
      if (c.tables.includes(twin.tableNames.Policies)) expect(c.operation).toBe('GetItem');
    }
    return { ...res, calls: calls.filter((c) => !elsewhere.includes(c)) };
  } finally {
    stop();
  }
}

const sql = (text: string, session: string) =>
  twin.api('POST', '/v1/targets/demo/sql', {
    token: alice,
    body: { sql: text },
    headers: { 'x-warden-session': session },
  });

/** The session a request was recorded in (the handler namespaces client-named sessions). */
async function sessionOf(requestId: string): Promise<string> {
  const res = await twin.api('GET', `/v1/requests/${requestId}`, { token: alice });
  expect(res.status).toBe(200);
  return res.body.sessionId as string;
}

function trailStore(): DynamoTrailStore {
  return new DynamoTrailStore({
    client: DynamoDBDocumentClient.from(localDynamoClient(twin.dynamoEndpoint)),
    tableName: twin.tableNames.Audit,
    ttlDays: 1,
  });
}

/** The session's events as stored (read with the adapter, which drops storage-only attributes). */
async function sessionEvents(sessionId: string): Promise<StoredTrailEvent[]> {
  return trailStore().events(sessionId);
}

describe('store round trips per request', () => {
  it('spends exactly two on an allowed read: one write before execution, one after', async () => {
    const session = `calls-${Date.now()}`;
    // The first request of a new session and the next one (which continues the chain) both count.
    let requestId = '';
    for (const id of [1, 2]) {
      const res = await counted(() => sql(`SELECT id, name FROM customers WHERE id = ${id}`, session));
      expect(res.status).toBe(200);
      requestId = res.body.requestId as string;
      expect(res.calls.map((c) => c.operation)).toEqual(['TransactWriteItems', 'TransactWriteItems']);
      // Each write holds the request record and its trail events together.
      for (const call of res.calls) {
        expect(call.tables).toEqual(
          expect.arrayContaining([twin.tableNames.Requests, twin.tableNames.Audit]),
        );
      }
      expect(res.calls[0].body).toContain('attribute_not_exists(#id)');
      expect(res.calls[1].body).toContain('"S":"executed"');
    }
    const events = await sessionEvents(await sessionOf(requestId));
    expect(events.map((e) => e.type)).toEqual([
      ...['request_received', 'decided', 'execution_started', 'execution_finished', 'result'],
      ...['request_received', 'decided', 'execution_started', 'execution_finished', 'result'],
    ]);
    expect(verifyChain(events).ok).toBe(true);
  });

  it('continues a session another process has written to, with one extra round trip', async () => {
    const session = `calls-shared-${Date.now()}`;
    // Another "container" appended to the session: this process's idea of its end is stale.
    const res1 = await sql('SELECT 1 AS one', session);
    expect(res1.status).toBe(200);
    const sessionId = await sessionOf(res1.body.requestId as string);
    const other = trailStore();
    await other.append(sessionId, [
      { type: 'grant_revoked', at: new Date().toISOString(), principal: 'User::"x"', principalName: 'x' },
    ]);
    const res = await counted(() => sql('SELECT 2 AS two', session));
    expect(res.status).toBe(200);
    // The first transaction is cancelled with the head as stored; the retry lands.
    expect(res.calls.map((c) => c.operation)).toEqual([
      'TransactWriteItems',
      'TransactWriteItems',
      'TransactWriteItems',
    ]);
    const events = await sessionEvents(sessionId);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
    expect(verifyChain(events).ok).toBe(true);
  });

  // Last: the approval workflow it starts keeps writing in this process after the request answers.
  it('spends one on a denied request and one on an approval-required one (plus starting the workflow)', async () => {
    const session = `calls-deny-${Date.now()}`;
    const denied = await counted(() => sql('GRANT ALL ON customers TO public', session));
    expect(denied.status).toBe(403);
    expect(denied.calls.map((c) => c.operation)).toEqual(['TransactWriteItems']);
    const pending = await counted(() => sql("UPDATE orders SET status = 'x' WHERE id = 1", session));
    expect(pending.status).toBe(202);
    // A write's policy reads the caller's grants (one query), then the pending record and its
    // events are one write; what follows is the approval workflow's own bookkeeping.
    expect(pending.calls[0]).toMatchObject({ operation: 'Query', tables: [twin.tableNames.Grants] });
    expect(pending.calls[1].operation).toBe('TransactWriteItems');
    expect(pending.calls[1].body).toContain('"S":"pending_approval"');
    const events = await sessionEvents(await sessionOf(pending.body.requestId as string));
    expect(events.map((e) => [e.type, e.outcome ?? e.status])).toEqual([
      ['request_received', 'denied'],
      ['decided', 'deny'],
      ['request_received', 'pending_approval'],
      ['decided', 'approval_required'],
      ...events.slice(4).map((e) => [e.type, e.outcome ?? e.status]),
    ]);
    expect(verifyChain(events).ok).toBe(true);
  });
});

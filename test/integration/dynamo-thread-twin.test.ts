/**
 * The twin with its DynamoDB in a worker thread (`dynamo: 'thread'`, WARDEN_TWIN_DYNAMO=thread), end
 * to end: a governed read and an approval-required write are served and recorded through the
 * thread, with store-call counting still exact (each call seen before it is answered).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DynamoCall } from '../../lib/local/dynamodb.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';

let twin: TestTwin;
beforeAll(async () => {
  twin = await startTestTwin({ dynamo: 'thread', upstreamMcp: false });
});
afterAll(async () => {
  await twin?.close();
});

describe('the twin with DynamoDB in its own thread', () => {
  it('serves a governed read with exactly its two store calls, seen before the answer', async () => {
    expect(twin.dynamoMode).toBe('thread');
    const token = await twin.token('alice');
    const calls: DynamoCall[] = [];
    const stop = twin.onStoreCall((c) => calls.push(c));
    const res = await twin.api('POST', '/v1/targets/demo/sql', {
      token,
      body: { sql: 'SELECT id FROM customers WHERE id = 1' },
    });
    // What the listener had when the answer arrived (no await in between): the thread's calls
    // must already be here, not still in a message on its way.
    const seenAtAnswer = [...calls];
    stop();
    expect(res.status).toBe(200);
    const path = [twin.tableNames.Requests, twin.tableNames.Audit];
    const onPath = seenAtAnswer.filter((c) => c.tables.some((t) => path.includes(t))).map((c) => c.operation);
    expect(onPath).toEqual(['TransactWriteItems', 'TransactWriteItems']);
  });

  it('records an approval-required write as pending, listed for its approver', async () => {
    const alice = await twin.token('alice');
    const res = await twin.api('POST', '/v1/targets/demo/sql', {
      token: alice,
      body: { sql: "UPDATE orders SET status = 'shipped' WHERE id = 3" },
    });
    expect(res.status).toBe(202);
    const id = (res.body as { requestId: string }).requestId;
    const bob = await twin.token('bob');
    const listed = await twin.api('GET', '/v1/approvals', { token: bob });
    expect(listed.status).toBe(200);
    expect(JSON.stringify(listed.body)).toContain(id);
  });
});

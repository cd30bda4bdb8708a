/**
 * Governed AWS calls under faults on the target's service: the answer to an approved write is lost
 * on its way back (the write ran). The write must not be sent again: an additive UpdateItem that
 * was retried would have run twice. The request is recorded as failed (its outcome unknown to
 * Warden), the item moved by exactly one, and the checker of the load test (invariant 8: every call
 * the service ran belongs to a record that allowed it, a write ran once) finds nothing. A read that
 * meets the same fault may be sent a second time and is answered 502 with nothing withheld from
 * the record.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { servedAwsCalls } from '../../bench/load.js';
import { DEMO_AWS_TABLE_NAME } from '../../lib/local/aws-enforcer.js';
import { checkInvariants, readAuditState } from '../../lib/local/invariants.js';
import { demoAwsItem } from '../support/aws.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';

let twin: TestTwin;
let agent: string;
let bob: string;

const lostAnswers = (operation: string) => ({
  rules: [
    { service: 'target-dynamodb' as const, operation, fault: 'lost-response' as const, probability: 1 },
  ],
});

beforeAll(async () => {
  twin = await startTestTwin({ faults: lostAnswers('UpdateItem') });
  [agent, bob] = await Promise.all([twin.token('agent-demo'), twin.token('bob')]);
}, 120_000);

afterAll(async () => {
  await twin?.close();
});

const quantity = async (sku: string) => Number((await demoAwsItem(twin, sku))?.quantity);

async function finalStatus(requestId: string): Promise<string> {
  let status = '';
  for (let i = 0; i < 150; i++) {
    const view = await twin.api('GET', `/v1/requests/${requestId}`, { token: agent });
    status = view.body.status;
    if (['executed', 'failed', 'denied', 'expired'].includes(status)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return status;
}

async function awsInvariant() {
  const { requests, trail } = await readAuditState(twin);
  return checkInvariants({
    statementLog: [],
    awsCalls: servedAwsCalls(twin),
    requests,
    trail,
    logs: [],
    secrets: [],
  }).find((r) => r.id === 8)!;
}

describe('an approved AWS write whose answer is lost', () => {
  it('ran once, is recorded as failed, and is not sent again', async () => {
    const before = await quantity('WID-001');
    const res = await twin.api('POST', '/v1/targets/demo-aws/aws', {
      token: agent,
      body: {
        service: 'dynamodb',
        action: 'UpdateItem',
        input: {
          TableName: DEMO_AWS_TABLE_NAME,
          Key: { sku: { S: 'WID-001' } },
          UpdateExpression: 'ADD quantity :one',
          ExpressionAttributeValues: { ':one': { N: '1' } },
        },
        justification: 'count one more',
      },
    });
    expect(res.status).toBe(202);
    const id = res.body.requestId as string;
    const vote = await twin.api('POST', `/v1/approvals/${id}/decision`, {
      token: bob,
      body: { decision: 'approve' },
    });
    expect(vote.status).toBe(200);

    expect(await finalStatus(id)).toBe('failed');
    // The write ran (the answer was lost after it), exactly once.
    expect(await quantity('WID-001')).toBe(before + 1);
    const served = servedAwsCalls(twin).filter((c) => c.requestId === id);
    expect(served).toEqual([{ action: 'dynamodb:UpdateItem', requestId: id }]);
    expect(twin.faults!.stats().injected).toMatchObject({ 'target-dynamodb UpdateItem lost-response': 1 });

    const check = await awsInvariant();
    expect(check.checked).toBeGreaterThan(0);
    expect(check.violations).toEqual([]);
  }, 60_000);

  it('a read meeting the same fault is sent at most twice and answered 502', async () => {
    twin.faults!.configure(lostAnswers('GetItem'));
    const res = await twin.api('POST', '/v1/targets/demo-aws/aws', {
      token: agent,
      body: {
        service: 'dynamodb',
        action: 'GetItem',
        input: { TableName: DEMO_AWS_TABLE_NAME, Key: { sku: { S: 'GIZ-042' } } },
      },
    });
    expect(res.status).toBeGreaterThanOrEqual(500);
    const id = res.body.error.requestId as string;
    const served = servedAwsCalls(twin).filter((c) => c.requestId === id);
    expect(served.length).toBeGreaterThanOrEqual(1);
    expect(served.length).toBeLessThanOrEqual(2);
    const view = await twin.api('GET', `/v1/requests/${id}`, { token: agent });
    expect(view.body.status).toBe('failed');
    expect((await awsInvariant()).violations).toEqual([]);
  }, 60_000);
});

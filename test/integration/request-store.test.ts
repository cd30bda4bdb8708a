/**
 * The DynamoDB stores against two implementations of the wire protocol: dynalite (the local twin's)
 * and AWS's DynamoDB Local, so nothing relies on one emulator's quirks.
 */
import { GetItemCommand, PutItemCommand, TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDocumentClient } from '../../lambdas/adapters/dynamodb.js';
import { DynamoPolicyStore, DynamoRequestStore } from '../../lambdas/adapters/request-store.js';
import { ConditionFailedError } from '../../lambdas/core/errors.js';
import type { RequestRecord } from '../../lambdas/core/types.js';
import { createTables } from '../../lib/local/dynamodb.js';
import { ALL_TABLES } from '../../lib/tables.js';
import { withDynalite, withDynamoDbLocal, type TestDynamo } from '../support/dynamo.js';

function record(id: string, overrides: Partial<RequestRecord> = {}): RequestRecord {
  const now = new Date().toISOString();
  return {
    id,
    target: 'demo',
    principal: 'User::"alice"',
    principalName: 'alice',
    principalType: 'User',
    groups: ['engineers'],
    sessionId: 's_test',
    createdAt: now,
    updatedAt: now,
    status: 'pending_approval',
    operation: {
      kind: 'sql',
      sql: 'UPDATE orders SET status = :s WHERE id = 1',
      parameters: [{ name: 's', value: 'x' }],
    },
    decision: {
      outcome: 'approval_required',
      action: 'sql:write',
      determiningPolicies: ['p1'],
      errors: [],
      policyVersion: 'v1',
    },
    version: 1,
    ...overrides,
  };
}

for (const start of [withDynalite, withDynamoDbLocal]) {
  describe(`DynamoDB stores on ${start === withDynalite ? 'dynalite' : 'DynamoDB Local'}`, () => {
    let db: TestDynamo;
    let requests: DynamoRequestStore;
    let policies: DynamoPolicyStore;

    beforeAll(async () => {
      db = await start();
      const names = (logical: string) => `t-${logical.toLowerCase()}`;
      await createTables(db.client, ALL_TABLES, (d) => names(d.logicalName));
      const doc = createDocumentClient(db.client);
      requests = new DynamoRequestStore({ client: doc, tableName: names('Requests') });
      policies = new DynamoPolicyStore({ client: doc, tableName: names('Policies') });
    }, 90_000);

    afterAll(async () => {
      await db?.close();
    });

    it('answers a transaction retried with its token without writing again, and refuses the token for another request', async () => {
      const TableName = 't-requests';
      const token = `idem-${Date.now()}`;
      const put = (note: string) =>
        new TransactWriteItemsCommand({
          ClientRequestToken: token,
          TransactItems: [{ Put: { TableName, Item: { id: { S: 'r_idempotent01' }, note: { S: note } } } }],
        });
      const noteNow = async () =>
        (await db.client.send(new GetItemCommand({ TableName, Key: { id: { S: 'r_idempotent01' } } }))).Item
          ?.note?.S;
      await db.client.send(put('first'));
      await db.client.send(
        new PutItemCommand({
          TableName,
          Item: { id: { S: 'r_idempotent01' }, note: { S: 'changed since' } },
        }),
      );
      await db.client.send(put('first'));
      expect(await noteNow()).toBe('changed since');
      await expect(db.client.send(put('another'))).rejects.toMatchObject({
        name: 'IdempotentParameterMismatchException',
      });
      expect(await noteNow()).toBe('changed since');
    });

    it('creates a record and reads it back unchanged', async () => {
      const r = record('r_create000001');
      await requests.create(r);
      expect(await requests.get(r.id)).toEqual(r);
    });

    it('refuses to create the same id twice', async () => {
      const r = record('r_duplicate0001');
      await requests.create(r);
      await expect(requests.create(r)).rejects.toBeInstanceOf(ConditionFailedError);
    });

    it('updates only from the expected version and status', async () => {
      const r = record('r_update000001');
      await requests.create(r);
      const approved = { ...r, status: 'approved' as const, version: 2 };
      await requests.update(approved, 1, ['pending_approval']);
      // A second writer holding version 1 loses.
      await expect(
        requests.update({ ...r, status: 'denied', version: 2 }, 1, ['pending_approval']),
      ).rejects.toBeInstanceOf(ConditionFailedError);
      // Right version, wrong status: also refused.
      await expect(
        requests.update({ ...approved, version: 3 }, 2, ['pending_approval']),
      ).rejects.toBeInstanceOf(ConditionFailedError);
      expect((await requests.get(r.id))?.status).toBe('approved');
    });

    it('gives exactly one winner among concurrent conditional updates', async () => {
      const r = record('r_concurrent001');
      await requests.create(r);
      const attempts = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) =>
          requests.update(
            { ...r, status: i % 2 ? 'approved' : 'denied', decidedBy: `u${i}`, version: 2 },
            1,
            ['pending_approval'],
          ),
        ),
      );
      expect(attempts.filter((a) => a.status === 'fulfilled')).toHaveLength(1);
    });

    it('lists by principal newest first, and only pending requests by the sparse pending index', async () => {
      await requests.create(
        record('r_list00000001', {
          principal: 'User::"zed"',
          createdAt: '2026-01-01T00:00:00.000Z',
          status: 'denied',
        }),
      );
      await requests.create(
        record('r_list00000002', {
          principal: 'User::"zed"',
          createdAt: '2026-01-02T00:00:00.000Z',
          status: 'executed',
        }),
      );
      const mine = await requests.listByPrincipal('User::"zed"');
      expect(mine.map((r) => r.id)).toEqual(['r_list00000002', 'r_list00000001']);
      await requests.create(
        record('r_list00000003', {
          principal: 'User::"zed"',
          createdAt: '2026-01-03T00:00:00.000Z',
          status: 'pending_approval',
        }),
      );
      await requests.create(
        record('r_list00000004', {
          principal: 'User::"zed"',
          createdAt: '2026-01-04T00:00:00.000Z',
          status: 'pending_approval',
        }),
      );
      const listed = async () =>
        (await requests.listPending()).map((r) => r.id).filter((id) => id.startsWith('r_list'));
      expect(await listed()).toEqual(['r_list00000004', 'r_list00000003']);
      // Decided: the record leaves the index (its key is removed), and the record reads back clean.
      const decided = { ...(await requests.get('r_list00000004'))!, status: 'approved' as const, version: 2 };
      await requests.update(decided, 1, ['pending_approval']);
      expect(await listed()).toEqual(['r_list00000003']);
      expect(Object.keys((await requests.get('r_list00000004'))!)).not.toContain('pendingApproval');
    });

    it('stores the active policy set and keeps versions', async () => {
      expect(await policies.getActive()).toBeUndefined();
      await policies.putActive({ version: 'v1', policies: '[]', updatedAt: 'now' });
      await policies.putActive({ version: 'v2', policies: '[1]', updatedAt: 'later', updatedBy: 'bob' });
      expect(await policies.getActive()).toEqual({
        version: 'v2',
        policies: '[1]',
        updatedAt: 'later',
        updatedBy: 'bob',
      });
    });
  });
}

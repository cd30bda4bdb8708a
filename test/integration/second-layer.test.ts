/**
 * The detectors as the second layer over what Warden keeps and sends, whatever the code before them
 * did: the request store and the trail store (on dynalite, the twin's DynamoDB) and the HTTP error
 * mapping mask raw values a careless caller hands them; the sealed exact form passes byte for byte
 * while the request may still run and is dropped once it is decided.
 */
import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDocumentClient } from '../../lambdas/adapters/dynamodb.js';
import { DynamoRequestStore } from '../../lambdas/adapters/request-store.js';
import { createLocalSealer } from '../../lambdas/adapters/sealing.js';
import { DynamoTrailStore } from '../../lambdas/adapters/trail-store.js';
import { BadRequestError } from '../../lambdas/core/errors.js';
import type { RequestRecord } from '../../lambdas/core/types.js';
import { errorResult } from '../../lambdas/middleware/http.js';
import { createTables } from '../../lib/local/dynamodb.js';
import { ALL_TABLES } from '../../lib/tables.js';
import { withDynalite, type TestDynamo } from '../support/dynamo.js';

const SSN = '583-05-0905';
const CARD = '4111 1111 1111 1111';
const EMAIL = 'mallory.target@example.org';
const RAW = [SSN, CARD, EMAIL];
const rawIn = (text: string) => RAW.filter((r) => text.includes(r));

let db: TestDynamo;
let doc: ReturnType<typeof createDocumentClient>;
let requests: DynamoRequestStore;
let trail: DynamoTrailStore;
const names = (logical: string) => `sl-${logical.toLowerCase()}`;

beforeAll(async () => {
  db = await withDynalite();
  await createTables(db.client, ALL_TABLES, (d) => names(d.logicalName));
  doc = createDocumentClient(db.client);
  trail = new DynamoTrailStore({ client: doc, tableName: names('Audit'), ttlDays: 30 });
  requests = new DynamoRequestStore({ client: doc, tableName: names('Requests'), trail });
}, 60_000);

afterAll(async () => {
  await db?.close();
});

function record(id: string, overrides: Partial<RequestRecord> = {}): RequestRecord {
  const now = new Date().toISOString();
  return {
    id,
    target: 'demo',
    principal: 'User::"alice"',
    principalName: 'alice',
    principalType: 'User',
    groups: ['engineers'],
    sessionId: 's_second_layer',
    createdAt: now,
    updatedAt: now,
    status: 'pending_approval',
    // A careless caller's record: raw values everywhere the shown form would have masked them.
    operation: { kind: 'sql', sql: `UPDATE customers SET email = '${EMAIL}' WHERE id = 1` },
    justification: `card ${CARD}`,
    decision: {
      outcome: 'approval_required',
      action: 'sql:write',
      determiningPolicies: [],
      errors: [`ssn ${SSN}`],
      policyVersion: 'v1',
    },
    version: 1,
    ...overrides,
  };
}

describe('the second layer', () => {
  it('masks a request record and its trail events as they are written, and keeps the seal byte for byte', async () => {
    const sealer = createLocalSealer(Buffer.alloc(32, 5));
    const exact = { operation: { kind: 'sql' as const, sql: `UPDATE customers SET ssn = '${SSN}'` } };
    const r = record('r_secondlayer01', { sealed: await sealer.seal('r_secondlayer01', exact) });
    await requests.create(r, [
      {
        type: 'request_received',
        at: r.createdAt,
        requestId: r.id,
        principal: r.principal,
        principalName: r.principalName,
        statement: r.operation.kind === 'sql' ? r.operation.sql : '',
        detail: { justification: `mail ${EMAIL}`, rows: [{ card: CARD }] },
      },
    ]);
    const item = (await doc.send(new GetCommand({ TableName: names('Requests'), Key: { id: r.id } }))).Item!;
    expect(rawIn(JSON.stringify({ ...item, sealed: undefined }))).toEqual([]);
    // What the store hands back opens to the exact form: the seal was not touched by masking.
    const stored = (await requests.get(r.id))!;
    expect(await sealer.open(r.id, stored.sealed!)).toEqual(exact);

    const events = await doc.send(
      new QueryCommand({
        TableName: names('Audit'),
        KeyConditionExpression: 'sessionId = :s',
        ExpressionAttributeValues: { ':s': 's_second_layer' },
      }),
    );
    expect(events.Items?.length).toBeGreaterThan(0);
    expect(rawIn(JSON.stringify(events.Items))).toEqual([]);
    // Masked before chaining: the session still verifies.
    const read = await trail.events('s_second_layer');
    expect(read.length).toBeGreaterThan(0);
  });

  it('drops the sealed exact form once the request is decided', async () => {
    const sealer = createLocalSealer(Buffer.alloc(32, 5));
    const r = record('r_secondlayer02', {
      sealed: await sealer.seal('r_secondlayer02', { operation: { kind: 'sql', sql: 'SELECT 1' } }),
    });
    await requests.create(r);
    await requests.update({ ...r, status: 'approved', version: 2 }, 1);
    expect((await requests.get(r.id))?.sealed).toBeDefined();
    await requests.update({ ...r, status: 'executed', version: 3 }, 2);
    expect((await requests.get(r.id))?.sealed).toBeUndefined();
  });

  it('masks error bodies (messages and details) before they leave', () => {
    const out = errorResult(
      new BadRequestError(`syntax error at or near "${SSN}"`, {
        issues: [{ message: `received '${EMAIL}'` }],
      }),
      'req-1',
      () => undefined,
    );
    expect(out.statusCode).toBe(400);
    expect(rawIn(String(out.body))).toEqual([]);
    expect(JSON.parse(String(out.body)).error.code).toBe('bad_request');
  });
});

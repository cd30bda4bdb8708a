/**
 * The twin's DynamoDB in a worker thread (lib/local/dynamo-worker.ts): it answers the SDK from its
 * own thread, keeps its tables on disk across a restart of the same directory (the LevelDB lock is
 * freed by close), tells a listener on this thread of every call before that call's response
 * arrives, and fails loudly: a start that cannot listen rejects, a thread that dies is reported.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createTables,
  localDynamoClient,
  type DynamoCall,
  type LocalDynamo,
} from '../../lib/local/dynamodb.js';
import { startDynamoWorker } from '../../lib/local/dynamo-worker.js';
import { startLocalTwin } from '../../lib/local/twin.js';
import { ALL_TABLES, AuditTable } from '../../lib/tables.js';
import { startTestTwin } from '../support/twin.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const tableName = (def: { logicalName: string }) => `t-${def.logicalName.toLowerCase()}`;
const AUDIT = tableName(AuditTable);

async function started(path?: string): Promise<{ dynamo: LocalDynamo; client: DynamoDBClient }> {
  const dynamo = await startDynamoWorker(path ? { path } : {});
  const client = localDynamoClient(dynamo.endpoint);
  await createTables(client, ALL_TABLES, tableName);
  return { dynamo, client };
}

const event = (sessionId: string, seq: number) => ({
  sessionId: { S: sessionId },
  seq: { N: String(seq) },
  type: { S: 'request_received' },
});

describe('DynamoDB in a worker thread', () => {
  it('keeps its tables and items on disk across a close and a restart on the same directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-dynamo-worker-'));
    dirs.push(dir);
    const path = join(dir, 'dynamodb');
    const first = await started(path);
    await first.client.send(new PutItemCommand({ TableName: AUDIT, Item: event('s-restart', 1) }));
    await first.dynamo.close();
    // Reopening the directory in this same process needs the first thread's LevelDB lock freed.
    const second = await started(path);
    try {
      const got = await second.client.send(
        new GetItemCommand({ TableName: AUDIT, Key: { sessionId: { S: 's-restart' }, seq: { N: '1' } } }),
      );
      expect(got.Item?.type).toEqual({ S: 'request_received' });
    } finally {
      await second.dynamo.close();
    }
  });

  it('has passed every call to the listener before the call is answered, and none once it stops', async () => {
    const { dynamo, client } = await started();
    try {
      const seen: DynamoCall[] = [];
      const stop = dynamo.onCall((c) => seen.push(c));
      const sawIt = (marker: string) => seen.some((c) => c.body.includes(marker));
      // Many at once, of each kind the request path sends: each one is in `seen` when its answer is.
      await Promise.all(
        Array.from({ length: 30 }, async (_, i) => {
          const session = `s-observed-${i}`;
          const write =
            i % 3 === 0
              ? new PutItemCommand({ TableName: AUDIT, Item: event(session, 1) })
              : i % 3 === 1
                ? new TransactWriteItemsCommand({
                    TransactItems: [{ Put: { TableName: AUDIT, Item: event(session, 1) } }],
                  })
                : new QueryCommand({
                    TableName: AUDIT,
                    KeyConditionExpression: 'sessionId = :s',
                    ExpressionAttributeValues: { ':s': { S: session } },
                  });
          await client.send(write as PutItemCommand);
          expect(sawIt(session), `call ${i} answered before the listener saw it`).toBe(true);
        }),
      );
      expect(seen.map((c) => c.operation).sort()).toEqual(
        [
          ...Array(10).fill('PutItem'),
          ...Array(10).fill('Query'),
          ...Array(10).fill('TransactWriteItems'),
        ].sort(),
      );
      expect(seen.find((c) => c.operation === 'TransactWriteItems')?.tables).toEqual([AUDIT]);
      stop();
      await client.send(new PutItemCommand({ TableName: AUDIT, Item: event('s-after-stop', 1) }));
      expect(sawIt('s-after-stop')).toBe(false);
      // A listener sees the very next call after it is added (no message has to reach the thread first).
      for (let i = 0; i < 20; i++) {
        const calls: DynamoCall[] = [];
        const again = dynamo.onCall((c) => calls.push(c));
        await client.send(new PutItemCommand({ TableName: AUDIT, Item: event(`s-next-${i}`, 1) }));
        again();
        expect(calls.map((c) => c.operation)).toEqual(['PutItem']);
        expect(calls[0].body).toContain(`s-next-${i}`);
      }
    } finally {
      await dynamo.close();
    }
  });

  it('fails to start with a clear error when its port is taken', async () => {
    const busy: Server = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    try {
      const { port } = busy.address() as { port: number };
      await expect(startDynamoWorker({ port })).rejects.toThrow(
        /DynamoDB \(dynalite in a worker thread\) did not start: .*EADDRINUSE/,
      );
    } finally {
      await new Promise((r) => busy.close(r));
    }
  });

  it('fails to start with the thread’s own error when its module fails to load', async () => {
    const threadModule = new URL('../support/dynamo-thread-fails.ts?at=load', import.meta.url).href;
    await expect(startDynamoWorker({ threadModule })).rejects.toThrow(
      /did not start: the stand-in thread failed while loading/,
    );
  });

  it('reports a thread that dies after it started, once, and still closes', async () => {
    const threadModule = new URL('../support/dynamo-thread-fails.ts?at=running', import.meta.url).href;
    const exited = new Promise<Error>((resolve) => {
      void startDynamoWorker({ threadModule, onExit: resolve }).then((d) => {
        dying = d;
      });
    });
    let dying: LocalDynamo | undefined;
    const error = await exited;
    expect(error.message).toBe('the stand-in thread crashed while running');
    await expect(dying?.close()).resolves.toBeUndefined();
  });
});

describe("the twin's choice of where DynamoDB runs", () => {
  it('refuses an unknown mode before it touches the data directory', async () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'warden-dynamo-mode-')), 'state');
    dirs.push(dataDir);
    await expect(startLocalTwin({ dataDir, dynamo: 'elsewhere' as 'thread' })).rejects.toThrow(
      "WARDEN_TWIN_DYNAMO must be 'thread' or 'inline', not 'elsewhere'",
    );
    expect(() => readdirSync(dataDir)).toThrow(/ENOENT/);
  });

  // One governed twin per file: the API module's runtime is created once per process (as in Lambda),
  // so the thread variant is test/integration/dynamo-thread-twin.test.ts.
  it.each(['inline'] as const)(
    'serves a governed read with DynamoDB %s (the same two store calls seen)',
    async (dynamo) => {
      const twin = await startTestTwin({ dynamo, upstreamMcp: false });
      try {
        expect(twin.dynamoMode).toBe(dynamo);
        const token = await twin.token('alice');
        const calls: DynamoCall[] = [];
        const stop = twin.onStoreCall((c) => calls.push(c));
        const res = await twin.api('POST', '/v1/targets/demo/sql', {
          token,
          body: { sql: 'SELECT id FROM customers WHERE id = 1' },
        });
        stop();
        expect(res.status).toBe(200);
        const path = [twin.tableNames.Requests, twin.tableNames.Audit];
        expect(calls.filter((c) => c.tables.some((t) => path.includes(t))).map((c) => c.operation)).toEqual([
          'TransactWriteItems',
          'TransactWriteItems',
        ]);
      } finally {
        await twin.close();
      }
    },
  );

  it('runs DynamoDB inline unless asked otherwise', async () => {
    const twin = await startTestTwin({ upstreamMcp: false });
    try {
      expect(twin.dynamoMode).toBe(process.env.WARDEN_TWIN_DYNAMO ?? 'inline');
    } finally {
      await twin.close();
    }
  });
});

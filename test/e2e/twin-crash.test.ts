/**
 * The twin killed with SIGKILL (a crash: no store closed, nothing flushed by Warden) and started
 * again on the same data directory loses nothing it answered for: a request answered 202 is still
 * pending and, approved after the crash, runs; every read answered 200, even with others in flight
 * at the kill, is still recorded as executed; the session's trail verifies as one chain across the
 * crash.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devToken } from '../../bin/cli-client.js';
import { freePort } from '../support/net.js';
import { startTwinProcess, twinApi, type TwinProcess } from '../support/twin-process.js';
import { waitFor } from '../support/wait.js';

let dataDir: string;
let port: number;
let twin: TwinProcess | undefined;

const api = (method: string, path: string, token: string, body?: unknown) =>
  twinApi(twin!.url, method, path, token, body);

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'warden-crash-'));
  port = await freePort();
});

afterAll(async () => {
  await twin?.kill();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('a crash (SIGKILL) and a restart on the same data directory', () => {
  it('keeps every answered request, runs the approved one, and the trail verifies', async () => {
    twin = await startTwinProcess({ port, dataDir, approvalWindowSeconds: 3600 });
    const [alice, bob, dave] = await Promise.all(['alice', 'bob', 'dave'].map((u) => devToken(twin!.url, u)));
    const read = await api('POST', '/v1/targets/demo/sql', alice, { sql: 'SELECT count(*) FROM orders' });
    expect(read.status, `${JSON.stringify(read.body)}\n${twin!.output().slice(-4000)}`).toBe(200);
    const sql = "UPDATE orders SET status = 'shipped-after-crash' WHERE id = 9";
    const write = await api('POST', '/v1/targets/demo/sql', alice, {
      sql,
      justification: 'OPS-3 before a crash',
    });
    expect(write.status, JSON.stringify(write.body)).toBe(202);
    const id = write.body.requestId as string;
    const sessionId = (await api('GET', `/v1/requests/${id}`, alice)).body.sessionId as string;

    // The moment after the answers: nothing closed, nothing flushed.
    await twin.kill();
    twin = await startTwinProcess({ port, dataDir, approvalWindowSeconds: 3600 });

    // Tokens from before the crash still verify; both requests are there as answered.
    expect((await api('GET', `/v1/requests/${read.body.requestId}`, alice)).body).toMatchObject({
      status: 'executed',
    });
    expect((await api('GET', `/v1/requests/${id}`, alice)).body).toMatchObject({
      status: 'pending_approval',
      justification: 'OPS-3 before a crash',
    });
    const pending = await api('GET', '/v1/approvals', bob);
    expect(pending.body.approvals.map((a: { requestId: string }) => a.requestId)).toContain(id);
    const decision = await api('POST', `/v1/approvals/${id}/decision`, bob, { decision: 'approve' });
    expect(decision.status, JSON.stringify(decision.body)).toBe(200);
    const done = await waitFor(async () => {
      const r = (await api('GET', `/v1/requests/${id}`, alice)).body;
      return ['executed', 'failed', 'expired'].includes(r.status) ? r : undefined;
    }, 60_000);
    expect(done).toMatchObject({ status: 'executed', decidedBy: 'bob', rowCount: 1 });
    const rows = await api('POST', '/v1/targets/demo/sql', alice, {
      sql: 'SELECT status FROM orders WHERE id = 9',
    });
    expect(JSON.stringify(rows.body.result.rows)).toContain('shipped-after-crash');

    const verify = await api('GET', `/v1/sessions/${sessionId}/verify`, dave);
    expect(verify.body, JSON.stringify(verify.body)).toMatchObject({ sessionId, ok: true, problems: [] });
    expect(verify.body.events).toBe(verify.body.lastSeq);
  }, 300_000);

  it('killed with reads in flight: every read it answered is recorded, and the trail still verifies', async () => {
    const alice = await devToken(twin!.url, 'alice');
    const dave = await devToken(twin!.url, 'dave');
    const answered: string[] = [];
    let sessionId: string | undefined;
    const total = 200;
    const reads = Array.from({ length: total }, (_, i) =>
      api('POST', '/v1/targets/demo/sql', alice, {
        sql: `SELECT id, status FROM orders WHERE id = ${(i % 50) + 1}`,
      }).then(
        (res) => {
          if (res.status === 200) answered.push(res.body.requestId as string);
        },
        () => undefined, // cut off by the kill
      ),
    );
    await waitFor(async () => (answered.length >= 5 ? true : undefined), 60_000);
    await twin!.kill();
    await Promise.all(reads);
    const before = [...answered];
    expect(before.length).toBeGreaterThanOrEqual(5);
    // The kill came with reads still in flight (at ~200 reads/s, 200 take about a second).
    expect(before.length).toBeLessThan(total);

    twin = await startTwinProcess({ port, dataDir, approvalWindowSeconds: 3600 });
    for (const id of before) {
      const r = await api('GET', `/v1/requests/${id}`, alice);
      expect(r.status, id).toBe(200);
      expect(r.body.status, id).toBe('executed');
      sessionId ??= r.body.sessionId as string;
    }
    const verify = await api('GET', `/v1/sessions/${sessionId}/verify`, dave);
    expect(verify.body, JSON.stringify(verify.body)).toMatchObject({ ok: true, problems: [] });
    // And the twin goes on: a new read after the crash answers and is recorded in the same chain.
    const after = await api('POST', '/v1/targets/demo/sql', alice, { sql: 'SELECT 1 AS after_crash' });
    expect(after.status, JSON.stringify(after.body)).toBe(200);
    expect((await api('GET', `/v1/sessions/${sessionId}/verify`, dave)).body).toMatchObject({ ok: true });
    await twin!.stop();
    twin = undefined;
  }, 300_000);
});

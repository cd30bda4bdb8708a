/**
 * The twin keeps its state across a restart on the same data directory: a request made before the
 * restart is approved after it (with tokens issued before it) and runs; the session's trail verifies
 * as one hash chain across the restart; a request whose approval window passed while the twin was
 * stopped is expired after it; `warden dev --reset` starts clean. The twin runs in a child process,
 * stopped with SIGTERM as Ctrl-C stops `npm start`.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devToken } from '../../bin/cli-client.js';
import { REPO_ROOT } from '../../lib/local/twin.js';
import { freePort } from '../support/net.js';
import { startTwinProcess, twinApi, type TwinProcess } from '../support/twin-process.js';
import { waitFor } from '../support/wait.js';

const run = promisify(execFile);
let dataDir: string;
let port: number;
let twin: TwinProcess | undefined;

const api = (method: string, path: string, token: string, body?: unknown) =>
  twinApi(twin!.url, method, path, token, body);

async function notified(requestId: string): Promise<void> {
  await waitFor(async () => {
    const res = await fetch(`${twin!.url}/dev/outbox?requestId=${requestId}`);
    const { messages } = (await res.json()) as { messages: unknown[] };
    return messages.length > 0 ? true : undefined;
  }, 60_000);
}

const start = async (approvalWindowSeconds?: number, reset = false) => {
  twin = await startTwinProcess({
    port,
    dataDir,
    ...(approvalWindowSeconds ? { approvalWindowSeconds } : {}),
    ...(reset ? { reset } : {}),
  });
};
const stop = async () => {
  expect(await twin!.stop()).toBe(0);
  twin = undefined;
};

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'warden-restart-'));
  port = await freePort();
});

afterAll(async () => {
  await twin?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('a restart on the same data directory', () => {
  let alice: string;
  let bob: string;
  let dave: string;
  let pending: { id: string; sessionId: string; sql: string };
  let late: { id: string; expiresAt: string; sql: string };

  beforeAll(async () => {
    await start(3600);
    [alice, bob, dave] = await Promise.all(['alice', 'bob', 'dave'].map((u) => devToken(twin!.url, u)));
    const sql = "UPDATE orders SET status = 'shipped-after-restart' WHERE id = 7";
    const read = await api('POST', '/v1/targets/demo/sql', alice, { sql: 'SELECT count(*) FROM orders' });
    expect(read.status, `${JSON.stringify(read.body)}\n${twin!.output().slice(-4000)}`).toBe(200);
    const res = await api('POST', '/v1/targets/demo/sql', alice, {
      sql,
      justification: 'OPS-1 before restart',
    });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const record = (await api('GET', `/v1/requests/${res.body.requestId}`, alice)).body;
    expect(record.sessionId).toMatch(/^s_/);
    expect((await api('GET', `/v1/requests/${read.body.requestId}`, alice)).body.sessionId).toBe(
      record.sessionId,
    );
    pending = { id: res.body.requestId, sessionId: record.sessionId, sql };
    await notified(pending.id);
    await stop();
  }, 240_000);

  it('keeps a pending request, and approving it after the restart runs it', async () => {
    // A short window for the requests made in this run (the pending one keeps its hour).
    await start(20);
    // Tokens issued before the restart still verify (the IdP's signing key persists).
    const before = await api('GET', `/v1/requests/${pending.id}`, alice);
    expect(before.status).toBe(200);
    expect(before.body).toMatchObject({ status: 'pending_approval', justification: 'OPS-1 before restart' });

    const approvals = await api('GET', '/v1/approvals', bob);
    expect(approvals.body.approvals.map((a: { requestId: string }) => a.requestId)).toContain(pending.id);
    const decision = await api('POST', `/v1/approvals/${pending.id}/decision`, bob, {
      decision: 'approve',
      comment: 'after the restart',
    });
    expect(decision.status, JSON.stringify(decision.body)).toBe(200);
    expect(decision.body).toMatchObject({ status: 'approved', workflowNotified: true });
    const done = await waitFor(async () => {
      const r = (await api('GET', `/v1/requests/${pending.id}`, alice)).body;
      return ['executed', 'failed', 'expired'].includes(r.status) ? r : undefined;
    }, 60_000);
    expect(done).toMatchObject({ status: 'executed', decidedBy: 'bob', rowCount: 1 });
    const row = await api('POST', '/v1/targets/demo/sql', alice, {
      sql: 'SELECT status FROM orders WHERE id = 7',
    });
    expect(JSON.stringify(row.body.result.rows)).toContain('shipped-after-restart');
  }, 240_000);

  it('keeps the trail: the session verifies as one chain across the restart', async () => {
    const session = await api('GET', `/v1/sessions/${pending.sessionId}`, dave);
    expect(session.status).toBe(200);
    const verify = await api('GET', `/v1/sessions/${pending.sessionId}/verify`, dave);
    expect(verify.status).toBe(200);
    expect(verify.body).toMatchObject({ sessionId: pending.sessionId, ok: true, problems: [] });
    // The read and the write before the restart, and the approval and the execution after it.
    expect(verify.body.events).toBe(verify.body.lastSeq);
    const events = JSON.stringify(session.body);
    expect(events).toContain(pending.id);
    expect(events).toMatch(/approv/);
  }, 60_000);

  it('expires a request whose approval window passed while the twin was stopped', async () => {
    const sql = "UPDATE orders SET status = 'shipped' WHERE id = 8";
    const res = await api('POST', '/v1/targets/demo/sql', alice, { sql, justification: 'OPS-2' });
    expect(res.status).toBe(202);
    late = { id: res.body.requestId, expiresAt: res.body.expiresAt, sql };
    await notified(late.id);
    expect((await api('GET', `/v1/requests/${late.id}`, alice)).body.status).toBe('pending_approval');
    await stop();
    // Stopped across the end of the window.
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(late.expiresAt) - Date.now()) + 1000));

    await start();
    const expired = await waitFor(async () => {
      const r = (await api('GET', `/v1/requests/${late.id}`, alice)).body;
      return r.status !== 'pending_approval' ? r : undefined;
    }, 60_000);
    expect(expired).toMatchObject({ status: 'expired', decidedBy: 'warden' });
    const tooLate = await api('POST', `/v1/approvals/${late.id}/decision`, bob, { decision: 'approve' });
    expect(tooLate.status).toBe(409);
    expect(tooLate.body.error.code).toBe('expired');
    // The request approved before this restart stays executed; nothing re-ran.
    expect((await api('GET', `/v1/requests/${pending.id}`, alice)).body.status).toBe('executed');
    const verify = await api('GET', `/v1/sessions/${pending.sessionId}/verify`, dave);
    expect(verify.body).toMatchObject({ ok: true, problems: [] });
    await stop();
  }, 240_000);

  it('starts clean with --reset', async () => {
    await start(undefined, true);
    // The IdP's keys went with the rest: a token from before is refused, a new one sees nothing old.
    const old = await fetch(`${twin!.url}/v1/requests/${pending.id}`, {
      headers: { authorization: `Bearer ${alice}` },
    });
    expect(old.status).toBe(401);
    const [aliceNow, bobNow] = await Promise.all(['alice', 'bob'].map((u) => devToken(twin!.url, u)));
    expect((await api('GET', `/v1/requests/${pending.id}`, aliceNow)).status).toBe(404);
    expect((await api('GET', '/v1/approvals', bobNow)).body.approvals).toEqual([]);
    // The demo data is generated afresh: the write approved before the reset is gone.
    const rows = await api('POST', '/v1/targets/demo/sql', aliceNow, {
      sql: 'SELECT status FROM orders WHERE id = 7',
    });
    expect(rows.status).toBe(200);
    expect(JSON.stringify(rows.body.result.rows)).not.toContain('shipped-after-restart');
    await stop();
  }, 240_000);

  it('`warden dev` offers --reset', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'bin/warden.ts', 'dev', '--help'], {
      cwd: REPO_ROOT,
    });
    expect(stdout).toMatch(/--reset\s+start clean/);
  }, 60_000);
});

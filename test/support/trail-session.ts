/**
 * The scripted session of the trail tests: reads, a masked read, a denied write, a write that waits
 * for approval (approved by bob when the approvals API is there), and a JIT grant request (same).
 * Everything goes through the gateway's public API with one X-Warden-Session name; a client-named
 * session belongs to one principal, so alice's requests share one session and carol's and the
 * agent's land in sessions of their own under the same name.
 */
import type { TestTwin } from './twin.js';

export interface ScriptedSession {
  /** alice's session: her reads, the denied statement, the write that waits, the access request. */
  readonly sessionId: string;
  /** The same session name sent by carol and by the agent: two other sessions. */
  readonly carolSessionId: string;
  readonly agentSessionId: string;
  readonly requests: {
    readonly aliceRead: string;
    readonly agentRead: string;
    readonly carolMasked: string;
    readonly markup: string;
    readonly deniedPrivilege: string;
    readonly pendingWrite: string;
    readonly accessRequest?: string;
  };
  /** Whether `POST /v1/approvals/{id}/decision` answered (the approvals API exists in this build). */
  readonly approved: boolean;
  /** Whether the JIT access request route exists in this build. */
  readonly jit: boolean;
  /** What alice's session must hold, in order, per request. */
  readonly expected: ReadonlyArray<{ requestId: string; types: readonly string[] }>;
  readonly notes: readonly string[];
}

export const CAROL_SQL = 'SELECT id, name, ssn, card_number FROM customers ORDER BY id LIMIT 2';
export const MARKUP_SQL = `SELECT '<script>alert(1)</script>' AS "<b>x</b>"`;
export const PRIVILEGE_SQL = 'GRANT ALL ON customers TO PUBLIC';
export const WRITE_SQL = "UPDATE orders SET status = 'shipped' WHERE id = 1";

export const READ_EVENTS = [
  'request_received',
  'decided',
  'execution_started',
  'execution_finished',
  'result',
];

function routeMissing(res: { status: number; body: any }): boolean {
  return res.status === 404 && /^no route/.test(String(res.body?.error?.message ?? ''));
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe();
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function runScriptedSession(twin: TestTwin, name = 'audit-demo'): Promise<ScriptedSession> {
  const [alice, bob, carol, agent] = await Promise.all(
    ['alice', 'bob', 'carol', 'agent-demo'].map((u) => twin.token(u)),
  );
  const headers = { 'x-warden-session': name };
  const sql = async (token: string, text: string, expectStatus: number, justification?: string) => {
    const res = await twin.api('POST', '/v1/targets/demo/sql', {
      token,
      headers,
      body: { sql: text, ...(justification ? { justification } : {}) },
    });
    if (res.status !== expectStatus) {
      throw new Error(`${text}: expected ${expectStatus}, got ${res.status} ${JSON.stringify(res.body)}`);
    }
    return String(res.body.requestId ?? res.body.error?.details?.requestId ?? res.body.error?.requestId);
  };
  /** The session a request was recorded in, as its requester sees it. */
  const sessionOf = async (token: string, requestId: string): Promise<string> => {
    const res = await twin.api('GET', `/v1/requests/${requestId}`, { token });
    if (res.status !== 200) throw new Error(`GET ${requestId}: ${res.status} ${JSON.stringify(res.body)}`);
    return String(res.body.sessionId);
  };
  const notes: string[] = [];
  const aliceRead = await sql(alice, 'SELECT id, name FROM customers ORDER BY id LIMIT 3', 200);
  const agentRead = await sql(agent, 'SELECT count(*) AS n FROM orders', 200);
  const carolMasked = await sql(carol, CAROL_SQL, 200);
  const markup = await sql(alice, MARKUP_SQL, 200);
  const deniedPrivilege = await sql(alice, PRIVILEGE_SQL, 403);
  const pendingWrite = await sql(alice, WRITE_SQL, 202, 'ship order 1 (ticket OPS-1)');

  const expected: Array<{ requestId: string; types: string[] }> = [
    { requestId: aliceRead, types: READ_EVENTS },
    { requestId: markup, types: READ_EVENTS },
    { requestId: deniedPrivilege, types: ['request_received', 'decided'] },
  ];
  const writeTypes = ['request_received', 'decided'];
  const [sessionId, carolSessionId, agentSessionId] = await Promise.all([
    sessionOf(alice, aliceRead),
    sessionOf(carol, carolMasked),
    sessionOf(agent, agentRead),
  ]);
  const dave = await twin.token('dave');
  /** Waits until the trail holds `type` for `requestId` (workflow steps append asynchronously). */
  const trailHas = (requestId: string, type: string) =>
    until(`${type} of ${requestId} in the trail`, async () => {
      const r = await twin.api('GET', `/v1/sessions/${sessionId}`, { token: dave });
      const events: Array<{ requestId?: string; type: string }> = r.body?.events ?? [];
      return events.some((e) => e.requestId === requestId && e.type === type) ? true : undefined;
    });

  const probe = await twin.api('POST', '/v1/approvals/r_doesnotexist000/decision', {
    token: bob,
    body: { decision: 'approve' },
  });
  const approvals = !routeMissing(probe);
  let approved = false;
  if (!approvals) {
    notes.push('approvals API (POST /v1/approvals/{id}/decision) not in this build: the write stays pending');
  } else {
    // The workflow's Notify step records approval_requested; approve once approvers were asked.
    await trailHas(pendingWrite, 'approval_requested');
    writeTypes.push('approval_requested');
    const decision = await twin.api('POST', `/v1/approvals/${pendingWrite}/decision`, {
      token: bob,
      body: { decision: 'approve', comment: 'ok, one row' },
    });
    if (decision.status !== 200) {
      throw new Error(`approving ${pendingWrite}: ${decision.status} ${JSON.stringify(decision.body)}`);
    }
    approved = true;
    writeTypes.push('approval_decided');
    await trailHas(pendingWrite, 'result');
    writeTypes.push('execution_started', 'execution_finished', 'result');
  }
  expected.push({ requestId: pendingWrite, types: writeTypes });

  const access = await twin.api('POST', '/v1/targets/demo/access-requests', {
    token: alice,
    headers,
    body: { level: 'write', duration: '30m', justification: 'backfill OPS-2' },
  });
  let jit = false;
  let accessRequest: string | undefined;
  if (routeMissing(access)) {
    notes.push('JIT access requests (POST /v1/targets/{t}/access-requests) not in this build');
  } else if (access.status === 202) {
    jit = true;
    accessRequest = String(access.body.requestId);
    const types = ['request_received', 'decided'];
    if (approvals) {
      await trailHas(accessRequest, 'approval_requested');
      types.push('approval_requested');
      const ok = await twin.api('POST', `/v1/approvals/${accessRequest}/decision`, {
        token: bob,
        body: { decision: 'approve' },
      });
      if (ok.status !== 200) throw new Error(`approving the grant: ${ok.status} ${JSON.stringify(ok.body)}`);
      await trailHas(accessRequest, 'grant_created');
      types.push('approval_decided', 'grant_created');
    }
    expected.push({ requestId: accessRequest, types });
  } else {
    throw new Error(`access request: ${access.status} ${JSON.stringify(access.body)}`);
  }

  return {
    sessionId,
    carolSessionId,
    agentSessionId,
    requests: {
      aliceRead,
      agentRead,
      carolMasked,
      markup,
      deniedPrivilege,
      pendingWrite,
      ...(accessRequest ? { accessRequest } : {}),
    },
    approved,
    jit,
    expected,
    notes,
  };
}

/**
 * Agents acting for people, end to end on the local twin: the dev IdP's RFC 8693 token exchange
 * (and an agent client whose tokens name its owner), Cedar seeing the agent and its person, the
 * trail recording both, and the person an agent acts for never approving that agent's request (API,
 * page and listing).
 */
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PageSession } from '../support/page-session.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const RESOURCE = 'urn:warden:resource:warden';

let twin: TestTwin;
let erin: string;
let bob: string;
let dave: string;

async function tokenEndpoint(client: [string, string], form: Record<string, string>) {
  const res = await fetch(`${twin.issuer}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${client[0]}:${client[1]}`).toString('base64')}`,
    },
    body: new URLSearchParams(form),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

const AGENT: [string, string] = ['agent-demo', 'agent-demo-secret'];

function exchange(subjectToken: string, extra: Record<string, string> = {}, client = AGENT) {
  return tokenEndpoint(client, {
    grant_type: TOKEN_EXCHANGE,
    subject_token: subjectToken,
    subject_token_type: ACCESS_TOKEN,
    resource: RESOURCE,
    scope: 'warden',
    ...extra,
  });
}

beforeAll(async () => {
  twin = await startTestTwin();
  [erin, bob, dave] = await Promise.all(['erin', 'bob', 'dave'].map((u) => twin.token(u)));
}, 300_000);

afterAll(async () => {
  await twin?.close();
});

describe('the dev IdP’s token exchange (RFC 8693)', () => {
  it('gives an agent a token naming the user as sub and itself as act', async () => {
    const res = await exchange(erin);
    expect(res.status).toBe(200);
    expect(res.body.issued_token_type).toBe(ACCESS_TOKEN);
    const claims = decodeJwt(res.body.access_token);
    expect(claims).toMatchObject({
      sub: 'erin',
      client_id: 'agent-demo',
      aud: 'warden',
      groups: ['engineers', 'dba'],
      act: { sub: 'agent-demo', groups: ['agents'] },
    });
  });

  it('refuses an altered subject token, a wrong token type, a delegated subject and other clients', async () => {
    const [h, p, s] = erin.split('.');
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
    const forged = [h, Buffer.from(JSON.stringify({ ...payload, sub: 'bob' })).toString('base64url'), s].join(
      '.',
    );
    expect((await exchange(forged)).body.error).toBe('invalid_grant');
    expect((await exchange('not-a-token')).body.error).toBe('invalid_grant');
    const wrongType = await exchange(erin, {
      subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
    });
    expect(wrongType.body.error).toBe('invalid_request');
    const delegated = (await exchange(erin)).body.access_token as string;
    expect((await exchange(delegated)).body.error).toBe('invalid_grant');
    const cli = await exchange(erin, {}, ['warden-cli', 'warden-cli-secret']);
    expect(cli.status).toBe(400);
    expect(cli.body.access_token).toBeUndefined();
    const wrongSecret = await exchange(erin, {}, ['agent-demo', 'nope']);
    expect(wrongSecret.status).toBe(401);
  });
});

describe('an agent acting for erin', () => {
  let agentForErin: string;
  let requestId: string;

  beforeAll(async () => {
    agentForErin = (await exchange(erin)).body.access_token;
    const res = await twin.api('POST', '/v1/targets/demo/sql', {
      token: agentForErin,
      headers: { 'x-warden-session': 'delegated' },
      body: { sql: "UPDATE orders SET status = 'shipped' WHERE id = 3", justification: 'OPS-9' },
    });
    expect(res.status).toBe(202);
    requestId = res.body.requestId;
  });

  it('is recorded as the agent with the person it acts for, in the request and the trail', async () => {
    const view = await twin.api('GET', `/v1/requests/${requestId}`, { token: agentForErin });
    expect(view.status).toBe(200);
    expect(view.body).toMatchObject({ principal: 'agent-demo', principalType: 'Agent', onBehalfOf: 'erin' });
    const session = await twin.api('GET', `/v1/sessions/${view.body.sessionId}`, { token: dave });
    const events = session.body.events.filter((e: any) => e.requestId === requestId);
    expect(events.length).toBeGreaterThanOrEqual(2);
    for (const e of events) {
      expect(e).toMatchObject({
        principal: 'Agent::"agent-demo"',
        principalName: 'agent-demo',
        onBehalfOf: 'User::"erin"',
        onBehalfOfName: 'erin',
      });
    }
  });

  it('cannot be approved by erin through the API, and erin’s listing leaves it out', async () => {
    const vote = await twin.api('POST', `/v1/approvals/${requestId}/decision`, {
      token: erin,
      body: { decision: 'approve' },
    });
    expect(vote.status).toBe(403);
    expect(vote.body.error.message).toMatch(/never approves a request made by an agent acting for them/);
    const listing = await twin.api('GET', '/v1/approvals?limit=500', { token: erin });
    expect(listing.status).toBe(200);
    expect(listing.body.approvals.map((a: any) => a.requestId)).not.toContain(requestId);
    const forBob = await twin.api('GET', '/v1/approvals?limit=500', { token: bob });
    const seen = forBob.body.approvals.find((a: any) => a.requestId === requestId);
    expect(seen).toMatchObject({ requester: 'agent-demo', onBehalfOf: 'erin' });
    const status = await twin.api('GET', `/v1/requests/${requestId}`, { token: agentForErin });
    expect(status.body.status).toBe('pending_approval');
    expect(status.body.votes).toEqual([]);
  });

  it('cannot be approved by erin on the page: no form, the reason instead', async () => {
    const page = await new PageSession(twin.url).signIn(`/approve/${requestId}`, 'erin');
    expect(page.res.status).toBe(200);
    expect(page.text).toContain('acting for <strong id="on-behalf-of">erin</strong>');
    expect(page.text).not.toContain('name="csrf"');
    expect(page.text).toMatch(/never approves a request made by an agent acting for them/);
  });

  it('takes bob’s approval and never a vote from erin, before or after it', async () => {
    const first = await twin.api('POST', `/v1/approvals/${requestId}/decision`, {
      token: bob,
      body: { decision: 'approve' },
    });
    expect(first.status).toBe(200);
    expect(first.body.votes.map((v: any) => v.byName)).toEqual(['bob']);
    const second = await twin.api('POST', `/v1/approvals/${requestId}/decision`, {
      token: erin,
      body: { decision: 'approve' },
    });
    expect(second.status).toBe(403);
    const after = await twin.api('GET', `/v1/requests/${requestId}`, { token: agentForErin });
    expect(after.body.votes.map((v: any) => v.byName)).toEqual(['bob']);
  });

  it('gets a session of its own: the same name from erin herself is another session', async () => {
    const own = await twin.api('POST', '/v1/targets/demo/sql', {
      token: erin,
      headers: { 'x-warden-session': 'delegated' },
      body: { sql: 'SELECT 1 AS one' },
    });
    expect(own.status).toBe(200);
    const a = (await twin.api('GET', `/v1/requests/${own.body.requestId}`, { token: erin })).body.sessionId;
    const b = (await twin.api('GET', `/v1/requests/${requestId}`, { token: agentForErin })).body.sessionId;
    expect(a).not.toBe(b);
  });
});

describe('an agent whose IdP names its owner (no token exchange)', () => {
  it('acts for erin, and erin cannot approve its request', async () => {
    const minted = await tokenEndpoint(['agent-erin', 'agent-erin-secret'], {
      grant_type: 'client_credentials',
      resource: RESOURCE,
      scope: 'warden',
    });
    expect(minted.status).toBe(200);
    expect(decodeJwt(minted.body.access_token)).toMatchObject({
      client_id: 'agent-erin',
      warden_owner: 'erin',
    });
    const res = await twin.api('POST', '/v1/targets/demo/sql', {
      token: minted.body.access_token,
      body: { sql: "UPDATE orders SET status = 'held' WHERE id = 4" },
    });
    expect(res.status).toBe(202);
    const view = await twin.api('GET', `/v1/requests/${res.body.requestId}`, {
      token: minted.body.access_token,
    });
    expect(view.body).toMatchObject({ principal: 'agent-erin', principalType: 'Agent', onBehalfOf: 'erin' });
    const vote = await twin.api('POST', `/v1/approvals/${res.body.requestId}/decision`, {
      token: erin,
      body: { decision: 'approve' },
    });
    expect(vote.status).toBe(403);
    const byBob = await twin.api('POST', `/v1/approvals/${res.body.requestId}/decision`, {
      token: bob,
      body: { decision: 'approve' },
    });
    expect(byBob.status).toBe(200);
  });
});

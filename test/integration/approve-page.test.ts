/**
 * The approval page against a local twin, driven with plain fetch: real OIDC sign-in at the dev
 * IdP (authorization code + PKCE), signed cookies, CSRF, escaping and headers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PageSession as Session } from '../support/page-session.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';

function csrfOf(html: string): string | undefined {
  return /name="csrf" value="([^"]+)"/.exec(html)?.[1];
}

let twin: TestTwin;
let alice: string;
let requestId: string;
let reviewPath: string;
const HOSTILE_JUSTIFICATION = `fix typo <script>alert('x')</script> "quoted" & <img src=x onerror=alert(1)>`;

async function pendingWrite(justification: string, name = 'Renamed'): Promise<string> {
  const res = await twin.api('POST', '/v1/targets/demo/sql', {
    token: alice,
    body: {
      sql: `UPDATE customers SET name = '${name}</pre><b>bold</b>' WHERE id = 1`,
      justification,
    },
  });
  expect(res.status).toBe(202);
  return res.body.requestId as string;
}

async function statusOf(id: string): Promise<string> {
  const res = await twin.api('GET', `/v1/requests/${id}`, { token: alice });
  expect(res.status).toBe(200);
  return res.body.status as string;
}

beforeAll(async () => {
  twin = await startTestTwin();
  alice = await twin.token('alice');
  requestId = await pendingWrite(HOSTILE_JUSTIFICATION);
  reviewPath = `/approve/${requestId}`;
}, 300_000);

afterAll(async () => {
  await twin?.close();
});

describe('approval page: signing in', () => {
  it('sends a visitor who is not signed in to the IdP with PKCE, state and nonce, changing nothing', async () => {
    const visitor = new Session(twin.url);
    const { res } = await visitor.request('GET', reviewPath);
    expect(res.status).toBe(303);
    const location = new URL(res.headers.get('location')!);
    expect(location.toString().startsWith(`${twin.issuer}/`)).toBe(true);
    expect(location.searchParams.get('client_id')).toBe('warden-approval');
    expect(location.searchParams.get('response_type')).toBe('code');
    expect(location.searchParams.get('code_challenge_method')).toBe('S256');
    expect(location.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(location.searchParams.get('state')).toBeTruthy();
    expect(location.searchParams.get('nonce')).toBeTruthy();
    expect(location.searchParams.get('redirect_uri')).toBe(`${twin.url}/approve/callback`);
    // The PKCE verifier never travels in the URL.
    const setCookie = res.headers.getSetCookie().find((c) => c.startsWith('warden_login='));
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Lax/);
    expect(setCookie).not.toMatch(/Secure/); // plain http on 127.0.0.1 only
    expect(await statusOf(requestId)).toBe('pending_approval');
  });

  it('signs bob in and shows him the request, and a GET of the review link changes nothing', async () => {
    const bob = new Session(twin.url);
    const page = await bob.signIn(reviewPath, 'bob');
    expect(page.res.status).toBe(200);
    expect(page.url).toBe(`${twin.url}${reviewPath}`);
    expect(page.text).toContain('signed in as <strong>bob</strong>');
    expect(page.text).toContain('UPDATE customers SET name');
    expect(page.text).toContain('Waiting for approval');
    expect(csrfOf(page.text)).toBeTruthy();
    // The session cookie carries no token: only who, groups and expiry, signed.
    const session = bob.jar.get('warden_session')!;
    const payload = JSON.parse(Buffer.from(session.split('.')[0], 'base64url').toString('utf8'));
    expect(Object.keys(payload).sort()).toEqual(['exp', 'groups', 'id', 'name', 'sid', 'type']);
    expect(payload).toMatchObject({ id: 'bob', name: 'bob', groups: ['dba'], type: 'User' });
    expect(bob.jar.has('warden_login')).toBe(false);

    for (let i = 0; i < 3; i++) expect((await bob.follow(reviewPath)).res.status).toBe(200);
    const record = await twin.api('GET', `/v1/requests/${requestId}`, { token: alice });
    expect(record.body.status).toBe('pending_approval');
    expect(record.body.votes).toEqual([]);
  });

  it('refuses a callback whose state does not match the sign-in it started', async () => {
    const visitor = new Session(twin.url);
    await visitor.request('GET', reviewPath);
    const res = await visitor.request('GET', '/approve/callback?code=abc&state=forged');
    expect(res.res.status).toBe(400);
    expect(visitor.jar.has('warden_session')).toBe(false);
  });

  it('does not accept a tampered session cookie', async () => {
    const bob = new Session(twin.url);
    await bob.signIn(reviewPath, 'bob');
    const [data, mac] = bob.jar.get('warden_session')!.split('.');
    const claims = JSON.parse(Buffer.from(data, 'base64url').toString('utf8'));
    const forged = Buffer.from(JSON.stringify({ ...claims, id: 'erin', name: 'erin' })).toString('base64url');
    bob.jar.set('warden_session', `${forged}.${mac}`);
    const { res } = await bob.request('GET', reviewPath);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toContain('/oidc/');
  });
});

describe('approval page: rendering', () => {
  it('escapes HTML in the justification and the statement and sends a strict CSP', async () => {
    const bob = new Session(twin.url);
    const page = await bob.signIn(reviewPath, 'bob');
    expect(page.text).not.toContain('<script>');
    expect(page.text).not.toContain('<img');
    expect(page.text).not.toContain('<b>bold</b>');
    expect(page.text).toContain('&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &quot;quoted&quot; &amp;');
    expect(page.text).toContain('&lt;/pre&gt;&lt;b&gt;bold&lt;/b&gt;');
    const csp = page.res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("form-action 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    const nonce = /style-src 'nonce-([^']+)'/.exec(csp)?.[1];
    expect(nonce).toBeTruthy();
    expect(page.text).toContain(`<style nonce="${nonce}">`);
    expect(page.res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.res.headers.get('cache-control')).toBe('no-store');
    expect(page.res.headers.get('x-frame-options')).toBe('DENY');
  });

  it('answers 404 for an unknown or malformed approval id', async () => {
    const bob = new Session(twin.url);
    await bob.signIn(reviewPath, 'bob');
    const unknown = await bob.request('GET', '/approve/r_AAAAAAAAAAAAAAAAAAAAAAAA');
    expect(unknown.res.status).toBe(404);
    expect(unknown.text).toContain('Approval not found');
    expect((await bob.request('GET', '/approve/not-an-id')).res.status).toBe(404);
    expect((await new Session(twin.url).request('GET', '/approve/%3Cscript%3E')).res.status).toBe(404);
    const post = await bob.request('POST', '/approve/r_AAAAAAAAAAAAAAAAAAAAAAAA', {
      form: { decision: 'approve', csrf: 'x'.repeat(43) },
    });
    expect([403, 404]).toContain(post.res.status);
  });

  it('shows nothing of the request to someone who is neither requester nor approver', async () => {
    const carol = new Session(twin.url);
    const page = await carol.signIn(reviewPath, 'carol');
    expect(page.res.status).toBe(404);
    expect(page.text).not.toContain('UPDATE customers');
  });

  it('shows the requester their own request without Approve / Deny', async () => {
    const own = new Session(twin.url);
    const page = await own.signIn(reviewPath, 'alice');
    expect(page.res.status).toBe(200);
    expect(page.text).toContain('UPDATE customers');
    expect(csrfOf(page.text)).toBeUndefined();
    expect(page.text).toContain('never approves their own request');
  });
});

describe('approval page: deciding needs a valid CSRF token', () => {
  it('refuses a POST without a CSRF token (403) and changes nothing', async () => {
    const bob = new Session(twin.url);
    await bob.signIn(reviewPath, 'bob');
    const res = await bob.request('POST', reviewPath, { form: { decision: 'approve' } });
    expect(res.res.status).toBe(403);
    expect(await statusOf(requestId)).toBe('pending_approval');
  });

  it("refuses a forged token, a token for another request, and another session's token", async () => {
    const bob = new Session(twin.url);
    const page = await bob.signIn(reviewPath, 'bob');
    const token = csrfOf(page.text)!;
    const otherId = await pendingWrite('other', 'Other');
    const other = await bob.follow(`/approve/${otherId}`);
    const otherToken = csrfOf(other.text)!;
    const erin = new Session(twin.url);
    const erinToken = csrfOf((await erin.signIn(reviewPath, 'erin')).text)!;

    for (const csrf of ['A'.repeat(43), `${token.slice(0, -2)}AA`, otherToken, erinToken]) {
      const res = await bob.request('POST', reviewPath, { form: { decision: 'approve', csrf } });
      expect(res.res.status).toBe(403);
    }
    expect(await statusOf(requestId)).toBe('pending_approval');
    expect(await statusOf(otherId)).toBe('pending_approval');
  });

  it('refuses a cross-site form post even with a valid token', async () => {
    const bob = new Session(twin.url);
    const token = csrfOf((await bob.signIn(reviewPath, 'bob')).text)!;
    const res = await bob.request('POST', reviewPath, {
      form: { decision: 'approve', csrf: token },
      headers: { origin: 'https://evil.example' },
    });
    expect(res.res.status).toBe(403);
    expect(await statusOf(requestId)).toBe('pending_approval');
  });

  it('refuses a POST from a visitor who is not signed in', async () => {
    const res = await new Session(twin.url).request('POST', reviewPath, {
      form: { decision: 'approve', csrf: 'A'.repeat(43) },
    });
    expect(res.res.status).toBe(403);
    expect(await statusOf(requestId)).toBe('pending_approval');
  });
});

describe('approval page: deciding', () => {
  it("records bob's approval, and a second click says who approved it and when", async () => {
    const id = await pendingWrite('approve me', 'Approved');
    const bob = new Session(twin.url);
    const page = await bob.signIn(`/approve/${id}`, 'bob');
    const token = csrfOf(page.text)!;
    const res = await bob.request('POST', `/approve/${id}`, {
      form: { decision: 'approve', csrf: token, comment: 'looks <fine>' },
    });
    expect(res.res.status).toBe(200);
    expect(res.text).toContain('You approved this request');
    expect(res.text).toContain('looks &lt;fine&gt;');
    expect(await statusOf(id)).not.toBe('pending_approval');

    const again = await bob.request('POST', `/approve/${id}`, { form: { decision: 'deny', csrf: token } });
    expect(again.res.status).toBe(409);
    expect(again.text).toMatch(/already approved by bob at \d{4}-/);
  });

  it('refuses a non-approver with a valid session and token of their own', async () => {
    // carol never gets a token (she cannot see the page); a valid-looking form is still refused.
    const carol = new Session(twin.url);
    await carol.signIn(reviewPath, 'carol');
    const res = await carol.request('POST', reviewPath, {
      form: { decision: 'approve', csrf: 'A'.repeat(43) },
    });
    expect(res.res.status).toBe(403);
    expect(await statusOf(requestId)).toBe('pending_approval');
  });
});

/**
 * The approval page verifies the ID token it is handed, as an attacker who controls the token
 * endpoint's answer would test it: the page signs in against a small loopback IdP of our own
 * (discovery + JWKS + token endpoint) whose access token is a real one from the twin's IdP, so the
 * only thing wrong in each case is the ID token (signature, iss, aud, exp, nonce). A good ID token
 * signs in (the harness works); every bad one gets a 401 page and no session cookie.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PageSession as Session } from '../support/page-session.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';

const CLIENT_ID = 'warden-approval';
const KID = 'fake-idp-key';

interface FakeIdp {
  issuer: string;
  /** The ID token the next token request answers with, built from the sign-in's nonce. */
  nextIdToken?: (nonce: string | undefined) => string;
  /** Nonce sent with each authorization request, by its state. */
  nonces: Map<string, string>;
  tokenRequests: number;
  close(): Promise<void>;
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

function jwt(claims: Record<string, unknown>, key: KeyObject | 'none', kid = KID): string {
  if (key === 'none') return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
  const input = `${b64({ alg: 'RS256', typ: 'JWT', kid })}.${b64(claims)}`;
  return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

async function startFakeIdp(accessToken: () => string): Promise<FakeIdp> {
  const { publicKey } = keys.idp;
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: KID, alg: 'RS256', use: 'sig' };
  const idp: FakeIdp = {
    issuer: '',
    nonces: new Map(),
    tokenRequests: 0,
    close: () => new Promise((done) => server.close(() => done())),
  };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', idp.issuer);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === '/.well-known/openid-configuration') {
      return json(200, {
        issuer: idp.issuer,
        authorization_endpoint: `${idp.issuer}/authorize`,
        token_endpoint: `${idp.issuer}/token`,
        jwks_uri: `${idp.issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        code_challenge_methods_supported: ['S256'],
      });
    }
    if (url.pathname === '/jwks') return json(200, { keys: [jwk] });
    if (url.pathname === '/token' && req.method === 'POST') {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        idp.tokenRequests++;
        const form = new URLSearchParams(body);
        const nonce = idp.nonces.get(form.get('code') ?? '');
        json(200, {
          access_token: accessToken(),
          token_type: 'Bearer',
          expires_in: 300,
          id_token: idp.nextIdToken!(nonce),
        });
      });
      return;
    }
    json(404, { error: 'not_found' });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  idp.issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return idp;
}

const keys = {
  idp: generateKeyPairSync('rsa', { modulusLength: 2048 }),
  attacker: generateKeyPairSync('rsa', { modulusLength: 2048 }),
};

let twin: TestTwin;
let idp: FakeIdp;
let bobToken: string;
let bobSub: string;
let reviewPath: string;

beforeAll(async () => {
  idp = await startFakeIdp(() => bobToken);
  // The handlers read their environment once, on the first request: point the page's sign-in at
  // the fake IdP (the API keeps verifying access tokens against the twin's IdP).
  process.env.OIDC_APPROVAL_ISSUER = idp.issuer;
  twin = await startTestTwin();
  bobToken = await twin.token('bob');
  bobSub = JSON.parse(Buffer.from(bobToken.split('.')[1]!, 'base64url').toString()).sub as string;
  const alice = await twin.token('alice');
  const res = await twin.api('POST', '/v1/targets/demo/sql', {
    token: alice,
    body: { sql: `UPDATE customers SET name = 'x' WHERE id = 1`, justification: 'ticket 1' },
  });
  expect(res.status).toBe(202);
  reviewPath = `/approve/${res.body.requestId as string}`;
}, 300_000);

afterAll(async () => {
  await idp?.close();
  await twin?.close();
});

/** Starts a sign-in at the page, "approves" it at the fake IdP, and comes back with a code. */
async function signInWith(idToken: (claims: Record<string, unknown>) => string) {
  const browser = new Session(twin.url);
  const started = await browser.request('GET', reviewPath);
  expect(started.res.status).toBe(303);
  const authorize = new URL(started.res.headers.get('location')!);
  expect(`${authorize.origin}${authorize.pathname}`).toBe(`${idp.issuer}/authorize`);
  const state = authorize.searchParams.get('state')!;
  const nonce = authorize.searchParams.get('nonce')!;
  expect(nonce).toMatch(/^[A-Za-z0-9_-]{40,}$/);
  expect(browser.jar.has('warden_login')).toBe(true);
  const code = `code-${Math.random().toString(36).slice(2)}`;
  idp.nonces.set(code, nonce);
  const now = Math.floor(Date.now() / 1000);
  idp.nextIdToken = (sentNonce) =>
    idToken({ iss: idp.issuer, aud: CLIENT_ID, sub: bobSub, iat: now, exp: now + 300, nonce: sentNonce });
  const before = idp.tokenRequests;
  const back = await browser.request(
    'GET',
    `/approve/callback?code=${encodeURIComponent(code)}&state=${encodeURIComponent(state)}`,
  );
  expect(idp.tokenRequests).toBe(before + 1); // the code really was exchanged
  return { browser, back };
}

function expectRefused(out: Awaited<ReturnType<typeof signInWith>>, reason: RegExp) {
  expect(out.back.res.status).toBe(401);
  expect(out.back.text).toContain('Sign-in failed');
  expect(out.back.text).toMatch(reason);
  expect(out.back.res.headers.getSetCookie().some((c) => c.startsWith('warden_session='))).toBe(false);
  expect(out.browser.jar.has('warden_session')).toBe(false);
  expect(out.browser.jar.has('warden_login')).toBe(false); // the pending sign-in is spent
}

describe('approval page sign-in: the ID token is verified', () => {
  it('signs in with a well-formed ID token from the fake IdP (the harness itself works)', async () => {
    const out = await signInWith((claims) => jwt(claims, keys.idp.privateKey));
    expect(out.back.res.status).toBe(303);
    expect(out.back.res.headers.get('location')).toBe(reviewPath);
    expect(out.browser.jar.has('warden_session')).toBe(true);
    const page = await out.browser.follow(reviewPath);
    expect(page.text).toContain('signed in as <strong>bob</strong>');
  });

  it('refuses an ID token signed by another key under the IdP key id', async () => {
    expectRefused(
      await signInWith((claims) => jwt(claims, keys.attacker.privateKey)),
      /signature is not valid/,
    );
  });

  it('refuses an ID token whose signature was cut off and re-attached from another token', async () => {
    const out = await signInWith((claims) => {
      const genuine = jwt({ ...claims, sub: 'someone-else' }, keys.idp.privateKey);
      const forged = jwt(claims, keys.idp.privateKey);
      return `${forged.split('.').slice(0, 2).join('.')}.${genuine.split('.')[2]}`;
    });
    expectRefused(out, /signature is not valid/);
  });

  it('refuses an unsigned ID token (alg none)', async () => {
    expectRefused(await signInWith((claims) => jwt(claims, 'none')), /Sign-in failed/);
  });

  it('refuses an ID token signed with a key the IdP does not publish', async () => {
    expectRefused(
      await signInWith((claims) => jwt(claims, keys.attacker.privateKey, 'attacker-key')),
      /key the identity provider does not publish/,
    );
  });

  it('refuses an ID token from another issuer', async () => {
    expectRefused(
      await signInWith((claims) => jwt({ ...claims, iss: 'http://127.0.0.1:1/evil' }, keys.idp.privateKey)),
      /issued by another issuer/,
    );
  });

  it('refuses an ID token for another client, also when ours is one of several audiences', async () => {
    expectRefused(
      await signInWith((claims) => jwt({ ...claims, aud: 'some-other-app' }, keys.idp.privateKey)),
      /not issued for this page/,
    );
    expectRefused(
      await signInWith((claims) =>
        jwt({ ...claims, aud: [CLIENT_ID, 'some-other-app'] }, keys.idp.privateKey),
      ),
      /not issued for this page/,
    );
  });

  it('refuses an expired ID token', async () => {
    const now = Math.floor(Date.now() / 1000);
    expectRefused(
      await signInWith((claims) => jwt({ ...claims, iat: now - 7200, exp: now - 3600 }, keys.idp.privateKey)),
      /expired/,
    );
  });

  it('refuses an ID token with another sign-in’s nonce, or none', async () => {
    expectRefused(
      await signInWith((claims) =>
        jwt({ ...claims, nonce: 'a-nonce-from-another-sign-in' }, keys.idp.privateKey),
      ),
      /nonce does not match/,
    );
    expectRefused(
      await signInWith((claims) => {
        const { nonce: _dropped, ...rest } = claims;
        return jwt(rest, keys.idp.privateKey);
      }),
      /no nonce/,
    );
  });

  it('refuses a token answer without an ID token', async () => {
    expectRefused(await signInWith(() => undefined as unknown as string), /Sign-in failed/);
  });
});

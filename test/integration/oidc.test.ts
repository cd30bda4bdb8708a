import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createTokenVerifier } from '../../lambdas/adapters/jwt-verifier.js';
import type { TokenVerifier } from '../../lambdas/adapters/jwt-verifier.js';
import { UnauthorizedError } from '../../lambdas/core/errors.js';
import { DEV_USER_GRANT_TYPE, createDevIdp } from '../../lib/local/oidc.js';
import type { DevIdp } from '../../lib/local/oidc.js';

let server: Server;
let origin: string;
let idp: DevIdp;
let verifier: TokenVerifier;
let dataDir: string;
let mounted: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
  res.statusCode = 503;
  res.end();
};

const basic = (id: string, secret: string): string =>
  `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
const claimsOf = (jwt: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8')) as Record<string, unknown>;

async function tokenRequest(
  client: { clientId: string; clientSecret: string },
  params: Record<string, string>,
): Promise<{ status: number; body: Record<string, string> }> {
  const res = await fetch(idp.tokenEndpoint, {
    method: 'POST',
    headers: {
      authorization: basic(client.clientId, client.clientSecret),
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams(params),
  });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

/** Enough of a browser for the authorization code flow: a cookie jar and manual redirects. */
class Browser {
  readonly #cookies = new Map<string, string>();

  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.#cookies.size > 0) {
      headers.set('cookie', [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    const res = await fetch(new URL(url, origin), { ...init, headers, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line)) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
    return res;
  }
}

function pkce(): { verifier: string; challenge: string } {
  const v = randomBytes(32).toString('base64url');
  return { verifier: v, challenge: createHash('sha256').update(v).digest('base64url') };
}

/** Runs /auth → sign-in form → POST login → redirects, and returns where the IdP finally sends the browser. */
async function signIn(
  browser: Browser,
  username: string,
  authParams: Record<string, string>,
): Promise<{ location: URL; loginPage: string }> {
  let res = await browser.request(`${idp.issuer}/auth?${new URLSearchParams(authParams)}`);
  expect(res.status).toBe(303);
  const interactionUrl = res.headers.get('location') ?? '';
  expect(interactionUrl).toMatch(/^\/oidc\/interaction\//);

  res = await browser.request(interactionUrl);
  expect(res.status).toBe(200);
  const loginPage = await res.text();
  const action = /<form method="post" action="([^"]+)"/.exec(loginPage)?.[1];
  expect(action).toBeDefined();

  res = await browser.request(action ?? '', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ login: username, password: 'anything' }),
  });
  expect(res.status).toBe(303);

  // Follow the IdP's own redirects (resume, a possible consent hop) until it leaves for the client.
  let location = new URL(res.headers.get('location') ?? '', origin);
  for (let hops = 0; hops < 5 && location.href.startsWith(idp.issuer); hops += 1) {
    res = await browser.request(location.href);
    expect([302, 303]).toContain(res.status);
    location = new URL(res.headers.get('location') ?? '', origin);
  }
  return { location, loginPage };
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'warden-oidc-'));
  server = createServer((req, res) => {
    if (req.url?.startsWith('/oidc')) mounted(req, res);
    else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  idp = await createDevIdp({
    issuer: `${origin}/oidc`,
    audience: 'warden',
    redirectUris: [`${origin}/approve/callback`],
    jwksPath: join(dataDir, 'oidc-jwks.json'),
  });
  mounted = idp.handler;
  verifier = createTokenVerifier({
    issuer: idp.issuer,
    audience: 'warden',
    jwksUri: idp.jwksUri,
    groupsClaim: 'groups',
  });
  await verifier.hydrate();
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(dataDir, { recursive: true, force: true });
});

describe('dev IdP (oidc-provider mounted at /oidc)', () => {
  it('publishes a discovery document whose endpoints live under the mount path', async () => {
    const res = await fetch(`${idp.issuer}/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as Record<string, unknown>;
    expect(doc.issuer).toBe(`${origin}/oidc`);
    expect(doc.jwks_uri).toBe(idp.jwksUri);
    expect(doc.token_endpoint).toBe(`${origin}/oidc/token`);
    expect(doc.authorization_endpoint).toBe(`${origin}/oidc/auth`);
    expect(doc.grant_types_supported).toEqual(
      expect.arrayContaining(['authorization_code', 'client_credentials', DEV_USER_GRANT_TYPE]),
    );
    expect(doc.code_challenge_methods_supported).toEqual(['S256']);
  });

  it('publishes only public RS256 signing keys in its JWKS', async () => {
    const { keys } = (await (await fetch(idp.jwksUri)).json()) as { keys: Record<string, unknown>[] };
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
    expect(keys[0]).not.toHaveProperty('d');
  });

  it('issues agent-demo a client-credentials JWT for Warden that maps to an Agent in group agents', async () => {
    const { status, body } = await tokenRequest(idp.clients.agent, { grant_type: 'client_credentials' });
    expect(status).toBe(200);
    expect(body.token_type).toBe('Bearer');
    expect(claimsOf(body.access_token)).toMatchObject({
      aud: 'warden',
      client_id: 'agent-demo',
      groups: ['agents'],
    });
    const { principal } = await verifier.verify(body.access_token);
    expect(principal).toEqual({
      type: 'Agent',
      id: 'agent-demo',
      name: 'agent-demo',
      groups: ['agents'],
      clientId: 'agent-demo',
    });
  });

  it('accepts an explicit resource indicator and resource scope, as the CLI sends them', async () => {
    for (const [client, params] of [
      [idp.clients.agent, { grant_type: 'client_credentials' }],
      [idp.clients.cli, { grant_type: DEV_USER_GRANT_TYPE, username: 'carol' }],
    ] as const) {
      const { status, body } = await tokenRequest(client, {
        ...params,
        resource: idp.resource,
        scope: 'warden',
      });
      expect(status).toBe(200);
      expect(claimsOf(body.access_token)).toMatchObject({ aud: 'warden', scope: 'warden' });
      const wrong = await tokenRequest(client, { ...params, resource: 'https://elsewhere.example/' });
      expect(wrong.body.error).toBe('invalid_target');
    }
    expect(idp.resource).toBe('urn:warden:resource:warden');
  });

  it('refuses client credentials with a wrong secret', async () => {
    const { status, body } = await tokenRequest(
      { clientId: 'agent-demo', clientSecret: 'wrong' },
      { grant_type: 'client_credentials' },
    );
    expect(status).toBe(401);
    expect(body.error).toBe('invalid_client');
  });

  it('issues a dev-user token over HTTP (what `warden token alice` does) that maps to User alice', async () => {
    const { status, body } = await tokenRequest(idp.clients.cli, {
      grant_type: DEV_USER_GRANT_TYPE,
      username: 'alice',
    });
    expect(status).toBe(200);
    const { principal, claims } = await verifier.verify(body.access_token);
    expect(principal).toEqual({
      type: 'User',
      id: 'alice',
      name: 'alice',
      groups: ['engineers'],
      clientId: 'warden-cli',
    });
    expect(claims).toMatchObject({ iss: idp.issuer, aud: 'warden', preferred_username: 'alice' });
  });

  it('refuses the dev-user grant for an unknown user and for clients not allowed to use it', async () => {
    const unknown = await tokenRequest(idp.clients.cli, {
      grant_type: DEV_USER_GRANT_TYPE,
      username: 'mallory',
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error_description).toMatch(/unknown dev user/);
    const agent = await tokenRequest(idp.clients.agent, {
      grant_type: DEV_USER_GRANT_TYPE,
      username: 'alice',
    });
    expect(agent.status).toBe(400);
    expect(agent.body.error).toBe('invalid_request');
  });

  it('mints user and agent tokens in-process that verify against its JWKS', async () => {
    const erin = await verifier.verify(await idp.issueUserToken('erin'));
    expect(erin.principal).toMatchObject({ type: 'User', id: 'erin', groups: ['engineers', 'dba'] });
    const agent = await verifier.verify(await idp.issueAgentToken());
    expect(agent.principal).toMatchObject({ type: 'Agent', id: 'agent-demo', groups: ['agents'] });
    await expect(idp.issueUserToken('mallory')).rejects.toThrow(/unknown dev user/);
  });

  it('honours a short lifetime for an in-process user token', async () => {
    const token = await idp.issueUserToken('dave', { expiresIn: 60 });
    const c = claimsOf(token);
    expect(Number(c.exp) - Number(c.iat)).toBe(60);
    expect((await verifier.verify(token)).principal.groups).toEqual(['auditors']);
  });

  it('signs bob in through the authorization code flow with PKCE, yielding a Warden access token', async () => {
    const browser = new Browser();
    const { verifier: codeVerifier, challenge } = pkce();
    const redirectUri = idp.clients.approval.redirectUris[0];
    const state = randomBytes(8).toString('hex');
    const { location, loginPage } = await signIn(browser, 'bob', {
      client_id: idp.clients.approval.clientId,
      response_type: 'code',
      redirect_uri: redirectUri,
      scope: 'openid profile',
      state,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    expect(loginPage).toContain('name="login"');
    expect(loginPage).toContain('type="submit"');
    expect(`${location.origin}${location.pathname}`).toBe(redirectUri);
    expect(location.searchParams.get('state')).toBe(state);
    const code = location.searchParams.get('code');
    expect(code).toBeTruthy();

    const { status, body } = await tokenRequest(idp.clients.approval, {
      grant_type: 'authorization_code',
      code: code ?? '',
      redirect_uri: redirectUri,
      code_verifier: codeVerifier,
    });
    expect(status).toBe(200);
    expect(claimsOf(body.id_token)).toMatchObject({ sub: 'bob', aud: 'warden-approval' });
    const { principal } = await verifier.verify(body.access_token);
    expect(principal).toEqual({
      type: 'User',
      id: 'bob',
      name: 'bob',
      groups: ['dba'],
      clientId: 'warden-approval',
    });

    // An authorization code is single-use.
    const replay = await tokenRequest(idp.clients.approval, {
      grant_type: 'authorization_code',
      code: code ?? '',
      redirect_uri: redirectUri,
      code_verifier: codeVerifier,
    });
    expect(replay.body.error).toBe('invalid_grant');
  });

  it('refuses to exchange a code without the matching PKCE verifier', async () => {
    const { challenge } = pkce();
    const redirectUri = idp.clients.approval.redirectUris[0];
    const { location } = await signIn(new Browser(), 'carol', {
      client_id: idp.clients.approval.clientId,
      response_type: 'code',
      redirect_uri: redirectUri,
      scope: 'openid',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    const { body } = await tokenRequest(idp.clients.approval, {
      grant_type: 'authorization_code',
      code: location.searchParams.get('code') ?? '',
      redirect_uri: redirectUri,
      code_verifier: pkce().verifier,
    });
    expect(body.error).toBe('invalid_grant');
  });

  it('requires PKCE on the authorization request', async () => {
    const res = await new Browser().request(
      `${idp.issuer}/auth?${new URLSearchParams({
        client_id: idp.clients.approval.clientId,
        response_type: 'code',
        redirect_uri: idp.clients.approval.redirectUris[0],
        scope: 'openid',
      })}`,
    );
    const location = new URL(res.headers.get('location') ?? '', origin);
    expect(location.searchParams.get('error')).toBe('invalid_request');
    expect(location.searchParams.get('code')).toBeNull();
  });

  it('re-shows the sign-in form for a name that is not a dev user', async () => {
    const browser = new Browser();
    const res1 = await browser.request(
      `${idp.issuer}/auth?${new URLSearchParams({
        client_id: idp.clients.approval.clientId,
        response_type: 'code',
        redirect_uri: idp.clients.approval.redirectUris[0],
        scope: 'openid',
        code_challenge: pkce().challenge,
        code_challenge_method: 'S256',
      })}`,
    );
    const interactionUrl = res1.headers.get('location') ?? '';
    const res2 = await browser.request(`${interactionUrl}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ login: '<script>mallory' }),
    });
    expect(res2.status).toBe(400);
    const html = await res2.text();
    expect(html).toContain('name="login"');
    expect(html).not.toContain('<script>');
  });

  it('keeps its signing key in jwksPath, so a restarted IdP accepts tokens from before', async () => {
    const stored = JSON.parse(await readFile(join(dataDir, 'oidc-jwks.json'), 'utf8')) as {
      keys: { kid: string }[];
    };
    const before = await idp.issueUserToken('alice');
    const restarted = await createDevIdp({
      issuer: idp.issuer,
      audience: 'warden',
      jwksPath: join(dataDir, 'oidc-jwks.json'),
    });
    mounted = restarted.handler;
    try {
      const fresh = createTokenVerifier({
        issuer: idp.issuer,
        audience: 'warden',
        jwksUri: restarted.jwksUri,
        groupsClaim: 'groups',
      });
      const { keys } = (await (await fetch(restarted.jwksUri)).json()) as { keys: { kid: string }[] };
      expect(keys.map((k) => k.kid)).toEqual(stored.keys.map((k) => k.kid));
      expect((await fresh.verify(before)).principal.id).toBe('alice');
    } finally {
      mounted = idp.handler;
    }
  });

  it('issues tokens that the verifier rejects for another audience', async () => {
    const other = createTokenVerifier({
      issuer: idp.issuer,
      audience: 'not-warden',
      jwksUri: idp.jwksUri,
      groupsClaim: 'groups',
    });
    await expect(other.verify(await idp.issueUserToken('alice'))).rejects.toBeInstanceOf(UnauthorizedError);
  });
});

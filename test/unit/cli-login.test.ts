/**
 * `warden login` against the dev IdP (oidc-provider) behind a stand-in gateway: the code + PKCE
 * flow through the loopback callback, the device grant, the token store's file modes, refresh,
 * logout with revocation, and the attacks: a callback with the wrong state, metadata naming a
 * plain-http IdP or another resource, a credentials file others can read, and dev-user shortcuts
 * aimed at a gateway that is not a loopback twin (they must not send anything, let alone the
 * twin's client secret). The browser path is test/e2e/cli-login.test.ts.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { CliError, EXIT, devToken, isLoopback } from '../../bin/cli-client.js';
import { CredentialStore, credentialsPath } from '../../bin/cli-credentials.js';
import { discoverGateway, login, logout, storedAccessToken, type LoginOptions } from '../../bin/cli-login.js';
import { main } from '../../bin/cli-program.js';
import { resolveSettings } from '../../lib/config.js';
import { IdpAgent, startFakeGateway, type FakeGateway } from '../support/idp-agent.js';

let gw: FakeGateway;
let dir: string;
const baseMetadata: Record<string, unknown> = {};

beforeAll(async () => {
  gw = await startFakeGateway();
  Object.assign(baseMetadata, gw.metadata);
  dir = mkdtempSync(join(tmpdir(), 'warden-login-'));
});

afterAll(async () => {
  await gw?.close();
  rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
  gw.metadata = { ...baseMetadata };
  vi.restoreAllMocks();
});

function claims(jwt: string): Record<string, any> {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

let n = 0;
function freshStore(): CredentialStore {
  return new CredentialStore(join(dir, `cfg-${++n}`, 'warden', 'credentials.json'));
}

/** Starts `warden login`'s flow and hands back the URL it prints (and the still-running login). */
async function startLogin(store: CredentialStore, options: Partial<LoginOptions> = {}, gateway = gw) {
  const lines: string[] = [];
  let announced: (url: string) => void;
  const url = new Promise<string>((resolve) => (announced = resolve));
  const done = login(gateway.url, {
    browser: false,
    store,
    timeoutSeconds: 60,
    ...options,
    say: (line) => {
      lines.push(line);
      const m = /(http:\/\/\S+\/oidc\/(?:auth\?|device\?user_code=)\S+)/.exec(line);
      if (m) announced(m[1]);
    },
  });
  done.catch(() => undefined);
  return { url: await Promise.race([url, done.then(() => '')]), done, lines };
}

async function signedIn(user: string, store = freshStore(), gateway = gw) {
  const { url, done } = await startLogin(store, {}, gateway);
  const back = await new IdpAgent(new URL(gateway.url).origin).signIn(url, user);
  expect(back.res.status).toBe(200);
  return { result: await done, store };
}

describe('warden login: authorization code + PKCE with a loopback redirect', () => {
  it('signs bob in and stores his verified token set 0600 in a 0700 directory, keyed by the gateway', async () => {
    const store = freshStore();
    const { url, done } = await startLogin(store);
    const auth = new URL(url);
    expect(auth.searchParams.get('client_id')).toBe('warden-cli-login');
    expect(auth.searchParams.get('code_challenge_method')).toBe('S256');
    expect(auth.searchParams.get('redirect_uri')).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    expect(auth.searchParams.get('scope')).toBe('openid profile warden');

    const back = await new IdpAgent(new URL(gw.url).origin).signIn(url, 'bob');
    expect(back.text).toContain('Signed in to Warden');
    const { login: stored, path } = await done;

    expect(path).toBe(store.path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(path, '..')).mode & 0o777).toBe(0o700);
    const file = JSON.parse(readFileSync(path, 'utf8'));
    expect(Object.keys(file.gateways)).toEqual([gw.url]);
    expect(stored).toMatchObject({
      issuer: gw.idp.issuer,
      clientId: 'warden-cli-login',
      username: 'bob',
      subject: 'bob',
    });
    expect(stored.refreshToken).toEqual(expect.any(String));
    expect(claims(stored.accessToken)).toMatchObject({ sub: 'bob', aud: 'warden', groups: ['dba'] });
    expect(claims(stored.idToken!)).toMatchObject({ sub: 'bob', aud: 'warden-cli-login' });
    expect(await storedAccessToken(gw.url, store)).toBe(stored.accessToken);
  });

  it('refuses a callback with the wrong state (answered 400, ignored) and finishes with the real one', async () => {
    const store = freshStore();
    const { url, done, lines } = await startLogin(store);
    const redirectUri = new URL(url).searchParams.get('redirect_uri')!;

    // Mallory's own code, replayed into bob's CLI (login CSRF): she signs in, keeps the callback.
    const mallory = freshStore();
    const hers = await startLogin(mallory);
    const malloryAgent = new IdpAgent(new URL(gw.url).origin);
    // Her browser goes as far as the IdP's redirect; the code in it is what she would plant.
    let planted = '';
    let next = hers.url;
    for (let i = 0; i < 10 && !planted; i++) {
      const res = await malloryAgent.fetch(next);
      const loc = res.headers.get('location');
      const text = loc ? '' : await res.text();
      if (loc && loc.includes('/callback?')) planted = new URL(loc, next).searchParams.get('code')!;
      else if (loc) next = new URL(loc, next).href;
      else if (text.includes('name="login"')) {
        const action = /action="([^"]+)"/
          .exec(text)![1]
          .replace(/&#(\d+);/g, (_m, c: string) => String.fromCharCode(Number(c)));
        const posted = await malloryAgent.fetch(new URL(action, next).href, { form: { login: 'carol' } });
        next = new URL(posted.headers.get('location')!, next).href;
      }
    }
    expect(planted).not.toBe('');

    for (const state of ['', 'guessed-state', new URL(hers.url).searchParams.get('state')!]) {
      const hostile = await fetch(
        `${redirectUri}?code=${encodeURIComponent(planted)}&state=${encodeURIComponent(state)}`,
      );
      expect(hostile.status).toBe(400);
      expect(await hostile.text()).toContain('does not belong to the sign-in in progress');
    }
    expect(lines.join('\n')).toContain('wrong state');

    const back = await new IdpAgent(new URL(gw.url).origin).signIn(url, 'bob');
    expect(back.res.status).toBe(200);
    const { login: stored } = await done;
    expect(stored.username).toBe('bob');
    expect(claims(stored.accessToken).sub).toBe('bob');
    // Once the sign-in is done, nothing listens on the callback port any more.
    await expect(fetch(`${redirectUri}?code=x&state=y`)).rejects.toThrow(/fetch failed/);

    // Mallory's code still works for the sign-in it belongs to (it was refused, not spent).
    const herCallback = new URL(hers.url).searchParams.get('redirect_uri')!;
    const herState = new URL(hers.url).searchParams.get('state')!;
    const iss = encodeURIComponent(gw.idp.issuer);
    await fetch(`${herCallback}?code=${encodeURIComponent(planted)}&state=${herState}&iss=${iss}`);
    expect((await hers.done).login.username).toBe('carol');
  });

  it('fails when the IdP answers the callback with an error, and stores nothing', async () => {
    const store = freshStore();
    const { url, done } = await startLogin(store);
    const auth = new URL(url);
    const redirectUri = auth.searchParams.get('redirect_uri')!;
    const denied = await fetch(
      `${redirectUri}?error=access_denied&error_description=nope&state=${auth.searchParams.get('state')}&iss=${encodeURIComponent(gw.idp.issuer)}`,
    );
    expect(denied.status).toBe(400);
    await expect(done).rejects.toThrow(/access_denied/);
    expect(store.get(gw.url)).toBeUndefined();
  });
});

describe('a fixed loopback redirect URI (IdPs that match redirect URIs exactly, port included)', () => {
  async function freePort(): Promise<number> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return port;
  }

  it("listens on the gateway's warden_cli_redirect_uri, and --redirect-uri overrides it", async () => {
    const port = await freePort();
    gw.metadata = { ...baseMetadata, warden_cli_redirect_uri: `http://127.0.0.1:${port}/callback` };
    const first = await startLogin(freshStore());
    expect(new URL(first.url).searchParams.get('redirect_uri')).toBe(`http://127.0.0.1:${port}/callback`);
    await new IdpAgent(new URL(gw.url).origin).signIn(first.url, 'bob');
    expect((await first.done).login.username).toBe('bob');

    const other = await freePort();
    const second = await startLogin(freshStore(), { redirectUri: `http://127.0.0.1:${other}/callback` });
    expect(new URL(second.url).searchParams.get('redirect_uri')).toBe(`http://127.0.0.1:${other}/callback`);
    await new IdpAgent(new URL(gw.url).origin).signIn(second.url, 'carol');
    expect((await second.done).login.username).toBe('carol');
  });

  it('refuses a redirect URI the CLI could not be listening on (off loopback, https, a query)', async () => {
    for (const bad of [
      'https://127.0.0.1:8765/callback',
      'http://evil.example.com:8765/callback',
      'http://127.0.0.1.nip.io:8765/callback',
      'http://127.0.0.1:8765/callback?next=https://evil.example.com',
    ]) {
      gw.metadata = { ...baseMetadata, warden_cli_redirect_uri: bad };
      await expect(discoverGateway(gw.url), bad).rejects.toThrow(/must be a plain http URL on 127\.0\.0\.1/);
      gw.metadata = { ...baseMetadata };
      await expect(
        login(gw.url, { browser: false, store: freshStore(), redirectUri: bad, say: () => undefined }),
        bad,
      ).rejects.toThrow(/--redirect-uri: must be a plain http URL/);
    }
  });
});

describe('warden login --device', () => {
  it('signs erin in with the device authorization grant', async () => {
    const store = freshStore();
    const { url, done, lines } = await startLogin(store, { device: true });
    expect(lines.join('\n')).toMatch(/enter the code\n\n {2}[A-Z]{4}-[A-Z]{4}/);
    const page = await new IdpAgent(new URL(gw.url).origin).signIn(url, 'erin');
    expect(page.res.status).toBe(200);
    const { login: stored } = await done;
    expect(stored).toMatchObject({ grant: 'device_code', username: 'erin' });
    expect(claims(stored.accessToken)).toMatchObject({ sub: 'erin', aud: 'warden' });
    expect(statSync(store.path).mode & 0o777).toBe(0o600);
  }, 30_000);
});

describe('refresh and logout', () => {
  it('refreshes an access token about to expire with the refresh token, and keeps the result', async () => {
    const { result, store } = await signedIn('carol');
    const before = result.login;
    // Expiring in 30 s: within the minute the CLI keeps in hand, so it refreshes first.
    const now = () => before.expiresAt! - 30;
    const token = await storedAccessToken(gw.url, store, now);
    expect(token).not.toBe(before.accessToken);
    expect(claims(token!)).toMatchObject({ sub: 'carol', aud: 'warden' });
    const after = store.get(gw.url)!;
    expect(after.accessToken).toBe(token);
    expect(after.refreshToken).toEqual(expect.any(String));
    expect(after.refreshToken).not.toBe(before.refreshToken); // rotated: the old one is spent
    expect(statSync(store.path).mode & 0o777).toBe(0o600);

    // The spent refresh token no longer works: the sign-in is over, and forgotten.
    store.put(gw.url, { ...after, refreshToken: before.refreshToken, expiresAt: 1 });
    const err = await storedAccessToken(gw.url, store).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).exitCode).toBe(EXIT.unreachable);
    expect((err as CliError).message).toMatch(/no longer valid.*warden login --url/);
    expect(store.get(gw.url)).toBeUndefined();
  });

  it('keeps a sign-in across a restart of the twin’s IdP (its grant and refresh token are on disk)', async () => {
    const state = mkdtempSync(join(tmpdir(), 'warden-idp-'));
    const files = { jwksPath: join(state, 'idp-keys.json'), storePath: join(state, 'idp-store.json') };
    let first: FakeGateway | undefined = await startFakeGateway(files);
    let second: FakeGateway | undefined;
    try {
      const port = Number(new URL(first.url).port);
      const { result: signed, store } = await signedIn('carol', freshStore(), first);
      await first.close();
      first = undefined;
      expect(statSync(files.storePath).mode & 0o777).toBe(0o600);
      // What the file keeps: the grant and the refresh token, never an access token.
      const kept = Object.keys(JSON.parse(readFileSync(files.storePath, 'utf8')) as object);
      expect(kept.some((k) => k.startsWith('RefreshToken:'))).toBe(true);
      expect(kept.some((k) => k.startsWith('Grant:'))).toBe(true);
      expect(kept.filter((k) => !/^(Grant|RefreshToken|Session):/.test(k))).toEqual([]);
      second = await startFakeGateway({ ...files, port });
      // Due for a refresh: it works against the restarted IdP, with the refresh token from before.
      const token = await storedAccessToken(second.url, store, () => signed.login.expiresAt! - 30);
      expect(token).not.toBe(signed.login.accessToken);
      expect(claims(token!)).toMatchObject({ sub: 'carol', aud: 'warden' });
    } finally {
      await first?.close();
      await second?.close();
      rmSync(state, { recursive: true, force: true });
    }
  });

  it('an expired sign-in without a refresh token asks for a new login instead of using it', async () => {
    const { result, store } = await signedIn('dave');
    const { refreshToken: _r, ...noRefresh } = result.login;
    store.put(gw.url, { ...noRefresh, expiresAt: 1 });
    await expect(storedAccessToken(gw.url, store)).rejects.toThrow(/expired: run `warden login/);
  });

  it('logout revokes the tokens at the IdP and deletes the stored sign-in', async () => {
    const { result, store } = await signedIn('alice');
    const kept = result.login;
    const out = await logout(gw.url, store);
    // The access token is a JWT the IdP cannot revoke (RFC 7009 §2.2.1); the refresh token it can.
    expect(out).toEqual({ signedIn: true, revoked: ['refresh_token'] });
    expect(store.get(gw.url)).toBeUndefined();
    expect(() => statSync(store.path)).toThrow(/ENOENT/); // the last sign-in gone: so is the file
    // The revoked refresh token is dead at the IdP.
    store.put(gw.url, { ...kept, expiresAt: 1 });
    await expect(storedAccessToken(gw.url, store)).rejects.toThrow(/no longer valid/);
    expect(await logout(gw.url, store)).toEqual({ signedIn: false, revoked: [] });
  });
});

describe('refusals', () => {
  it('refuses metadata that names a plain-http IdP off loopback', async () => {
    gw.metadata = { ...baseMetadata, authorization_servers: ['http://idp.example.com/oauth2'] };
    await expect(discoverGateway(gw.url)).rejects.toThrow(/plain http to http:\/\/idp\.example\.com/);
  });

  it('refuses metadata describing another resource (RFC 9728 §3.3)', async () => {
    gw.metadata = { ...baseMetadata, resource: 'https://other.example.com' };
    await expect(discoverGateway(gw.url)).rejects.toThrow(/says it is "https:\/\/other\.example\.com"/);
  });

  it('says so when the gateway names no CLI client', async () => {
    const { warden_cli_client_id: _c, ...rest } = baseMetadata;
    gw.metadata = rest;
    await expect(discoverGateway(gw.url)).rejects.toThrow(/no client for `warden login`.*oidcCliClientId/);
  });

  it('refuses a credentials file others can read', async () => {
    const { store } = await signedIn('bob');
    chmodSync(store.path, 0o644);
    await expect(storedAccessToken(gw.url, store)).rejects.toThrow(/readable by others \(mode 644\)/);
  });

  it('writes under XDG_CONFIG_HOME, else ~/.config', () => {
    expect(credentialsPath({ XDG_CONFIG_HOME: '/x/cfg' })).toBe('/x/cfg/warden/credentials.json');
    expect(credentialsPath({ XDG_CONFIG_HOME: 'relative' })).toMatch(
      /\/\.config\/warden\/credentials\.json$/,
    );
  });
});

describe('dev-user shortcuts only against a loopback twin', () => {
  const remote = [
    'https://warden.example.com',
    'http://127.0.0.1.nip.io:8080',
    'http://localhost.example.com',
    'http://10.0.0.8:8080',
  ];

  it('tells loopback from look-alikes', () => {
    for (const url of [
      'http://127.0.0.1:8080',
      'http://localhost:8080',
      'http://[::1]:8080',
      'http://127.3.2.1',
    ]) {
      expect(isLoopback(url)).toBe(true);
    }
    for (const url of remote) expect(isLoopback(url)).toBe(false);
  });

  it('--as, `token <user>` and the default dev user send nothing to a remote gateway, exit 2', async () => {
    const fetchSpy = vi.spyOn(globalThis, 'fetch');
    const stderr = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const env = { WARDEN_TOKEN: process.env.WARDEN_TOKEN, XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME };
    delete process.env.WARDEN_TOKEN;
    process.env.XDG_CONFIG_HOME = join(dir, 'empty-config');
    try {
      for (const url of remote) {
        for (const argv of [
          ['--url', url, '--as', 'bob', 'sql', 'demo', 'SELECT 1'],
          ['--url', url, 'token', 'alice'],
          ['--url', url, 'token', 'agent-demo'],
          ['--url', url, '--as', 'agent-demo', 'approvals'],
        ]) {
          process.exitCode = undefined;
          await main(argv);
          expect(process.exitCode, argv.join(' ')).toBe(EXIT.usage);
        }
        // No --as, no token, no sign-in: refused (exit 4) rather than falling back to a dev user.
        process.exitCode = undefined;
        await main(['--url', url, 'approvals']);
        expect(process.exitCode).toBe(EXIT.unreachable);
      }
      await expect(devToken('https://warden.example.com', 'bob')).rejects.toThrow(
        /only against a local twin/,
      );
      expect(fetchSpy).not.toHaveBeenCalled();
      const said = stderr.mock.calls.map((c) => String(c[0])).join('');
      expect(said).toContain('works only against a local twin');
      expect(said).toContain('warden login --url https://warden.example.com');
      expect(said).not.toContain('secret');
    } finally {
      process.exitCode = undefined;
      if (env.WARDEN_TOKEN !== undefined) process.env.WARDEN_TOKEN = env.WARDEN_TOKEN;
      if (env.XDG_CONFIG_HOME !== undefined) process.env.XDG_CONFIG_HOME = env.XDG_CONFIG_HOME;
      else delete process.env.XDG_CONFIG_HOME;
    }
  });

  it('login refuses --as next to it', async () => {
    const stderr = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    process.exitCode = undefined;
    await main(['--url', gw.url, '--as', 'bob', 'login', '--no-browser']);
    expect(process.exitCode).toBe(EXIT.usage);
    expect(stderr.mock.calls.map((c) => String(c[0])).join('')).toContain('--as names a dev user');
    process.exitCode = undefined;
  });
});

// A file the CLI finds in its config dir that is not its own layout is refused, not overwritten.
it('refuses a credentials file it does not understand', () => {
  const store = freshStore();
  store.put('http://127.0.0.1:1', {
    issuer: 'http://127.0.0.1:1/oidc',
    clientId: 'c',
    accessToken: 'a',
    tokenType: 'bearer',
    grant: 'authorization_code',
    obtainedAt: new Date().toISOString(),
  });
  writeFileSync(store.path, '{"something": "else"}', { mode: 0o600 });
  expect(() => store.get('http://127.0.0.1:1')).toThrow(/not a Warden credentials file/);
});

it('the stack accepts only a loopback http oidcCliRedirectUri', () => {
  const base = { oidcIssuer: 'https://idp.example.com', oidcAudience: 'warden', groupsClaim: 'groups' };
  for (const ok of ['http://localhost:8765/callback', 'http://127.0.0.1:8765/callback', 'http://[::1]/cb']) {
    expect(
      resolveSettings({ ...base, oidcCliClientId: 'cli', oidcCliRedirectUri: ok }).oidcCliRedirectUri,
    ).toBe(ok);
  }
  for (const bad of [
    'https://warden.example.com/callback',
    'http://localhost.example.com/cb',
    'http://127.0.0.1/cb?x=1',
  ]) {
    expect(() => resolveSettings({ ...base, oidcCliRedirectUri: bad }), bad).toThrow(
      /oidcCliRedirectUri must be/,
    );
  }
});

/**
 * `warden login`: signing in to a gateway's IdP from the command line. The gateway's RFC 9728
 * metadata (`/.well-known/oauth-protected-resource`) names the IdP (`authorization_servers`) and
 * the CLI's public client (`warden_cli_client_id`); openid-client discovers the IdP from there.
 * Two ways in: authorization code + PKCE with a loopback redirect (RFC 8252: a one-shot server on
 * 127.0.0.1, any port), or the device authorization grant (RFC 8628) where the IdP offers it. The
 * ID token is verified (claims and, via enableNonRepudiationChecks, its signature) before anything
 * is stored. Plain http is accepted only for a loopback IdP of a loopback gateway (the twin).
 */
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { CliError, EXIT, isLoopback } from './cli-client.js';
import { CredentialStore, gatewayKey, type StoredLogin } from './cli-credentials.js';

/** What the gateway tells the CLI about signing in (its protected-resource metadata). */
export interface GatewaySignIn {
  readonly gateway: string;
  readonly issuer: string;
  readonly clientId: string;
  /** Scopes the gateway wants in its tokens (warden_cli_scope, else scopes_supported). */
  readonly scopes: readonly string[];
  /** The loopback redirect URI registered at the IdP (warden_cli_redirect_uri), when it is fixed. */
  readonly redirectUri?: string;
}

const METADATA_PATH = '/.well-known/oauth-protected-resource';
/** Refresh this long before the access token's expiry, so a call never leaves with a dying token. */
const EXPIRY_SKEW_SECONDS = 60;

export async function discoverGateway(gateway: string): Promise<GatewaySignIn> {
  const url = `${gateway}${METADATA_PATH}`;
  let res: Response;
  try {
    res = await fetch(url, { headers: { accept: 'application/json' }, redirect: 'error' });
  } catch (error) {
    throw new CliError(`cannot reach the gateway at ${gateway}: ${describe(error)}`, EXIT.unreachable);
  }
  const body = (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined;
  if (!res.ok || !body) {
    throw new CliError(`${url} answered ${res.status}: is ${gateway} a Warden gateway?`, EXIT.unreachable);
  }
  // RFC 9728 §3.3: metadata whose resource is not the URL it was fetched for must not be used.
  if (typeof body.resource !== 'string' || !sameGateway(body.resource, gateway)) {
    throw new CliError(
      `the gateway at ${gateway} says it is ${JSON.stringify(body.resource)}: use that as --url`,
    );
  }
  const servers = body.authorization_servers;
  const issuer = Array.isArray(servers) && typeof servers[0] === 'string' ? servers[0] : undefined;
  if (!issuer) throw new CliError(`${url} names no authorization server`);
  const clientId = body.warden_cli_client_id;
  if (typeof clientId !== 'string' || clientId === '') {
    throw new CliError(
      `the gateway at ${gateway} has no client for \`warden login\` (its operator sets oidcCliClientId: ` +
        `docs/cli.md#signing-in); pass a token from its IdP with --token or WARDEN_TOKEN instead`,
    );
  }
  const scopeText =
    typeof body.warden_cli_scope === 'string'
      ? body.warden_cli_scope
      : Array.isArray(body.scopes_supported)
        ? body.scopes_supported.filter((s): s is string => typeof s === 'string').join(' ')
        : 'openid';
  checkTransport(gateway, issuer);
  const redirectUri = body.warden_cli_redirect_uri;
  if (redirectUri !== undefined && typeof redirectUri !== 'string') {
    throw new CliError(`${url}: warden_cli_redirect_uri is not a string`);
  }
  if (redirectUri !== undefined) parseRedirectUri(redirectUri, `${url} warden_cli_redirect_uri`);
  return {
    gateway,
    issuer,
    clientId,
    scopes: scopeText.split(/\s+/).filter(Boolean),
    ...(redirectUri ? { redirectUri } : {}),
  };
}

function sameGateway(a: string, b: string): boolean {
  try {
    return gatewayKey(a) === gatewayKey(b);
  } catch {
    return false;
  }
}

/** https everywhere, except a loopback IdP behind a loopback gateway (the local twin). */
function checkTransport(gateway: string, issuer: string): void {
  let parsed: URL;
  try {
    parsed = new URL(issuer);
  } catch {
    throw new CliError(`the gateway names an IdP that is not a URL: ${JSON.stringify(issuer)}`);
  }
  if (parsed.protocol === 'https:') return;
  if (parsed.protocol === 'http:' && isLoopback(issuer) && isLoopback(gateway)) return;
  throw new CliError(`refusing to sign in over plain http to ${issuer}: the IdP must use https`);
}

async function idpConfiguration(
  gateway: string,
  issuer: string,
  clientId: string,
): Promise<oidc.Configuration> {
  checkTransport(gateway, issuer);
  const insecure = new URL(issuer).protocol === 'http:';
  let config: oidc.Configuration;
  try {
    config = await oidc.discovery(new URL(issuer), clientId, undefined, oidc.None(), {
      ...(insecure ? { execute: [oidc.allowInsecureRequests] } : {}),
    });
  } catch (error) {
    throw new CliError(`cannot discover the IdP at ${issuer}: ${describe(error)}`, EXIT.unreachable);
  }
  // Verify the ID token's signature too, not only its claims (openid-client skips it by default for
  // a token endpoint reached over TLS).
  oidc.enableNonRepudiationChecks(config);
  return config;
}

/**
 * The scopes to ask for: openid, then profile where the IdP offers it (the ID token then names the
 * person, for `whoami`), the gateway's own, and offline_access where offered (a refresh token).
 */
export function loginScope(signIn: GatewaySignIn, config: oidc.Configuration, override?: string): string {
  if (override) return override;
  const offered = new Set(config.serverMetadata().scopes_supported ?? []);
  const scopes = new Set(['openid']);
  if (offered.has('profile')) scopes.add('profile');
  for (const s of signIn.scopes) scopes.add(s);
  if (offered.has('offline_access')) scopes.add('offline_access');
  return [...scopes].join(' ');
}

export interface LoginOptions {
  readonly device?: boolean;
  /** Open a browser (false: only print the URL). @default true */
  readonly browser?: boolean;
  readonly scope?: string;
  /** The loopback redirect URI to listen on. @default the gateway's, else 127.0.0.1, any port */
  readonly redirectUri?: string;
  /** @default 300 */
  readonly timeoutSeconds?: number;
  readonly store?: CredentialStore;
  /** Where the URL to open and progress go. @default stderr */
  readonly say?: (line: string) => void;
}

export interface LoginResult {
  readonly gateway: string;
  readonly login: StoredLogin;
  readonly path: string;
}

export async function login(gateway: string, options: LoginOptions = {}): Promise<LoginResult> {
  const say = options.say ?? ((line: string) => process.stderr.write(`${line}\n`));
  const store = options.store ?? new CredentialStore();
  const timeoutMs = (options.timeoutSeconds ?? 300) * 1000;
  const signIn = await discoverGateway(gateway);
  const config = await idpConfiguration(gateway, signIn.issuer, signIn.clientId);
  const scope = loginScope(signIn, config, options.scope);
  const hasDevice = Boolean(config.serverMetadata().device_authorization_endpoint);
  if (options.device && !hasDevice) {
    throw new CliError(
      `--device: the IdP at ${signIn.issuer} does not offer the device authorization grant; sign in with the browser instead`,
    );
  }
  // No --device and no way to show a browser here (an SSH session, a container): the device
  // grant lets any other device sign in, where the IdP offers it.
  const wantBrowser = options.browser !== false;
  const useDevice = options.device || (wantBrowser && !canOpenBrowser() && hasDevice);
  say(`Signing in to ${gateway} with ${signIn.issuer} (client ${signIn.clientId})`);
  const tokens = useDevice
    ? await deviceGrant(config, scope, timeoutMs, say)
    : await codeGrant(
        config,
        scope,
        parseRedirectUri(
          options.redirectUri ?? signIn.redirectUri ?? DEFAULT_REDIRECT,
          options.redirectUri ? '--redirect-uri' : 'redirect URI',
        ),
        timeoutMs,
        wantBrowser && canOpenBrowser(),
        say,
      );
  const stored = toStored(
    signIn.issuer,
    signIn.clientId,
    tokens,
    useDevice ? 'device_code' : 'authorization_code',
  );
  store.put(gateway, stored);
  return { gateway, login: stored, path: store.path };
}

type Tokens = oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;

function toStored(
  issuer: string,
  clientId: string,
  tokens: Tokens,
  grant: StoredLogin['grant'],
  previous?: StoredLogin,
): StoredLogin {
  const claims = tokens.claims();
  const expiresIn = tokens.expiresIn();
  const username = claims
    ? ['preferred_username', 'username', 'email', 'upn', 'name']
        .map((k) => claims[k])
        .find((v): v is string => typeof v === 'string')
    : undefined;
  const refreshToken = tokens.refresh_token ?? previous?.refreshToken;
  const idToken = tokens.id_token ?? previous?.idToken;
  const subject = claims?.sub ?? previous?.subject;
  const name = username ?? previous?.username;
  return {
    issuer,
    clientId,
    accessToken: tokens.access_token,
    tokenType: tokens.token_type ?? 'bearer',
    ...(refreshToken ? { refreshToken } : {}),
    ...(idToken ? { idToken } : {}),
    ...(expiresIn !== undefined ? { expiresAt: Math.floor(Date.now() / 1000) + expiresIn } : {}),
    ...(tokens.scope ? { scope: tokens.scope } : previous?.scope ? { scope: previous.scope } : {}),
    ...(subject ? { subject } : {}),
    ...(name ? { username: name } : {}),
    grant,
    obtainedAt: new Date().toISOString(),
  };
}

/** Authorization code + PKCE, the browser sent back to a one-shot server on 127.0.0.1. */
async function codeGrant(
  config: oidc.Configuration,
  scope: string,
  redirect: URL,
  timeoutMs: number,
  openIt: boolean,
  say: (line: string) => void,
): Promise<Tokens> {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const callback = await loopbackCallback(state, timeoutMs, say, redirect);
  try {
    const redirectUri = callback.redirectUri;
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    say(`Open this URL in a browser to sign in:\n\n  ${url.href}\n`);
    if (openIt) openBrowser(url.href);
    say('Waiting for the sign-in to finish (Ctrl-C to cancel)…');
    const { url: back, respond } = await callback.next;
    try {
      const tokens = await oidc.authorizationCodeGrant(
        config,
        back,
        { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true },
        { redirect_uri: redirectUri },
      );
      respond(200, 'Signed in to Warden', 'You can close this tab and return to the terminal.');
      return tokens;
    } catch (error) {
      respond(400, 'Sign-in failed', describe(error));
      throw new CliError(`sign-in failed: ${describe(error)}`, EXIT.refused, { cause: error });
    }
  } finally {
    callback.close();
  }
}

interface LoopbackCallback {
  readonly redirectUri: string;
  /** The first callback carrying this sign-in's state, and a way to answer the browser. */
  readonly next: Promise<{ url: URL; respond: (status: number, title: string, text: string) => void }>;
  close(): void;
}

/**
 * A redirect URI `warden login` can serve: http on a loopback host, no query or fragment. Port 0
 * (or none) means any free port, for IdPs that match loopback redirects port-free (RFC 8252 §7.3:
 * oidc-provider, Entra ID); IdPs that match exactly (Cognito, Okta) need the registered port.
 */
export function parseRedirectUri(value: string, where: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new CliError(`${where}: not a URL: ${JSON.stringify(value)}`, EXIT.usage);
  }
  if (url.protocol !== 'http:' || !isLoopback(url.href) || url.search || url.hash || url.username) {
    throw new CliError(
      `${where}: must be a plain http URL on 127.0.0.1, [::1] or localhost (the CLI listens there), got ${value}`,
      EXIT.usage,
    );
  }
  return url;
}

const DEFAULT_REDIRECT = 'http://127.0.0.1:0/callback';

/**
 * The redirect target: a one-shot server on the loopback interface, by default GET /callback on
 * 127.0.0.1 and a free port (an IP literal rather than `localhost`, RFC 8252 §8.3); `localhost`
 * listens on both 127.0.0.1 and ::1, since a browser may pick either. A callback whose state is
 * not this sign-in's (another page, a stale tab, an attacker trying to log the CLI in to their own
 * account) is answered 400 and ignored.
 */
export async function loopbackCallback(
  state: string,
  timeoutMs: number,
  say: (line: string) => void = () => undefined,
  redirect: URL = new URL(DEFAULT_REDIRECT),
): Promise<LoopbackCallback> {
  type Arrival = { url: URL; respond: (status: number, title: string, text: string) => void };
  let settle!: { resolve: (v: Arrival) => void; reject: (e: Error) => void };
  const next = new Promise<Arrival>((resolve, reject) => (settle = { resolve, reject }));
  let done = false;
  const path = redirect.pathname;
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://loopback.invalid');
    if (req.method !== 'GET' || url.pathname !== path) {
      page(res, 404, 'Not found', 'This is the Warden CLI waiting for a sign-in.');
      return;
    }
    if (done) {
      page(res, 409, 'Already handled', 'This sign-in has already finished; return to the terminal.');
      return;
    }
    if (url.searchParams.get('state') !== state) {
      say('warden: ignored a sign-in callback that does not belong to this sign-in (wrong state)');
      page(
        res,
        400,
        'Not this sign-in',
        'This response does not belong to the sign-in in progress; it was ignored.',
      );
      return;
    }
    done = true;
    settle.resolve({
      url: new URL(url.pathname + url.search, redirectUri),
      respond: (status, title, text) => page(res, status, title, text),
    });
  };
  const host = redirect.hostname.replace(/^\[|\]$/g, '');
  const addresses = host === 'localhost' ? ['127.0.0.1', '::1'] : [host];
  const servers: Server[] = [];
  let port = Number(redirect.port || 0);
  for (const [i, address] of addresses.entries()) {
    const server = createServer(handle);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, address, () => resolve());
      });
    } catch (error) {
      // localhost's second address is a courtesy (no IPv6 here): the first one must work.
      if (i > 0) continue;
      const code = (error as NodeJS.ErrnoException).code;
      throw new CliError(
        code === 'EADDRINUSE'
          ? `cannot listen on ${address}:${port} for the sign-in callback: the port is in use`
          : `cannot listen on ${address}:${port} for the sign-in callback: ${describe(error)}`,
      );
    }
    port = (server.address() as AddressInfo).port;
    servers.push(server);
  }
  const base = new URL(redirect.href);
  base.port = String(port);
  const redirectUri = base.href;
  const timer = setTimeout(() => {
    settle.reject(
      new CliError(`no sign-in within ${Math.round(timeoutMs / 1000)} s: run \`warden login\` again`),
    );
  }, timeoutMs);
  timer.unref();
  return {
    redirectUri,
    next,
    close() {
      clearTimeout(timer);
      for (const server of servers) {
        server.closeAllConnections?.();
        server.close();
      }
    },
  };
}

function page(res: ServerResponse, status: number, title: string, text: string): void {
  const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
    connection: 'close',
  });
  res.end(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>` +
      `<style>body{font-family:system-ui,sans-serif;max-width:30rem;margin:4rem auto;padding:0 1rem}</style></head>` +
      `<body><h1>${esc(title)}</h1><p>${esc(text)}</p></body></html>`,
  );
}

/** RFC 8628: show the code, poll until the person approved it elsewhere. */
async function deviceGrant(
  config: oidc.Configuration,
  scope: string,
  timeoutMs: number,
  say: (line: string) => void,
): Promise<Tokens> {
  const started = await oidc.initiateDeviceAuthorization(config, { scope }).catch((error: unknown) => {
    throw new CliError(`the IdP refused the device sign-in: ${describe(error)}`, EXIT.refused, {
      cause: error,
    });
  });
  say(
    `On any device, open ${started.verification_uri} and enter the code\n\n  ${started.user_code}\n` +
      (started.verification_uri_complete ? `\n(or open ${started.verification_uri_complete})\n` : ''),
  );
  say('Waiting for the sign-in to finish (Ctrl-C to cancel)…');
  const signal = AbortSignal.timeout(Math.min(timeoutMs, (started.expires_in ?? 600) * 1000));
  try {
    return await oidc.pollDeviceAuthorizationGrant(config, started, undefined, { signal });
  } catch (error) {
    if (signal.aborted)
      throw new CliError('the device code expired before anyone signed in: run `warden login` again');
    throw new CliError(`sign-in failed: ${describe(error)}`, EXIT.refused, { cause: error });
  }
}

/** Whether a browser window can appear here: not over SSH or in a display-less Linux box. */
export function canOpenBrowser(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.BROWSER) return true;
  if (process.platform === 'darwin' || process.platform === 'win32') return !env.SSH_CONNECTION;
  return Boolean(env.DISPLAY || env.WAYLAND_DISPLAY);
}

function openBrowser(url: string): void {
  const [cmd, args] = process.env.BROWSER
    ? [process.env.BROWSER, [url]]
    : process.platform === 'darwin'
      ? ['open', [url]]
      : process.platform === 'win32'
        ? ['rundll32', ['url.dll,FileProtocolHandler', url]]
        : ['xdg-open', [url]];
  try {
    const child = spawn(cmd, args, { detached: true, stdio: 'ignore' });
    child.on('error', () => undefined);
    child.unref();
  } catch {
    // The URL is printed; opening it is a convenience.
  }
}

/**
 * The access token stored for `gateway`, refreshed first when it expires within a minute. Undefined
 * when nobody signed in there; an error (exit 4) when the sign-in is over and needs a new login.
 */
export async function storedAccessToken(
  gateway: string,
  store: CredentialStore = new CredentialStore(),
  now: () => number = () => Date.now() / 1000,
): Promise<string | undefined> {
  const current = store.get(gateway);
  if (!current) return undefined;
  if (current.expiresAt === undefined || current.expiresAt - EXPIRY_SKEW_SECONDS > now()) {
    return current.accessToken;
  }
  return (await refresh(gateway, current, store)).accessToken;
}

export async function refresh(
  gateway: string,
  current: StoredLogin,
  store: CredentialStore,
): Promise<StoredLogin> {
  const again = `run \`warden login --url ${gateway}\``;
  if (!current.refreshToken) {
    throw new CliError(`your sign-in to ${gateway} expired: ${again}`, EXIT.unreachable);
  }
  const config = await idpConfiguration(gateway, current.issuer, current.clientId);
  let tokens: Tokens;
  try {
    tokens = await oidc.refreshTokenGrant(config, current.refreshToken);
  } catch (error) {
    if (error instanceof oidc.ResponseBodyError && error.error === 'invalid_grant') {
      // Revoked, expired or already used: it will never work again.
      store.delete(gateway);
      throw new CliError(
        `your sign-in to ${gateway} is no longer valid (${error.error}): ${again}`,
        EXIT.unreachable,
      );
    }
    throw new CliError(`could not refresh the sign-in to ${gateway}: ${describe(error)}`, EXIT.unreachable);
  }
  // A refreshed ID token must name the same person (openid-client checks iss/aud; sub is ours).
  const sub = tokens.claims()?.sub;
  if (sub !== undefined && current.subject !== undefined && sub !== current.subject) {
    store.delete(gateway);
    throw new CliError(`the IdP refreshed the sign-in to ${gateway} for someone else: ${again}`);
  }
  const next = toStored(current.issuer, current.clientId, tokens, current.grant, current);
  store.put(gateway, next);
  return next;
}

export interface LogoutResult {
  readonly signedIn: boolean;
  /** Which tokens the IdP revoked; empty when it offers no revocation or could not be reached. */
  readonly revoked: readonly string[];
  readonly warning?: string;
}

/** Revokes the tokens at the IdP where it offers revocation, then forgets them either way. */
export async function logout(
  gateway: string,
  store: CredentialStore = new CredentialStore(),
): Promise<LogoutResult> {
  const current = store.get(gateway);
  if (!current) return { signedIn: false, revoked: [] };
  const revoked: string[] = [];
  let warning: string | undefined;
  try {
    const config = await idpConfiguration(gateway, current.issuer, current.clientId);
    if (!config.serverMetadata().revocation_endpoint) {
      warning = 'the IdP offers no token revocation: the access token stays valid until it expires';
    } else {
      // The refresh token first: revoking it ends the grant, so no new access token comes of it.
      if (current.refreshToken) {
        await oidc.tokenRevocation(config, current.refreshToken, { token_type_hint: 'refresh_token' });
        revoked.push('refresh_token');
      }
      try {
        await oidc.tokenRevocation(config, current.accessToken, { token_type_hint: 'access_token' });
        revoked.push('access_token');
      } catch (error) {
        // RFC 7009 §2.2.1: an IdP may not revoke self-contained (JWT) access tokens.
        if (!(error instanceof oidc.ResponseBodyError && error.error === 'unsupported_token_type'))
          throw error;
        if (!current.refreshToken)
          warning = 'the IdP cannot revoke the access token: it stays valid until it expires';
      }
    }
  } catch (error) {
    warning = `could not revoke the tokens at ${current.issuer} (${describe(error)}); forgot them here anyway`;
  }
  store.delete(gateway);
  return { signedIn: true, revoked, ...(warning ? { warning } : {}) };
}

function describe(error: unknown): string {
  if (error instanceof oidc.ResponseBodyError) {
    return `${error.error}${error.error_description ? `: ${error.error_description}` : ''}`;
  }
  if (error instanceof oidc.AuthorizationResponseError) {
    return `${error.error}${error.error_description ? `: ${error.error_description}` : ''}`;
  }
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    return `${error.message}${cause}`;
  }
  return String(error);
}

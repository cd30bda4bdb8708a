/**
 * The local twin's identity provider: a real OpenID Connect provider (`oidc-provider`) with dev
 * users and clients, mounted under the gateway's own HTTP server (e.g. at `/oidc`). Tokens it
 * issues are RS256 JWT access tokens for Warden's audience, verified by the same code that
 * verifies Cognito/Okta/Entra tokens in AWS. Local twin only: nothing here ships in a Lambda.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname } from 'node:path';

import { createLocalJWKSet, jwtVerify, type JWK, type JWTPayload } from 'jose';
import Provider, { errors } from 'oidc-provider';
import { createOidcStore } from './oidc-store.js';
import type {
  Account,
  Client,
  Configuration,
  Jwk,
  KoaContextWithOIDC,
  ResourceServerInfo,
} from 'oidc-provider';

// oidc-provider v9 targets Node 22 and calls URL.parse, which Node 20 lacks (added in 22.1).
// The twin must run on the Node 20 dev machines too; this follows the WHATWG definition exactly.
if (typeof (URL as { parse?: unknown }).parse !== 'function') {
  Object.defineProperty(URL, 'parse', {
    configurable: true,
    writable: true,
    value: (url: string, base?: string): URL | null => {
      try {
        return new URL(url, base);
      } catch {
        return null;
      }
    },
  });
}

export const DEV_USER_GRANT_TYPE = 'urn:warden:params:oauth:grant-type:dev-user';
/** RFC 8693 OAuth 2.0 Token Exchange. */
export const TOKEN_EXCHANGE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/**
 * The claim the twin puts in an owned agent's client-credentials tokens (for IdPs without token
 * exchange: Warden's AGENT_OWNER_CLAIM names it).
 */
export const OWNER_CLAIM = 'warden_owner';

export interface DevUser {
  readonly username: string;
  readonly groups: readonly string[];
}

/** The local twin's people. Passwords are not checked: the twin trusts whoever holds the machine. */
export const DEV_USERS: readonly DevUser[] = [
  { username: 'alice', groups: ['engineers'] },
  { username: 'bob', groups: ['dba'] },
  { username: 'carol', groups: ['support'] },
  { username: 'dave', groups: ['auditors'] },
  { username: 'erin', groups: ['engineers', 'dba'] },
];

export interface DevClient {
  readonly clientId: string;
  readonly clientSecret: string;
}

export interface DevIdpOptions {
  /** Issuer URL including the mount path, e.g. `http://127.0.0.1:8080/oidc`. */
  readonly issuer: string;
  /** The `aud` Warden expects in access tokens, e.g. `warden`. */
  readonly audience: string;
  /** Redirect URIs of the approval page's client (`warden-approval`). @default [] */
  readonly redirectUris?: readonly string[];
  /** File that keeps the signing keys (private JWKS) so tokens survive restarts. @default in memory */
  readonly jwksPath?: string;
  /**
   * File that keeps grants, refresh tokens and sessions (lib/local/oidc-store.ts), so a
   * `warden login` survives restarts. @default oidc-provider's in-memory storage
   */
  readonly storePath?: string;
  /** Access-token claim carrying the groups. @default 'groups' */
  readonly groupsClaim?: string;
  /** Access-token lifetime in seconds. @default 3600 */
  readonly accessTokenTtl?: number;
  /** Replaces the built-in dev users. @default DEV_USERS */
  readonly users?: readonly DevUser[];
}

export interface DevIdp {
  /** Mount under the issuer's path: requests whose URL starts with it (or already stripped of it). */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** Writes what `storePath` keeps now (the twin calls it when it stops). */
  flush(): void;
  readonly issuer: string;
  readonly jwksUri: string;
  readonly tokenEndpoint: string;
  readonly audience: string;
  /** The RFC 8707 resource indicator that maps to `audience` (the audience when it is a URI). */
  readonly resource: string;
  readonly users: readonly DevUser[];
  readonly clients: {
    /** Authorization code + PKCE, used by the approval page. */
    readonly approval: DevClient & { readonly redirectUris: readonly string[] };
    /**
     * Client credentials; its tokens carry groups ['agents']. It may also exchange a user's token
     * (RFC 8693) for one that names the user as `sub` and the agent as `act`.
     */
    readonly agent: DevClient & { readonly groups: readonly string[] };
    /** A client-credentials agent owned by erin: its tokens carry `warden_owner: "erin"`. */
    readonly ownedAgent: DevClient & { readonly groups: readonly string[]; readonly owner: string };
    /** The dev-user grant (`npx warden token <user>`). */
    readonly cli: DevClient;
    /**
     * `npx warden login`: a public native client (no secret) with loopback redirect URIs on any
     * port (RFC 8252 §7.3), authorization code + PKCE, refresh tokens and the device grant.
     */
    readonly login: { readonly clientId: string; readonly redirectUris: readonly string[] };
  };
  /** A real access token for a dev user, signed with the provider's keys. */
  issueUserToken(username: string, opts?: { expiresIn?: number }): Promise<string>;
  /** A client-credentials access token for an agent client (default `agent-demo`). */
  issueAgentToken(clientId?: string): Promise<string>;
}

const APPROVAL_CLIENT = { clientId: 'warden-approval', clientSecret: 'warden-approval-secret' };
const AGENT_CLIENT = { clientId: 'agent-demo', clientSecret: 'agent-demo-secret', groups: ['agents'] };
const OWNED_AGENT_CLIENT = {
  clientId: 'agent-erin',
  clientSecret: 'agent-erin-secret',
  groups: ['agents'],
  owner: 'erin',
};
const CLI_CLIENT = { clientId: 'warden-cli', clientSecret: 'warden-cli-secret' };
const LOGIN_CLIENT = {
  clientId: 'warden-cli-login',
  // Native clients may use any port on a loopback address (oidc-provider matches them port-free).
  redirectUris: ['http://127.0.0.1/callback', 'http://[::1]/callback'],
};
const DEVICE_CODE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:device_code';
const RESOURCE_SCOPE = 'warden';
/**
 * What a first-party dev client is granted without a consent screen. `warden` is listed in the
 * provider's scopes (it is advertised), so oidc-provider counts it as an OIDC scope too: a grant
 * without it leaves "op_scopes_missing" and a client asking `openid warden` (warden login) would
 * be sent back to consent forever.
 */
const GRANTED_OIDC_SCOPES = `openid profile groups ${RESOURCE_SCOPE}`;
const MAX_FORM_BYTES = 4096;

export async function createDevIdp(options: DevIdpOptions): Promise<DevIdp> {
  const issuer = options.issuer.replace(/\/+$/, '');
  const mountPath = new URL(issuer).pathname.replace(/\/+$/, '');
  const groupsClaim = options.groupsClaim ?? 'groups';
  const accessTokenTtl = options.accessTokenTtl ?? 3600;
  const users = new Map((options.users ?? DEV_USERS).map((u) => [u.username, u]));
  const agentGroups = new Map<string, readonly string[]>([
    [AGENT_CLIENT.clientId, AGENT_CLIENT.groups],
    [OWNED_AGENT_CLIENT.clientId, OWNED_AGENT_CLIENT.groups],
  ]);
  const agentOwners = new Map<string, string>([[OWNED_AGENT_CLIENT.clientId, OWNED_AGENT_CLIENT.owner]]);
  // RFC 8707 wants an absolute URI as the resource indicator; the `aud` it maps to may be any string.
  const resource = URL.canParse(options.audience)
    ? options.audience
    : `urn:warden:resource:${options.audience}`;
  const redirectUris = [...(options.redirectUris ?? [])];
  const signingKey = await loadOrCreateSigningKey(options.jwksPath);
  const {
    d: _d,
    p: _p,
    q: _q,
    dp: _dp,
    dq: _dq,
    qi: _qi,
    ...publicKey
  } = signingKey as Jwk & Record<string, unknown>;
  const ownKeys = createLocalJWKSet({ keys: [publicKey as JWK] });
  /** A subject token must be an access token this IdP issued for Warden, unexpired. */
  async function verifySubjectToken(token: unknown): Promise<JWTPayload> {
    if (typeof token !== 'string' || token === '') {
      throw new errors.InvalidRequest('missing required parameter: subject_token');
    }
    try {
      const { payload } = await jwtVerify(token, ownKeys, {
        issuer,
        audience: options.audience,
        algorithms: ['RS256'],
      });
      return payload;
    } catch {
      throw new errors.InvalidGrant('subject_token is not a valid access token of this IdP');
    }
  }

  const resourceServerInfo: ResourceServerInfo = {
    scope: RESOURCE_SCOPE,
    audience: options.audience,
    accessTokenFormat: 'jwt',
    accessTokenTTL: accessTokenTtl,
    jwt: { sign: { alg: 'RS256' } },
  };

  const accessTokenLifetime = (...args: unknown[]): number => {
    const token = args[1] as { resourceServer?: { accessTokenTTL?: number } } | undefined;
    return token?.resourceServer?.accessTokenTTL ?? accessTokenTtl;
  };

  const store = options.storePath ? createOidcStore(options.storePath) : undefined;
  const configuration: Configuration = {
    ...(store ? { adapter: store.adapter as unknown as Configuration['adapter'] } : {}),
    clients: [
      {
        client_id: APPROVAL_CLIENT.clientId,
        client_secret: APPROVAL_CLIENT.clientSecret,
        redirect_uris: redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        client_id: AGENT_CLIENT.clientId,
        client_secret: AGENT_CLIENT.clientSecret,
        redirect_uris: [],
        grant_types: ['client_credentials', TOKEN_EXCHANGE_GRANT_TYPE],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        client_id: OWNED_AGENT_CLIENT.clientId,
        client_secret: OWNED_AGENT_CLIENT.clientSecret,
        redirect_uris: [],
        grant_types: ['client_credentials'],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        client_id: CLI_CLIENT.clientId,
        client_secret: CLI_CLIENT.clientSecret,
        redirect_uris: [],
        grant_types: [DEV_USER_GRANT_TYPE],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        client_id: LOGIN_CLIENT.clientId,
        application_type: 'native',
        redirect_uris: [...LOGIN_CLIENT.redirectUris],
        grant_types: ['authorization_code', 'refresh_token', DEVICE_CODE_GRANT_TYPE],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      },
    ],
    jwks: { keys: [signingKey] },
    // Cookies only carry the sign-in interaction; a restart simply asks to sign in again.
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    scopes: ['openid', 'profile', 'groups', RESOURCE_SCOPE],
    responseTypes: ['code'],
    ttl: {
      AccessToken: accessTokenLifetime,
      ClientCredentials: accessTokenLifetime,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 3600,
      Session: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
    },
    claims: {
      openid: ['sub'],
      profile: ['preferred_username'],
      groups: [groupsClaim],
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // `warden login --device` (RFC 8628) and `warden logout` (RFC 7009).
      deviceFlow: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => resource,
        // Without this an `openid` code exchange yields an opaque userinfo token instead of a
        // Warden-audience JWT; the approval page wants the latter.
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx: unknown, indicator: string) => {
          if (indicator !== resource) throw new errors.InvalidTarget();
          return resourceServerInfo;
        },
      },
    },
    pkce: { required: () => true },
    // The CLI's sign-in lasts past the browser session without asking for offline_access (which
    // oidc-provider only honours with prompt=consent, a screen first-party dev clients never show).
    issueRefreshToken: async (_ctx: unknown, client: Client) => client.grantTypeAllowed('refresh_token'),
    // Its code (hence its tokens) outlives the IdP's browser session, as offline_access would.
    expiresWithSession: async (_ctx: unknown, code: { clientId: string; scopes: Set<string> }) =>
      code.clientId !== LOGIN_CLIENT.clientId && !code.scopes.has('offline_access'),
    interactions: { url: (_ctx, interaction) => `${mountPath}/interaction/${interaction.uid}` },
    findAccount: async (_ctx, sub) => {
      const user = users.get(sub);
      return user ? accountFor(user, groupsClaim) : undefined;
    },
    extraTokenClaims: async (_ctx, token) => {
      if (token.kind === 'ClientCredentials') {
        const owner = agentOwners.get(token.clientId);
        return {
          [groupsClaim]: [...(agentGroups.get(token.clientId) ?? [])],
          ...(owner ? { [OWNER_CLAIM]: owner } : {}),
        };
      }
      const user = token.accountId === undefined ? undefined : users.get(token.accountId);
      if (!user) return undefined;
      const exchanged = (token as { gty?: string }).gty === TOKEN_EXCHANGE_GRANT_TYPE;
      return {
        [groupsClaim]: [...user.groups],
        username: user.username,
        preferred_username: user.username,
        // RFC 8693 §4.1: the party acting for the subject; its groups are the agent client's own.
        ...(exchanged
          ? { act: { sub: token.clientId, [groupsClaim]: [...(agentGroups.get(token.clientId) ?? [])] } }
          : {}),
      };
    },
    // Every dev client is first-party: a signed-in dev user never sees a consent screen.
    loadExistingGrant: async (ctx) => {
      const { oidc } = ctx;
      const clientId = oidc.client?.clientId;
      const accountId = oidc.session.accountId;
      if (!clientId || !accountId) return undefined;
      const grantId = oidc.result?.consent?.grantId ?? oidc.session.grantIdFor(clientId);
      if (grantId) {
        const existing = await oidc.provider.Grant.find(grantId);
        if (existing) return existing;
      }
      const grant = new oidc.provider.Grant({ clientId, accountId });
      grant.addOIDCScope(GRANTED_OIDC_SCOPES);
      grant.addResourceScope(resource, RESOURCE_SCOPE);
      await grant.save();
      return grant;
    },
  };

  const provider = new Provider(issuer, configuration);
  provider.on('server_error', (_ctx, err) => {
    console.error('[dev-idp] server error:', err);
  });

  async function mintUserToken(
    client: Client,
    username: string,
    expiresIn?: number,
    scope?: string,
  ): Promise<{ value: string; expiresIn: number }> {
    if (!users.has(username)) {
      throw new errors.InvalidRequest(`unknown dev user: ${username}`);
    }
    const token = new provider.AccessToken({
      accountId: username,
      client,
      gty: DEV_USER_GRANT_TYPE,
      resourceServer: new provider.ResourceServer(resource, resourceServerInfo),
      ...(expiresIn === undefined ? {} : { expiresIn }),
      ...(scope === undefined ? {} : { scope }),
    });
    return { value: await token.save(), expiresIn: token.expiration };
  }

  provider.registerGrantType(
    DEV_USER_GRANT_TYPE,
    async (ctx: KoaContextWithOIDC) => {
      const client = ctx.oidc.client;
      const username = ctx.oidc.params.username;
      if (!client) throw new errors.InvalidRequest('client authentication is required');
      if (typeof username !== 'string' || username === '') {
        throw new errors.InvalidRequest('missing required parameter: username');
      }
      const requested = ctx.oidc.params.resource;
      if (requested !== undefined && requested !== resource) {
        throw new errors.InvalidTarget();
      }
      const scope = ctx.oidc.params.scope?.split(' ').includes(RESOURCE_SCOPE) ? RESOURCE_SCOPE : undefined;
      const token = await mintUserToken(client, username, undefined, scope);
      ctx.body = {
        access_token: token.value,
        token_type: 'Bearer',
        expires_in: token.expiresIn,
        ...(scope === undefined ? {} : { scope }),
      };
    },
    // `resource` and `scope` are accepted so one request shape serves this and client_credentials.
    ['username', 'resource', 'scope'],
  );

  /**
   * RFC 8693 token exchange: an agent client trades a user's access token (subject_token) for
   * one of its own that names the user as `sub` and itself as the actor (`act`). Real IdPs run
   * policy here (which agent may act for whom); the twin lets any agent client act for any dev
   * user who handed it a valid token.
   */
  provider.registerGrantType(
    TOKEN_EXCHANGE_GRANT_TYPE,
    async (ctx: KoaContextWithOIDC) => {
      const client = ctx.oidc.client;
      if (!client) throw new errors.InvalidRequest('client authentication is required');
      const params = ctx.oidc.params as Record<string, string | undefined>;
      if (params.subject_token_type !== ACCESS_TOKEN_TYPE) {
        throw new errors.InvalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE}`);
      }
      if (params.requested_token_type !== undefined && params.requested_token_type !== ACCESS_TOKEN_TYPE) {
        throw new errors.InvalidRequest(`requested_token_type must be ${ACCESS_TOKEN_TYPE}`);
      }
      if (params.actor_token !== undefined) {
        // The authenticated client is the actor; a second actor token would be ambiguous.
        throw new errors.InvalidRequest(
          'actor_token is not supported: the authenticated client is the actor',
        );
      }
      const requested = params.resource;
      if (requested !== undefined && requested !== resource) throw new errors.InvalidTarget();
      const subject = await verifySubjectToken(params.subject_token);
      const username = subject.sub;
      if (typeof username !== 'string' || !users.has(username)) {
        throw new errors.InvalidGrant('subject_token does not name a user of this IdP');
      }
      if (subject.act !== undefined) {
        throw new errors.InvalidGrant('subject_token is already delegated');
      }
      const token = new provider.AccessToken({
        accountId: username,
        client,
        gty: TOKEN_EXCHANGE_GRANT_TYPE,
        resourceServer: new provider.ResourceServer(resource, resourceServerInfo),
        scope: RESOURCE_SCOPE,
      });
      ctx.body = {
        access_token: await token.save(),
        issued_token_type: ACCESS_TOKEN_TYPE,
        token_type: 'Bearer',
        expires_in: token.expiration,
        scope: RESOURCE_SCOPE,
      };
    },
    [
      'subject_token',
      'subject_token_type',
      'actor_token',
      'actor_token_type',
      'requested_token_type',
      'resource',
      'scope',
      'audience',
    ],
  );

  const providerCallback = provider.callback();
  // oidc-provider enters its AsyncLocalStorage for every request it handles (it reads the store only
  // for client ID metadata documents, a feature not enabled here). On Node 20 and 22 an enabled
  // AsyncLocalStorage makes every promise in the process run async hooks, and the twin runs the
  // whole request path in this process; so the store is disabled again whenever no IdP request is
  // in flight (its next `run` enables it again). Without the module (another layout) nothing changes.
  const providerStore = await import('oidc-provider/lib/helpers/als.js' as string).then(
    (m: { default?: unknown }) => (m.default instanceof AsyncLocalStorage ? m.default : undefined),
    () => undefined,
  );
  let providerRequests = 0;
  const providerRequestDone = (): void => {
    providerRequests -= 1;
    if (providerRequests === 0) providerStore?.disable();
  };
  const interactionPrefix = '/interaction/';

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const original = req.url ?? '/';
    let path = original;
    if (
      mountPath &&
      (original === mountPath || original.startsWith(`${mountPath}/`) || original.startsWith(`${mountPath}?`))
    ) {
      path = original.slice(mountPath.length) || '/';
      // Koa mounting convention: oidc-provider derives the mount path from originalUrl vs url.
      (req as IncomingMessage & { originalUrl?: string }).originalUrl = original;
      req.url = path.startsWith('/') ? path : `/${path}`;
    }
    if (req.url?.startsWith(interactionPrefix)) {
      handleInteraction(req, res).catch((err: unknown) => {
        console.error('[dev-idp] interaction error:', err);
        if (!res.headersSent)
          sendHtml(res, 400, page('Sign-in failed', `<p>${escapeHtml(errorText(err))}</p>`));
        else res.end();
      });
      return;
    }
    providerRequests += 1;
    res.once('close', providerRequestDone);
    void providerCallback(req, res);
  };

  async function handleInteraction(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://dev-idp.invalid');
    const [uid, action] = url.pathname.slice(interactionPrefix.length).split('/');
    const details = await provider.interactionDetails(req, res);
    if (!uid || details.uid !== uid) {
      sendHtml(res, 400, page('Sign-in failed', '<p>This sign-in link does not match your session.</p>'));
      return;
    }

    if (req.method === 'GET' && action === undefined) {
      if (details.prompt.name === 'login') {
        sendHtml(res, 200, loginPage(`${mountPath}/interaction/${uid}/login`, [...users.values()]));
        return;
      }
      if (details.prompt.name === 'consent') {
        // loadExistingGrant normally covers this; a consent prompt can still appear when a
        // client asks for something new, and first-party dev clients are auto-approved.
        const accountId = details.session?.accountId;
        const clientId = details.params.client_id;
        if (!accountId || typeof clientId !== 'string') throw new Error('consent without a signed-in user');
        const grant = details.grantId
          ? ((await provider.Grant.find(details.grantId)) ?? new provider.Grant({ accountId, clientId }))
          : new provider.Grant({ accountId, clientId });
        grant.addOIDCScope(GRANTED_OIDC_SCOPES);
        grant.addResourceScope(resource, RESOURCE_SCOPE);
        const grantId = await grant.save();
        await provider.interactionFinished(
          req,
          res,
          { consent: { grantId } },
          { mergeWithLastSubmission: true },
        );
        return;
      }
      sendHtml(
        res,
        501,
        page('Not supported', `<p>Unsupported prompt ${escapeHtml(details.prompt.name)}.</p>`),
      );
      return;
    }

    if (req.method === 'POST' && action === 'login') {
      const form = new URLSearchParams(await readBody(req, MAX_FORM_BYTES));
      const login = (form.get('login') ?? '').trim();
      if (!users.has(login)) {
        sendHtml(
          res,
          400,
          loginPage(
            `${mountPath}/interaction/${uid}/login`,
            [...users.values()],
            `Unknown dev user "${login}".`,
          ),
        );
        return;
      }
      await provider.interactionFinished(
        req,
        res,
        { login: { accountId: login } },
        { mergeWithLastSubmission: false },
      );
      return;
    }

    res.statusCode = 405;
    res.end();
  }

  return {
    handler,
    flush: () => store?.flush(),
    issuer,
    jwksUri: `${issuer}/jwks`,
    tokenEndpoint: `${issuer}/token`,
    audience: options.audience,
    resource,
    users: [...users.values()],
    clients: {
      approval: { ...APPROVAL_CLIENT, redirectUris },
      agent: AGENT_CLIENT,
      ownedAgent: OWNED_AGENT_CLIENT,
      cli: CLI_CLIENT,
      login: LOGIN_CLIENT,
    },
    async issueUserToken(username, opts) {
      if (!users.has(username)) throw new Error(`unknown dev user: ${username}`);
      const expiresIn = opts?.expiresIn;
      if (expiresIn !== undefined && !(Number.isInteger(expiresIn) && expiresIn > 0)) {
        throw new RangeError('expiresIn must be a positive number of seconds');
      }
      const client = await provider.Client.find(CLI_CLIENT.clientId);
      if (!client) throw new Error('dev client warden-cli is missing');
      return (await mintUserToken(client, username, expiresIn)).value;
    },
    async issueAgentToken(clientId = AGENT_CLIENT.clientId) {
      const client = await provider.Client.find(clientId);
      if (!client || !client.grantTypeAllowed('client_credentials')) {
        throw new Error(`${clientId} is not a client-credentials client of the dev IdP`);
      }
      const token = new provider.ClientCredentials({
        client,
        resourceServer: new provider.ResourceServer(resource, resourceServerInfo),
      });
      return token.save();
    },
  };
}

function accountFor(user: DevUser, groupsClaim: string): Account {
  return {
    accountId: user.username,
    claims: () => ({
      sub: user.username,
      preferred_username: user.username,
      [groupsClaim]: [...user.groups],
    }),
  };
}

/** Reads the private signing JWK from `path`, creating and saving an RS256 key when absent. */
async function loadOrCreateSigningKey(path: string | undefined): Promise<Jwk> {
  if (path) {
    try {
      const stored = JSON.parse(await readFile(path, 'utf8')) as { keys?: Jwk[] };
      const key = stored.keys?.find((k) => k.kty === 'RSA' && typeof k.d === 'string');
      if (key) return key;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' }) as Jwk & { e: string; n: string };
  // RFC 7638 thumbprint: a stable kid derived from the public key itself.
  const kid = createHash('sha256')
    .update(JSON.stringify({ e: jwk.e, kty: 'RSA', n: jwk.n }))
    .digest('base64url');
  const key: Jwk = { ...jwk, kid, alg: 'RS256', use: 'sig' };
  if (path) {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, `${JSON.stringify({ keys: [key] }, null, 2)}\n`, { mode: 0o600 });
  }
  return key;
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Error('form too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  // No form-action: browsers apply it to the redirect chain too, and the client may live elsewhere.
  res.setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'");
  res.end(html);
}

function loginPage(action: string, users: readonly DevUser[], error?: string): string {
  const options = users
    .map((u) => `<option value="${escapeHtml(u.username)}">${escapeHtml(u.groups.join(', '))}</option>`)
    .join('');
  return page(
    'Sign in to the Warden dev IdP',
    `${error ? `<p role="alert" class="error">${escapeHtml(error)}</p>` : ''}
<form method="post" action="${escapeHtml(action)}">
  <label for="login">Username</label>
  <input id="login" name="login" list="dev-users" autocomplete="username" autofocus required>
  <datalist id="dev-users">${options}</datalist>
  <label for="password">Password (not checked)</label>
  <input id="password" name="password" type="password" autocomplete="current-password">
  <button type="submit">Sign in</button>
</form>
<p class="hint">Dev users: ${users.map((u) => escapeHtml(u.username)).join(', ')}.</p>`,
  );
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem}
label,input,button{display:block;width:100%;margin:.4rem 0}input,button{padding:.5rem;box-sizing:border-box}
.error{color:#b00020}.hint{color:#555;font-size:.9rem}</style></head>
<body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function errorText(err: unknown): string {
  if (err && typeof err === 'object' && 'error_description' in err) return String(err.error_description);
  return err instanceof Error ? err.message : 'sign-in failed';
}

/**
 * The approval page's OpenID Connect client: authorization code + PKCE (S256) with `state` and
 * `nonce`, endpoints from the issuer's discovery document. It only obtains tokens; the access token
 * is then verified by the same verifier the API uses, so the page trusts nothing the API would not.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ServiceUnavailableError, UnauthorizedError } from '../core/errors.js';

export interface OidcLoginConfig {
  /** The IdP's issuer, exactly as its discovery document writes it. */
  readonly issuer: string;
  readonly clientId: string;
  /** Confidential clients only (client_secret_basic); public clients send only PKCE. */
  readonly clientSecret?: string;
  /** @default 'openid' */
  readonly scope?: string;
  /** RFC 8707 resource indicator, for IdPs that mint API-audience tokens only when asked. */
  readonly resource?: string;
  /** @default 3000 */
  readonly timeoutMs?: number;
}

export interface LoginStart {
  /** Where to send the browser. */
  readonly url: string;
  readonly state: string;
  readonly nonce: string;
  /** Keep server-side or in a signed, HttpOnly cookie; never in the URL. */
  readonly codeVerifier: string;
}

export interface LoginResult {
  readonly accessToken: string;
  /** Claims of the ID token, when the IdP returned one (nonce, iss, aud already checked). */
  readonly idClaims?: Record<string, unknown>;
}

export interface OidcLoginClient {
  readonly clientId: string;
  start(redirectUri: string): Promise<LoginStart>;
  exchange(input: {
    code: string;
    redirectUri: string;
    codeVerifier: string;
    nonce: string;
  }): Promise<LoginResult>;
}

interface Discovery {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  code_challenge_methods_supported?: string[];
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

function assertSafeUrl(uri: string, what: string): URL {
  const url = new URL(uri);
  if (url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.has(url.hostname))) return url;
  throw new TypeError(`${what} must use https (http only on loopback): ${uri}`);
}

function random(): string {
  return randomBytes(32).toString('base64url');
}

function decodeJwtPayload(jwt: string): Record<string, unknown> {
  const part = jwt.split('.')[1];
  if (!part) throw new UnauthorizedError('sign-in failed: the ID token is malformed');
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new UnauthorizedError('sign-in failed: the ID token is malformed');
  }
}

export function createOidcLoginClient(config: OidcLoginConfig): OidcLoginClient {
  const issuer = config.issuer.replace(/\/+$/, '');
  assertSafeUrl(issuer, 'the OIDC issuer');
  const timeoutMs = config.timeoutMs ?? 3000;
  let discovery: Promise<Discovery> | undefined;

  async function discover(): Promise<Discovery> {
    const url = `${issuer}/.well-known/openid-configuration`;
    let res: Response;
    try {
      res = await fetch(url, {
        signal: AbortSignal.timeout(timeoutMs),
        headers: { accept: 'application/json' },
      });
    } catch (cause) {
      throw new ServiceUnavailableError('the identity provider is unreachable', cause);
    }
    if (!res.ok)
      throw new ServiceUnavailableError(`the identity provider's discovery answered ${res.status}`);
    const doc = (await res.json()) as Partial<Discovery>;
    // OIDC Discovery §4.3: the document must name the issuer it was fetched for.
    if (doc.issuer?.replace(/\/+$/, '') !== issuer) {
      throw new ServiceUnavailableError("the identity provider's discovery names another issuer");
    }
    if (!doc.authorization_endpoint || !doc.token_endpoint) {
      throw new ServiceUnavailableError("the identity provider's discovery lacks its endpoints");
    }
    if (doc.code_challenge_methods_supported && !doc.code_challenge_methods_supported.includes('S256')) {
      throw new ServiceUnavailableError('the identity provider does not support PKCE S256');
    }
    assertSafeUrl(doc.authorization_endpoint, 'authorization_endpoint');
    assertSafeUrl(doc.token_endpoint, 'token_endpoint');
    return doc as Discovery;
  }

  // Cached once it succeeds; a failed fetch is retried on the next sign-in.
  function endpoints(): Promise<Discovery> {
    discovery ??= discover().catch((error: unknown) => {
      discovery = undefined;
      throw error;
    });
    return discovery;
  }

  return {
    clientId: config.clientId,

    async start(redirectUri) {
      const doc = await endpoints();
      const state = random();
      const nonce = random();
      const codeVerifier = random();
      const url = new URL(doc.authorization_endpoint);
      url.searchParams.set('response_type', 'code');
      url.searchParams.set('client_id', config.clientId);
      url.searchParams.set('redirect_uri', redirectUri);
      url.searchParams.set('scope', config.scope ?? 'openid');
      url.searchParams.set('state', state);
      url.searchParams.set('nonce', nonce);
      url.searchParams.set('code_challenge', createHash('sha256').update(codeVerifier).digest('base64url'));
      url.searchParams.set('code_challenge_method', 'S256');
      if (config.resource) url.searchParams.set('resource', config.resource);
      return { url: url.toString(), state, nonce, codeVerifier };
    },

    async exchange({ code, redirectUri, codeVerifier, nonce }) {
      const doc = await endpoints();
      const form = new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: redirectUri,
        code_verifier: codeVerifier,
      });
      if (config.resource) form.set('resource', config.resource);
      const headers: Record<string, string> = {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      };
      if (config.clientSecret) {
        // RFC 6749 §2.3.1: form-encode each part before base64.
        const id = encodeURIComponent(config.clientId);
        const secret = encodeURIComponent(config.clientSecret);
        headers.authorization = `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
      } else {
        form.set('client_id', config.clientId);
      }
      let res: Response;
      try {
        res = await fetch(doc.token_endpoint, {
          method: 'POST',
          headers,
          body: form.toString(),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (cause) {
        throw new ServiceUnavailableError('the identity provider is unreachable', cause);
      }
      const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
      if (!res.ok) {
        if (res.status >= 500)
          throw new ServiceUnavailableError(`the identity provider answered ${res.status}`);
        const reason = typeof body.error === 'string' ? body.error.slice(0, 64) : `status ${res.status}`;
        throw new UnauthorizedError(`sign-in failed: the identity provider refused the code (${reason})`);
      }
      if (typeof body.access_token !== 'string' || body.access_token === '') {
        throw new UnauthorizedError('sign-in failed: the identity provider returned no access token');
      }
      if (typeof body.id_token !== 'string') return { accessToken: body.access_token };
      // The ID token came straight from the token endpoint over TLS, which OIDC Core §3.1.3.7 lets
      // stand in for its signature; its claims still have to be for us and for this sign-in.
      const claims = decodeJwtPayload(body.id_token);
      const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
      if (claims.iss !== doc.issuer || !aud.includes(config.clientId)) {
        throw new UnauthorizedError('sign-in failed: the ID token was not issued for this page');
      }
      if (claims.nonce !== nonce)
        throw new UnauthorizedError('sign-in failed: the ID token nonce does not match');
      return { accessToken: body.access_token, idClaims: claims };
    },
  };
}

/** The approval page's client from the environment, or undefined when sign-in is not configured. */
export function oidcLoginFromEnv(env: NodeJS.ProcessEnv, defaultIssuer: string): OidcLoginClient | undefined {
  const clientId = env.OIDC_APPROVAL_CLIENT_ID;
  if (!clientId) return undefined;
  return createOidcLoginClient({
    issuer: env.OIDC_APPROVAL_ISSUER ?? defaultIssuer,
    clientId,
    ...(env.OIDC_APPROVAL_CLIENT_SECRET ? { clientSecret: env.OIDC_APPROVAL_CLIENT_SECRET } : {}),
    ...(env.OIDC_APPROVAL_SCOPE ? { scope: env.OIDC_APPROVAL_SCOPE } : {}),
    ...(env.OIDC_APPROVAL_RESOURCE ? { resource: env.OIDC_APPROVAL_RESOURCE } : {}),
  });
}

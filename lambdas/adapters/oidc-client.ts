/**
 * The approval page's OpenID Connect client, built on `openid-client` (panva): authorization code +
 * PKCE (S256) with `state` and `nonce`, endpoints from the issuer's discovery document. The ID token
 * is verified in full (signature against the issuer's JWKS, `iss`, `aud`, `exp`, `iat`, `nonce`);
 * the access token is then verified by the same verifier the API uses, so the page trusts nothing
 * the API would not. `openid-client` is loaded on the first sign-in, not at cold start.
 */
import { ServiceUnavailableError, UnauthorizedError } from '../core/errors.js';

type OpenIdClient = typeof import('openid-client');
type Configuration = import('openid-client').Configuration;

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
  /** Claims of the verified ID token (signature, iss, aud, exp and nonce checked). */
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
    /** The callback's `iss` parameter (RFC 9207), when the IdP sends one. */
    iss?: string;
  }): Promise<LoginResult>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

function assertSafeUrl(uri: string, what: string): URL {
  const url = new URL(uri);
  if (url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.has(url.hostname))) return url;
  throw new TypeError(`${what} must use https (http only on loopback): ${uri}`);
}

let library: Promise<OpenIdClient> | undefined;
function openid(): Promise<OpenIdClient> {
  library ??= import('openid-client');
  return library;
}

/**
 * What the check that failed was, in words an approver (and a log reader) can use; undefined for
 * faults that are not the answer's (network, timeout), which become a 503.
 */
function answerProblem(lib: OpenIdClient, error: unknown): string | undefined {
  if (!(error instanceof lib.ClientError)) return undefined;
  // openid-client wraps oauth4webapi's error, which names the claim and says what was wrong.
  const inner = error.cause instanceof Error ? error.cause : error;
  const detail = (inner as { cause?: { claim?: unknown } }).cause;
  const claim = typeof detail?.claim === 'string' ? detail.claim : undefined;
  const message = inner.message;
  switch (error.code) {
    case 'OAUTH_TIMEOUT':
    case 'OAUTH_ABORT':
    case 'OAUTH_RESPONSE_IS_NOT_CONFORM':
    case undefined:
      return undefined;
    case 'OAUTH_KEY_SELECTION_FAILED':
      return 'the ID token is signed with a key the identity provider does not publish';
    case 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED':
      return `the ID token is expired or not valid now (${claim ?? 'time'})`;
    case 'OAUTH_JWT_CLAIM_COMPARISON_FAILED':
      if (claim === 'nonce') return 'the ID token nonce does not match this sign-in';
      if (claim === 'iss') return 'the ID token was issued by another issuer';
      if (claim === 'aud' || claim === 'azp') return 'the ID token was not issued for this page';
      return `the ID token's ${claim ?? 'claims'} do not match`;
    default:
      if (/signature verification failed/i.test(message)) return 'the ID token signature is not valid';
      if (/"nonce".*missing/i.test(message)) return 'the ID token carries no nonce';
      return `the identity provider's answer is not acceptable (${message.slice(0, 100)})`;
  }
}

export function createOidcLoginClient(config: OidcLoginConfig): OidcLoginClient {
  const issuer = assertSafeUrl(config.issuer, 'the OIDC issuer');
  const loopback = issuer.protocol === 'http:';
  const timeoutMs = config.timeoutMs ?? 3000;
  let configuration: Promise<Configuration> | undefined;

  async function discover(): Promise<Configuration> {
    const lib = await openid();
    let found: Configuration;
    try {
      found = await lib.discovery(
        issuer,
        config.clientId,
        undefined,
        config.clientSecret ? lib.ClientSecretBasic(config.clientSecret) : lib.None(),
        {
          // Plain http only for a loopback issuer (the local twin); the ID token signature is
          // checked against the issuer's JWKS even though it came straight from the token endpoint.
          execute: loopback
            ? [lib.allowInsecureRequests, lib.enableNonRepudiationChecks]
            : [lib.enableNonRepudiationChecks],
          timeout: Math.max(1, Math.ceil(timeoutMs / 1000)),
        },
      );
    } catch (cause) {
      throw new ServiceUnavailableError("the identity provider's discovery failed", cause);
    }
    const meta = found.serverMetadata();
    const methods = meta.code_challenge_methods_supported;
    if (methods && !methods.includes('S256')) {
      throw new ServiceUnavailableError('the identity provider does not support PKCE S256');
    }
    assertSafeUrl(meta.authorization_endpoint ?? '', 'authorization_endpoint');
    assertSafeUrl(meta.token_endpoint ?? '', 'token_endpoint');
    return found;
  }

  // Cached once it succeeds; a failed discovery is retried on the next sign-in.
  function configured(): Promise<Configuration> {
    configuration ??= discover().catch((error: unknown) => {
      configuration = undefined;
      throw error;
    });
    return configuration;
  }

  return {
    clientId: config.clientId,

    async start(redirectUri) {
      const [lib, conf] = await Promise.all([openid(), configured()]);
      const state = lib.randomState();
      const nonce = lib.randomNonce();
      const codeVerifier = lib.randomPKCECodeVerifier();
      const parameters: Record<string, string> = {
        redirect_uri: redirectUri,
        scope: config.scope ?? 'openid',
        state,
        nonce,
        code_challenge: await lib.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
      };
      if (config.resource) parameters.resource = config.resource;
      const url = lib.buildAuthorizationUrl(conf, parameters);
      return { url: url.toString(), state, nonce, codeVerifier };
    },

    async exchange({ code, redirectUri, codeVerifier, nonce, iss }) {
      const [lib, conf] = await Promise.all([openid(), configured()]);
      if (!nonce) throw new UnauthorizedError('sign-in failed: this sign-in has no nonce');
      // The caller has matched `state` against its signed cookie; the callback URL is rebuilt
      // from the parts it checked, so only those reach the library.
      const currentUrl = new URL(redirectUri);
      currentUrl.search = '';
      currentUrl.searchParams.set('code', code);
      if (iss !== undefined) currentUrl.searchParams.set('iss', iss);
      let tokens: Awaited<ReturnType<OpenIdClient['authorizationCodeGrant']>>;
      try {
        tokens = await lib.authorizationCodeGrant(
          conf,
          currentUrl,
          { pkceCodeVerifier: codeVerifier, expectedNonce: nonce, idTokenExpected: true },
          config.resource ? { resource: config.resource } : undefined,
        );
      } catch (error) {
        if (error instanceof lib.ResponseBodyError) {
          if (error.status >= 500)
            throw new ServiceUnavailableError(`the identity provider answered ${error.status}`);
          throw new UnauthorizedError(
            `sign-in failed: the identity provider refused the code (${error.error.slice(0, 64)})`,
          );
        }
        if (error instanceof lib.AuthorizationResponseError) {
          throw new UnauthorizedError(
            `sign-in failed: the identity provider said ${error.error.slice(0, 64)}`,
          );
        }
        const problem = answerProblem(lib, error);
        if (problem) throw new UnauthorizedError(`sign-in failed: ${problem}`);
        throw new ServiceUnavailableError('the identity provider is unreachable', error);
      }
      if (typeof tokens.access_token !== 'string' || tokens.access_token === '') {
        throw new UnauthorizedError('sign-in failed: the identity provider returned no access token');
      }
      const claims = tokens.claims();
      if (!claims) throw new UnauthorizedError('sign-in failed: the identity provider returned no ID token');
      return { accessToken: tokens.access_token, idClaims: { ...claims } };
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

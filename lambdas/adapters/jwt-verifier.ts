/**
 * Verifies bearer tokens with aws-jwt-verify and maps their claims to a Principal. Create the
 * verifier once per process (module scope) and `hydrate()` it during cold start: the JWKS is
 * fetched then, again when a token names a key id the cache has not seen (rotation, at most once
 * per penalty period), and again once the key set held is older than `jwksMaxAgeSeconds`
 * (10 minutes by default). aws-jwt-verify alone never refetches a key set that still holds the
 * token's key id, so a signing key the IdP removed (say, after it leaked) would be honoured for as
 * long as the process lives; with the age limit it stops working within that age of its removal.
 * The verification that finds the key set too old waits for the fetch. If that fetch fails (the IdP
 * is down), the previous key set stays in use, the failure is reported (`onJwksRefreshError`), and
 * the next attempt comes 30 seconds later: an IdP outage does not turn into a Warden outage.
 *
 * Verified tokens are kept in a small LRU keyed by the whole token text (header, payload and
 * signature), so a request repeating a token skips the signature check and the parse: any change
 * to any part of the token is a different key and a full verification. A hit still checks
 * `exp`/`nbf` against the clock, with the same grace and the same errors as a full verification.
 * Only successes are kept, as frozen values; the cache is emptied whenever the JWKS is fetched (a
 * key the IdP removed stops working from the cache as soon as the verifier sees the new key set).
 */
import { get as httpGet } from 'node:http';
import { JwtVerifier } from 'aws-jwt-verify';
import {
  FetchError,
  JwksNotAvailableInCacheError,
  JwksValidationError,
  JwkValidationError,
  JwtExpiredError,
  JwtInvalidAudienceError,
  JwtInvalidIssuerError,
  JwtInvalidSignatureAlgorithmError,
  JwtInvalidSignatureError,
  JwtNotBeforeError,
  JwtParseError,
  JwtWithoutValidKidError,
  KidNotFoundInJwksError,
  NonRetryableFetchError,
  WaitPeriodNotYetEndedJwkError,
} from 'aws-jwt-verify/error';
import { SimpleFetcher } from 'aws-jwt-verify/https';
import type { Fetcher } from 'aws-jwt-verify/https';
import { SimpleJwksCache } from 'aws-jwt-verify/jwk';

import { wholeSecondsFromEnv } from '../core/env-seconds.js';
import { ServiceUnavailableError, UnauthorizedError, WardenError } from '../core/errors.js';
import { principalFromClaims } from '../core/identity.js';
import { deepFreeze, Lru } from '../core/lru.js';
import type { Principal } from '../core/types.js';

export interface TokenVerifierConfig {
  /** Expected `iss`, exactly as the IdP writes it. */
  readonly issuer: string;
  /**
   * Accepted audience(s). Most IdPs put the API's identifier in `aud`; some put the client id
   * there, so this is whatever the IdP writes.
   */
  readonly audience: string | readonly string[];
  /**
   * Where `audience` is checked. Cognito access tokens carry no `aud` but a `client_id`.
   * @default 'aud'
   */
  readonly audienceClaim?: 'aud' | 'client_id';
  /** @default `${issuer}/.well-known/jwks.json` (Cognito's layout) */
  readonly jwksUri?: string;
  /** Claim holding the groups (dotted paths and `cognito:groups` work). */
  readonly groupsClaim: string;
  /** @default see principalFromClaims */
  readonly usernameClaims?: readonly string[];
  /** Claim of an agent's token naming the user it acts for (see IdentityOptions). @default none */
  readonly ownerClaim?: string;
  /** Clients that are agents acting for the user their token names. @default [] */
  readonly agentClientIds?: readonly string[];
  /** Tokens longer than this are rejected before any parsing. @default 8192 */
  readonly maxTokenBytes?: number;
  /** Clock skew tolerated on `exp`/`nbf`, in seconds. @default 0 */
  readonly graceSeconds?: number;
  /** Verified tokens kept (LRU, keyed by the whole token); 0 keeps none. @default 1024 */
  readonly verifiedCacheSize?: number;
  /**
   * A key set older than this is fetched again before the next verification: the longest a key
   * the IdP removed keeps verifying tokens (while the IdP answers). @default 600
   */
  readonly jwksMaxAgeSeconds?: number;
  /** @default DEFAULT_JWKS_MAX_STALE_SECONDS (a day past the age, with the IdP unreachable) */
  readonly jwksMaxStaleSeconds?: number;
  /** Told when fetching an expired key set failed; the previous set stays in use meanwhile. */
  readonly onJwksRefreshError?: (error: unknown) => void;
  /** The clock the key set's age is measured with, in ms (tests). @default Date.now */
  readonly now?: () => number;
}

export interface VerifiedToken {
  readonly principal: Principal;
  readonly claims: Record<string, unknown>;
}

export interface TokenVerifier {
  /** Fetches the JWKS now (call during cold start, outside the handler). */
  hydrate(): Promise<void>;
  /** Resolves with the caller, or rejects with UnauthorizedError (ServiceUnavailableError if the IdP's keys cannot be fetched). */
  verify(token: string): Promise<VerifiedToken>;
  /** How many verified tokens are held now (for tests). */
  readonly cachedTokens: number;
}

export const DEFAULT_MAX_TOKEN_BYTES = 8192;
export const DEFAULT_VERIFIED_CACHE_SIZE = 1024;
const JWKS_FETCH_TIMEOUT_MS = 3000;
export const DEFAULT_JWKS_MAX_AGE_SECONDS = 600;
/** After a failed refetch of an expired key set, how long the previous one is used before trying again. */
export const JWKS_REFRESH_RETRY_MS = 30_000;
/**
 * How long past its age a key set may still be used while the IdP cannot be reached: after that,
 * tokens are refused (503) until the IdP answers. An outage is not a Warden outage for a day, but
 * whoever can keep the function from its IdP cannot keep a removed key working for ever.
 */
export const DEFAULT_JWKS_MAX_STALE_SECONDS = 86_400;

/**
 * OIDC_JWKS_MAX_AGE_SECONDS: how old the IdP's key set may get before it is fetched again (a whole
 * number of seconds, 1 to 86400; unset: 600). Anything else stops the cold start with its name.
 */
export function jwksMaxAgeFromEnv(env: NodeJS.ProcessEnv): number | undefined {
  return wholeSecondsFromEnv(env, 'OIDC_JWKS_MAX_AGE_SECONDS');
}

/**
 * OIDC_AUDIENCE_CLAIM: where OIDC_AUDIENCE is checked, `aud` (the default) or `client_id`
 * (Cognito access tokens). Anything else stops the cold start with the variable's name.
 */
export function audienceClaimFromEnv(env: NodeJS.ProcessEnv): 'aud' | 'client_id' {
  const value = env.OIDC_AUDIENCE_CLAIM;
  if (value === undefined || value === '' || value === 'aud') return 'aud';
  if (value === 'client_id') return 'client_id';
  throw new TypeError(`OIDC_AUDIENCE_CLAIM must be 'aud' or 'client_id', got ${JSON.stringify(value)}`);
}

export function createTokenVerifier(config: TokenVerifierConfig): TokenVerifier {
  const audienceClaim = config.audienceClaim ?? 'aud';
  const audiences = typeof config.audience === 'string' ? [config.audience] : [...config.audience];
  if (audiences.length === 0 || audiences.some((a) => a === '')) {
    throw new TypeError('createTokenVerifier: audience must name at least one non-empty audience');
  }
  const maxTokenBytes = config.maxTokenBytes ?? DEFAULT_MAX_TOKEN_BYTES;
  const jwksUri = config.jwksUri ?? `${config.issuer.replace(/\/+$/, '')}/.well-known/jwks.json`;
  assertJwksUriAllowed(jwksUri);
  const graceSeconds = config.graceSeconds ?? 0;
  const maxAgeSeconds = config.jwksMaxAgeSeconds ?? DEFAULT_JWKS_MAX_AGE_SECONDS;
  if (!(Number.isFinite(maxAgeSeconds) && maxAgeSeconds > 0)) {
    throw new TypeError('createTokenVerifier: jwksMaxAgeSeconds must be a positive number of seconds');
  }
  const verified = new Lru<
    string,
    { readonly result: VerifiedToken; readonly exp: number; readonly nbf?: number }
  >(config.verifiedCacheSize ?? DEFAULT_VERIFIED_CACHE_SIZE);
  // Bumped (and the cache emptied) when a JWKS fetch starts and when it ends: a verification that
  // was under way meanwhile may have used the old key set, so its result is not kept.
  let keysGeneration = 0;
  const keysChanged = (): void => {
    keysGeneration += 1;
    verified.clear();
  };

  const maxStaleSeconds = config.jwksMaxStaleSeconds ?? DEFAULT_JWKS_MAX_STALE_SECONDS;
  if (!(Number.isFinite(maxStaleSeconds) && maxStaleSeconds >= 0)) {
    throw new TypeError('createTokenVerifier: jwksMaxStaleSeconds must be a number of seconds, 0 or more');
  }
  const keys = new AgingJwksCache(new LoopbackAwareFetcher(), {
    onFetch: keysChanged,
    maxAgeMs: maxAgeSeconds * 1000,
    maxStaleMs: maxStaleSeconds * 1000,
    now: config.now ?? Date.now,
    ...(config.onJwksRefreshError ? { onRefreshError: config.onJwksRefreshError } : {}),
  });
  const verifier = JwtVerifier.create(
    {
      issuer: config.issuer,
      jwksUri,
      audience: audienceClaim === 'aud' ? audiences : null,
      graceSeconds,
      customJwtCheck: ({ payload }) => {
        // aws-jwt-verify accepts a token without `exp`; a bearer token that never expires is not
        // something Warden should honour.
        if (typeof payload.exp !== 'number') {
          throw new UnauthorizedError('token has no expiry (exp)');
        }
        if (audienceClaim === 'client_id') {
          const clientId = (payload as Record<string, unknown>).client_id;
          if (typeof clientId !== 'string' || !audiences.includes(clientId)) {
            throw new UnauthorizedError('token was not issued for this gateway (wrong audience)');
          }
        }
      },
    },
    { jwksCache: keys },
  );

  return {
    get cachedTokens() {
      return verified.size;
    },

    async hydrate() {
      try {
        await verifier.hydrate();
      } catch (err) {
        throw translate(err);
      }
    },

    async verify(token) {
      if (typeof token !== 'string' || token === '') {
        throw new UnauthorizedError('a bearer token is required');
      }
      if (Buffer.byteLength(token, 'utf8') > maxTokenBytes) {
        throw new UnauthorizedError(`token is larger than ${maxTokenBytes} bytes`);
      }
      // A key set past its age is fetched again by the full verification below (which empties
      // this cache): a hit must not let a removed key outlive the age limit.
      const hit = keys.expired(jwksUri) || keys.stale(jwksUri) ? undefined : verified.get(token);
      if (hit !== undefined) {
        // The same checks and errors as aws-jwt-verify's validateJwtFields, against the clock now.
        const now = Date.now() / 1000;
        if (hit.exp + graceSeconds < now) {
          verified.delete(token);
          throw translate(
            new JwtExpiredError(`Token expired at ${new Date(hit.exp * 1000).toISOString()}`, hit.exp),
          );
        }
        if (hit.nbf !== undefined && hit.nbf - graceSeconds > now) {
          throw translate(
            new JwtNotBeforeError(
              `Token can't be used before ${new Date(hit.nbf * 1000).toISOString()}`,
              hit.nbf,
            ),
          );
        }
        return hit.result;
      }
      const generation = keysGeneration;
      let payload: Record<string, unknown>;
      try {
        payload = (await verifier.verify(token)) as Record<string, unknown>;
      } catch (err) {
        throw translate(err);
      }
      const principal = principalFromClaims(payload, {
        groupsClaim: config.groupsClaim,
        ...(config.usernameClaims ? { usernameClaims: config.usernameClaims } : {}),
        ...(config.ownerClaim ? { ownerClaim: config.ownerClaim } : {}),
        ...(config.agentClientIds ? { agentClientIds: config.agentClientIds } : {}),
      });
      const result = deepFreeze({ principal, claims: payload });
      if (generation === keysGeneration) {
        // customJwtCheck refused a token without a numeric exp, so payload.exp is a number here.
        verified.set(
          token,
          Object.freeze({
            result,
            exp: payload.exp as number,
            ...(typeof payload.nbf === 'number' ? { nbf: payload.nbf } : {}),
          }),
        );
      }
      return result;
    },
  };
}

/** aws-jwt-verify's errors → Warden's: callers get a reason, never the token's contents. */
function translate(err: unknown): WardenError {
  if (err instanceof WardenError) return err;
  const reason = reasonFor(err);
  if (reason === undefined) {
    return new ServiceUnavailableError('the identity provider signing keys are unavailable', err);
  }
  return new UnauthorizedError(reason, err);
}

function reasonFor(err: unknown): string | undefined {
  if (err instanceof JwtExpiredError) return 'token has expired';
  if (err instanceof JwtNotBeforeError) return 'token is not valid yet (nbf)';
  if (err instanceof JwtInvalidIssuerError) return 'token was issued by an untrusted issuer';
  if (err instanceof JwtInvalidAudienceError) return 'token was not issued for this gateway (wrong audience)';
  if (err instanceof JwtInvalidSignatureAlgorithmError) return 'token signature algorithm is not accepted';
  if (err instanceof JwtInvalidSignatureError) return 'token signature is invalid';
  if (
    err instanceof KidNotFoundInJwksError ||
    err instanceof JwtWithoutValidKidError ||
    err instanceof WaitPeriodNotYetEndedJwkError
  ) {
    return 'token is signed with an unknown key';
  }
  if (err instanceof JwtParseError) return 'token is malformed';
  // The IdP's key set could not be fetched or is unusable: not the caller's fault, and no token
  // can be verified until it is back, so this is a 503 (still fail-closed) rather than a 401.
  if (
    err instanceof FetchError ||
    err instanceof NonRetryableFetchError ||
    err instanceof JwksValidationError ||
    err instanceof JwksNotAvailableInCacheError ||
    err instanceof JwkValidationError
  ) {
    return undefined;
  }
  return 'token is invalid';
}

interface AgingOptions {
  readonly onFetch: () => void;
  readonly maxAgeMs: number;
  /** Past the age by more than this, with every refetch failing, the held key set is not used. */
  readonly maxStaleMs: number;
  readonly now: () => number;
  readonly onRefreshError?: (error: unknown) => void;
}

/**
 * aws-jwt-verify's JWKS cache, with an age limit on the key set it holds (see the top of this
 * file), telling the verifier whenever it fetches.
 */
class AgingJwksCache extends SimpleJwksCache {
  readonly #options: AgingOptions;
  /** When each URI's key set was last fetched successfully. */
  readonly #fetchedAt = new Map<string, number>();
  /** When a refetch of each URI's expired key set last failed. */
  readonly #failedAt = new Map<string, number>();
  readonly #refreshing = new Map<string, Promise<void>>();

  constructor(fetcher: Fetcher, options: AgingOptions) {
    super({ fetcher });
    this.#options = options;
  }

  /** Whether the key set held for `jwksUri` is past its age and due to be fetched again now. */
  expired(jwksUri: string): boolean {
    const fetchedAt = this.#fetchedAt.get(jwksUri);
    if (fetchedAt === undefined) return false;
    const now = this.#options.now();
    if (now - fetchedAt <= this.#options.maxAgeMs) return false;
    const failedAt = this.#failedAt.get(jwksUri);
    return failedAt === undefined || now - failedAt >= JWKS_REFRESH_RETRY_MS;
  }

  override async getJwks(jwksUri: string): ReturnType<SimpleJwksCache['getJwks']> {
    this.#options.onFetch();
    try {
      const jwks = await super.getJwks(jwksUri);
      this.#fetchedAt.set(jwksUri, this.#options.now());
      this.#failedAt.delete(jwksUri);
      return jwks;
    } finally {
      this.#options.onFetch();
    }
  }

  /** Whether the key set held is past its age by more than the stale bound (the IdP not answering). */
  stale(jwksUri: string): boolean {
    const fetchedAt = this.#fetchedAt.get(jwksUri);
    if (fetchedAt === undefined) return false;
    return this.#options.now() - fetchedAt > this.#options.maxAgeMs + this.#options.maxStaleMs;
  }

  override async getJwk(
    jwksUri: string,
    decomposedJwt: Parameters<SimpleJwksCache['getJwk']>[1],
  ): ReturnType<SimpleJwksCache['getJwk']> {
    if (this.expired(jwksUri)) await this.#refresh(jwksUri);
    if (this.stale(jwksUri)) {
      const hours = Math.floor((this.#options.now() - (this.#fetchedAt.get(jwksUri) ?? 0)) / 3_600_000);
      throw new ServiceUnavailableError(
        `the identity provider signing keys are unavailable: the key set held was fetched ${hours} h ago ` +
          'and the identity provider has not answered since',
      );
    }
    return super.getJwk(jwksUri, decomposedJwt);
  }

  /** One refetch at a time per URI; a failure keeps the previous key set (and is reported). */
  #refresh(jwksUri: string): Promise<void> {
    let pending = this.#refreshing.get(jwksUri);
    if (!pending) {
      pending = this.getJwks(jwksUri).then(
        () => undefined,
        (error: unknown) => {
          this.#failedAt.set(jwksUri, this.#options.now());
          this.#options.onRefreshError?.(error);
        },
      );
      const settled = pending.finally(() => this.#refreshing.delete(jwksUri));
      this.#refreshing.set(jwksUri, settled);
      pending = settled;
    }
    return pending;
  }
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** JWKS over plain http would let anyone on the path substitute keys; only the local twin may. */
function assertJwksUriAllowed(uri: string): void {
  const url = new URL(uri);
  if (url.protocol === 'https:') return;
  if (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname)) return;
  throw new TypeError(`createTokenVerifier: the JWKS URI must use https (http only on loopback): ${uri}`);
}

/**
 * aws-jwt-verify's Node fetcher speaks https only; the local twin's IdP is http on 127.0.0.1.
 * https keeps the library's own fetcher (timeouts, one retry). Loopback http uses node:http, like
 * the library does for https, rather than the global fetch, whose first use compiles undici (a
 * cost the cold-start bench would otherwise charge to the twin but Lambda never pays).
 */
class LoopbackAwareFetcher implements Fetcher {
  readonly #https = new SimpleFetcher();

  async fetch(
    uri: string,
    requestOptions?: Record<string, unknown>,
    data?: ArrayBuffer,
  ): Promise<ArrayBuffer> {
    if (new URL(uri).protocol === 'https:') return this.#https.fetch(uri, requestOptions, data);
    const { status, body } = await new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      const req = httpGet(uri, { timeout: JWKS_FETCH_TIMEOUT_MS }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${JWKS_FETCH_TIMEOUT_MS} ms`)));
      req.on('error', reject);
    }).catch((cause: unknown) => {
      throw new FetchError(uri, cause instanceof Error ? cause.message : String(cause));
    });
    if (status !== 200) {
      throw new NonRetryableFetchError(uri, `Status code is ${status}, expected 200`);
    }
    return body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer;
  }
}

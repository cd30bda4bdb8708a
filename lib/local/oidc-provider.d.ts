/**
 * The slice of `oidc-provider` v9 that the local twin's dev IdP uses. The package ships no types
 * and `@types/oidc-provider` trails the major versions, so only what lib/local/oidc.ts calls is
 * declared here; widen it as needed rather than casting at call sites.
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export type Jwk = Record<string, unknown> & { kid?: string; kty: string };

  export interface ResourceServerInfo {
    scope: string;
    audience?: string;
    accessTokenTTL?: number;
    accessTokenFormat?: 'opaque' | 'jwt';
    jwt?: { sign?: { alg?: string; kid?: string } };
  }

  export interface ClientMetadata {
    client_id: string;
    client_secret?: string;
    redirect_uris?: string[];
    grant_types?: string[];
    response_types?: string[];
    token_endpoint_auth_method?: string;
    scope?: string;
    [key: string]: unknown;
  }

  export interface Client {
    readonly clientId: string;
    grantTypeAllowed(grantType: string): boolean;
  }

  export interface ResourceServer {
    readonly audience?: string;
    readonly scope?: string;
    identifier(): string;
  }

  export interface Grant {
    readonly jti: string;
    addOIDCScope(scope: string): void;
    addResourceScope(resource: string, scope: string): void;
    save(): Promise<string>;
  }

  export interface BaseToken {
    readonly kind: string;
    readonly jti: string;
    readonly clientId: string;
    client?: Client;
    resourceServer?: ResourceServer;
    expiresIn?: number;
    scope?: string;
    readonly expiration: number;
    readonly tokenType: string;
    save(): Promise<string>;
  }

  export interface AccessToken extends BaseToken {
    readonly accountId?: string;
  }

  export interface Account {
    accountId: string;
    claims(use: string, scope: string): Promise<Record<string, unknown>> | Record<string, unknown>;
  }

  export interface OIDCContext {
    readonly params: Record<string, unknown> & { scope?: string; resource?: string | string[] };
    readonly client?: Client;
    readonly session: { accountId?: string; grantIdFor(clientId: string): string | undefined };
    readonly result?: { consent?: { grantId?: string } };
    readonly provider: Provider;
    readonly route: string;
  }

  export interface KoaContextWithOIDC {
    oidc: OIDCContext;
    body: unknown;
    status: number;
  }

  export interface InteractionDetails {
    readonly uid: string;
    readonly prompt: { name: string; reasons: string[]; details: Record<string, unknown> };
    readonly params: Record<string, unknown> & { client_id?: string; scope?: string };
    readonly session?: { accountId?: string };
    readonly grantId?: string;
    readonly returnTo: string;
  }

  export interface Configuration {
    clients?: ClientMetadata[];
    jwks?: { keys: Jwk[] };
    cookies?: { keys?: string[]; long?: Record<string, unknown>; short?: Record<string, unknown> };
    claims?: Record<string, string[] | null>;
    scopes?: string[];
    features?: Record<string, Record<string, unknown>>;
    interactions?: {
      url?: (ctx: KoaContextWithOIDC, interaction: { uid: string }) => string | Promise<string>;
    };
    findAccount?: (
      ctx: KoaContextWithOIDC | undefined,
      sub: string,
      token?: unknown,
    ) => Promise<Account | undefined>;
    extraTokenClaims?: (
      ctx: KoaContextWithOIDC | undefined,
      token: AccessToken,
    ) => Promise<Record<string, unknown> | undefined>;
    loadExistingGrant?: (ctx: KoaContextWithOIDC) => Promise<Grant | undefined>;
    pkce?: { required?: (ctx: KoaContextWithOIDC, client: Client) => boolean };
    ttl?: Record<string, number | ((...args: unknown[]) => number)>;
    renderError?: (
      ctx: KoaContextWithOIDC,
      out: Record<string, string>,
      error: Error,
    ) => void | Promise<void>;
    [key: string]: unknown;
  }

  type TokenStatic<T> = new (init: Record<string, unknown>) => T;

  export class Provider {
    constructor(issuer: string, configuration?: Configuration);
    readonly issuer: string;
    proxy: boolean;
    callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
    registerGrantType(
      name: string,
      handler: (ctx: KoaContextWithOIDC) => Promise<void>,
      params?: string | string[] | Set<string>,
      dupes?: string | string[] | Set<string>,
    ): void;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
    interactionFinished(
      req: IncomingMessage,
      res: ServerResponse,
      result: Record<string, unknown>,
      options?: { mergeWithLastSubmission?: boolean },
    ): Promise<void>;
    on(event: string, listener: (...args: unknown[]) => void): this;
    readonly AccessToken: TokenStatic<AccessToken>;
    readonly ClientCredentials: TokenStatic<BaseToken>;
    readonly Grant: (new (init: { accountId?: string; clientId: string }) => Grant) & {
      find(id: string): Promise<Grant | undefined>;
    };
    readonly Client: { find(id: string): Promise<Client | undefined> };
    readonly ResourceServer: new (identifier: string, info: ResourceServerInfo) => ResourceServer;
  }

  class OIDCProviderError extends Error {
    constructor(description?: string);
    readonly error: string;
    readonly error_description?: string;
    readonly statusCode: number;
  }

  export const errors: {
    readonly InvalidGrant: typeof OIDCProviderError;
    readonly InvalidRequest: typeof OIDCProviderError;
    readonly InvalidTarget: typeof OIDCProviderError;
    readonly OIDCProviderError: typeof OIDCProviderError;
  };

  export default Provider;
}

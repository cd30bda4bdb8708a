/** Bearer-token authentication for API routes (the verifier is hydrated at cold start). */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { UnauthorizedError } from '../core/errors.js';
import type { Principal } from '../core/types.js';
import { header } from './http.js';

export interface TokenVerifier {
  verify(token: string): Promise<{ principal: Principal; claims: Record<string, unknown> }>;
}

export interface Caller {
  readonly principal: Principal;
  /**
   * The raw token: derives the default session id and is handed to the execute function, which
   * verifies it again before an allowed write runs; never logged or stored.
   */
  readonly token: string;
}

/** Where a client finds how to get a token (RFC 9728 §5.1) and which scopes to ask for. */
export interface ChallengeParams {
  readonly resourceMetadata?: string;
  readonly scope?: string;
}

function challenge(params: ChallengeParams, error?: string): string {
  const parts = ['Bearer realm="warden"'];
  if (error) parts.push(`error="invalid_token", error_description="${error.replace(/["\\\r\n]/g, ' ')}"`);
  if (params.resourceMetadata) parts.push(`resource_metadata="${params.resourceMetadata}"`);
  if (params.scope) parts.push(`scope="${params.scope}"`);
  return parts.join(', ');
}

export async function authenticate(
  event: APIGatewayProxyEventV2,
  verifier: TokenVerifier,
  challengeParams: ChallengeParams = {},
): Promise<Caller> {
  const authorization = header(event, 'authorization');
  const match = authorization ? /^Bearer[ ]+([^\s]+)\s*$/i.exec(authorization) : null;
  if (!match) {
    const err = new UnauthorizedError('a bearer token is required (Authorization: Bearer <token>)');
    throw withChallenge(err, challenge(challengeParams));
  }
  try {
    const { principal } = await verifier.verify(match[1]);
    return { principal, token: match[1] };
  } catch (error) {
    const err = error instanceof UnauthorizedError ? error : new UnauthorizedError('invalid token', error);
    throw withChallenge(err, challenge(challengeParams, err.message));
  }
}

function withChallenge(error: UnauthorizedError, value: string): UnauthorizedError {
  const out = new UnauthorizedError(error.message, error.cause);
  (out as { details?: Record<string, unknown> }).details = { wwwAuthenticate: value };
  return out;
}

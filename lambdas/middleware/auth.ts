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
  /** The raw token: used only to derive the default session id, never logged, stored or passed on. */
  readonly token: string;
}

function challenge(resourceMetadataUrl: string | undefined, error?: string): string {
  const parts = ['Bearer realm="warden"'];
  if (error) parts.push(`error="invalid_token", error_description="${error.replace(/["\\\r\n]/g, ' ')}"`);
  if (resourceMetadataUrl) parts.push(`resource_metadata="${resourceMetadataUrl}"`);
  return parts.join(', ');
}

export async function authenticate(
  event: APIGatewayProxyEventV2,
  verifier: TokenVerifier,
  resourceMetadataUrl?: string,
): Promise<Caller> {
  const authorization = header(event, 'authorization');
  const match = authorization ? /^Bearer[ ]+([^\s]+)\s*$/i.exec(authorization) : null;
  if (!match) {
    const err = new UnauthorizedError('a bearer token is required (Authorization: Bearer <token>)');
    throw withChallenge(err, challenge(resourceMetadataUrl));
  }
  try {
    const { principal } = await verifier.verify(match[1]);
    return { principal, token: match[1] };
  } catch (error) {
    const err = error instanceof UnauthorizedError ? error : new UnauthorizedError('invalid token', error);
    throw withChallenge(err, challenge(resourceMetadataUrl, err.message));
  }
}

function withChallenge(error: UnauthorizedError, value: string): UnauthorizedError {
  const out = new UnauthorizedError(error.message, error.cause);
  (out as { details?: Record<string, unknown> }).details = { wwwAuthenticate: value };
  return out;
}

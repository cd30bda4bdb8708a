/** What every route receives: the event, the runtime wiring, and authentication on demand. */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { BadRequestError } from '../core/errors.js';
import { isValidSessionId, sessionIdForToken } from '../core/requests.js';
import type { Caller } from '../middleware/auth.js';
import { header } from '../middleware/http.js';
import type { Route } from './router.js';
import type { Runtime } from './runtime.js';

export interface Ctx {
  readonly event: APIGatewayProxyEventV2;
  readonly rt: Runtime;
  /** Authenticates on demand: public routes never call it. */
  caller(): Promise<Caller>;
}

export type ApiRoute = Route<Ctx>;

export function baseUrl(event: APIGatewayProxyEventV2, rt: Runtime): string {
  if (rt.publicUrl) return rt.publicUrl.replace(/\/$/, '');
  return `https://${event.requestContext.domainName}`;
}

/** The caller's session: X-Warden-Session when given (validated), else one per token. */
export function sessionId(event: APIGatewayProxyEventV2, caller: Caller): string {
  const given = header(event, 'x-warden-session');
  if (given !== undefined) {
    if (!isValidSessionId(given)) {
      throw new BadRequestError('invalid X-Warden-Session: 1-128 characters of A-Z a-z 0-9 . _ : -');
    }
    return `c_${given}`;
  }
  return sessionIdForToken(caller.token);
}

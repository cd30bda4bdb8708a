/**
 * Who is calling: turns the claims of an already verified access token into a Principal.
 * Pure: no I/O, no verification (lambdas/adapters/jwt-verifier.ts does that first).
 */
import { UnauthorizedError } from './errors.js';
import type { OnBehalfOf, Principal } from './types.js';

export interface IdentityOptions {
  /**
   * Claim holding the caller's groups: a top-level name (`groups`, `cognito:groups`) or a dotted
   * path into nested objects (`realm_access.roles`). A top-level claim of that exact name wins.
   */
  readonly groupsClaim: string;
  /**
   * Claims tried, in order, for a user's display name. Values that look like an email address are
   * skipped: display names end up in records and notifications, emails must not.
   * @default ['preferred_username', 'username', 'cognito:username']
   */
  readonly usernameClaims?: readonly string[];
  /**
   * For IdPs without token exchange: a claim of an agent's (client-credentials) token naming the
   * user the agent acts for, e.g. `warden_owner` set by the IdP per client. Unset: not read.
   */
  readonly ownerClaim?: string;
  /**
   * Client ids that are agents even when their token names a user (Okta's and Entra's
   * on-behalf-of flows issue the user's `sub` to the agent's client): such a token is the agent
   * acting for that user. @default []
   */
  readonly agentClientIds?: readonly string[];
}

export const MAX_GROUPS = 100;
export const MAX_GROUP_LENGTH = 128;
export const MAX_ID_LENGTH = 256;

const DEFAULT_USERNAME_CLAIMS = ['preferred_username', 'username', 'cognito:username'];
// C0, DEL and C1 controls, plus the Unicode line/paragraph separators.
const CONTROL_CHARS = /[\p{Cc}\u2028\u2029]/u;
const EMAIL_LIKE = /@/;

export function principalFromClaims(claims: Record<string, unknown>, options: IdentityOptions): Principal {
  const clientId = firstString(claims, ['client_id', 'azp', 'cid', 'appid']);
  const sub = optionalString(claims, 'sub');
  const groups = groupsFrom(claimAt(claims, options.groupsClaim), options.groupsClaim);
  if (clientId !== undefined) checkId(clientId, 'client id');

  // RFC 8693 token exchange: `sub` is the person, `act` the party acting for them (the agent).
  if (claims.act !== undefined) {
    return delegatedPrincipal(claims, sub, groups, clientId, options);
  }

  // A client-credentials token has no end user: its subject is the client itself (or absent).
  // Entra marks app-only tokens with idtyp=app while its `sub` is the app's object id.
  const isAgent = sub === undefined || sub === clientId || claims.idtyp === 'app';

  if (isAgent) {
    const id = clientId ?? sub;
    if (id === undefined) {
      throw new UnauthorizedError('token names neither a user (sub) nor a client (client_id)');
    }
    checkId(id, 'subject');
    const owner = options.ownerClaim ? optionalString(claims, options.ownerClaim) : undefined;
    if (owner !== undefined) {
      checkId(owner, 'owner');
      if (owner === id)
        throw new UnauthorizedError(`token claim ${options.ownerClaim} names the agent itself`);
    }
    return {
      type: 'Agent',
      id,
      name: id,
      groups,
      clientId: id,
      // The IdP says who the agent belongs to; it does not say their groups.
      ...(owner === undefined ? {} : { onBehalfOf: { type: 'User', id: owner, name: owner, groups: [] } }),
    };
  }

  checkId(sub, 'subject');
  const username = firstString(
    claims,
    options.usernameClaims ?? DEFAULT_USERNAME_CLAIMS,
    (v) => !EMAIL_LIKE.test(v),
  );
  const name = username !== undefined && isValidId(username) ? username : sub;
  if (clientId !== undefined && options.agentClientIds?.includes(clientId)) {
    // A user's token issued to an agent's client (on-behalf-of): the agent, acting for the user.
    return {
      type: 'Agent',
      id: clientId,
      name: clientId,
      groups: [],
      clientId,
      onBehalfOf: { type: 'User', id: sub, name, groups },
    };
  }
  return {
    type: 'User',
    id: sub,
    name,
    groups,
    ...(clientId === undefined ? {} : { clientId }),
  };
}

/**
 * A token-exchange token: the agent (`act.sub`, or `act.client_id`) acting for the user (`sub`).
 * The token's groups are the user's; the agent's own groups come from `act` when the IdP puts them
 * there, else it has none. Earlier actors (`act.act`) are history and do not act now.
 */
function delegatedPrincipal(
  claims: Record<string, unknown>,
  sub: string | undefined,
  groups: string[],
  clientId: string | undefined,
  options: IdentityOptions,
): Principal {
  const act = claims.act;
  if (act === null || typeof act !== 'object' || Array.isArray(act)) {
    throw new UnauthorizedError('token claim act must be an object naming the actor');
  }
  const actor = act as Record<string, unknown>;
  const actorId = firstString(actor, ['sub', 'client_id']);
  if (actorId === undefined) throw new UnauthorizedError('token claim act names no actor (sub or client_id)');
  checkId(actorId, 'actor');
  if (sub === undefined)
    throw new UnauthorizedError('a delegated token must name the user it acts for (sub)');
  checkId(sub, 'subject');
  if (sub === actorId) throw new UnauthorizedError('token claim act names the subject itself');
  const username = firstString(
    claims,
    options.usernameClaims ?? DEFAULT_USERNAME_CLAIMS,
    (v) => !EMAIL_LIKE.test(v),
  );
  const onBehalfOf: OnBehalfOf = {
    type: 'User',
    id: sub,
    name: username !== undefined && isValidId(username) ? username : sub,
    groups,
  };
  const actorGroups = groupsFrom(claimAt(actor, options.groupsClaim), `act.${options.groupsClaim}`);
  return {
    type: 'Agent',
    id: actorId,
    name: actorId,
    groups: actorGroups,
    ...(clientId === undefined ? {} : { clientId }),
    onBehalfOf,
  };
}

/** Reads a claim by exact name first, then as a dotted path through nested objects. */
function claimAt(claims: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(claims, name)) return claims[name];
  if (!name.includes('.')) return undefined;
  let node: unknown = claims;
  for (const part of name.split('.')) {
    if (node === null || typeof node !== 'object' || Array.isArray(node) || !Object.hasOwn(node, part)) {
      return undefined;
    }
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/**
 * Groups drive authorization, including `forbid … when principal in Group::"…"` policies, so a
 * malformed claim rejects the token rather than silently dropping entries.
 */
function groupsFrom(value: unknown, claimName: string): string[] {
  if (value === undefined || value === null) return [];
  let raw: unknown[];
  if (typeof value === 'string') {
    raw = value.split(/[\s,]+/).filter((g) => g !== '');
  } else if (Array.isArray(value)) {
    raw = value;
  } else {
    throw new UnauthorizedError(`token claim ${claimName} must be a list of group names`);
  }
  const groups = new Set<string>();
  for (const g of raw) {
    if (typeof g !== 'string' || g.trim() === '' || g.length > MAX_GROUP_LENGTH || CONTROL_CHARS.test(g)) {
      throw new UnauthorizedError(`token claim ${claimName} holds an invalid group name`);
    }
    groups.add(g);
  }
  if (groups.size > MAX_GROUPS) {
    throw new UnauthorizedError(`token claim ${claimName} holds more than ${MAX_GROUPS} groups`);
  }
  return [...groups];
}

function optionalString(claims: Record<string, unknown>, name: string): string | undefined {
  const v = claims[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new UnauthorizedError(`token claim ${name} must be a string`);
  return v === '' ? undefined : v;
}

function firstString(
  claims: Record<string, unknown>,
  names: readonly string[],
  accept: (value: string) => boolean = () => true,
): string | undefined {
  for (const name of names) {
    const v = claims[name];
    if (typeof v === 'string' && v !== '' && accept(v)) return v;
  }
  return undefined;
}

function isValidId(id: string): boolean {
  return id.length > 0 && id.length <= MAX_ID_LENGTH && !CONTROL_CHARS.test(id) && id.trim() === id;
}

function checkId(id: string, what: string): void {
  if (!isValidId(id)) throw new UnauthorizedError(`token ${what} is not a valid identifier`);
}

/**
 * Who is calling: turns the claims of an already verified access token into a Principal.
 * Pure: no I/O, no verification (lambdas/adapters/jwt-verifier.ts does that first).
 */
import { UnauthorizedError } from './errors.js';
import type { Principal } from './types.js';

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

  // A client-credentials token has no end user: its subject is the client itself (or absent).
  // Entra marks app-only tokens with idtyp=app while its `sub` is the app's object id.
  const isAgent = sub === undefined || sub === clientId || claims.idtyp === 'app';

  if (isAgent) {
    const id = clientId ?? sub;
    if (id === undefined) {
      throw new UnauthorizedError('token names neither a user (sub) nor a client (client_id)');
    }
    checkId(id, 'subject');
    return { type: 'Agent', id, name: id, groups, clientId: id };
  }

  checkId(sub, 'subject');
  const username = firstString(
    claims,
    options.usernameClaims ?? DEFAULT_USERNAME_CLAIMS,
    (v) => !EMAIL_LIKE.test(v),
  );
  const name = username !== undefined && isValidId(username) ? username : sub;
  return {
    type: 'User',
    id: sub,
    name,
    groups,
    ...(clientId === undefined ? {} : { clientId }),
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

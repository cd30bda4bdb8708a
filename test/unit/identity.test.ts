import { describe, expect, it } from 'vitest';

import { UnauthorizedError } from '../../lambdas/core/errors.js';
import { MAX_GROUPS, MAX_GROUP_LENGTH, principalFromClaims } from '../../lambdas/core/identity.js';

const opts = { groupsClaim: 'groups' };

describe('principalFromClaims', () => {
  it('makes a User from a token with a user subject, keeping the client it came through', () => {
    const p = principalFromClaims(
      { sub: 'alice', client_id: 'warden-cli', preferred_username: 'alice', groups: ['engineers'] },
      opts,
    );
    expect(p).toEqual({
      type: 'User',
      id: 'alice',
      name: 'alice',
      groups: ['engineers'],
      clientId: 'warden-cli',
    });
  });

  it('makes an Agent from a client-credentials token whose subject is the client', () => {
    const p = principalFromClaims({ sub: 'agent-demo', client_id: 'agent-demo', groups: ['agents'] }, opts);
    expect(p).toEqual({
      type: 'Agent',
      id: 'agent-demo',
      name: 'agent-demo',
      groups: ['agents'],
      clientId: 'agent-demo',
    });
  });

  it('makes an Agent from a token with a client id (azp) and no subject', () => {
    const p = principalFromClaims({ azp: 'etl-bot' }, opts);
    expect(p).toMatchObject({ type: 'Agent', id: 'etl-bot', name: 'etl-bot', groups: [] });
  });

  it('treats Entra app-only tokens (idtyp=app) as agents even though sub is an object id', () => {
    const p = principalFromClaims(
      { sub: '6f1c…oid', azp: 'app-123', idtyp: 'app', roles: ['agents'] },
      {
        groupsClaim: 'roles',
      },
    );
    expect(p).toMatchObject({ type: 'Agent', id: 'app-123', groups: ['agents'] });
  });

  it('rejects a token that names neither a user nor a client', () => {
    expect(() => principalFromClaims({ groups: ['x'] }, opts)).toThrow(UnauthorizedError);
  });

  it('reads Cognito groups from the cognito:groups claim', () => {
    const p = principalFromClaims(
      { sub: '1b2c-uuid', client_id: 'abc', username: 'bob', 'cognito:groups': ['dba', 'support'] },
      { groupsClaim: 'cognito:groups' },
    );
    expect(p).toMatchObject({ type: 'User', id: '1b2c-uuid', name: 'bob', groups: ['dba', 'support'] });
  });

  it('reads groups from a dotted path into nested claims', () => {
    const p = principalFromClaims(
      { sub: 'carol', realm_access: { roles: ['support'] } },
      {
        groupsClaim: 'realm_access.roles',
      },
    );
    expect(p.groups).toEqual(['support']);
  });

  it('prefers a top-level claim literally named with dots over the nested path', () => {
    const p = principalFromClaims(
      { sub: 'carol', 'https://warden/groups': ['flat'], https: { '//warden/groups': ['nested'] } },
      { groupsClaim: 'https://warden/groups' },
    );
    expect(p.groups).toEqual(['flat']);
  });

  it('splits groups given as a space- or comma-separated string and drops duplicates', () => {
    const p = principalFromClaims({ sub: 'erin', groups: 'engineers, dba  engineers' }, opts);
    expect(p.groups).toEqual(['engineers', 'dba']);
  });

  it('gives no groups when the claim is absent', () => {
    expect(principalFromClaims({ sub: 'dave' }, opts).groups).toEqual([]);
  });

  it('rejects a groups claim that is neither a list nor a string', () => {
    expect(() => principalFromClaims({ sub: 'dave', groups: { admin: true } }, opts)).toThrow(
      UnauthorizedError,
    );
  });

  it('rejects a non-string group instead of silently dropping it', () => {
    expect(() => principalFromClaims({ sub: 'dave', groups: ['auditors', 7] }, opts)).toThrow(
      UnauthorizedError,
    );
  });

  it('rejects group names with control characters', () => {
    expect(() => principalFromClaims({ sub: 'dave', groups: ['dba\nadmins'] }, opts)).toThrow(
      /invalid group name/,
    );
    expect(() => principalFromClaims({ sub: 'dave', groups: ['dba\u0000'] }, opts)).toThrow(
      UnauthorizedError,
    );
  });

  it('rejects over-long group names and too many groups', () => {
    expect(() =>
      principalFromClaims({ sub: 'dave', groups: ['g'.repeat(MAX_GROUP_LENGTH + 1)] }, opts),
    ).toThrow(UnauthorizedError);
    const many = Array.from({ length: MAX_GROUPS + 1 }, (_, i) => `g${i}`);
    expect(() => principalFromClaims({ sub: 'dave', groups: many }, opts)).toThrow(/more than/);
    expect(principalFromClaims({ sub: 'dave', groups: many.slice(0, MAX_GROUPS) }, opts).groups).toHaveLength(
      MAX_GROUPS,
    );
  });

  it('never uses an email as the display name', () => {
    const p = principalFromClaims(
      { sub: '00u1abcd', preferred_username: 'alice@example.com', email: 'alice@example.com' },
      opts,
    );
    expect(p.name).toBe('00u1abcd');
    expect(JSON.stringify(p)).not.toContain('@');
  });

  it('falls through username claims in the order given', () => {
    const p = principalFromClaims(
      { sub: 'u-1', preferred_username: 'a@b.c', nickname: 'alice' },
      { groupsClaim: 'groups', usernameClaims: ['preferred_username', 'nickname'] },
    );
    expect(p.name).toBe('alice');
  });

  it('rejects a subject with control characters or of the wrong type', () => {
    expect(() => principalFromClaims({ sub: 'alice\r\nX-Admin: 1' }, opts)).toThrow(UnauthorizedError);
    expect(() => principalFromClaims({ sub: 42 }, opts)).toThrow(UnauthorizedError);
    expect(() => principalFromClaims({ sub: 'x'.repeat(1000) }, opts)).toThrow(UnauthorizedError);
  });
});

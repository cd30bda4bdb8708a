/** Agents acting for people: claims → principal, Cedar's view of both, and who may never approve. */
import { describe, expect, it } from 'vitest';
import { countApprovals, sameSideReason } from '../../lambdas/core/approvals.js';
import { UnauthorizedError } from '../../lambdas/core/errors.js';
import { principalFromClaims } from '../../lambdas/core/identity.js';
import { PolicyEngine } from '../../lambdas/core/policy.js';
import { CEDAR_SCHEMA } from '../../lambdas/core/policy-schema.js';
import { principalKey, type Principal, type RequestRecord } from '../../lambdas/core/types.js';

const opts = { groupsClaim: 'groups' };

describe('principals from delegated tokens', () => {
  it('reads RFC 8693 act: the agent acts, for the user named by sub, with the user’s groups', () => {
    const p = principalFromClaims(
      {
        sub: 'erin',
        client_id: 'agent-demo',
        preferred_username: 'erin',
        groups: ['engineers', 'dba'],
        act: { sub: 'agent-demo', groups: ['agents'], act: { sub: 'an-earlier-hop' } },
      },
      opts,
    );
    expect(p).toEqual({
      type: 'Agent',
      id: 'agent-demo',
      name: 'agent-demo',
      groups: ['agents'],
      clientId: 'agent-demo',
      onBehalfOf: { type: 'User', id: 'erin', name: 'erin', groups: ['engineers', 'dba'] },
    });
  });

  it('never lets the person’s groups become the agent’s own (a dba’s agent is no approver)', () => {
    const p = principalFromClaims({ sub: 'bob', groups: ['dba'], act: { client_id: 'bot' } }, opts);
    expect(p.groups).toEqual([]);
    expect(p.onBehalfOf?.groups).toEqual(['dba']);
  });

  it('refuses a malformed act, an act without actor, without sub, or naming the subject', () => {
    for (const claims of [
      { sub: 'erin', act: 'agent-demo' },
      { sub: 'erin', act: ['agent-demo'] },
      { sub: 'erin', act: {} },
      { act: { sub: 'agent-demo' } },
      { sub: 'erin', act: { sub: 'erin' } },
      { sub: 'erin', act: { sub: 'a\nb' } },
      { sub: 'erin', act: { sub: 'agent-demo', groups: 'x\u0000' } },
    ]) {
      expect(() => principalFromClaims(claims, opts)).toThrow(UnauthorizedError);
    }
  });

  it('reads a configured owner claim of an agent token, and only when configured', () => {
    const claims = { sub: 'agent-erin', client_id: 'agent-erin', groups: ['agents'], warden_owner: 'erin' };
    expect(principalFromClaims(claims, { ...opts, ownerClaim: 'warden_owner' }).onBehalfOf).toEqual({
      type: 'User',
      id: 'erin',
      name: 'erin',
      groups: [],
    });
    expect(principalFromClaims(claims, opts).onBehalfOf).toBeUndefined();
    expect(() =>
      principalFromClaims({ ...claims, warden_owner: 'agent-erin' }, { ...opts, ownerClaim: 'warden_owner' }),
    ).toThrow(UnauthorizedError);
  });

  it('treats a user token issued to a configured agent client as that agent acting for the user', () => {
    const claims = { sub: 'oid-123', azp: 'claude-agent', preferred_username: 'erin', groups: ['dba'] };
    expect(principalFromClaims(claims, { ...opts, agentClientIds: ['claude-agent'] })).toMatchObject({
      type: 'Agent',
      id: 'claude-agent',
      groups: [],
      onBehalfOf: { id: 'oid-123', name: 'erin', groups: ['dba'] },
    });
    expect(principalFromClaims(claims, opts).type).toBe('User');
  });
});

describe('Cedar sees the agent and the person it acts for', () => {
  const delegation = `
@id("agents-read-for-engineers")
permit (principal is Agent, action == Action::"sql:read", resource == Target::"lab")
when { principal has onBehalfOf && principal.onBehalfOf in Group::"engineers" };
@id("demo-read")
permit (principal in Group::"agents", action == Action::"sql:read", resource == Target::"demo");`;
  const engine = PolicyEngine.load(CEDAR_SCHEMA, [{ source: 'd.cedar', text: delegation }], 't');
  const ctx = { grants: [], justification: '', hasJustification: false, now: 1, hourUtc: 1 };
  const agent = (onBehalfOf?: Principal['onBehalfOf']): Principal => ({
    type: 'Agent',
    id: 'agent-demo',
    name: 'agent-demo',
    groups: ['agents'],
    ...(onBehalfOf ? { onBehalfOf } : {}),
  });
  const lab = { type: 'Target' as const, id: 'lab', kind: 'sql' };
  const demo = { type: 'Target' as const, id: 'demo', kind: 'sql' };

  it('lets a policy use the person’s groups, and existing policies still see the agent', () => {
    const forAlice = agent({ type: 'User', id: 'alice', name: 'alice', groups: ['engineers'] });
    const forCarol = agent({ type: 'User', id: 'carol', name: 'carol', groups: ['support'] });
    expect(engine.decideOperation(forAlice, 'sql:read', lab, ctx).outcome).toBe('allow');
    expect(engine.decideOperation(forCarol, 'sql:read', lab, ctx).outcome).toBe('deny');
    expect(engine.decideOperation(agent(), 'sql:read', lab, ctx).outcome).toBe('deny');
    for (const p of [forAlice, forCarol, agent()]) {
      expect(engine.decideOperation(p, 'sql:read', demo, ctx).outcome).toBe('allow');
    }
  });

  it('lets a deployment refuse every agent that names no person (so its owner cannot approve it)', () => {
    // The policy docs/security.md gives for "delegation is only as good as the IdP's claims".
    const text = `${delegation}
@id("agents-must-act-for-someone")
forbid (principal is Agent, action, resource) unless { principal has onBehalfOf };`;
    const e = PolicyEngine.load(CEDAR_SCHEMA, [{ source: 'f.cedar', text }], 't');
    const forAlice = agent({ type: 'User', id: 'alice', name: 'alice', groups: ['engineers'] });
    const unlinked = e.decideOperation(agent(), 'sql:read', demo, ctx);
    expect(unlinked.outcome).toBe('deny');
    expect(unlinked.determiningPolicies).toEqual(['agents-must-act-for-someone']);
    expect(e.decideOperation(forAlice, 'sql:read', demo, ctx).outcome).toBe('allow');
    // People are not agents: the forbid does not touch them.
    const alice: Principal = { type: 'User', id: 'alice', name: 'alice', groups: ['agents'] };
    expect(e.decideOperation(alice, 'sql:read', demo, ctx).outcome).toBe('allow');
  });

  it('does not let the person’s groups make the agent a member of them', () => {
    const text = `@id("engineers") permit (principal in Group::"engineers", action == Action::"sql:read", resource);`;
    const e = PolicyEngine.load(CEDAR_SCHEMA, [{ source: 'e.cedar', text }], 't');
    const forAlice = agent({ type: 'User', id: 'alice', name: 'alice', groups: ['engineers'] });
    expect(e.decideOperation(forAlice, 'sql:read', demo, ctx).outcome).toBe('deny');
  });
});

describe('who is on the requester’s side', () => {
  const erin: Principal = { type: 'User', id: 'erin', name: 'erin', groups: ['engineers', 'dba'] };
  const bob: Principal = { type: 'User', id: 'bob', name: 'bob', groups: ['dba'] };
  const record = {
    id: 'r_x',
    principal: 'Agent::"agent-demo"',
    principalName: 'agent-demo',
    onBehalfOf: { key: principalKey(erin), id: 'erin', name: 'erin', groups: ['engineers', 'dba'] },
  } as unknown as RequestRecord;

  it('refuses the person the agent acts for, and an agent acting for the requester', () => {
    expect(sameSideReason(erin, record)).toMatch(/never approves a request made by an agent acting for them/);
    expect(sameSideReason(bob, record)).toBeUndefined();
    const alicesRecord = { id: 'r_y', principal: 'User::"alice"', principalName: 'alice' } as RequestRecord;
    const agentForAlice: Principal = {
      type: 'Agent',
      id: 'bot',
      name: 'bot',
      groups: [],
      onBehalfOf: { type: 'User', id: 'alice', name: 'alice', groups: [] },
    };
    expect(sameSideReason(agentForAlice, alicesRecord)).toMatch(/agent never approves/);
  });

  it('counts distinct people and never the requester’s side toward the quorum', () => {
    const at = '2026-01-01T00:00:00Z';
    const votes = [
      { by: 'User::"erin"', byName: 'erin', decision: 'approve' as const, at },
      { by: 'User::"bob"', byName: 'bob', decision: 'approve' as const, at },
      { by: 'Agent::"x"', byName: 'x', onBehalfOf: 'User::"bob"', decision: 'approve' as const, at },
    ];
    expect(countApprovals(record, votes)).toBe(1);
  });
});

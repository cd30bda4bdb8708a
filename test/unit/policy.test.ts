import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { describe, expect, it } from 'vitest';
import { PolicyEngine, PolicyValidationError, type PolicySource } from '../../lambdas/core/policy.js';
import { PolicyProvider, encodePolicySources } from '../../lambdas/core/policy-provider.js';
import { CEDAR_SCHEMA, CEDAR_SCHEMA_JSON_SHA256 } from '../../lambdas/core/policy-schema.js';
import type { PolicyStore, StoredPolicySet } from '../../lambdas/core/ports.js';
import { denialReason, type Principal } from '../../lambdas/core/types.js';

const demo: PolicySource = { source: 'demo.cedar', text: readFileSync('policies/demo.cedar', 'utf8') };
const engine = PolicyEngine.load(CEDAR_SCHEMA, [demo], 'test');
const demoTarget = { type: 'Target' as const, id: 'demo', kind: 'sql' };

const user = (id: string, groups: string[]): Principal => ({ type: 'User', id, name: id, groups });
const alice = user('alice', ['engineers']);
const bob = user('bob', ['dba']);
const carol = user('carol', ['support']);
const dave = user('dave', ['auditors']);
const agent: Principal = { type: 'Agent', id: 'agent-demo', name: 'agent-demo', groups: ['agents'] };

function ctx(grants: string[] = []) {
  return {
    grants,
    justification: '',
    hasJustification: false,
    now: 1_800_000_000,
    hourUtc: 12,
    sql: { statementTypes: ['SelectStmt'], tables: ['public.customers'], functions: [] },
  };
}

describe('Cedar policy engine', () => {
  it('allows reads on demo for engineers, support, dba and agents, naming the policy', () => {
    for (const p of [alice, bob, carol, agent]) {
      const d = engine.decideOperation(p, 'sql:read', demoTarget, ctx());
      expect(d).toMatchObject({ outcome: 'allow', determiningPolicies: ['demo-read'] });
    }
  });

  it('denies reads to a group no policy names (default deny)', () => {
    const d = engine.decideOperation(dave, 'sql:read', demoTarget, ctx());
    expect(d.outcome).toBe('deny');
    expect(d.determiningPolicies).toEqual([]);
  });

  it('requires approval for writes and DDL by engineers and agents', () => {
    for (const p of [alice, agent]) {
      for (const action of ['sql:write', 'sql:ddl']) {
        expect(engine.decideOperation(p, action, demoTarget, ctx())).toMatchObject({
          outcome: 'approval_required',
          determiningPolicies: ['demo-writes-need-approval'],
        });
      }
    }
  });

  it('lets a just-in-time grant stand in for approval, only for the granted class', () => {
    expect(engine.decideOperation(alice, 'sql:write', demoTarget, ctx(['sql:write'])).outcome).toBe('allow');
    expect(engine.decideOperation(alice, 'sql:ddl', demoTarget, ctx(['sql:write'])).outcome).toBe(
      'approval_required',
    );
  });

  it('denies privilege and admin statements to everyone, even with approval', () => {
    for (const p of [alice, bob, agent]) {
      for (const action of ['sql:privilege', 'sql:admin']) {
        const d = engine.decideOperation(p, action, demoTarget, ctx(['sql:privilege', 'sql:admin']));
        expect(d).toMatchObject({ outcome: 'deny', determiningPolicies: ['never-privilege-or-admin'] });
        expect(engine.decideApproved(p, action, demoTarget, ctx()).outcome).toBe('deny');
      }
    }
  });

  it('lets dba approve and view unmasked data, on the target and its tables', () => {
    expect(engine.authorize(bob, 'approve', demoTarget, {}).allowed).toBe(true);
    expect(engine.authorize(alice, 'approve', demoTarget, {}).allowed).toBe(false);
    const table = { type: 'Table' as const, id: 'demo/public.customers', target: 'demo' };
    expect(engine.authorize(bob, 'view_unmasked', table, {}).allowed).toBe(true);
    expect(engine.authorize(carol, 'view_unmasked', table, {}).allowed).toBe(false);
  });

  it('gives auditors the audit action only', () => {
    expect(engine.authorize(dave, 'audit', { type: 'Gateway', id: 'warden' }, {}).allowed).toBe(true);
    expect(engine.authorize(alice, 'audit', { type: 'Gateway', id: 'warden' }, {}).allowed).toBe(false);
  });

  it('treats a request the schema rejects as a deny, never an allow', () => {
    const d = engine.authorize(alice, 'sql:read', demoTarget, { unexpected: true });
    expect(d.allowed).toBe(false);
    expect(d.errors.length).toBeGreaterThan(0);
  });

  it("refuses a policy set that fails validation with Cedar's message", () => {
    const bad = { source: 'bad.cedar', text: 'permit(principal, action == Action::"sql:raed", resource);' };
    expect(() => PolicyEngine.load(CEDAR_SCHEMA, [bad], 'bad')).toThrow(PolicyValidationError);
    try {
      PolicyEngine.load(CEDAR_SCHEMA, [bad], 'bad');
    } catch (error) {
      expect((error as PolicyValidationError).message).toMatch(/sql:raed/);
    }
    const syntax = { source: 'syntax.cedar', text: 'permit(principal, action, resource' };
    expect(() => PolicyEngine.load(CEDAR_SCHEMA, [syntax], 'bad')).toThrow(/syntax\.cedar/);
    const typo = { source: 't.cedar', text: 'permit(principal, action, resource) when { context.nope };' };
    expect(() => PolicyEngine.load(CEDAR_SCHEMA, [typo], 'bad')).toThrow(PolicyValidationError);
  });

  it('refuses duplicate policy ids', () => {
    const dup = {
      source: 'a.cedar',
      text: '@id("x")\npermit(principal, action, resource);\n@id("x")\nforbid(principal, action, resource);',
    };
    expect(() => PolicyEngine.load(CEDAR_SCHEMA, [dup], 'dup')).toThrow(/duplicate policy id "x"/);
  });
});

class MemoryPolicyStore implements PolicyStore {
  active?: StoredPolicySet;
  fail = false;
  async getActive() {
    if (this.fail) throw new Error('store down');
    return this.active;
  }
  async putActive(set: StoredPolicySet) {
    this.active = set;
  }
}

describe('policy provider', () => {
  it('loads the active set, caches it for the TTL, then picks up a new version', async () => {
    let now = 0;
    const store = new MemoryPolicyStore();
    store.active = { version: 'v1', policies: encodePolicySources([demo]), updatedAt: '' };
    const provider = new PolicyProvider(store, 1000, () => now);
    expect((await provider.engine()).version).toBe('v1');
    store.active = { version: 'v2', policies: encodePolicySources([demo]), updatedAt: '' };
    now = 500;
    expect((await provider.engine()).version).toBe('v1');
    now = 1500;
    expect((await provider.engine()).version).toBe('v2');
  });

  it('keeps the previous set when the stored one is invalid or the store fails', async () => {
    let now = 0;
    const store = new MemoryPolicyStore();
    store.active = { version: 'v1', policies: encodePolicySources([demo]), updatedAt: '' };
    const provider = new PolicyProvider(store, 10, () => now);
    await provider.engine();
    store.active = {
      version: 'v2',
      policies: encodePolicySources([{ source: 'x.cedar', text: 'permit(' }]),
      updatedAt: '',
    };
    now = 100;
    expect((await provider.engine()).version).toBe('v1');
    store.fail = true;
    now = 200;
    expect((await provider.engine()).version).toBe('v1');
  });

  it('fails closed with no set at all: everything is denied', async () => {
    const provider = new PolicyProvider(new MemoryPolicyStore(), 10);
    const e = await provider.engine();
    expect(e.decideOperation(bob, 'sql:read', demoTarget, ctx()).outcome).toBe('deny');
  });
});

describe('compiled policy sets (what policy push stores)', () => {
  const all = ['demo.cedar', 'demo-aws.cedar', 'demo-mcp.cedar'].map((f) => ({
    source: f,
    text: readFileSync(`policies/${f}`, 'utf8'),
  }));
  const validated = PolicyEngine.load(CEDAR_SCHEMA, all, 'v1');
  const stored = (policies: string): StoredPolicySet => ({ version: 'v1', policies, updatedAt: '' });

  it('decides exactly as the validated engine, without validating again', async () => {
    const store = new MemoryPolicyStore();
    store.active = stored(encodePolicySources(all, validated));
    const served = await new PolicyProvider(store).engine();
    expect(served.policyIds).toEqual(validated.policyIds);
    for (const p of [alice, bob, carol, dave, agent]) {
      for (const action of ['sql:read', 'sql:write', 'sql:ddl', 'sql:admin']) {
        for (const approved of [false, true]) {
          const c = { ...ctx(), approved };
          expect(served.authorize(p, action, demoTarget, c)).toEqual(
            validated.authorize(p, action, demoTarget, c),
          );
        }
      }
    }
  });

  it("carries the schema's JSON form for a cheaper cold start, and falls back to the text without it", () => {
    const compiled = validated.compiled();
    const json = cedar.schemaToJson(CEDAR_SCHEMA);
    expect(json.type).toBe('success');
    expect(compiled.schemaJson).toEqual(json.type === 'success' ? json.json : undefined);
    // A request that breaks the schema is refused by each engine alike, whichever form it preparsed.
    const invalid = { ...ctx(), hasJustification: 'yes' };
    const engines = [
      PolicyEngine.fromCompiled(CEDAR_SCHEMA, compiled, 'v1', all)!,
      PolicyEngine.fromCompiled(CEDAR_SCHEMA, { ...compiled, schemaJson: undefined }, 'v1', all)!,
      PolicyEngine.fromCompiled(CEDAR_SCHEMA, { ...compiled, schemaJson: { nope: 1 } }, 'v1', all)!,
    ];
    for (const e of engines) {
      expect(e.compiled()).toEqual(compiled);
      const refused = e.authorize(alice, 'sql:read', demoTarget, invalid);
      expect(refused.allowed).toBe(false);
      expect(refused.errors.length).toBeGreaterThan(0);
      for (const p of [alice, bob, carol]) {
        expect(e.decideOperation(p, 'sql:read', demoTarget, ctx())).toEqual(
          validated.decideOperation(p, 'sql:read', demoTarget, ctx()),
        );
      }
    }
  });

  it('serves the compiled form only for the schema it was validated against', () => {
    const compiled = validated.compiled();
    expect(PolicyEngine.fromCompiled(CEDAR_SCHEMA, compiled, 'v1', all)).toBeDefined();
    // Another schema (a deploy that changed it): the caller must validate the texts again.
    expect(PolicyEngine.fromCompiled(`${CEDAR_SCHEMA}\n`, compiled, 'v1', all)).toBeUndefined();
    // A form this code did not write is never trusted.
    for (const bad of [
      undefined,
      null,
      'x',
      { ...compiled, schemaSha256: 'f'.repeat(64) },
      {
        ...compiled,
        policies: { p: { text: 'permit(principal, action, resource);', actions: 'some', json: '{}' } },
      },
      { ...compiled, policies: { p: { text: 1, actions: 'all', json: '{}' } } },
      {
        ...compiled,
        policies: { p: { text: 'permit(principal, action, resource);', actions: [1], json: '{}' } },
      },
    ]) {
      expect(PolicyEngine.fromCompiled(CEDAR_SCHEMA, bad, 'v1', all)).toBeUndefined();
    }
  });

  it('re-validates from the texts when the compiled form does not fit, refusing an invalid set', async () => {
    const store = new MemoryPolicyStore();
    const compiled = { ...validated.compiled(), schemaSha256: '0'.repeat(64) };
    // Texts that do not validate, with a compiled form that would have "served" them: refused.
    store.active = stored(
      JSON.stringify({
        sources: [{ source: 'x.cedar', text: 'permit(principal, action, resource) when { context.nope };' }],
        compiled,
      }),
    );
    await expect(new PolicyProvider(store).engine()).rejects.toThrow(PolicyValidationError);
    // The old stored form (a bare list of sources) still loads.
    store.active = stored(encodePolicySources(all));
    expect((await new PolicyProvider(store).engine()).policyIds).toEqual(validated.policyIds);
  });
});

describe('a policy that cannot be evaluated, and a stored form that lies (fail closed)', () => {
  const load = (text: string) => PolicyEngine.load(CEDAR_SCHEMA, [{ source: 't.cedar', text }], 'v1');
  const readPermit = '@id("read") permit (principal, action == Action::"sql:read", resource);';

  it('denies when a forbid fails at run time (integer overflow in a set that validates), naming it', () => {
    // Validation cannot rule out overflow; Cedar itself would skip the forbid and allow.
    const e = load(
      `${readPermit}\n@id("no-reads-at-night") forbid (principal, action == Action::"sql:read", resource)\n` +
        'when { context.now * 10000000000 > 0 };',
    );
    const d = e.decideOperation(alice, 'sql:read', demoTarget, ctx());
    expect(d.outcome).toBe('deny');
    expect(d.determiningPolicies).toEqual(['no-reads-at-night']);
    expect(d.errors.join()).toMatch(/no-reads-at-night: integer overflow/);
    // The caller is told which policy failed, not the error (it may quote request values).
    expect(denialReason(d)).toBe(
      'is denied: policy no-reads-at-night could not be evaluated, and a policy that cannot be evaluated denies',
    );
    // Nor does approval get around it: the approved re-check fails the same way.
    expect(e.decideApproved(alice, 'sql:read', demoTarget, ctx()).outcome).toBe('deny');
  });

  it('denies when a permit fails at run time, even if another permit allows', () => {
    const e = load(
      `${readPermit}\n@id("overflowing") permit (principal, action == Action::"sql:read", resource)\n` +
        'when { context.hourUtc * 9223372036854775807 > 0 };',
    );
    const d = e.decideOperation(alice, 'sql:read', demoTarget, ctx());
    expect(d).toMatchObject({ outcome: 'deny', determiningPolicies: ['overflowing'] });
    // With nothing failing, the same engine allows.
    expect(e.decideOperation(alice, 'sql:read', demoTarget, { ...ctx(), hourUtc: 0 }).outcome).toBe('allow');
  });

  // Someone who can write the policy table without `policy push` (which compiles what it
  // validated) edits the stored compiled form, leaving the sources beside it as they were.
  const guardedText =
    '@id("all") permit (principal, action, resource);\n' +
    '@id("no-admin") forbid (principal, action in [Action::"sql:admin", Action::"sql:privilege"], resource);\n' +
    '@id("no-night-writes") forbid (principal, action == Action::"sql:write", resource) when { context.hourUtc < 6 };';
  const guardedSources = [{ source: 't.cedar', text: guardedText }];
  const guarded = load(guardedText);
  type Stored = Record<string, { text: string; actions: unknown; json: string }>;
  const tamper = (edit: (p: Stored) => void) => {
    const compiled = structuredClone(guarded.compiled());
    edit(compiled.policies as never);
    return compiled;
  };
  const edits: [string, (p: Stored) => void][] = [
    ["narrows a forbid's action scope", (p) => (p['no-admin'].actions = ['sql:read'])],
    [
      "renames what a forbid's JSON reads",
      (p) => (p['no-night-writes'].json = p['no-night-writes'].json.replaceAll('hourUtc', 'hourUTC')),
    ],
    ['drops a forbid', (p) => delete p['no-admin']],
    [
      "rewrites a forbid's text into a permit",
      (p) => (p['no-admin'].text = p['no-admin'].text.replace('forbid', 'permit')),
    ],
    [
      'adds a permit no source has',
      (p) => (p.extra = { text: 'permit (principal, action, resource);', actions: 'all', json: '{}' }),
    ],
  ];

  it.each(edits)('does not serve a compiled form that %s: it names the difference', (_label, edit) => {
    const seen: string[][] = [];
    const compiled = tamper(edit);
    expect(
      PolicyEngine.fromCompiled(CEDAR_SCHEMA, compiled, 'v1', guardedSources, (d) => seen.push([...d])),
    ).toBeUndefined();
    expect(seen).toHaveLength(1);
    expect(seen[0].join('\n')).toMatch(/policy "(no-admin|no-night-writes|extra)"/);
    // The untouched form is served, and nothing is reported.
    expect(
      PolicyEngine.fromCompiled(CEDAR_SCHEMA, guarded.compiled(), 'v1', guardedSources, (d) =>
        seen.push([...d]),
      ),
    ).toBeDefined();
    expect(seen).toHaveLength(1);
  });

  it.each(edits)(
    'enforces the sources when the stored compiled form %s (the provider validates them instead)',
    async (_label, edit) => {
      const store = new MemoryPolicyStore();
      store.active = {
        version: 'v1',
        policies: JSON.stringify({ sources: guardedSources, compiled: tamper(edit) }),
        updatedAt: '',
      };
      const e = await new PolicyProvider(store).engine();
      const night = { ...ctx(), hourUtc: 3 };
      for (const [action, c] of [
        ['sql:admin', ctx()],
        ['sql:privilege', ctx()],
        ['sql:write', night],
        ['sql:read', ctx()],
        ['sql:write', { ...ctx(), hourUtc: 12 }],
      ] as const) {
        expect(e.decideOperation(alice, action, demoTarget, c)).toEqual(
          guarded.decideOperation(alice, action, demoTarget, c),
        );
      }
      expect(e.decideOperation(alice, 'sql:admin', demoTarget, ctx())).toMatchObject({
        outcome: 'deny',
        determiningPolicies: ['no-admin'],
      });
    },
  );

  it('serves sources that would not validate beside a forged compiled form of them, and their errors deny', () => {
    // The one thing a form written around push still skips: validation. A policy it would have
    // refused (an attribute the schema does not have) can only make Cedar err, and an error denies.
    const text =
      '@id("odd") permit (principal, action == Action::"sql:read", resource) when { context.nope };';
    expect(() => load(text)).toThrow(PolicyValidationError);
    const parts = cedar.policySetTextToParts(text);
    if (parts.type !== 'success') throw new Error('does not parse');
    const json = cedar.policyToJson(parts.policies[0]);
    if (json.type !== 'success') throw new Error('does not convert');
    const forged = {
      ...guarded.compiled(),
      policies: { odd: { text: parts.policies[0], actions: ['sql:read'], json: JSON.stringify(json.json) } },
    };
    const e = PolicyEngine.fromCompiled(CEDAR_SCHEMA, forged, 'v1', [{ source: 'odd.cedar', text }])!;
    expect(e).toBeDefined();
    expect(e.decideOperation(alice, 'sql:read', demoTarget, ctx())).toMatchObject({
      outcome: 'deny',
      determiningPolicies: ['odd'],
    });
  });

  it("preparses a stored schema JSON only when it is the JSON of Warden's own schema", () => {
    const json = cedar.schemaToJson(CEDAR_SCHEMA);
    if (json.type !== 'success') throw new Error('schema does not convert');
    // The constant the cold start compares with is this schema's JSON form, hashed.
    expect(createHash('sha256').update(JSON.stringify(json.json)).digest('hex')).toBe(
      CEDAR_SCHEMA_JSON_SHA256,
    );
    // Another schema in JSON form (an action's context loosened), beside the right hash of the text.
    const other = structuredClone(json.json) as unknown as Record<
      string,
      { actions: Record<string, unknown> }
    >;
    const ns = Object.keys(other)[0];
    other[ns].actions['sql:read'] = {
      appliesTo: {
        principalTypes: ['User', 'Agent'],
        resourceTypes: ['Target'],
        context: { type: 'Record', attributes: {} },
      },
    };
    expect(cedar.preparseSchema('another-schema', other as never).type).toBe('success');
    const e = PolicyEngine.fromCompiled(
      CEDAR_SCHEMA,
      { ...guarded.compiled(), schemaJson: other },
      'v1',
      guardedSources,
    )!;
    // Served from the text: what it would store again is the real JSON form, and a request that
    // breaks the real schema is still refused.
    expect(e.compiled().schemaJson).toEqual(json.json);
    const refused = e.authorize(alice, 'sql:read', demoTarget, { ...ctx(), hasJustification: 'yes' });
    expect(refused.allowed).toBe(false);
  });
});

/**
 * A policy set made active around `warden policy push` (a raw write of the Policies table) is
 * enforced as its sources say, and now also seen: the function that loads it looks for its
 * `policy_pushed` event and logs an error line the stack alarms on. The trail is a stand-in.
 */
import { describe, expect, it } from 'vitest';
import { auditActiveSet, PolicyProvider } from '../../lambdas/core/policy-provider.js';
import type { PolicyStore, StoredPolicySet } from '../../lambdas/core/ports.js';
import { POLICY_SESSION, UNRECORDED_POLICY_SET, type StoredTrailEvent } from '../../lambdas/core/trail.js';

const set = (version: string, updatedBy = 'User::"alice"'): StoredPolicySet => ({
  version,
  policies: JSON.stringify([{ source: 'p.cedar', text: 'permit (principal, action, resource);' }]),
  updatedAt: '2026-12-04T00:00:00Z',
  updatedBy,
});

const pushed = (version: string, principal = 'User::"alice"') =>
  ({
    type: 'policy_pushed',
    at: '2026-12-04T00:00:00Z',
    principal,
    principalName: 'alice',
    sessionId: POLICY_SESSION,
    seq: 1,
    prevHash: '0'.repeat(64),
    hash: 'x',
    detail: { version },
  }) as unknown as StoredTrailEvent;

function trailOf(events: StoredTrailEvent[]) {
  const asked: string[] = [];
  return {
    asked,
    events: async (sessionId: string) => {
      asked.push(sessionId);
      return events;
    },
  };
}

describe('auditActiveSet', () => {
  it('finds nothing to say of a set warden policy push recorded', async () => {
    const logged: Record<string, unknown>[] = [];
    const trail = trailOf([pushed('v1'), pushed('v2')]);
    expect(await auditActiveSet(set('v2'), trail, (e) => logged.push(e))).toBeUndefined();
    expect(trail.asked).toEqual([POLICY_SESSION]);
    expect(logged).toEqual([]);
  });

  it('logs a set with no policy_pushed event, and one whose event names another pusher', async () => {
    const logged: Record<string, unknown>[] = [];
    const log = (e: Record<string, unknown>) => logged.push(e);
    // An event of another type naming the version does not count.
    const notAPush = { ...pushed('v9'), type: 'request_received' } as StoredTrailEvent;
    expect(await auditActiveSet(set('v9'), trailOf([pushed('v1'), notAPush]), log)).toBe(
      'no policy_pushed event in the trail names v9: it was not written by warden policy push',
    );
    expect(await auditActiveSet(set('v1', 'User::"mallory"'), trailOf([pushed('v1')]), log)).toBe(
      'the set names User::"mallory" as its pusher, the trail User::"alice"',
    );
    expect(logged).toMatchObject([
      { level: 'error', msg: UNRECORDED_POLICY_SET, version: 'v9' },
      { level: 'error', msg: UNRECORDED_POLICY_SET, version: 'v1' },
    ]);
  });
});

describe('an older signed set made active again (it keeps its own valid signature)', () => {
  it('is logged while it is the active set, naming the push that replaced it', async () => {
    const logged: Record<string, unknown>[] = [];
    const log = (e: Record<string, unknown>) => logged.push(e);
    const trail = trailOf([pushed('v1'), pushed('v2')]);
    const finding = await auditActiveSet(set('v1'), trail, log, { activeVersion: async () => 'v1' });
    expect(finding).toBe(
      'v1 was replaced by v2 (pushed by alice at 2026-12-04T00:00:00Z) and made active again around warden policy push',
    );
    expect(logged).toMatchObject([{ level: 'error', msg: UNRECORDED_POLICY_SET, version: 'v1' }]);
    // And the provider is told, so it stops serving it.
    const replayed: string[] = [];
    await auditActiveSet(set('v1'), trail, log, {
      activeVersion: async () => 'v1',
      onReplayed: (s) => replayed.push(s.version),
    });
    expect(replayed).toEqual(['v1']);
    // A set with no push event at all, or another pusher, is logged but not "replayed".
    await auditActiveSet(set('v9'), trail, log, { onReplayed: (s) => replayed.push(s.version) });
    expect(replayed).toEqual(['v1']);
  });

  it('is not reported when it was merely replaced after this function loaded it', async () => {
    const logged: Record<string, unknown>[] = [];
    const trail = trailOf([pushed('v1'), pushed('v2')]);
    expect(
      await auditActiveSet(set('v1'), trail, (e) => logged.push(e), { activeVersion: async () => 'v2' }),
    ).toBeUndefined();
    expect(logged).toEqual([]);
    // A set pushed again later is its newest push: nothing to say.
    expect(
      await auditActiveSet(
        set('v1'),
        trailOf([pushed('v1'), pushed('v2'), pushed('v1')]),
        (e) => logged.push(e),
        { activeVersion: async () => 'v1' },
      ),
    ).toBeUndefined();
    expect(logged).toEqual([]);
  });
});

describe('the provider tells of each set once, when it first loads it', () => {
  it('calls onLoad for a new version only, and still serves the set', async () => {
    let active = set('v1');
    const store: PolicyStore = { getActive: async () => active } as unknown as PolicyStore;
    let clock = 0;
    const loaded: string[] = [];
    const provider = new PolicyProvider(
      store,
      1000,
      () => clock,
      (s) => loaded.push(s.version),
    );
    expect((await provider.engine()).version).toBe('v1');
    clock = 2000;
    await provider.engine();
    active = set('v2');
    clock = 4000;
    expect((await provider.engine()).version).toBe('v2');
    expect(loaded).toEqual(['v1', 'v2']);
  });
});

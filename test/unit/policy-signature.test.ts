/**
 * Policy sets are signed at push and checked before they are served
 * (lambdas/core/policy-signature.ts, PolicyProvider): a raw write of the Policies table cannot make
 * a set active. The MAC is the local stand-in (HMAC-SHA256) the twin uses; KMS's is the same
 * interface (lambdas/adapters/signing.ts).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createHmacSigner, policyMacFromEnv } from '../../lambdas/adapters/signing.js';
import { ServiceUnavailableError } from '../../lambdas/core/errors.js';
import { PolicyProvider, PolicySetSignatureError } from '../../lambdas/core/policy-provider.js';
import { policySetMessage, signPolicySet, verifyPolicySet } from '../../lambdas/core/policy-signature.js';
import type { PolicyStore, StoredPolicySet } from '../../lambdas/core/ports.js';
import { UNRECORDED_POLICY_SET } from '../../lambdas/core/trail.js';

const key = createHmacSigner(Buffer.alloc(32, 3));
const other = createHmacSigner(Buffer.alloc(32, 4));

const unsigned = (version: string, text = 'permit (principal, action, resource);'): StoredPolicySet => ({
  version,
  policies: JSON.stringify([{ source: 'p.cedar', text }]),
  updatedAt: '2026-12-04T00:00:00Z',
  updatedBy: 'User::"alice"',
});

function storeOf(initial?: StoredPolicySet): PolicyStore & { set(s: StoredPolicySet): void; reads: number } {
  let active = initial;
  return {
    reads: 0,
    set(s) {
      active = s;
    },
    async getActive() {
      this.reads++;
      return active;
    },
    async putActive() {
      throw new Error('not here');
    },
  };
}

describe('the signed message', () => {
  it('covers the version, time, pusher and stored form, each on its own', async () => {
    const base = unsigned('v1');
    const signed = await signPolicySet(key, base);
    expect(await verifyPolicySet(key, signed)).toBe(true);
    for (const changed of [
      { ...signed, version: 'v2' },
      { ...signed, updatedAt: '2026-12-05T00:00:00Z' },
      { ...signed, updatedBy: 'User::"mallory"' },
      { ...signed, updatedBy: undefined },
      { ...signed, policies: unsigned('v1', 'forbid (principal, action, resource);').policies },
      { ...signed, signature: undefined },
      { ...signed, signature: '' },
      { ...signed, signature: 'not base64url!' },
    ]) {
      expect(await verifyPolicySet(key, changed), JSON.stringify(changed).slice(0, 80)).toBe(false);
    }
    // Another key's MAC of the very same set does not verify.
    expect(await verifyPolicySet(key, await signPolicySet(other, base))).toBe(false);
    // Fields cannot run into each other: a version ending in what the time starts with is another message.
    expect(policySetMessage({ ...base, version: 'v1', updatedAt: 'x' })).not.toBe(
      policySetMessage({ ...base, version: 'v1x', updatedAt: '' }),
    );
  });

  it('needs a policy key to start, and refuses a short stand-in', () => {
    expect(() => policyMacFromEnv({})).toThrow(/no policy key: set POLICY_MAC_KEY_ID/);
    expect(() => policyMacFromEnv({ WARDEN_POLICY_MAC_KEY: 'c2hvcnQ' })).toThrow(/at least 32 bytes/);
    expect(() =>
      policyMacFromEnv({ WARDEN_POLICY_MAC_KEY: Buffer.alloc(32).toString('base64url') }),
    ).not.toThrow();
  });
});

describe('PolicyProvider with a verifier', () => {
  const lines: Record<string, unknown>[] = [];
  afterEach(() => {
    vi.restoreAllMocks();
    lines.length = 0;
  });
  const captured = () => {
    vi.spyOn(console, 'log').mockImplementation((line: string) => void lines.push(JSON.parse(line)));
    vi.spyOn(console, 'error').mockImplementation((line: string) => void lines.push(JSON.parse(line)));
  };

  it('serves a signed set, keeps it when an unsigned one is written, and checks that one once', async () => {
    captured();
    let now = 0;
    const store = storeOf(await signPolicySet(key, unsigned('v1')));
    let checks = 0;
    const provider = new PolicyProvider(
      store,
      10,
      () => now,
      undefined,
      (s) => {
        checks++;
        return verifyPolicySet(key, s);
      },
    );
    expect((await provider.engine()).version).toBe('v1');
    store.set(unsigned('v2', 'forbid (principal, action, resource);'));
    now += 20;
    expect((await provider.engine()).version).toBe('v1');
    now += 20;
    expect((await provider.engine()).version).toBe('v1');
    now += 20;
    expect((await provider.engine()).version).toBe('v1');
    expect(checks).toBe(2);
    const refused = lines.filter((l) => l.msg === UNRECORDED_POLICY_SET);
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ level: 'error', version: 'v2' });
    expect(String(refused[0].finding)).toMatch(/v1 stays active/);
    // A signed push after it is served at the next read.
    store.set(await signPolicySet(key, unsigned('v3')));
    now += 20;
    expect((await provider.engine()).version).toBe('v3');
  });

  it('fails closed with no set to keep: 503, and again on every read until a signed set arrives', async () => {
    captured();
    let now = 0;
    const store = storeOf(await signPolicySet(other, unsigned('v1')));
    const provider = new PolicyProvider(
      store,
      10,
      () => now,
      undefined,
      (s) => verifyPolicySet(key, s),
    );
    const first = await provider.engine().catch((e: unknown) => e);
    expect(first).toBeInstanceOf(PolicySetSignatureError);
    expect(first).toBeInstanceOf(ServiceUnavailableError);
    expect((first as ServiceUnavailableError).statusCode).toBe(503);
    now += 20;
    await expect(provider.engine()).rejects.toBeInstanceOf(PolicySetSignatureError);
    store.set(await signPolicySet(key, unsigned('v2')));
    now += 20;
    expect((await provider.engine()).version).toBe('v2');
  });

  it('does not go back to an older signed set, and stops serving one the trail shows was replaced', async () => {
    captured();
    let now = 0;
    const at = (version: string, updatedAt: string) =>
      signPolicySet(key, { ...unsigned(version), updatedAt });
    const v1 = await at('v1', '2026-12-04T01:00:00.000Z');
    const v2 = await at('v2', '2026-12-04T02:00:00.000Z');
    const store = storeOf(v2);
    const verify = (s: StoredPolicySet) => verifyPolicySet(key, s);
    const warm = new PolicyProvider(store, 10, () => now, undefined, verify);
    expect((await warm.engine()).version).toBe('v2');
    store.set(v1);
    now += 20;
    expect((await warm.engine()).version).toBe('v2');
    expect(lines.filter((l) => l.msg === UNRECORDED_POLICY_SET && l.version === 'v1')).toHaveLength(1);
    expect(String(lines.find((l) => l.version === 'v1')?.finding)).toMatch(/older than the one served \(v2/);

    // A new instance takes v1 (it knows nothing newer) until the trail says otherwise.
    const cold = new PolicyProvider(store, 10, () => now, undefined, verify);
    expect((await cold.engine()).version).toBe('v1');
    cold.reject(v2); // not the served set: nothing changes
    expect((await cold.engine()).version).toBe('v1');
    cold.reject(v1);
    const refused = await cold.engine().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(PolicySetSignatureError);
    expect((refused as Error).message).toMatch(/replaced by a later push/);
    now += 20;
    await expect(cold.engine()).rejects.toBeInstanceOf(PolicySetSignatureError);
    // The next push is served.
    store.set(await at('v3', '2026-12-04T03:00:00.000Z'));
    now += 20;
    expect((await cold.engine()).version).toBe('v3');
  });

  it('does not serve a set whose signature could not be checked (a KMS outage): 503 on a cold start, the previous set otherwise', async () => {
    captured();
    let now = 0;
    let down = true;
    const store = storeOf(await signPolicySet(key, unsigned('v1')));
    const provider = new PolicyProvider(
      store,
      10,
      () => now,
      undefined,
      async (s) => {
        if (down) throw new Error('ThrottlingException');
        return verifyPolicySet(key, s);
      },
    );
    const cold = await provider.engine().catch((e: unknown) => e);
    expect(cold).toBeInstanceOf(ServiceUnavailableError);
    expect(String((cold as Error).message)).toMatch(/could not be checked/);
    down = false;
    now += 20;
    expect((await provider.engine()).version).toBe('v1');
    down = true;
    store.set(await signPolicySet(key, unsigned('v2')));
    now += 20;
    expect((await provider.engine()).version).toBe('v1');
    down = false;
    now += 20;
    expect((await provider.engine()).version).toBe('v2');
  });
});

/**
 * `warden policy push` (issue 13 item 14): a conditional write, so a concurrent push loses with a
 * clear error instead of silently overwriting the other (no lost update), recorded in the trail as
 * the person a verified token names, never `$USER`.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoPolicyStore } from '../../lambdas/adapters/request-store.js';
import { ConditionFailedError } from '../../lambdas/core/errors.js';
import type { StoredPolicySet } from '../../lambdas/core/ports.js';
import { UNRECORDED_POLICY_SET } from '../../lambdas/core/trail.js';
import { captureLogs } from '../../lib/local/invariants.js';
import { localDynamoClient } from '../../lib/local/dynamodb.js';
import { FUNCTION_ACCESS_KEY, OPERATOR_ACCESS_KEY } from '../../lib/local/twin.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../..');

let twin: TestTwin;
let store: DynamoPolicyStore;

beforeAll(async () => {
  twin = await startTestTwin();
  store = new DynamoPolicyStore({
    client: DynamoDBDocumentClient.from(localDynamoClient(twin.dynamoEndpoint)),
    tableName: twin.tableNames.Policies,
  });
}, 180_000);

afterAll(async () => {
  await twin?.close();
});

function pushEnv(token: string | undefined, extraEnv: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    USER: 'mallory',
    OIDC_ISSUER: twin.issuer,
    OIDC_AUDIENCE: 'warden',
    OIDC_JWKS_URI: twin.idp.jwksUri,
    TABLE_POLICIES: twin.tableNames.Policies,
    TABLE_AUDIT: twin.tableNames.Audit,
    AWS_ENDPOINT_URL_DYNAMODB: twin.dynamoEndpoint,
    AWS_REGION: 'us-east-1',
    // The operator's credentials: on the twin's KMS only they may make the policy key's MAC.
    AWS_ACCESS_KEY_ID: OPERATOR_ACCESS_KEY,
    AWS_SECRET_ACCESS_KEY: OPERATOR_ACCESS_KEY,
    // The twin's KMS and policy key (it set them in this process's environment for its functions).
    AWS_ENDPOINT_URL_KMS: process.env.AWS_ENDPOINT_URL_KMS,
    POLICY_MAC_KEY_ID: process.env.POLICY_MAC_KEY_ID,
  };
  if (token) env.WARDEN_TOKEN = token;
  return { ...env, ...extraEnv };
}

async function push(
  token: string | undefined,
  extra: readonly string[] = [],
  extraEnv: NodeJS.ProcessEnv = {},
  command: readonly string[] = ['push', 'policies'],
): Promise<{ code: number; out: string }> {
  try {
    const r = await run(
      process.execPath,
      ['--import', 'tsx', 'bin/warden.ts', 'policy', ...command, ...extra],
      { cwd: REPO, env: pushEnv(token, extraEnv) },
    );
    return { code: 0, out: r.stdout + r.stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** The policy version the API function decides with now (it reads the store after POLICY_TTL_MS). */
async function decidingVersion(): Promise<unknown> {
  const r = await twin.api('POST', '/v1/targets/demo/explain', {
    token: await twin.token('alice'),
    body: { sql: 'SELECT 1' },
  });
  return r.body?.decision?.policyVersion;
}

/** Asks for decisions (so the function reads the store) until `done()`, for at most ~10 s. */
async function decideUntil(done: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !done(); i++) {
    await decidingVersion();
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until the API function decides with `version`. */
async function servedVersionIs(version: string): Promise<void> {
  let seen: unknown;
  for (let i = 0; i < 100 && seen !== version; i++) {
    seen = await decidingVersion();
    if (seen !== version) await new Promise((r) => setTimeout(r, 100));
  }
  if (seen !== version) throw new Error(`the API function decides with ${String(seen)}, not ${version}`);
}

/** A raw write of the active pointer, as anyone with dynamodb:PutItem on the table could make. */
async function rawActive(set: StoredPolicySet): Promise<void> {
  await DynamoDBDocumentClient.from(localDynamoClient(twin.dynamoEndpoint)).send(
    new PutCommand({ TableName: twin.tableNames.Policies, Item: { id: 'active', ...set } }),
  );
}

async function trailOf(session: string): Promise<Record<string, any>[]> {
  const out = await localDynamoClient(twin.dynamoEndpoint).send(
    new ScanCommand({ TableName: twin.tableNames.Audit, ConsistentRead: true }),
  );
  return (out.Items ?? []).map((i) => unmarshall(i)).filter((i) => i.sessionId === session && i.seq > 0);
}

describe('warden policy push', () => {
  it('records the pusher from a verified token, in the active set and in the trail, not $USER', async () => {
    const alice = await twin.token('alice');
    const before = await store.getActive();
    const r = await push(alice);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/pushed as v\d{14}-[0-9a-f]{6} by alice/);
    const active = await store.getActive();
    expect(active?.version).not.toBe(before?.version);
    expect(active?.updatedBy).toBe('User::"alice"');
    const events = (await trailOf('warden-policy')).filter((e) => e.type === 'policy_pushed');
    const mine = events.find((e) => JSON.stringify(e).includes(active!.version));
    expect(mine).toMatchObject({ principal: 'User::"alice"', principalName: 'alice' });
    expect(JSON.stringify(events)).not.toContain('mallory');
  }, 120_000);

  it('refuses to push without a token, or with a forged one, and changes nothing', async () => {
    const before = await store.getActive();
    const none = await push(undefined);
    expect(none.code).not.toBe(0);
    expect(none.out).toMatch(/WARDEN_TOKEN/);
    const alice = await twin.token('alice');
    const [h, p] = alice.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>;
    const forgedPayload = Buffer.from(JSON.stringify({ ...claims, sub: 'root' })).toString('base64url');
    const forged = await push(`${h}.${forgedPayload}.${alice.split('.')[2]}`);
    expect(forged.code).not.toBe(0);
    expect(forged.out).toMatch(/WARDEN_TOKEN was refused/);
    expect((await store.getActive())?.version).toBe(before?.version);
  }, 120_000);

  it('checks the audience where OIDC_AUDIENCE_CLAIM says, and refuses any other value by name', async () => {
    const before = await store.getActive();
    const alice = await twin.token('alice');
    const claims = JSON.parse(Buffer.from(alice.split('.')[1], 'base64url').toString('utf8'));
    expect(claims.aud).toBe('warden');
    expect(claims.client_id).not.toBe('warden');
    // aud is 'warden' but client_id is not: checked in client_id (Cognito), the token is not for it.
    const inClientId = await push(alice, [], { OIDC_AUDIENCE_CLAIM: 'client_id' });
    expect(inClientId.code).not.toBe(0);
    expect(inClientId.out).toMatch(/WARDEN_TOKEN was refused: token was not issued for this gateway/);
    const bad = await push(alice, [], { OIDC_AUDIENCE_CLAIM: 'azp' });
    expect(bad.code).not.toBe(0);
    expect(bad.out).toMatch(/OIDC_AUDIENCE_CLAIM must be 'aud' or 'client_id'/);
    expect((await store.getActive())?.version).toBe(before?.version);
  }, 120_000);

  it('lets exactly one of two pushes from the same version win; the other fails and loses nothing', async () => {
    const base = await store.getActive();
    expect(base).toBeDefined();
    const set = (version: string, by: string) => ({
      version,
      policies: base!.policies,
      updatedAt: new Date().toISOString(),
      updatedBy: by,
    });
    const results = await Promise.allSettled([
      store.putActive(set(`${base!.version}-a`, 'User::"alice"'), { expectedVersion: base!.version }),
      store.putActive(set(`${base!.version}-b`, 'User::"bob"'), { expectedVersion: base!.version }),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(ConditionFailedError);
    const active = await store.getActive();
    const winner = results[0].status === 'fulfilled' ? 'a' : 'b';
    expect(active?.version).toBe(`${base!.version}-${winner}`);
    // A push that started from an older version loses too, even after the race.
    await expect(
      store.putActive(set(`${base!.version}-c`, 'User::"erin"'), { expectedVersion: base!.version }),
    ).rejects.toBeInstanceOf(ConditionFailedError);
    expect((await store.getActive())?.version).toBe(`${base!.version}-${winner}`);
  });

  it('refuses a push based on a stale version (--expect-version), saying who pushed since; nothing changes', async () => {
    const alice = await twin.token('alice');
    const first = await push(alice);
    expect(first.code, first.out).toBe(0);
    const active = await store.getActive();
    const pushedBefore = (await trailOf('warden-policy')).filter((e) => e.type === 'policy_pushed').length;
    const stale = await push(alice, ['--expect-version', 'v20000101000000-000000']);
    expect(stale.code).not.toBe(0);
    expect(stale.out).toMatch(/based on v20000101000000-000000, but the active set is v\d{14}/);
    expect(stale.out).toContain('User::"alice"');
    expect((await store.getActive())?.version).toBe(active?.version);
    expect((await trailOf('warden-policy')).filter((e) => e.type === 'policy_pushed')).toHaveLength(
      pushedBefore,
    );
    const fresh = await push(alice, ['--expect-version', active!.version]);
    expect(fresh.code, fresh.out).toBe(0);
  }, 180_000);

  it('lets only those the active set permits push_policy push (carol, support, may not)', async () => {
    const before = await store.getActive();
    const carol = await twin.token('carol');
    const r = await push(carol);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/carol may not push policies/);
    expect((await store.getActive())?.version).toBe(before?.version);
  }, 120_000);
});

describe('warden policy verify: a write that bypassed push', () => {
  const verify = () => push(undefined, [], {}, ['verify']);

  it('verifies a set pushed by warden policy push, naming its pusher', async () => {
    const r0 = await push(await twin.token('alice'));
    expect(r0.code, r0.out).toBe(0);
    const r = await verify();
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/verified: active set v\d{14}-[0-9a-f]{6}, \d+ policies, pushed by alice at /);
  }, 120_000);

  it('fails a raw write whose compiled form enforces another text than its sources, with no trail event', async () => {
    // What the handlers log from here on (they run in this process).
    const logs = captureLogs({ passThrough: true });
    const good = (await store.getActive())!;
    await servedVersionIs(good.version);
    const stored = JSON.parse(good.policies) as {
      sources: unknown;
      compiled: { policies: Record<string, { text: string; actions: unknown; json: string }> };
    };
    // The sources still read "forbid privilege and admin"; the compiled form, what functions
    // serve, permits everything and narrows the forbid to an action nobody uses.
    stored.compiled.policies['never-privilege-or-admin'].actions = ['audit'];
    stored.compiled.policies['demo-read'].text = '@id("demo-read")\npermit (principal, action, resource);';
    await store.putActive(
      {
        version: 'v20990101000000-bad000',
        policies: JSON.stringify(stored),
        updatedAt: new Date().toISOString(),
        updatedBy: 'User::"alice"',
      },
      { expectedVersion: good.version },
    );
    const r = await verify();
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/policy "demo-read": the compiled text is not the source's/);
    expect(r.out).toMatch(/policy "never-privilege-or-admin": the compiled action scope is not the source's/);
    expect(r.out).toMatch(/no policy_pushed event in the trail names v20990101000000-bad000/);
    expect(r.out).toMatch(/active policy set v20990101000000-bad000 \(pusher unknown\) failed verification/);

    expect(r.out).toMatch(/its signature is not the policy key's/);

    // The gateway does not serve it: the set stays the one pushed before, whose forbid holds for
    // alice and under which dave (an auditor) is not even shown the demo target. The function that
    // read the raw set logged the line the stack's PolicySetUnrecorded alarm counts.
    try {
      const refused = () =>
        logs.lines.filter((l) => l.includes(UNRECORDED_POLICY_SET) && l.includes('v20990101000000-bad000'));
      // Functions read the store when a decision needs the set (after POLICY_TTL_MS, 2 s here).
      await decideUntil(() => refused().length > 0);
      expect(refused().length).toBeGreaterThan(0);
      expect(JSON.parse(refused()[0])).toMatchObject({
        level: 'error',
        version: 'v20990101000000-bad000',
        finding: expect.stringContaining("the set's signature is not the policy key's"),
      });
      // Sets made active by warden policy push (and the twin's own) are not reported.
      expect(logs.lines.filter((l) => l.includes(UNRECORDED_POLICY_SET) && !l.includes('bad000'))).toEqual(
        [],
      );
    } finally {
      logs.restore();
    }
    const alice = await twin.token('alice');
    const explain = (token: string, sql: string) =>
      twin.api('POST', '/v1/targets/demo/explain', { token, body: { sql } });
    const served = await explain(alice, 'SELECT 1');
    expect(served.body.decision).toMatchObject({ policyVersion: good.version, outcome: 'allow' });
    const dave = await explain(await twin.token('dave'), 'SELECT id FROM customers');
    expect(dave.status, JSON.stringify(dave.body)).toBe(404);
    const admin = await explain(alice, 'ALTER SYSTEM SET work_mem = 1');
    expect(admin.body.decision).toMatchObject({
      outcome: 'deny',
      determiningPolicies: ['never-privilege-or-admin'],
    });
  }, 120_000);

  it("serves no set whose signature is not the policy key's for exactly what it holds, and fails closed on a cold start", async () => {
    const pushed = await push(await twin.token('alice'), [
      '--expect-version',
      (await store.getActive())!.version,
    ]);
    expect(pushed.code, pushed.out).toBe(0);
    const good = (await store.getActive())!;
    await servedVersionIs(good.version);
    expect(good.signature).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // The pushed set with its privilege forbid narrowed to an action nobody uses.
    const loosened = good.policies.replaceAll(
      'Action::\\"sql:privilege\\", Action::\\"sql:admin\\"',
      'Action::\\"audit\\"',
    );
    expect(loosened).not.toBe(good.policies);
    const { createHmacSigner } = await import('../../lambdas/adapters/signing.js');
    const { signPolicySet } = await import('../../lambdas/core/policy-signature.js');
    // What a writer of the table without the policy key can try: the pushed set's own signature on
    // other contents, a MAC under a key of its own making, no signature at all.
    const attempts: { label: string; set: StoredPolicySet }[] = [
      { label: 'signature copied', set: { ...good, version: 'v20990101000002-bad002', policies: loosened } },
      {
        label: 'own key',
        set: await signPolicySet(createHmacSigner(Buffer.alloc(32, 1)), {
          ...good,
          version: 'v20990101000003-bad003',
          policies: loosened,
        }),
      },
      {
        label: 'no signature',
        set: { version: 'v20990101000004-bad004', policies: loosened, updatedAt: good.updatedAt },
      },
    ];
    const logs = captureLogs({ passThrough: false });
    try {
      for (const { label, set } of attempts) {
        await rawActive(set);
        const seen = () =>
          logs.lines.filter((l) => l.includes(UNRECORDED_POLICY_SET) && l.includes(set.version));
        await decideUntil(() => seen().length > 0);
        expect(seen().length, label).toBeGreaterThan(0);
        expect(await decidingVersion(), label).toBe(good.version);
      }
      // The pushed version itself, its contents changed under its own signature: an instance that
      // loaded it keeps what it loaded; a new one (a cold start) has no set to keep, so it refuses
      // every decision, and nothing runs, rather than serve it.
      await rawActive({ ...good, policies: loosened });
      await twin.restartApi();
      const text = 'SELECT id FROM customers WHERE id = 7';
      const cold = await twin.api('POST', '/v1/targets/demo/sql', {
        token: await twin.token('alice'),
        body: { sql: text },
      });
      expect(cold.status, JSON.stringify(cold.body)).toBe(503);
      expect(twin.statementLog.filter((st) => st.sql.includes(text))).toHaveLength(0);
    } finally {
      logs.restore();
    }
    // A push (signed) puts things right without a restart.
    const fixed = await push(await twin.token('alice'), ['--expect-version', good.version]);
    expect(fixed.code, fixed.out).toBe(0);
    expect(fixed.out).toMatch(
      /warning: the active set .* does not load \(it is not signed by warden policy push\)/,
    );
    let after: { status: number; body: any } | undefined;
    for (let i = 0; i < 40; i++) {
      after = await twin.api('POST', '/v1/targets/demo/sql', {
        token: await twin.token('alice'),
        body: { sql: 'SELECT id FROM customers WHERE id = 8' },
      });
      if (after.status === 200) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(after!.status).toBe(200);
  }, 120_000);

  it("cannot sign with the functions' credentials: they may only verify the policy key's MACs", async () => {
    const before = (await store.getActive())!;
    // What a compromised function (or anyone holding its role) would try: push a set of its own.
    const r = await push(await twin.token('alice'), ['--expect-version', before.version], {
      AWS_ACCESS_KEY_ID: FUNCTION_ACCESS_KEY,
      AWS_SECRET_ACCESS_KEY: FUNCTION_ACCESS_KEY,
    });
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/AccessDeniedException|not authorized to perform: kms:GenerateMac/);
    expect((await store.getActive())!.version).toBe(before.version);
    // Without the key named at all, push refuses before it writes anything.
    const unnamed = await push(await twin.token('alice'), ['--expect-version', before.version], {
      POLICY_MAC_KEY_ID: '',
    });
    expect(unnamed.code).not.toBe(0);
    expect(unnamed.out).toMatch(/no policy key: set POLICY_MAC_KEY_ID/);
    expect((await store.getActive())!.version).toBe(before.version);
  }, 120_000);

  it('does not serve an older signed set made active again around push (it keeps its own valid signature)', async () => {
    const alice = await twin.token('alice');
    const first = await push(alice, ['--expect-version', (await store.getActive())!.version]);
    expect(first.code, first.out).toBe(0);
    const older = (await store.getActive())!;
    const second = await push(alice, ['--expect-version', older.version]);
    expect(second.code, second.out).toBe(0);
    const newer = (await store.getActive())!;
    await servedVersionIs(newer.version);
    const logs = captureLogs({ passThrough: false });
    const logged = (text: string) =>
      logs.lines.filter((l) => l.includes(UNRECORDED_POLICY_SET) && l.includes(text));
    try {
      await rawActive(older);
      // The instance that serves the newer set does not go back to the older one.
      await decideUntil(() => logged('older than the one served').length > 0);
      expect(JSON.parse(logged('older than the one served')[0])).toMatchObject({
        level: 'error',
        version: older.version,
      });
      expect(await decidingVersion()).toBe(newer.version);
      // A new instance knows no newer set: it loads the older one (its MAC is valid), then finds in
      // the trail, a second later, that a later push replaced it, and stops serving it.
      await twin.restartApi();
      await decideUntil(() => logged('and made active again').length > 0);
      expect(JSON.parse(logged('and made active again')[0])).toMatchObject({
        level: 'error',
        version: older.version,
        finding: `${older.version} was replaced by ${newer.version} (pushed by alice at ${newer.updatedAt}) and made active again around warden policy push`,
      });
      const text = 'SELECT id FROM customers WHERE id = 9';
      const refused = await twin.api('POST', '/v1/targets/demo/sql', { token: alice, body: { sql: text } });
      expect(refused.status, JSON.stringify(refused.body)).toBe(503);
      expect(twin.statementLog.filter((st) => st.sql.includes(text))).toHaveLength(0);
    } finally {
      logs.restore();
    }
    const r = await verify();
    expect(r.code).not.toBe(0);
    expect(r.out).toContain(`${older.version} was replaced by ${newer.version}`);
    const restored = await push(alice, ['--expect-version', older.version]);
    expect(restored.code, restored.out).toBe(0);
    await servedVersionIs((await store.getActive())!.version);
  }, 120_000);

  it('fails a raw write of sources that do not validate', async () => {
    const before = (await store.getActive())!;
    await store.putActive(
      {
        version: 'v20990101000001-bad001',
        policies: JSON.stringify([
          { source: 'x.cedar', text: 'permit (principal, action, resource) when { context.nope };' },
        ]),
        updatedAt: new Date().toISOString(),
      },
      { expectedVersion: before.version },
    );
    const r = await verify();
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/the stored sources do not validate: .*nope/);
    // Put a pushed set back for whatever runs next.
    const restored = await push(await twin.token('alice'), ['--expect-version', 'v20990101000001-bad001']);
    expect(restored.code, restored.out).toBe(0);
  }, 120_000);
});

/**
 * The twin's KMS (lib/local/kms.ts) behind the real AWS SDK client, through Warden's own KMS
 * adapters: the policy key's MACs (createKmsSigner, what functions and `warden policy push` use on
 * AWS) and the sealing key's data keys (createKmsSealer). Who may do what is per access key id.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { GenerateMacCommand, KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKmsSealer } from '../../lambdas/adapters/sealing.js';
import { createKmsSigner } from '../../lambdas/adapters/signing.js';
import { SealError } from '../../lambdas/core/sealing.js';
import { signPolicySet, verifyPolicySet } from '../../lambdas/core/policy-signature.js';
import { startLocalKms, type LocalKms } from '../../lib/local/kms.js';

const MAC_KEY = randomUUID();
const SEAL_KEY = randomUUID();
let kms: LocalKms;
const clients: KMSClient[] = [];
const as = (accessKeyId: string) => {
  const c = new KMSClient({
    endpoint: kms.url,
    region: 'us-east-1',
    credentials: { accessKeyId, secretAccessKey: 'x' },
    maxAttempts: 1,
  });
  clients.push(c);
  return c;
};

beforeAll(async () => {
  kms = await startLocalKms({
    keys: [
      {
        id: MAC_KEY,
        spec: 'HMAC_256',
        material: randomBytes(32),
        grants: { fn: ['VerifyMac'], operator: ['GenerateMac', 'VerifyMac'] },
      },
      {
        id: SEAL_KEY,
        spec: 'SYMMETRIC_DEFAULT',
        material: randomBytes(32),
        grants: { fn: ['GenerateDataKey', 'Decrypt'], executor: ['Decrypt'] },
      },
    ],
  });
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  await kms?.close();
});

const set = { version: 'v1', policies: '[]', updatedAt: '2026-12-04T00:00:00Z', updatedBy: 'User::"alice"' };

describe('the policy key', () => {
  it('MACs for the operator, verifies for the functions, and says a wrong MAC is wrong', async () => {
    const operator = createKmsSigner({ keyId: kms.arnOf(MAC_KEY), client: as('operator') });
    const fn = createKmsSigner({ keyId: kms.arnOf(MAC_KEY), client: as('fn') });
    const signed = await signPolicySet(operator, set);
    expect(await verifyPolicySet(fn, signed)).toBe(true);
    expect(await verifyPolicySet(fn, { ...signed, version: 'v2' })).toBe(false);
    const other = signed.signature!.startsWith('A')
      ? `B${signed.signature!.slice(1)}`
      : `A${signed.signature!.slice(1)}`;
    expect(await verifyPolicySet(fn, { ...signed, signature: other })).toBe(false);
    // The key id form (not only the ARN) names the same key.
    const byId = createKmsSigner({ keyId: MAC_KEY, client: as('fn') });
    expect(await verifyPolicySet(byId, signed)).toBe(true);
  });

  it('refuses a MAC to the functions and to strangers: an outage-like error, never a MAC or "invalid"', async () => {
    const fn = createKmsSigner({ keyId: kms.arnOf(MAC_KEY), client: as('fn') });
    await expect(fn.sign('anything')).rejects.toMatchObject({ name: 'AccessDeniedException' });
    const stranger = createKmsSigner({ keyId: kms.arnOf(MAC_KEY), client: as('stranger') });
    const operator = createKmsSigner({ keyId: kms.arnOf(MAC_KEY), client: as('operator') });
    const signed = await signPolicySet(operator, set);
    await expect(verifyPolicySet(stranger, signed)).rejects.toMatchObject({ name: 'AccessDeniedException' });
  });

  it('answers an unknown key, another key usage and a bad request as KMS does', async () => {
    const c = as('operator');
    const mac = (KeyId: string, MacAlgorithm = 'HMAC_SHA_256') =>
      c.send(
        new GenerateMacCommand({
          KeyId,
          MacAlgorithm: MacAlgorithm as 'HMAC_SHA_256',
          Message: Buffer.from('m'),
        }),
      );
    await expect(mac(kms.arnOf(randomUUID()))).rejects.toMatchObject({ name: 'NotFoundException' });
    // An ARN of another account or region is not this key.
    await expect(mac(kms.arnOf(MAC_KEY).replace('123456789012', '999999999999'))).rejects.toMatchObject({
      name: 'NotFoundException',
    });
    await expect(mac(kms.arnOf(MAC_KEY), 'HMAC_SHA_512')).rejects.toMatchObject({
      name: 'InvalidKeyUsageException',
    });
    await expect(
      createKmsSigner({ keyId: kms.arnOf(SEAL_KEY), client: as('fn') }).sign('m'),
    ).rejects.toMatchObject({ name: expect.stringMatching(/AccessDenied|InvalidKeyUsage/) });
    await expect(
      c.send(
        new GenerateMacCommand({
          KeyId: kms.arnOf(MAC_KEY),
          MacAlgorithm: 'HMAC_SHA_256',
          Message: Buffer.alloc(4097),
        }),
      ),
    ).rejects.toMatchObject({ name: 'ValidationException' });
  });
});

describe('the sealing key, through the KMS sealer', () => {
  it('seals and opens under the request id, and refuses another request id or a caller without Decrypt', async () => {
    const sealer = createKmsSealer({ keyId: kms.arnOf(SEAL_KEY), client: as('fn') });
    const payload = { operation: { kind: 'sql' as const, sql: 'DELETE FROM orders WHERE id = 1' } };
    const sealed = await sealer.seal('r_1', payload);
    expect(await sealer.open('r_1', sealed)).toEqual(payload);
    // The data key is bound to its request: another id's context does not decrypt it.
    await expect(sealer.open('r_2', sealed)).rejects.toBeInstanceOf(SealError);
    // The executor may open, not seal; a stranger neither.
    const executor = createKmsSealer({ keyId: kms.arnOf(SEAL_KEY), client: as('executor') });
    expect(await executor.open('r_1', sealed)).toEqual(payload);
    await expect(executor.seal('r_3', payload)).rejects.toMatchObject({ name: 'AccessDeniedException' });
    const stranger = createKmsSealer({ keyId: kms.arnOf(SEAL_KEY), client: as('stranger') });
    await expect(stranger.open('r_1', sealed)).rejects.toBeInstanceOf(SealError);
  });
});

/**
 * Envelope encryption of exact statements (lambdas/core/sealing.ts). Each seal gets a fresh 256-bit
 * data key, used once for AES-256-GCM with the request id as additional authenticated data.
 *
 * - AWS (`SEAL_KEY_ID`): the data key comes from KMS GenerateDataKey on a dedicated key, with the
 *   request id as encryption context; opening calls KMS Decrypt with the same context. Only the
 *   functions granted that key (api, execute) can open a seal; CloudTrail logs each Decrypt.
 *   The local twin sets `SEAL_KEY_ID` to a key of its own KMS (lib/local/kms.ts), so the same path
 *   runs there.
 * - Without KMS (`WARDEN_SEAL_KEY`, 32 bytes base64url; unit tests): the data key is wrapped with
 *   AES-256-GCM under that key.
 *
 * Without either, a function that seals or opens does not start.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { DecryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { SealError, sealContext, type OperationSealer, type SealedPayload } from '../core/sealing.js';

interface KeyWrapper {
  readonly keyId: string;
  newDataKey(requestId: string): Promise<{ plain: Buffer; wrapped: Buffer }>;
  unwrap(requestId: string, wrapped: Buffer): Promise<Buffer>;
}

function gcmSeal(key: Buffer, aad: string, plain: Buffer): { iv: Buffer; tag: Buffer; data: Buffer } {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const data = Buffer.concat([cipher.update(plain), cipher.final()]);
  return { iv, tag: cipher.getAuthTag(), data };
}

function gcmOpen(key: Buffer, aad: string, iv: Buffer, tag: Buffer, data: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(data), decipher.final()]);
}

function sealerWith(wrapper: KeyWrapper): OperationSealer {
  return {
    async seal(requestId, payload) {
      const { plain, wrapped } = await wrapper.newDataKey(requestId);
      try {
        const out = gcmSeal(plain, sealContext(requestId), Buffer.from(JSON.stringify(payload), 'utf8'));
        return {
          v: 1,
          alg: 'AES-256-GCM',
          keyId: wrapper.keyId,
          key: wrapped.toString('base64'),
          iv: out.iv.toString('base64'),
          tag: out.tag.toString('base64'),
          data: out.data.toString('base64'),
        };
      } finally {
        plain.fill(0);
      }
    },
    async open(requestId, sealed) {
      if (sealed?.v !== 1 || sealed.alg !== 'AES-256-GCM') throw new SealError('unknown seal format');
      let plain: Buffer | undefined;
      try {
        plain = await wrapper.unwrap(requestId, Buffer.from(sealed.key, 'base64'));
        const bytes = gcmOpen(
          plain,
          sealContext(requestId),
          Buffer.from(sealed.iv, 'base64'),
          Buffer.from(sealed.tag, 'base64'),
          Buffer.from(sealed.data, 'base64'),
        );
        return JSON.parse(bytes.toString('utf8')) as SealedPayload;
      } catch (cause) {
        if (cause instanceof SealError) throw cause;
        throw new SealError('the sealed statement could not be opened (altered, or not this request’s)', {
          cause: cause instanceof Error ? cause.name : 'error',
        });
      } finally {
        plain?.fill(0);
      }
    },
  };
}

/** A local sealing key (twin, tests): data keys wrapped with AES-256-GCM under it. */
export function createLocalSealer(key: Buffer): OperationSealer {
  if (key.length !== 32) throw new RangeError('the local sealing key must be 32 bytes');
  return sealerWith({
    keyId: 'local',
    async newDataKey(requestId) {
      const plain = randomBytes(32);
      const w = gcmSeal(key, sealContext(requestId), plain);
      return { plain, wrapped: Buffer.concat([w.iv, w.tag, w.data]) };
    },
    async unwrap(requestId, wrapped) {
      return gcmOpen(
        key,
        sealContext(requestId),
        wrapped.subarray(0, 12),
        wrapped.subarray(12, 28),
        wrapped.subarray(28),
      );
    },
  });
}

let defaultKms: KMSClient | undefined;

/** A KMS symmetric key: GenerateDataKey (AES_256) to seal, Decrypt to open, the request id as context. */
export function createKmsSealer(options: { keyId: string; client?: KMSClient }): OperationSealer {
  const client = options.client ?? (defaultKms ??= new KMSClient({}));
  const { keyId } = options;
  const context = (requestId: string) => ({ warden: sealContext(requestId) });
  return sealerWith({
    keyId,
    async newDataKey(requestId) {
      const out = await client.send(
        new GenerateDataKeyCommand({
          KeyId: keyId,
          KeySpec: 'AES_256',
          EncryptionContext: context(requestId),
        }),
      );
      if (!out.Plaintext || !out.CiphertextBlob) throw new Error('KMS GenerateDataKey returned no key');
      return { plain: Buffer.from(out.Plaintext), wrapped: Buffer.from(out.CiphertextBlob) };
    },
    async unwrap(requestId, wrapped) {
      const out = await client.send(
        new DecryptCommand({ KeyId: keyId, CiphertextBlob: wrapped, EncryptionContext: context(requestId) }),
      );
      if (!out.Plaintext) throw new Error('KMS Decrypt returned no key');
      return Buffer.from(out.Plaintext);
    },
  });
}

export class SealingKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SealingKeyError';
  }
}

/** The sealer this deployment uses; throws at start-up when no sealing key is configured. */
export function sealerFromEnv(env: NodeJS.ProcessEnv): OperationSealer {
  if (env.SEAL_KEY_ID) return createKmsSealer({ keyId: env.SEAL_KEY_ID });
  if (env.WARDEN_SEAL_KEY) {
    const key = Buffer.from(env.WARDEN_SEAL_KEY, 'base64url');
    if (key.length !== 32) throw new SealingKeyError('WARDEN_SEAL_KEY must be 32 bytes, base64url');
    return createLocalSealer(key);
  }
  throw new SealingKeyError(
    'no sealing key: set SEAL_KEY_ID (the KMS key the stack creates) or, locally, WARDEN_SEAL_KEY; ' +
      'Warden does not start without one, since exact statements waiting for approval are kept sealed',
  );
}

/**
 * MACs for what Warden hands to browsers and gets back (session cookies, sign-in state, CSRF
 * tokens). In AWS the key is a KMS HMAC key: GenerateMac/VerifyMac, so no signing secret ever sits
 * in a function; the local twin's KMS (lib/local/kms.ts) answers the same calls. Without KMS (no
 * HMAC_KEY_ID; unit tests) an HMAC-SHA256 over a key from WARDEN_SIGNING_KEY.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { GenerateMacCommand, KMSClient, KMSInvalidMacException, VerifyMacCommand } from '@aws-sdk/client-kms';

export interface Signer {
  /** A base64url MAC of `data`. */
  sign(data: string): Promise<string>;
  /** True only when `mac` is `sign(data)`; never throws for a malformed MAC. */
  verify(data: string, mac: string): Promise<boolean>;
}

const MAC_RE = /^[A-Za-z0-9_-]{16,128}$/;

/** HMAC-SHA256 with a key held in memory (local twin, tests). */
export function createHmacSigner(key: string | Buffer): Signer {
  const secret = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  // A short key makes every cookie forgeable; refuse it rather than sign with it.
  if (secret.length < 32) throw new RangeError('signing key must be at least 32 bytes');
  const mac = (data: string): Buffer => createHmac('sha256', secret).update(data, 'utf8').digest();
  return {
    async sign(data) {
      return mac(data).toString('base64url');
    },
    async verify(data, given) {
      if (typeof given !== 'string' || !MAC_RE.test(given)) return false;
      const expected = mac(data);
      const actual = Buffer.from(given, 'base64url');
      return actual.length === expected.length && timingSafeEqual(actual, expected);
    },
  };
}

let defaultKms: KMSClient | undefined;

/** A KMS HMAC_256 key (GenerateMac/VerifyMac with HMAC_SHA_256). */
export function createKmsSigner(options: { keyId: string; client?: KMSClient }): Signer {
  const client = options.client ?? (defaultKms ??= new KMSClient({}));
  const { keyId } = options;
  return {
    async sign(data) {
      const out = await client.send(
        new GenerateMacCommand({
          KeyId: keyId,
          MacAlgorithm: 'HMAC_SHA_256',
          Message: Buffer.from(data, 'utf8'),
        }),
      );
      if (!out.Mac) throw new Error('KMS GenerateMac returned no MAC');
      return Buffer.from(out.Mac).toString('base64url');
    },
    async verify(data, given) {
      if (typeof given !== 'string' || !MAC_RE.test(given)) return false;
      try {
        const out = await client.send(
          new VerifyMacCommand({
            KeyId: keyId,
            MacAlgorithm: 'HMAC_SHA_256',
            Message: Buffer.from(data, 'utf8'),
            Mac: Buffer.from(given, 'base64url'),
          }),
        );
        return out.MacValid === true;
      } catch (error) {
        // KMS answers a wrong MAC with an exception; anything else (throttling, no access) is an
        // outage the caller must see, not a silent "invalid".
        if (error instanceof KMSInvalidMacException) return false;
        throw error;
      }
    },
  };
}

/**
 * The signer this deployment uses: KMS when HMAC_KEY_ID is set, else WARDEN_SIGNING_KEY, else none
 * (the approval page then answers 503 rather than sign with a key nobody configured).
 */
export function signerFromEnv(env: NodeJS.ProcessEnv = process.env): Signer | undefined {
  if (env.HMAC_KEY_ID) return createKmsSigner({ keyId: env.HMAC_KEY_ID });
  if (env.WARDEN_SIGNING_KEY) return createHmacSigner(env.WARDEN_SIGNING_KEY);
  return undefined;
}

export class PolicyKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicyKeyError';
  }
}

/**
 * The policy key (lambdas/core/policy-signature.ts): KMS when POLICY_MAC_KEY_ID is set (the stack's
 * policy key; functions may only VerifyMac with it, the pusher role GenerateMac), else the local
 * stand-in WARDEN_POLICY_MAC_KEY (at least 32 bytes, base64url). Without either it throws: a
 * function that cannot check a policy set's signature does not start, and `policy push` does not
 * write an unsigned set.
 */
export function policyMacFromEnv(env: NodeJS.ProcessEnv = process.env): Signer {
  if (env.POLICY_MAC_KEY_ID) return createKmsSigner({ keyId: env.POLICY_MAC_KEY_ID });
  if (env.WARDEN_POLICY_MAC_KEY) {
    const key = Buffer.from(env.WARDEN_POLICY_MAC_KEY, 'base64url');
    if (key.length < 32)
      throw new PolicyKeyError('WARDEN_POLICY_MAC_KEY must be at least 32 bytes, base64url');
    return createHmacSigner(key);
  }
  throw new PolicyKeyError(
    'no policy key: set POLICY_MAC_KEY_ID (the KMS key the stack creates, output PolicyKeyArn) or, ' +
      'locally, WARDEN_POLICY_MAC_KEY; policy sets are signed at push and checked before they are served',
  );
}

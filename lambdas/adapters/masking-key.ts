/**
 * The key behind the `hash` masking strategy. Equal values hash equally under one key, so whoever
 * holds it can test guesses (a 9-digit SSN takes seconds): it is a generated secret, never derived
 * from names that sit in the template, and without one Warden does not start.
 *
 * - AWS: `MASKING_HASH_KEY_SECRET_ARN` names the Secrets Manager secret the stack generates; its
 *   value is read once at cold start. The ARN, not the value, is in the function's environment, so
 *   `lambda:GetFunctionConfiguration` and the template reveal nothing.
 * - Local twin and tests: `MASKING_HASH_KEY` holds the value (the twin generates it once under
 *   `.warden/secrets.json`).
 */
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { readSecretString } from './secrets.js';

/** Below this a key can be guessed; the stack generates 64 characters. */
export const MIN_MASKING_KEY_BYTES = 32;

export class MaskingKeyError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MaskingKeyError';
  }
}

export async function maskingKeyFromEnv(
  env: NodeJS.ProcessEnv,
  client?: SecretsManagerClient,
): Promise<Buffer> {
  const arn = env.MASKING_HASH_KEY_SECRET_ARN;
  let value: string;
  let source: string;
  if (arn) {
    source = `secret ${arn}`;
    try {
      value = await readSecretString(arn, client);
    } catch (cause) {
      throw new MaskingKeyError(
        `cannot read the masking hash key from ${source}: ${cause instanceof Error ? cause.name : 'error'}; ` +
          'Warden does not start without it',
        { cause },
      );
    }
  } else if (env.MASKING_HASH_KEY) {
    source = 'MASKING_HASH_KEY';
    value = env.MASKING_HASH_KEY;
  } else {
    throw new MaskingKeyError(
      'no masking hash key: set MASKING_HASH_KEY_SECRET_ARN (the secret the stack generates) or, ' +
        'locally, MASKING_HASH_KEY; Warden never derives one and does not start without it',
    );
  }
  const key = Buffer.from(value, 'utf8');
  if (key.length < MIN_MASKING_KEY_BYTES) {
    throw new MaskingKeyError(
      `the masking hash key from ${source} is ${key.length} bytes; at least ${MIN_MASKING_KEY_BYTES} are needed`,
    );
  }
  return key;
}

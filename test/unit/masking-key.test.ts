/**
 * The keyed-hash strategy's key: a generated secret read at cold start, never derived, and without
 * one Warden does not start. The Secrets Manager path uses the real SDK client against a loopback
 * endpoint that speaks GetSecretValue.
 */
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ALL_TABLES, tableEnvVar } from '../../lib/tables.js';
import { MaskingKeyError, maskingKeyFromEnv } from '../../lambdas/adapters/masking-key.js';
import { createMasker } from '../../lambdas/core/masking/index.js';
import { createRuntime } from '../../lambdas/handlers/runtime.js';

const ARN = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:warden/masking-hash-key-AbCdEf';
const SECRET = 'k'.repeat(20) + 'generated-by-secrets-manager-0123456789';

let server: Server;
let client: SecretsManagerClient;
const asked: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target']);
      const { SecretId } = JSON.parse(body) as { SecretId: string };
      asked.push(`${target} ${SecretId}`);
      res.setHeader('content-type', 'application/x-amz-json-1.1');
      if (SecretId !== ARN) {
        res.statusCode = 400;
        res.end(JSON.stringify({ __type: 'ResourceNotFoundException', message: 'no such secret' }));
        return;
      }
      res.end(JSON.stringify({ ARN, Name: 'warden/masking-hash-key', SecretString: SECRET }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  client = new SecretsManagerClient({
    region: 'eu-west-1',
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
});

afterAll(async () => {
  client.destroy();
  await new Promise<void>((r) => server.close(() => r()));
});

describe('masking hash key', () => {
  it('reads the generated secret named by MASKING_HASH_KEY_SECRET_ARN', async () => {
    const key = await maskingKeyFromEnv({ MASKING_HASH_KEY_SECRET_ARN: ARN }, client);
    expect(key.toString('utf8')).toBe(SECRET);
    expect(asked).toContain(`secretsmanager.GetSecretValue ${ARN}`);
  });

  it('refuses to start without a key, and derives none from the account or table names', async () => {
    const env = { AWS_ACCOUNT_ID: '111122223333', TABLE_AUDIT: 'warden-audit' };
    await expect(maskingKeyFromEnv(env)).rejects.toThrow(MaskingKeyError);
    await expect(maskingKeyFromEnv(env)).rejects.toThrow(/MASKING_HASH_KEY_SECRET_ARN/);
  });

  it('refuses a key shorter than 32 bytes', async () => {
    await expect(maskingKeyFromEnv({ MASKING_HASH_KEY: 'short-key' })).rejects.toThrow(/at least 32/);
  });

  it('fails start-up when the secret cannot be read, without quoting any value', async () => {
    const other = ARN.replace('masking-hash-key', 'missing');
    const error = await maskingKeyFromEnv({ MASKING_HASH_KEY_SECRET_ARN: other }, client).catch(
      (e: unknown) => e as Error,
    );
    expect(error).toBeInstanceOf(MaskingKeyError);
    expect((error as Error).message).toContain('ResourceNotFoundException');
    expect((error as Error).message).not.toContain(SECRET);
  });

  it("stops createRuntime (every function's cold start) without a policy key, a masking key or a sealing key", async () => {
    const env: NodeJS.ProcessEnv = {
      WARDEN_CONFIG: JSON.stringify({ targets: {} }),
      OIDC_ISSUER: 'https://idp.example.com',
      OIDC_AUDIENCE: 'warden',
      OIDC_JWKS_URI: 'http://127.0.0.1:9/jwks',
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
      AWS_MAX_ATTEMPTS: '1',
      AWS_ACCOUNT_ID: '111122223333',
      TABLE_AUDIT: 'warden-audit',
    };
    // The stores read their table names from the process environment, as on Lambda.
    for (const def of ALL_TABLES) vi.stubEnv(tableEnvVar(def), `test-${def.logicalName}`);
    try {
      await expect(createRuntime(env)).rejects.toThrow(/no policy key/);
      env.WARDEN_POLICY_MAC_KEY = Buffer.alloc(32, 9).toString('base64url');
      await expect(createRuntime(env)).rejects.toThrow(/no masking hash key/);
      const sealKey = Buffer.alloc(32, 7).toString('base64url');
      await expect(createRuntime({ ...env, MASKING_HASH_KEY: SECRET })).rejects.toThrow(/no sealing key/);
      await expect(
        createRuntime({ ...env, MASKING_HASH_KEY: SECRET, WARDEN_SEAL_KEY: sealKey }),
      ).resolves.toBeDefined();
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('hash tokens are the full 256-bit HMAC-SHA256 of TYPE:normalized', () => {
    const m = createMasker({ hashKey: SECRET, rules: [{ column: 'ssn', strategy: 'hash', type: 'SSN' }] });
    const out = m.maskRows([{ name: 'ssn' }], [{ ssn: '583-05-0905' }]).rows[0].ssn as string;
    const expected = createHmac('sha256', SECRET).update('SSN:583050905').digest('hex');
    expect(out).toBe(`hmac:${expected}`);
    expect(expected).toHaveLength(64);
    // A token is masked output: masking it again changes nothing.
    expect(m.maskText(out).text).toBe(out);
    expect(m.maskRows([{ name: 'ssn' }], [{ ssn: out }]).rows[0].ssn).toBe(out);
  });
});

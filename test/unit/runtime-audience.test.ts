/**
 * OIDC_AUDIENCE_CLAIM as createRuntime (every function's cold start) reads it: Cognito access
 * tokens carry the app client in `client_id` and no `aud`.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { ALL_TABLES, tableEnvVar } from '../../lib/tables.js';
import { UnauthorizedError } from '../../lambdas/core/errors.js';
import { createRuntime } from '../../lambdas/handlers/runtime.js';

const ISSUER = 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf';
const CLIENT = '5pq2wardenclientid';

let server: Server;
let jwksUri: string;
let privateKey: CryptoKey;

beforeAll(async () => {
  const pair = await generateKeyPair('RS256', { extractable: true });
  privateKey = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  server = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  jwksUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  for (const def of ALL_TABLES) vi.stubEnv(tableEnvVar(def), `test-${def.logicalName}`);
});

afterAll(async () => {
  vi.unstubAllEnvs();
  await new Promise<void>((r) => server.close(() => r()));
});

function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    WARDEN_CONFIG: JSON.stringify({ targets: {} }),
    OIDC_ISSUER: ISSUER,
    OIDC_AUDIENCE: CLIENT,
    OIDC_JWKS_URI: jwksUri,
    GROUPS_CLAIM: 'cognito:groups',
    MASKING_HASH_KEY: 'k'.repeat(40),
    WARDEN_SEAL_KEY: Buffer.alloc(32, 7).toString('base64url'),
    WARDEN_POLICY_MAC_KEY: Buffer.alloc(32, 9).toString('base64url'),
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
    AWS_MAX_ATTEMPTS: '1',
    AWS_ACCOUNT_ID: '111122223333',
    ...extra,
  };
}

/** A Cognito-shaped access token: client_id, token_use, no aud. */
function cognitoAccessToken(clientId: string): Promise<string> {
  return new SignJWT({ client_id: clientId, token_use: 'access', scope: 'openid', 'cognito:groups': ['eng'] })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
    .setIssuer(ISSUER)
    .setSubject('alice-sub')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(privateKey);
}

async function refusal(p: Promise<unknown>): Promise<string> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UnauthorizedError);
  return (error as Error).message;
}

describe('OIDC_AUDIENCE_CLAIM', () => {
  it('accepts a token with client_id=<audience> and no aud only when client_id is configured', async () => {
    const token = await cognitoAccessToken(CLIENT);
    const byDefault = await createRuntime(env());
    expect(await refusal(byDefault.verifier.verify(token))).toMatch(/audience|aud/);
    const explicitAud = await createRuntime(env({ OIDC_AUDIENCE_CLAIM: 'aud' }));
    expect(await refusal(explicitAud.verifier.verify(token))).toMatch(/audience|aud/);

    const cognito = await createRuntime(env({ OIDC_AUDIENCE_CLAIM: 'client_id' }));
    const verified = await cognito.verifier.verify(token);
    expect(verified.principal.id).toBe('alice-sub');
    expect(verified.principal.groups).toEqual(['eng']);
  });

  it('refuses, with client_id configured, a token minted for another app client of the same user pool', async () => {
    const cognito = await createRuntime(env({ OIDC_AUDIENCE_CLAIM: 'client_id' }));
    // Attacker: a token of the same issuer and keys, for another app in the pool.
    const other = await cognitoAccessToken('7attackerappclient');
    expect(await refusal(cognito.verifier.verify(other))).toMatch(/wrong audience/);
    // Nor does an aud equal to the gateway's client id stand in for client_id.
    const audOnly = await new SignJWT({ token_use: 'access' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(ISSUER)
      .setAudience(CLIENT)
      .setSubject('alice-sub')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);
    expect(await refusal(cognito.verifier.verify(audOnly))).toMatch(/wrong audience/);
  });

  it('stops the cold start on any other value, naming the variable', async () => {
    await expect(createRuntime(env({ OIDC_AUDIENCE_CLAIM: 'azp' }))).rejects.toThrow(
      /OIDC_AUDIENCE_CLAIM must be 'aud' or 'client_id', got "azp"/,
    );
    await expect(createRuntime(env({ OIDC_AUDIENCE_CLAIM: 'CLIENT_ID' }))).rejects.toThrow(
      /OIDC_AUDIENCE_CLAIM/,
    );
  });
});

describe('OIDC_JWKS_MAX_AGE_SECONDS', () => {
  it('is read by the cold start: a bad value stops it, naming the variable; a good one starts', async () => {
    await expect(createRuntime(env({ OIDC_JWKS_MAX_AGE_SECONDS: '10m' }))).rejects.toThrow(
      /OIDC_JWKS_MAX_AGE_SECONDS must be a whole number of seconds from 1 to 86400, got "10m"/,
    );
    const rt = await createRuntime(env({ OIDC_JWKS_MAX_AGE_SECONDS: '120' }));
    expect(rt.verifier).toBeDefined();
  });
});

describe('DB_MASKING_RECHECK_SECONDS', () => {
  it('is read by the cold start: a bad value stops it, naming the variable; a good one starts', async () => {
    await expect(createRuntime(env({ DB_MASKING_RECHECK_SECONDS: '5m' }))).rejects.toThrow(
      /DB_MASKING_RECHECK_SECONDS must be a whole number of seconds from 1 to 86400, got "5m"/,
    );
    const rt = await createRuntime(env({ DB_MASKING_RECHECK_SECONDS: '60' }));
    expect(rt.verifier).toBeDefined();
  });
});

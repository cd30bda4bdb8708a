import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { JwtExpiredError } from 'aws-jwt-verify/error';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  createTokenVerifier,
  DEFAULT_JWKS_MAX_STALE_SECONDS,
  JWKS_REFRESH_RETRY_MS,
  jwksMaxAgeFromEnv,
} from '../../lambdas/adapters/jwt-verifier.js';
import type { TokenVerifier } from '../../lambdas/adapters/jwt-verifier.js';
import { ServiceUnavailableError, UnauthorizedError } from '../../lambdas/core/errors.js';

const ISSUER = 'https://idp.test.example/';
const AUDIENCE = 'warden';

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
  publicPem: string;
}

async function makeKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  // No `alg` on the published key, as several IdPs do: the verifier must not take the algorithm
  // from the token header in that case either.
  const publicJwk = { ...(await exportJWK(publicKey)), kid, use: 'sig' };
  return { kid, privateKey, publicJwk, publicPem: await exportSPKI(publicKey) };
}

const b64url = (v: unknown): string =>
  Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

let server: Server;
let jwksUri: string;
let published: JWK[] = [];
let jwksHits = 0;
/** The JWKS endpoint answers 500 while set (an IdP outage). */
let jwksFailing = false;
let key1: SigningKey;
let key2: SigningKey;
let stranger: SigningKey;

function sign(
  claims: Record<string, unknown>,
  opts: {
    key?: SigningKey;
    kid?: string;
    expiresIn?: string | null;
    issuer?: string;
    audience?: string;
  } = {},
): Promise<string> {
  const key = opts.key ?? key1;
  let jwt = new SignJWT({ groups: ['engineers'], client_id: 'warden-cli', ...claims })
    .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: opts.kid ?? key.kid })
    .setIssuer(opts.issuer ?? ISSUER)
    .setAudience(opts.audience ?? AUDIENCE)
    .setSubject('alice')
    .setIssuedAt();
  if (opts.expiresIn !== null) jwt = jwt.setExpirationTime(opts.expiresIn ?? '5m');
  return jwt.sign(key.privateKey);
}

function verifier(overrides: Partial<Parameters<typeof createTokenVerifier>[0]> = {}): TokenVerifier {
  return createTokenVerifier({
    issuer: ISSUER,
    audience: AUDIENCE,
    jwksUri,
    groupsClaim: 'groups',
    ...overrides,
  });
}

async function rejection(v: TokenVerifier, token: string): Promise<UnauthorizedError> {
  const err = await v.verify(token).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UnauthorizedError);
  return err as UnauthorizedError;
}

beforeAll(async () => {
  [key1, key2, stranger] = await Promise.all([makeKey('key-1'), makeKey('key-2'), makeKey('stranger')]);
  published = [key1.publicJwk];
  server = createServer((req, res) => {
    if (req.url === '/jwks') {
      jwksHits += 1;
      if (jwksFailing) {
        res.statusCode = 500;
        res.end();
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: published }));
      return;
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  jwksUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('jwt verifier', () => {
  let v: TokenVerifier;
  beforeAll(async () => {
    v = verifier();
    await v.hydrate();
  });

  it('accepts a valid token and maps it to the user principal', async () => {
    const { principal, claims } = await v.verify(await sign({ preferred_username: 'alice' }));
    expect(principal).toEqual({
      type: 'User',
      id: 'alice',
      name: 'alice',
      groups: ['engineers'],
      clientId: 'warden-cli',
    });
    expect(claims.iss).toBe(ISSUER);
  });

  it('fetches the JWKS once at hydrate, not per request', async () => {
    const before = jwksHits;
    for (let i = 0; i < 3; i += 1) await v.verify(await sign({}));
    expect(jwksHits).toBe(before);
  });

  it('rejects alg none', async () => {
    const unsigned = `${b64url({ alg: 'none', typ: 'JWT', kid: key1.kid })}.${b64url({
      sub: 'alice',
      iss: ISSUER,
      aud: AUDIENCE,
      exp: Math.floor(Date.now() / 1000) + 300,
    })}`;
    expect((await rejection(v, `${unsigned}.`)).message).toBe('token is malformed');
    expect((await rejection(v, `${unsigned}.AAAA`)).message).toMatch(/algorithm/);
  });

  it('rejects HS256 signed with the RSA public key as the HMAC secret (key confusion)', async () => {
    const header = b64url({ alg: 'HS256', typ: 'JWT', kid: key1.kid });
    const payload = b64url({
      sub: 'alice',
      iss: ISSUER,
      aud: AUDIENCE,
      exp: Math.floor(Date.now() / 1000) + 300,
    });
    for (const secret of [key1.publicPem, JSON.stringify(key1.publicJwk)]) {
      const mac = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
      expect((await rejection(v, `${header}.${payload}.${mac}`)).message).toMatch(/algorithm/);
    }
  });

  it('rejects an expired token', async () => {
    const token = await sign({}, { expiresIn: '-1m' });
    const err = await rejection(v, token);
    expect(err.message).toBe('token has expired');
    expect(err.cause).toBeInstanceOf(Error);
  });

  it('rejects a token that is not valid yet (nbf in the future)', async () => {
    const token = await sign({ nbf: Math.floor(Date.now() / 1000) + 600 });
    expect((await rejection(v, token)).message).toMatch(/not valid yet/);
  });

  it('rejects a token from another issuer', async () => {
    const token = await sign({}, { issuer: 'https://evil.example/' });
    expect((await rejection(v, token)).message).toMatch(/issuer/);
  });

  it('rejects a token for another audience', async () => {
    const token = await sign({}, { audience: 'some-other-api' });
    expect((await rejection(v, token)).message).toMatch(/audience/);
  });

  it('rejects a token signed with a key the JWKS does not hold (unknown kid)', async () => {
    const token = await sign({}, { key: stranger });
    expect((await rejection(verifier(), token)).message).toMatch(/unknown key/);
  });

  it('rejects a token signed by another key under a known kid', async () => {
    const token = await sign({}, { key: stranger, kid: key1.kid });
    expect((await rejection(v, token)).message).toMatch(/signature is invalid/);
  });

  it('rejects a tampered payload', async () => {
    const [h, , s] = (await sign({})).split('.');
    const forged = b64url({
      sub: 'alice',
      iss: ISSUER,
      aud: AUDIENCE,
      groups: ['dba'],
      exp: Math.floor(Date.now() / 1000) + 300,
    });
    expect((await rejection(v, `${h}.${forged}.${s}`)).message).toMatch(/signature/);
  });

  it('rejects a tampered signature', async () => {
    const [h, p, s] = (await sign({})).split('.');
    const bytes = Buffer.from(s, 'base64url');
    bytes[10] ^= 0xff;
    expect((await rejection(v, `${h}.${p}.${bytes.toString('base64url')}`)).message).toMatch(/signature/);
  });

  it('rejects a token without exp', async () => {
    const token = await sign({}, { expiresIn: null });
    expect((await rejection(v, token)).message).toMatch(/no expiry/);
  });

  it('rejects an oversized token before parsing it', async () => {
    const token = await sign({ padding: 'x'.repeat(9000) });
    expect((await rejection(v, token)).message).toMatch(/larger than/);
    const small = createTokenVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri,
      groupsClaim: 'groups',
      maxTokenBytes: 100,
    });
    expect((await rejection(small, await sign({}))).message).toMatch(/larger than 100 bytes/);
  });

  it('rejects garbage', async () => {
    for (const junk of [
      '',
      'garbage',
      'a.b.c',
      '...',
      'Bearer x',
      `${b64url('{')}.${b64url('}')}.sig`,
      '\u0000\u0001',
    ]) {
      await rejection(v, junk);
    }
  });

  it('rejects a valid signature over claims that make no principal (bad groups)', async () => {
    const token = await sign({ groups: ['ok', 'bad\u0007'] });
    expect((await rejection(v, token)).message).toMatch(/group/);
  });

  it('accepts a token signed with a key added to the JWKS after hydration (rotation)', async () => {
    const rotating = verifier();
    await rotating.hydrate();
    const token = await sign({}, { key: key2 });
    published = [key1.publicJwk, key2.publicJwk];
    try {
      const { principal } = await rotating.verify(token);
      expect(principal.id).toBe('alice');
      // and the old key still works from the refreshed cache
      await rotating.verify(await sign({}));
    } finally {
      published = [key1.publicJwk];
    }
  });

  it('checks client_id instead of aud when configured (Cognito access tokens)', async () => {
    const cognito = verifier({ audience: 'warden-cli', audienceClaim: 'client_id' });
    const ok = await cognito.verify(await sign({}, { audience: 'ignored' }));
    expect(ok.principal.clientId).toBe('warden-cli');
    expect((await rejection(cognito, await sign({ client_id: 'other-app' }))).message).toMatch(/audience/);
  });

  it('answers 503, not 401, when the signing keys cannot be fetched', async () => {
    const down = verifier({ jwksUri: jwksUri.replace('/jwks', '/missing') });
    await expect(down.hydrate()).rejects.toBeInstanceOf(ServiceUnavailableError);
    await expect(down.verify(await sign({}))).rejects.toBeInstanceOf(ServiceUnavailableError);
  });

  it('refuses a JWKS URI over plain http except on loopback', () => {
    expect(() => verifier({ jwksUri: 'http://idp.example.com/jwks' })).toThrow(/https/);
  });
});

describe('jwt verifier: verified-token cache', () => {
  const flipSignature = (token: string): string => {
    const [h, p, s] = token.split('.');
    const bytes = Buffer.from(s, 'base64url');
    bytes[bytes.length - 5] ^= 0x01;
    return `${h}.${p}.${bytes.toString('base64url')}`;
  };

  it('answers a repeated token from the cache with the same principal', async () => {
    const v = verifier();
    await v.hydrate();
    const token = await sign({ preferred_username: 'alice' });
    const first = await v.verify(token);
    expect(v.cachedTokens).toBe(1);
    const second = await v.verify(token);
    expect(second.principal).toEqual(first.principal);
    expect(second.claims).toEqual(first.claims);
    expect(v.cachedTokens).toBe(1);
  });

  it('refuses a cached token once it has expired, with the uncached error', async () => {
    const v = verifier({ graceSeconds: 5 });
    await v.hydrate();
    const exp = Math.floor(Date.now() / 1000) + 60;
    const token = await sign({}, { expiresIn: exp as unknown as string });
    await v.verify(token);
    expect(v.cachedTokens).toBe(1);
    const realNow = Date.now;
    try {
      // Within the grace the cached token is still good, as it is uncached.
      Date.now = () => (exp + 4) * 1000;
      await v.verify(token);
      Date.now = () => (exp + 6) * 1000;
      const err = await rejection(v, token);
      expect(err.message).toBe('token has expired');
      expect(err.cause).toBeInstanceOf(Error);
      expect(err.cause).toBeInstanceOf(JwtExpiredError);
      // The same token through a fresh verifier (no cache) fails the same way.
      const fresh = verifier({ graceSeconds: 5, verifiedCacheSize: 0 });
      const uncached = await rejection(fresh, token);
      expect(uncached.message).toBe(err.message);
      expect(uncached.cause?.constructor).toBe(err.cause?.constructor);
      expect(v.cachedTokens).toBe(0);
    } finally {
      Date.now = realNow;
    }
  });

  it('refuses a changed signature or payload even after the genuine token is cached', async () => {
    const v = verifier();
    await v.hydrate();
    const token = await sign({});
    await v.verify(token);
    expect((await rejection(v, flipSignature(token))).message).toMatch(/signature/);
    const [h, , s] = token.split('.');
    const forged = b64url({
      ...JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()),
      groups: ['dba'],
    });
    expect((await rejection(v, `${h}.${forged}.${s}`)).message).toMatch(/signature/);
    // A token that differs only after the signature (trailing bytes) is not the cached one either.
    await rejection(v, `${token}x`);
    await rejection(v, `${token}.`);
    expect(v.cachedTokens).toBe(1);
    // and the genuine one is still good
    await v.verify(token);
  });

  it('empties the cache when the JWKS is refetched (rotation): a removed key stops working', async () => {
    const v = verifier();
    await v.hydrate();
    const old = await sign({});
    await v.verify(old);
    expect(v.cachedTokens).toBe(1);
    // The IdP rotates: key-1 removed, key-2 added. A key-2 token makes the verifier refetch.
    published = [key2.publicJwk];
    try {
      const before = jwksHits;
      await v.verify(await sign({}, { key: key2 }));
      expect(jwksHits).toBe(before + 1);
      // The verification that made the fetch is not kept either (a verification running meanwhile
      // may have used the old keys); the next one is.
      expect(v.cachedTokens).toBe(0);
      await v.verify(await sign({}, { key: key2 }));
      expect(v.cachedTokens).toBe(1);
      expect((await rejection(v, old)).message).toMatch(/unknown key/);
    } finally {
      published = [key1.publicJwk];
    }
  });

  it('keeps nothing when verifiedCacheSize is 0', async () => {
    const v = verifier({ verifiedCacheSize: 0 });
    await v.hydrate();
    const token = await sign({});
    await v.verify(token);
    await v.verify(token);
    expect(v.cachedTokens).toBe(0);
  });

  it('holds at most verifiedCacheSize tokens, evicting the least recently used', async () => {
    const v = verifier({ verifiedCacheSize: 3 });
    await v.hydrate();
    const tokens = await Promise.all([0, 1, 2, 3, 4].map((i) => sign({ n: i })));
    for (const t of tokens) await v.verify(t);
    expect(v.cachedTokens).toBe(3);
    // Still correct for every token, evicted or not.
    for (const t of tokens) expect((await v.verify(t)).claims.n).toBe(tokens.indexOf(t));
    expect(v.cachedTokens).toBe(3);
  });

  it('returns frozen values: changing a returned principal or claims does not reach the next hit', async () => {
    const v = verifier();
    await v.hydrate();
    const token = await sign({ preferred_username: 'alice' });
    const first = await v.verify(token);
    const attempts: (() => void)[] = [
      () => ((first.principal as { id: string }).id = 'admin'),
      () => (first.principal.groups as string[]).push('dba'),
      () => ((first.claims as { groups: string[] }).groups[0] = 'dba'),
      () => ((first.claims as { sub: string }).sub = 'admin'),
      () => ((first as { principal: unknown }).principal = { type: 'User', id: 'admin', groups: ['dba'] }),
    ];
    for (const attempt of attempts) expect(attempt).toThrow(TypeError);
    const next = await v.verify(token);
    expect(next.principal.id).toBe('alice');
    expect(next.principal.groups).toEqual(['engineers']);
    expect(next.claims.sub).toBe('alice');
    expect(next.claims.groups).toEqual(['engineers']);
  });

  it('does not keep failures: a refused token is verified again (and refused) each time', async () => {
    const v = verifier();
    await v.hydrate();
    const bad = [
      await sign({}, { expiresIn: '-1m' }),
      await sign({}, { audience: 'some-other-api' }),
      await sign({ groups: ['ok', 'bad\u0007'] }),
      flipSignature(await sign({})),
    ];
    for (let round = 0; round < 2; round += 1) {
      for (const t of bad) await rejection(v, t);
    }
    expect(v.cachedTokens).toBe(0);
  });
});

describe('jwt verifier: the key set has an age limit', () => {
  const AGE_S = 600;
  let t = 0;
  const aging = (overrides: Partial<Parameters<typeof createTokenVerifier>[0]> = {}) =>
    verifier({ jwksMaxAgeSeconds: AGE_S, now: () => t, ...overrides });
  const later = (seconds: number) => {
    t += seconds * 1000;
  };
  beforeAll(() => {
    t = 1_000_000;
  });
  const restore = () => {
    published = [key1.publicJwk];
    jwksFailing = false;
  };

  for (const cacheSize of [1024, 0]) {
    it(`a key the IdP removed stops verifying once the key set is past its age (verified cache ${cacheSize})`, async () => {
      const v = aging({ verifiedCacheSize: cacheSize });
      await v.hydrate();
      // A token signed with the key that is about to be removed (leaked, say), used again and again.
      const leaked = await sign({}, { expiresIn: '2h' });
      await v.verify(leaked);
      published = [key2.publicJwk];
      try {
        const before = jwksHits;
        later(AGE_S - 1);
        // Within the age the key set is not fetched again, so the removed key still works: the bound.
        expect((await v.verify(leaked)).principal.id).toBe('alice');
        expect(jwksHits).toBe(before);
        later(2);
        expect((await rejection(v, leaked)).message).toMatch(/unknown key/);
        expect(jwksHits).toBeGreaterThan(before);
        // Cached or not, it stays refused; the new key works.
        expect((await rejection(v, leaked)).message).toMatch(/unknown key/);
        expect((await v.verify(await sign({}, { key: key2 }))).principal.id).toBe('alice');
      } finally {
        restore();
      }
    });
  }

  it('a fresh key set is good for another full age: no fetch per request', async () => {
    const v = aging();
    await v.hydrate();
    const before = jwksHits;
    for (let i = 0; i < 20; i++) {
      later(AGE_S / 20 - 1);
      await v.verify(await sign({ n: i }));
    }
    expect(jwksHits).toBe(before);
    later(30);
    await v.verify(await sign({ n: 'past' }));
    expect(jwksHits).toBe(before + 1);
    later(AGE_S - 1);
    await v.verify(await sign({ n: 'again' }));
    expect(jwksHits).toBe(before + 1);
  });

  it('verifications arriving together at an expired key set share one fetch', async () => {
    const v = aging();
    await v.hydrate();
    const tokens = await Promise.all(Array.from({ length: 25 }, (_, i) => sign({ n: i })));
    later(AGE_S + 1);
    const before = jwksHits;
    const results = await Promise.all(tokens.map((tok) => v.verify(tok)));
    expect(results.every((r) => r.principal.id === 'alice')).toBe(true);
    expect(jwksHits).toBe(before + 1);
  });

  it('an IdP outage at refetch time keeps the previous keys, reports it, and tries again only after 30 s', async () => {
    const errors: unknown[] = [];
    const v = aging({ onJwksRefreshError: (e) => errors.push(e) });
    await v.hydrate();
    const token = await sign({}, { expiresIn: '2h' });
    await v.verify(token);
    jwksFailing = true;
    try {
      const before = jwksHits;
      later(AGE_S + 1);
      expect((await v.verify(token)).principal.id).toBe('alice');
      expect(jwksHits).toBe(before + 1);
      expect(errors).toHaveLength(1);
      // No fetch per request while the IdP is down.
      for (let i = 0; i < 10; i++) await v.verify(await sign({ n: i }));
      later(JWKS_REFRESH_RETRY_MS / 1000 - 1);
      await v.verify(token);
      expect(jwksHits).toBe(before + 1);
      later(2);
      await v.verify(token);
      expect(jwksHits).toBe(before + 2);
      expect(errors).toHaveLength(2);
      // The IdP is back, without the key: the next attempt (30 s on) takes the new set.
      jwksFailing = false;
      published = [key2.publicJwk];
      later(JWKS_REFRESH_RETRY_MS / 1000 + 1);
      expect((await rejection(v, token)).message).toMatch(/unknown key/);
    } finally {
      restore();
    }
  });

  for (const cacheSize of [1024, 0]) {
    it(`a key set a day past its age with the IdP unreachable all along is not used: 503 until it answers (verified cache ${cacheSize})`, async () => {
      const v = aging({ verifiedCacheSize: cacheSize });
      await v.hydrate();
      // Signed with a key the IdP has since removed, by someone who also keeps the function from it.
      const leaked = await sign({}, { expiresIn: '48h' });
      await v.verify(leaked);
      published = [key2.publicJwk];
      jwksFailing = true;
      try {
        later(AGE_S + DEFAULT_JWKS_MAX_STALE_SECONDS - 60);
        // Within the bound an outage is not a Warden outage: the previous keys still verify.
        expect((await v.verify(leaked)).principal.id).toBe('alice');
        later(61 + JWKS_REFRESH_RETRY_MS / 1000);
        const refused = await v.verify(leaked).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(refused).toBeInstanceOf(ServiceUnavailableError);
        expect((refused as Error).message).toMatch(
          /fetched 24 h ago and the identity provider has not answered since/,
        );
        // Every token, cached or not, until the IdP answers: then the removed key is unknown.
        await expect(v.verify(await sign({ n: 1 }))).rejects.toBeInstanceOf(ServiceUnavailableError);
        jwksFailing = false;
        later(JWKS_REFRESH_RETRY_MS / 1000 + 1);
        expect((await rejection(v, leaked)).message).toMatch(/unknown key/);
        expect((await v.verify(await sign({}, { key: key2 }))).principal.id).toBe('alice');
      } finally {
        restore();
      }
    });
  }

  it('refuses a stale bound that is not a number of seconds', () => {
    expect(() => aging({ jwksMaxStaleSeconds: -1 })).toThrow(/jwksMaxStaleSeconds/);
    expect(() => aging({ jwksMaxStaleSeconds: Number.NaN })).toThrow(/jwksMaxStaleSeconds/);
  });

  it('a flood of tokens naming made-up key ids fetches the key set at most once per wait period', async () => {
    const v = aging();
    await v.hydrate();
    const before = jwksHits;
    for (let i = 0; i < 30; i++) {
      const forged = await sign({}, { key: stranger, kid: `kid-${i}` });
      expect((await rejection(v, forged)).message).toMatch(/unknown key/);
    }
    expect(jwksHits - before).toBeLessThanOrEqual(1);
  });

  it('refuses an age that is not a positive number', () => {
    expect(() => aging({ jwksMaxAgeSeconds: 0 })).toThrow(/jwksMaxAgeSeconds/);
    expect(() => aging({ jwksMaxAgeSeconds: Number.NaN })).toThrow(/jwksMaxAgeSeconds/);
  });

  it('reads OIDC_JWKS_MAX_AGE_SECONDS, refusing anything but whole seconds from 1 to 86400 by name', () => {
    expect(jwksMaxAgeFromEnv({})).toBeUndefined();
    expect(jwksMaxAgeFromEnv({ OIDC_JWKS_MAX_AGE_SECONDS: '' })).toBeUndefined();
    expect(jwksMaxAgeFromEnv({ OIDC_JWKS_MAX_AGE_SECONDS: '300' })).toBe(300);
    expect(jwksMaxAgeFromEnv({ OIDC_JWKS_MAX_AGE_SECONDS: '86400' })).toBe(86_400);
    for (const bad of ['0', '-5', '1e3', '5m', '86401', ' 60', '60.5']) {
      expect(() => jwksMaxAgeFromEnv({ OIDC_JWKS_MAX_AGE_SECONDS: bad })).toThrow(
        /OIDC_JWKS_MAX_AGE_SECONDS/,
      );
    }
  });
});

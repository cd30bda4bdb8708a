/** The twin IdP's file storage (lib/local/oidc-store.ts), as oidc-provider's adapter contract uses it. */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createOidcStore, MAX_ENTRIES } from '../../lib/local/oidc-store.js';

interface Adapter {
  upsert(id: string, payload: Record<string, unknown>, expiresIn?: number): Promise<void>;
  find(id: string): Promise<Record<string, unknown> | undefined>;
  findByUid(uid: string): Promise<Record<string, unknown> | undefined>;
  findByUserCode(code: string): Promise<Record<string, unknown> | undefined>;
  consume(id: string): Promise<void>;
  destroy(id: string): Promise<void>;
  revokeByGrantId(grantId: string): Promise<void>;
}

const dir = mkdtempSync(join(tmpdir(), 'warden-oidc-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = () => join(dir, `store-${++n}.json`);

describe('the twin IdP store', () => {
  it('keeps grants, refresh tokens and sessions across instances (0600), and nothing short-lived', async () => {
    const path = file();
    const a = createOidcStore(path);
    const model = (m: string) => a.adapter(m) as Adapter;
    await model('Grant').upsert('g1', { accountId: 'carol' }, 3600);
    await model('RefreshToken').upsert('rt1', { grantId: 'g1' }, 3600);
    await model('Session').upsert('s1', { uid: 'u1' }, 3600);
    await model('AuthorizationCode').upsert('c1', { grantId: 'g1' }, 60);
    await model('Interaction').upsert('i1', {}, 60);
    a.flush();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(Object.keys(JSON.parse(readFileSync(path, 'utf8'))).sort()).toEqual([
      'Grant:g1',
      'RefreshToken:rt1',
      'Session:s1',
    ]);
    const b = createOidcStore(path);
    expect(await (b.adapter('RefreshToken') as Adapter).find('rt1')).toEqual({ grantId: 'g1' });
    expect(await (b.adapter('Session') as Adapter).findByUid('u1')).toEqual({ uid: 'u1' });
    expect(await (b.adapter('AuthorizationCode') as Adapter).find('c1')).toBeUndefined();
  });

  it('expires entries, consumes, destroys and revokes by grant as the contract says', async () => {
    let now = 1_000_000;
    const path = file();
    const s = createOidcStore(path, () => now);
    const rt = s.adapter('RefreshToken') as Adapter;
    const code = s.adapter('DeviceCode') as Adapter;
    await rt.upsert('a', { grantId: 'g' }, 10);
    await rt.upsert('b', { grantId: 'other' });
    await code.upsert('d', { grantId: 'g', userCode: 'ABCD-EFGH' }, 10);
    expect(await code.findByUserCode('ABCD-EFGH')).toMatchObject({ grantId: 'g' });
    await rt.consume('a');
    expect((await rt.find('a'))?.consumed).toBe(1000);
    await rt.revokeByGrantId('g');
    expect(await rt.find('a')).toBeUndefined();
    expect(await code.find('d')).toBeUndefined();
    expect(await rt.find('b')).toEqual({ grantId: 'other' });
    await rt.upsert('c', { grantId: 'x' }, 10);
    now += 11_000;
    expect(await rt.find('c')).toBeUndefined();
    await rt.destroy('b');
    expect(await rt.find('b')).toBeUndefined();
    s.flush();
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({});
  });

  it(`holds at most ${MAX_ENTRIES} entries, dropping the oldest, and starts empty on a damaged file`, async () => {
    const path = file();
    const s = createOidcStore(path);
    const grant = s.adapter('Grant') as Adapter;
    for (let i = 0; i < MAX_ENTRIES + 10; i++) await grant.upsert(`g${i}`, { i }, 3600);
    expect(s.size).toBe(MAX_ENTRIES);
    expect(await grant.find('g0')).toBeUndefined();
    expect(await grant.find(`g${MAX_ENTRIES + 9}`)).toEqual({ i: MAX_ENTRIES + 9 });
    writeFileSync(path, '{ not json');
    const fresh = createOidcStore(path);
    expect(fresh.size).toBe(0);
    await (fresh.adapter('Grant') as Adapter).upsert('g', {}, 60);
    fresh.flush();
    expect(Object.keys(JSON.parse(readFileSync(path, 'utf8')))).toEqual(['Grant:g']);
  });
});

/**
 * Storage for the local twin's IdP (oidc-provider's adapter interface), kept in one JSON file in
 * the twin's data directory, so that what `warden login` holds (its refresh token and the grant
 * behind it) survives a restart of `npm start`, as the signing keys already do. oidc-provider's
 * own memory adapter lost every sign-in on a restart.
 *
 * Only what a sign-in needs later is kept in the file: grants and refresh tokens (and sessions, so
 * a browser signed in to the IdP stays signed in). Everything short-lived (authorization codes,
 * interactions, device codes, replay detection) stays in memory. Entries expire as oidc-provider
 * says; at most MAX_ENTRIES are kept (the oldest go first). The file is written (0600, replaced
 * atomically) shortly after a change, and at once by `flush()`.
 */
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

type Payload = Record<string, unknown> & {
  grantId?: string;
  uid?: string;
  userCode?: string;
  consumed?: number;
};
interface Entry {
  payload: Payload;
  /** ms since the epoch, or null for no expiry. */
  expiresAt: number | null;
}

/** Models worth keeping across a restart. */
const DURABLE = new Set(['Grant', 'RefreshToken', 'Session']);
/** Models whose entries name the grant they belong to (revoked with it). */
const GRANTABLE = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);
export const MAX_ENTRIES = 5_000;
const WRITE_DELAY_MS = 50;

export interface OidcStore {
  /** oidc-provider's `adapter` option. */
  readonly adapter: (model: string) => unknown;
  /** Writes pending changes now. */
  flush(): void;
  /** Entries held (tests). */
  readonly size: number;
}

export function createOidcStore(path: string, now: () => number = Date.now): OidcStore {
  const entries = new Map<string, Entry>();
  if (existsSync(path)) {
    try {
      const saved = JSON.parse(readFileSync(path, 'utf8')) as Record<string, Entry>;
      for (const [key, entry] of Object.entries(saved)) {
        if (entry && typeof entry === 'object' && (entry.expiresAt === null || entry.expiresAt > now())) {
          entries.set(key, entry);
        }
      }
    } catch {
      // A damaged file: start empty (sign in again), and overwrite it on the next change.
    }
  }
  let timer: NodeJS.Timeout | undefined;
  let dirty = false;
  const flush = (): void => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (!dirty) return;
    dirty = false;
    const durable: Record<string, Entry> = {};
    for (const [key, entry] of entries) {
      if (DURABLE.has(key.slice(0, key.indexOf(':'))) && !expired(entry)) durable[key] = entry;
    }
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(durable), { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
  };
  const changed = (model: string): void => {
    if (!DURABLE.has(model)) return;
    dirty = true;
    timer ??= setTimeout(flush, WRITE_DELAY_MS);
    timer.unref();
  };
  const expired = (entry: Entry): boolean => entry.expiresAt !== null && entry.expiresAt <= now();
  const get = (key: string): Payload | undefined => {
    const entry = entries.get(key);
    if (!entry) return undefined;
    if (expired(entry)) {
      entries.delete(key);
      return undefined;
    }
    return entry.payload;
  };
  const findWhere = (model: string, test: (p: Payload) => boolean): Payload | undefined => {
    for (const [key, entry] of entries) {
      if (key.startsWith(`${model}:`) && !expired(entry) && test(entry.payload)) return entry.payload;
    }
    return undefined;
  };

  class FileAdapter {
    constructor(private readonly model: string) {}

    private key(id: string): string {
      return `${this.model}:${id}`;
    }

    async upsert(id: string, payload: Payload, expiresIn?: number): Promise<void> {
      const key = this.key(id);
      entries.delete(key); // re-inserted last: the oldest entries are the first evicted
      entries.set(key, {
        payload,
        expiresAt: typeof expiresIn === 'number' ? now() + expiresIn * 1000 : null,
      });
      while (entries.size > MAX_ENTRIES) entries.delete(entries.keys().next().value as string);
      changed(this.model);
    }

    async find(id: string): Promise<Payload | undefined> {
      return get(this.key(id));
    }

    async findByUid(uid: string): Promise<Payload | undefined> {
      return findWhere(this.model, (p) => p.uid === uid);
    }

    async findByUserCode(userCode: string): Promise<Payload | undefined> {
      return findWhere(this.model, (p) => p.userCode === userCode);
    }

    async consume(id: string): Promise<void> {
      const payload = get(this.key(id));
      if (payload) payload.consumed = Math.floor(now() / 1000);
      changed(this.model);
    }

    async destroy(id: string): Promise<void> {
      entries.delete(this.key(id));
      changed(this.model);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      for (const [key, entry] of entries) {
        const model = key.slice(0, key.indexOf(':'));
        if (GRANTABLE.has(model) && entry.payload.grantId === grantId) {
          entries.delete(key);
          changed(model);
        }
      }
    }
  }

  return {
    adapter: (model: string) => new FileAdapter(model),
    flush,
    get size() {
      return entries.size;
    },
  };
}

/**
 * Where `warden login` keeps its sign-ins: `$XDG_CONFIG_HOME/warden/credentials.json` (or
 * `~/.config/warden/credentials.json`), one entry per gateway URL. The directory is 0700 and the
 * file 0600, written to a temporary file and renamed so a crash never leaves half a file; a file
 * others can read is refused (like ssh does with a private key) rather than used.
 */
import {
  chmodSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
  closeSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CliError, EXIT } from './cli-client.js';

/** One gateway's sign-in: the IdP's token set and what is needed to refresh or revoke it. */
export interface StoredLogin {
  /** The IdP's issuer, from the gateway's metadata at login. */
  readonly issuer: string;
  /** The public client `warden login` used (no secret). */
  readonly clientId: string;
  readonly accessToken: string;
  readonly tokenType: string;
  readonly refreshToken?: string;
  readonly idToken?: string;
  /** Seconds since the epoch; absent when the IdP gave no `expires_in`. */
  readonly expiresAt?: number;
  readonly scope?: string;
  /** From the verified ID token, for `warden whoami`. */
  readonly subject?: string;
  readonly username?: string;
  /** How the sign-in happened: 'authorization_code' (browser) or 'device_code'. */
  readonly grant: 'authorization_code' | 'device_code';
  readonly obtainedAt: string;
}

interface StoreFile {
  readonly version: 1;
  readonly gateways: Record<string, StoredLogin>;
}

export function credentialsPath(env: NodeJS.ProcessEnv = process.env): string {
  const base =
    env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/')
      ? env.XDG_CONFIG_HOME
      : join(homedir(), '.config');
  return join(base, 'warden', 'credentials.json');
}

/** The key of a gateway: its URL without a trailing slash, scheme and host lower-cased. */
export function gatewayKey(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

function readStore(path: string): StoreFile {
  let text: string;
  try {
    const mode = statSync(path).mode & 0o777;
    if (mode & 0o077) {
      throw new CliError(
        `${path} is readable by others (mode ${mode.toString(8)}): run \`chmod 600 ${path}\` or sign in again`,
        EXIT.unreachable,
      );
    }
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, gateways: {} };
    throw error;
  }
  try {
    const parsed = JSON.parse(text) as Partial<StoreFile>;
    if (parsed.version !== 1 || typeof parsed.gateways !== 'object' || parsed.gateways === null) {
      throw new Error('unexpected layout');
    }
    return { version: 1, gateways: parsed.gateways };
  } catch (error) {
    throw new CliError(
      `${path} is not a Warden credentials file (${(error as Error).message}): remove it and sign in again`,
      EXIT.unreachable,
    );
  }
}

function writeStore(path: string, store: StoreFile): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // mkdir leaves an existing directory's mode alone: tighten it (it is ours).
  chmodSync(dir, 0o700);
  if (Object.keys(store.gateways).length === 0) {
    rmSync(path, { force: true });
    return;
  }
  const tmp = join(dir, `.credentials.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  // Created 0600 from the start (O_EXCL: never through a link someone planted).
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(store, null, 2)}\n`);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

export class CredentialStore {
  constructor(readonly path: string = credentialsPath()) {}

  get(url: string): StoredLogin | undefined {
    return readStore(this.path).gateways[gatewayKey(url)];
  }

  put(url: string, login: StoredLogin): void {
    const store = readStore(this.path);
    writeStore(this.path, { version: 1, gateways: { ...store.gateways, [gatewayKey(url)]: login } });
  }

  /** True when there was an entry to delete. */
  delete(url: string): boolean {
    const store = readStore(this.path);
    const key = gatewayKey(url);
    if (!(key in store.gateways)) return false;
    const { [key]: _gone, ...rest } = store.gateways;
    writeStore(this.path, { version: 1, gateways: rest });
    return true;
  }

  gateways(): string[] {
    return Object.keys(readStore(this.path).gateways);
  }
}

/**
 * A throwaway PostgreSQL 15 server for one test file: `initdb` into a temporary directory with
 * Debian's binaries (`/usr/lib/postgresql/15/bin`, or `WARDEN_PG_BIN`), started on 127.0.0.1 at a
 * free port with its unix socket in the same directory, stopped and deleted by `stop()`.
 *
 * - PostgreSQL refuses to run as root. When the tests run as root, initdb and postgres run as the
 *   `postgres` system user (Debian's package creates it) through `setpriv`, and the temporary
 *   directory is handed to that user.
 * - The server stops by itself when the test process goes away without calling `stop()` (a
 *   crashed or killed worker): it is started with a parent-death signal (SIGINT, PostgreSQL's fast
 *   shutdown), and an `exit` hook kills it too.
 * - Logins over TCP use passwords (scram-sha-256), as on Aurora; the unix socket trusts the
 *   superuser so the test can read the raw data directly.
 * - When the binaries are absent, `postgresUnavailable()` says why and the tests skip loudly,
 *   unless `WARDEN_REQUIRE_POSTGRES=1` (set by `.ci/run`), which makes that a failure.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './net.js';

export const POSTGRES_BIN = process.env.WARDEN_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface PostgresServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** The directory holding the unix socket. */
  readonly socketDir: string;
  readonly superuser: string;
  readonly superuserPassword: string;
  /** A client logged in as the superuser (over the unix socket) to `database`. */
  connect(database?: string): Promise<pg.Client>;
  /** Stops the server (fast shutdown) and deletes its directory. Safe to call twice. */
  stop(): Promise<void>;
}

/** Why a real server cannot be started here, or undefined when it can. */
export function postgresUnavailable(): string | undefined {
  if (!existsSync(join(POSTGRES_BIN, 'postgres')) || !existsSync(join(POSTGRES_BIN, 'initdb'))) {
    return `PostgreSQL 15 binaries not found in ${POSTGRES_BIN} (apt-get install postgresql-15)`;
  }
  if (process.getuid?.() === 0 && runAsUser() === undefined) {
    return 'running as root and there is no `postgres` user to run PostgreSQL as';
  }
  return undefined;
}

/**
 * For `describe.skipIf(...)`: true when the real-server tests must skip (and says so on stderr);
 * throws when they may not skip (`WARDEN_REQUIRE_POSTGRES=1`).
 */
export function skipWithoutPostgres(what: string): boolean {
  const reason = postgresUnavailable();
  if (reason === undefined) return false;
  if (process.env.WARDEN_REQUIRE_POSTGRES === '1') {
    throw new Error(`${what} must run here (WARDEN_REQUIRE_POSTGRES=1) but cannot: ${reason}`);
  }
  process.stderr.write(`\n*** SKIPPED: ${what} against a real PostgreSQL server: ${reason} ***\n\n`);
  return true;
}

function runAsUser(): { uid: number; gid: number } | undefined {
  const out = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (out.status !== 0 || gid.status !== 0) return undefined;
  return { uid: Number(out.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** The command line running `binary` as the right user, dying with its parent. */
function command(
  binary: string,
  args: string[],
  asUser: { uid: number; gid: number } | undefined,
): [string, string[]] {
  const path = join(POSTGRES_BIN, binary);
  const hasSetpriv = spawnSync('setpriv', ['--version']).status === 0;
  if (!hasSetpriv) return [path, args];
  const user = asUser ? ['--reuid', String(asUser.uid), '--regid', String(asUser.gid), '--clear-groups'] : [];
  return ['setpriv', [...user, '--pdeathsig', 'INT', '--', path, ...args]];
}

export async function startPostgres(): Promise<PostgresServer> {
  const unavailable = postgresUnavailable();
  if (unavailable) throw new Error(unavailable);
  const asUser = process.getuid?.() === 0 ? runAsUser() : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'warden-pg-'));
  const dataDir = join(dir, 'data');
  const superuser = 'postgres';
  const superuserPassword = randomBytes(18).toString('base64url');
  const pwfile = join(dir, 'pwfile');
  writeFileSync(pwfile, `${superuserPassword}\n`, { mode: 0o600 });
  if (asUser) {
    chownSync(dir, asUser.uid, asUser.gid);
    chownSync(pwfile, asUser.uid, asUser.gid);
  }

  const [initCmd, initArgs] = command(
    'initdb',
    [
      '-D',
      dataDir,
      '-U',
      superuser,
      `--pwfile=${pwfile}`,
      '--auth-local=trust',
      '--auth-host=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
    ],
    asUser,
  );
  const init = spawnSync(initCmd, initArgs, { encoding: 'utf8', cwd: dir });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.status}): ${init.stderr || init.stdout}`);
  }
  rmSync(pwfile, { force: true });

  let child: ChildProcess | undefined;
  let port = 0;
  let output = '';
  for (let attempt = 0; attempt < 3 && !child; attempt++) {
    port = await freePort();
    const [cmd, args] = command(
      'postgres',
      [
        '-D',
        dataDir,
        '-p',
        String(port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        `unix_socket_directories=${dir}`,
        '-c',
        'fsync=off',
        '-c',
        'synchronous_commit=off',
        '-c',
        'full_page_writes=off',
        '-c',
        'shared_buffers=16MB',
        '-c',
        'max_connections=60',
      ],
      asUser,
    );
    const started = spawn(cmd, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    output = '';
    started.stdout?.on('data', (b: Buffer) => (output = (output + b.toString()).slice(-8000)));
    started.stderr?.on('data', (b: Buffer) => (output = (output + b.toString()).slice(-8000)));
    const exited = new Promise<number | null>((resolve) => started.once('exit', (code) => resolve(code)));
    const ready = waitReady(
      dir,
      port,
      superuser,
      () => started.exitCode === null && started.signalCode === null,
    );
    const first = await Promise.race([
      ready.then(() => (started.exitCode === null ? ('ready' as const) : ('exited' as const))),
      exited.then(() => 'exited' as const),
    ]);
    if (first === 'ready') child = started;
    else if (!/could not (bind|create listen socket)/i.test(output)) break; // not a port race: give up
  }
  if (!child) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`postgres did not start: ${output}`);
  }

  const running = child;
  const killOnExit = (): void => {
    running.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  let stopped: Promise<void> | undefined;

  return {
    host: '127.0.0.1',
    port,
    socketDir: dir,
    superuser,
    superuserPassword,
    async connect(database = 'postgres') {
      const client = new pg.Client({ host: dir, port, user: superuser, database });
      await client.connect();
      return client;
    },
    stop() {
      stopped ??= (async () => {
        process.removeListener('exit', killOnExit);
        if (running.exitCode === null && running.signalCode === null) {
          const gone = new Promise<void>((resolve) => running.once('exit', () => resolve()));
          running.kill('SIGINT');
          const timer = setTimeout(() => running.kill('SIGKILL'), 10_000);
          await gone;
          clearTimeout(timer);
        }
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

async function waitReady(socketDir: string, port: number, user: string, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (!alive()) return;
    const client = new pg.Client({ host: socketDir, port, user, database: 'postgres' });
    try {
      await client.connect();
      await client.query('select 1');
      await client.end();
      return;
    } catch (err) {
      await client.end().catch(() => undefined);
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

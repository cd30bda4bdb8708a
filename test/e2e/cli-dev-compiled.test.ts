/**
 * `warden dev` from the compiled package (dist/cli, no tsx installed): the twin starts its DynamoDB
 * worker thread from the built `dynamo-thread.js` entry (scripts/build-cli.mjs), answers a governed
 * read, and stops cleanly on SIGTERM, as after `npm install` in another project.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { devToken } from '../../bin/cli-client.js';

const REPO = resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function installCompiled(): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-dev-pkg-'));
  dirs.push(dir);
  execFileSync(process.execPath, ['scripts/build-cli.mjs', '--outdir', join(dir, 'dist/cli')], { cwd: REPO });
  mkdirSync(join(dir, 'bin'));
  copyFileSync(join(REPO, 'bin/warden.js'), join(dir, 'bin/warden.js'));
  copyFileSync(join(REPO, 'package.json'), join(dir, 'package.json'));
  cpSync(join(REPO, 'policies'), join(dir, 'policies'), { recursive: true });
  mkdirSync(join(dir, 'node_modules'));
  for (const name of readdirSync(join(REPO, 'node_modules'))) {
    if (name === 'tsx' || name === '.bin') continue;
    symlinkSync(join(REPO, 'node_modules', name), join(dir, 'node_modules', name));
  }
  return dir;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

it('starts the twin with its DynamoDB thread from dist/cli, serves a read, and stops on SIGTERM', async () => {
  const pkg = installCompiled();
  expect(existsSync(join(pkg, 'dist/cli/dynamo-thread.js'))).toBe(true);
  const dataDir = mkdtempSync(join(tmpdir(), 'warden-dev-data-'));
  dirs.push(dataDir);
  const port = await freePort();
  const child = spawn(process.execPath, ['bin/warden.js', 'dev'], {
    cwd: pkg,
    env: { ...process.env, PORT: String(port), WARDEN_DATA_DIR: dataDir, WARDEN_TWIN_DYNAMO: 'thread' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    const deadline = Date.now() + 150_000;
    while (!/ready in/.test(output)) {
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(`warden dev did not come up:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(output).toContain('starting DynamoDB (dynalite, in a worker thread)');
    const url = `http://127.0.0.1:${port}`;
    const token = await devToken(url, 'alice');
    const res = await fetch(`${url}/v1/targets/demo/sql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ sql: 'SELECT count(*) AS n FROM orders' }),
    });
    const body = (await res.json()) as { status: string; result: { rows: { n: unknown }[] } };
    expect(res.status).toBe(200);
    expect(body.status).toBe('executed');
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM');
  }
  expect(await exited).toBe(0);
  expect(output).not.toMatch(/DynamoDB thread ended|did not start/);
}, 200_000);

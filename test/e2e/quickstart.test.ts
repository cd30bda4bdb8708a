/**
 * A newcomer's first minutes: `npm start` prints a banner, and the curl it shows, pasted into a
 * shell, returns rows. Runs the real command in a child process, as a user would.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
let child: ChildProcess;
let output = '';
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'warden-quickstart-'));
  child = spawn('npm', ['start'], {
    env: { ...process.env, PORT: '0', WARDEN_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 120_000;
  while (!/ready in/.test(output)) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`npm start did not come up:\n${output}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}, 150_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    process.kill(-child.pid!, 'SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
  rmSync(dataDir, { recursive: true, force: true });
});

describe('quick start', () => {
  it('prints a banner with the gateway URL, how to get a token, and a curl example', () => {
    expect(output).toMatch(/Gateway\s+http:\/\/127\.0\.0\.1:\d+/);
    expect(output).toMatch(/npx warden token alice/);
    expect(output).toMatch(/curl -s http/);
  });

  it('answers the pasted curl with rows', async () => {
    const lines = output.split('\n');
    const start = lines.findIndex((l) => l.trim().startsWith('curl -s'));
    const end = lines.findIndex((l, i) => i > start && !l.trim().endsWith('\\'));
    const command = lines
      .slice(start, end + 1)
      .map((l) => l.trim())
      .join('\n');
    const { stdout } = await run('bash', ['-c', command], { timeout: 60_000 });
    const body = JSON.parse(stdout);
    expect(body.status).toBe('executed');
    expect(body.result.rows).toHaveLength(3);
    expect(body.result.columns.map((c: { name: string }) => c.name)).toEqual(['id', 'name', 'email']);
  });

  it('answers GET /healthz', async () => {
    const url = /Gateway\s+(http:\/\/\S+)/.exec(output)![1];
    const res = await fetch(`${url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });
});

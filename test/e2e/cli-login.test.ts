/**
 * `warden login` as a person does it, against a local twin: the compiled CLI (npm run build, run
 * with plain node) prints the IdP's sign-in URL, Chromium opens it and bob signs in on the IdP's
 * page, the IdP sends the browser back to the CLI's loopback callback, and the CLI keeps bob's
 * tokens 0600 under XDG_CONFIG_HOME. Every following command for that --url then acts as bob,
 * until `warden logout` forgets (and revokes) the sign-in. The device grant goes the same way,
 * with the code confirmed in the browser.
 */
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HAS_CHROMIUM, NO_CHROMIUM_MESSAGE, openBrowser, screenshot } from '../support/browser.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';

const REPO = resolve(import.meta.dirname, '../..');

if (!HAS_CHROMIUM) console.warn(`cli-login: ${NO_CHROMIUM_MESSAGE}`);

interface Running {
  /** Resolves with the first stderr match of `pattern`. */
  waitFor(pattern: RegExp): Promise<RegExpExecArray>;
  readonly done: Promise<{ code: number; stdout: string; stderr: string }>;
}

describe.skipIf(!HAS_CHROMIUM)('warden login in a browser', () => {
  let twin: TestTwin;
  let pkg: string;
  let config: string;

  beforeAll(async () => {
    // The package as installed: the compiled CLI and its dependencies, nothing run through tsx.
    pkg = mkdtempSync(join(tmpdir(), 'warden-login-pkg-'));
    execFileSync(process.execPath, ['scripts/build-cli.mjs', '--outdir', join(pkg, 'dist/cli')], {
      cwd: REPO,
    });
    mkdirSync(join(pkg, 'bin'));
    copyFileSync(join(REPO, 'bin/warden.js'), join(pkg, 'bin/warden.js'));
    copyFileSync(join(REPO, 'package.json'), join(pkg, 'package.json'));
    symlinkSync(join(REPO, 'node_modules'), join(pkg, 'node_modules'));
    config = mkdtempSync(join(tmpdir(), 'warden-login-config-'));
    twin = await startTestTwin();
  }, 120_000);

  afterAll(async () => {
    await twin?.close();
    for (const dir of [pkg, config]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function run(args: string[]): Running {
    const child = spawn(process.execPath, [join(pkg, 'bin/warden.js'), '--url', twin.url, ...args], {
      cwd: pkg,
      // No DISPLAY: the CLI must not try to open a browser of its own.
      env: { PATH: process.env.PATH, HOME: config, XDG_CONFIG_HOME: config, NODE_ENV: 'test' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const waiters: { pattern: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      for (const w of [...waiters]) {
        const m = w.pattern.exec(stderr);
        if (m) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    });
    const timer = setTimeout(() => child.kill(), 90_000);
    const done = new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout, stderr });
      }),
    );
    return {
      done,
      waitFor(pattern) {
        return new Promise((resolve, reject) => {
          const m = pattern.exec(stderr);
          if (m) return resolve(m);
          waiters.push({ pattern, resolve });
          void done.then(() => reject(new Error(`CLI ended before printing ${pattern}: ${stderr}${stdout}`)));
        });
      },
    };
  }

  async function cli(args: string[]) {
    const out = await run(args).done;
    return out;
  }

  const credentials = () => join(config, 'warden', 'credentials.json');

  it('bob signs in through the IdP page; the CLI keeps his token 0600 and acts as him until logout', async () => {
    const login = run(['login', '--no-browser']);
    const [, url] = await login.waitFor(/Open this URL in a browser to sign in:\s+(\S+)/);
    expect(new URL(url).origin).toBe(new URL(twin.issuer).origin);
    expect(new URL(url).searchParams.get('redirect_uri')).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);

    const browser = await openBrowser();
    try {
      const { page } = browser;
      await page.goto(url);
      await page.locator('input[name="login"]').fill('bob');
      await Promise.all([
        page.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\/callback\?/),
        page.locator('button[type="submit"]').click(),
      ]);
      await expect.poll(() => page.locator('h1').textContent()).toBe('Signed in to Warden');
      await screenshot(page, 'cli-login-signed-in');
    } finally {
      await browser.close();
    }

    const out = await login.done;
    expect(out.stderr).not.toContain('wrong state');
    expect(out.code, out.stderr).toBe(0);
    // Piped, the CLI answers JSON (and never the tokens themselves).
    expect(JSON.parse(out.stdout)).toMatchObject({
      gateway: twin.url,
      signedIn: true,
      path: credentials(),
      issuer: twin.issuer,
      username: 'bob',
      grant: 'authorization_code',
    });
    expect(out.stdout).not.toMatch(/accessToken|refreshToken|eyJ/);
    expect(statSync(credentials()).mode & 0o777).toBe(0o600);
    expect(statSync(join(config, 'warden')).mode & 0o777).toBe(0o700);

    const who = await cli(['whoami', '--json']);
    expect(who.code, who.stderr).toBe(0);
    expect(JSON.parse(who.stdout)).toMatchObject({ user: 'bob', source: 'login', groups: ['dba'] });

    // A read as bob: it lands in bob's own request list, which alice's dev token cannot see.
    const sql = await cli(['sql', 'demo', 'SELECT count(*) AS n FROM customers', '--json']);
    expect(sql.code, sql.stderr).toBe(0);
    const { requestId } = JSON.parse(sql.stdout) as { requestId: string };
    expect(requestId).toMatch(/^r_/);
    const mine = await cli(['requests', '--json']);
    expect(
      (JSON.parse(mine.stdout) as { requests: { requestId: string }[] }).requests.map((r) => r.requestId),
    ).toContain(requestId);
    const alices = await twin.api('GET', '/v1/requests', { token: await twin.token('alice') });
    expect((alices.body.requests as { requestId: string }[]).map((r) => r.requestId)).not.toContain(
      requestId,
    );

    const bye = await cli(['logout']);
    expect(bye.code, bye.stderr).toBe(0);
    expect(JSON.parse(bye.stdout)).toEqual({ gateway: twin.url, signedIn: true, revoked: ['refresh_token'] });
    expect(existsSync(credentials())).toBe(false);
    // Signed out of the twin, the CLI is back to its default dev user.
    const after = await cli(['whoami', '--json']);
    expect(JSON.parse(after.stdout)).toMatchObject({ user: 'alice', source: 'dev-user' });
  });

  it('erin signs in with the device grant, confirming the code in the browser', async () => {
    const login = run(['login', '--device']);
    const [, code] = await login.waitFor(/enter the code\s+([A-Z]{4}-[A-Z]{4})/);
    const [, complete] = await login.waitFor(/\(or open (\S+)\)/);
    expect(new URL(complete).searchParams.get('user_code')).toBe(code);

    const browser = await openBrowser();
    try {
      const { page } = browser;
      await page.goto(complete);
      // oidc-provider's confirmation page shows the code; confirming leads to the IdP's sign-in.
      await expect.poll(() => page.locator('body').textContent()).toContain(code);
      await Promise.all([
        page.waitForLoadState('load'),
        page.locator('button[type="submit"]').first().click(),
      ]);
      await page.locator('input[name="login"]').fill('erin');
      await Promise.all([page.waitForLoadState('load'), page.locator('button[type="submit"]').click()]);
      await expect.poll(() => page.locator('body').textContent()).toMatch(/success|signed in/i);
      await screenshot(page, 'cli-login-device');
    } finally {
      await browser.close();
    }

    const out = await login.done;
    expect(out.code, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ username: 'erin', grant: 'device_code' });
    const who = await cli(['whoami', '--json']);
    expect(JSON.parse(who.stdout)).toMatchObject({ user: 'erin', source: 'login' });
    expect((await cli(['logout'])).code).toBe(0);
    expect(existsSync(credentials())).toBe(false);
  }, 60_000);
});

/**
 * The CLI as people and scripts run it, against a local twin: compiled (npm run build) and run with
 * plain node from an installed layout that has no tsx; tables on a pseudo-terminal (util-linux
 * `script` gives the child a real tty), JSON with --json and when piped, per-command help, errors
 * that name the flag or argument, the documented exit codes, and --as refused next to a token.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTwin, type TestTwin } from '../support/twin.js';
import { waitFor } from '../support/wait.js';

const REPO = resolve(import.meta.dirname, '../..');
const HAS_SCRIPT = spawnSync('script', ['--version']).status === 0;
let pkg: string;
let CLI: string[];

/**
 * The package as installed elsewhere: package.json, bin/warden.js and the build, with every
 * dependency of the repo except tsx, so the CLI can only run as compiled JavaScript.
 */
function installCompiled(): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-cli-pkg-'));
  execFileSync(process.execPath, ['scripts/build-cli.mjs', '--outdir', join(dir, 'dist/cli')], { cwd: REPO });
  mkdirSync(join(dir, 'bin'));
  copyFileSync(join(REPO, 'bin/warden.js'), join(dir, 'bin/warden.js'));
  copyFileSync(join(REPO, 'package.json'), join(dir, 'package.json'));
  mkdirSync(join(dir, 'node_modules'));
  for (const name of readdirSync(join(REPO, 'node_modules'))) {
    if (name === 'tsx' || name === '.bin') continue;
    symlinkSync(join(REPO, 'node_modules', name), join(dir, 'node_modules', name));
  }
  return dir;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string | undefined> = {}, input = ''): Promise<Run> {
  return new Promise((done) => {
    const child = execFile(
      CLI[0],
      [...CLI.slice(1), ...args],
      { cwd: pkg, env: { ...process.env, WARDEN_TOKEN: undefined, ...env }, timeout: 60_000 },
      (error, stdout, stderr) => done({ code: error ? Number(error.code ?? -1) : 0, stdout, stderr }),
    );
    child.stdin?.end(input);
  });
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The CLI on a pseudo-terminal: stdout.isTTY is true, as in a person's shell. */
function tty(args: string[]): Promise<Run> {
  const command = [...CLI, ...args].map(quote).join(' ');
  return new Promise((done) => {
    execFile(
      'script',
      ['-qfec', command, '/dev/null'],
      { cwd: pkg, env: { ...process.env, WARDEN_TOKEN: undefined, COLUMNS: '160' }, timeout: 60_000 },
      (error, stdout, stderr) =>
        done({ code: error ? Number(error.code ?? -1) : 0, stdout: stdout.replace(/\r/g, ''), stderr }),
    );
  });
}

let twin: TestTwin;

beforeAll(async () => {
  pkg = installCompiled();
  CLI = [process.execPath, join(pkg, 'bin/warden.js')];
  twin = await startTestTwin({ auditExportIntervalMs: 3_600_000 });
}, 120_000);

afterAll(async () => {
  await twin?.close();
  if (pkg) rmSync(pkg, { recursive: true, force: true });
});

describe('the compiled CLI', () => {
  it('runs with plain node where tsx is not installed', async () => {
    expect(() =>
      execFileSync(process.execPath, ['-e', 'import("tsx")'], { cwd: pkg, stdio: 'pipe' }),
    ).toThrow();
    const out = await cli(['mask'], {}, '{"note":"mail ada@example.com"}\n');
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual({ note: 'mail [EMAIL]' });
    expect(JSON.parse(out.stderr.trim().split('\n').pop()!).masked).toMatchObject({ EMAIL: 1 });
  });
});

describe('warden sql', () => {
  it.skipIf(!HAS_SCRIPT)(
    'prints rows as a table with the masking summary under it on a terminal',
    async () => {
      const out = await tty([
        'sql',
        '--url',
        twin.url,
        '--as',
        'carol',
        'demo',
        'SELECT id, name, email FROM customers ORDER BY id LIMIT 2',
      ]);
      expect(out.code).toBe(0);
      const lines = out.stdout.trim().split('\n');
      expect(lines[0]).toMatch(/^┌─+┬─+┬─+┐$/);
      expect(lines[1]).toMatch(/^│ id +│ name +│ email +│$/);
      expect(lines.filter((l) => l.startsWith('│'))).toHaveLength(3);
      expect(out.stdout).toContain('2 rows');
      expect(out.stdout).toMatch(/masked: EMAIL×2/);
      expect(out.stdout).not.toMatch(/@[a-z]+\.[a-z]+/);
      expect(() => JSON.parse(out.stdout)).toThrow();
    },
  );

  it.skipIf(!HAS_SCRIPT)('prints what the README quick start shows, line for line', async () => {
    // Every `$ npx warden sql …` block of README.md, run on a terminal against a twin with the
    // same demo data: only the request id, the policy set and the twin's own HMAC key may differ.
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    const blocks = [...readme.matchAll(/```console\n\$ npx warden (sql .+)\n([\s\S]*?)```/g)];
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    const normal = (text: string) =>
      text
        .trim()
        .replace(/hmac:[0-9a-f]+…/g, 'hmac:…')
        .replace(/request r_[A-Za-z0-9_-]+/g, 'request r_…')
        .replace(/policy set [A-Za-z0-9._-]+/g, 'policy set …')
        .split('\n');
    for (const [, command, shown] of blocks) {
      const args = [...command.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]);
      const out = await tty([...args, '--url', twin.url]);
      expect(out.code, out.stderr).toBe(0);
      expect(normal(out.stdout), command).toEqual(normal(shown));
      expect(shown).toMatch(/^┌/);
    }
  });

  it('prints JSON with --json and when stdout is not a terminal', async () => {
    const sql = 'SELECT id FROM customers ORDER BY id LIMIT 2';
    for (const args of [['--json'], []]) {
      const out = await cli(['sql', '--url', twin.url, 'demo', sql, ...args]);
      expect(out.code).toBe(0);
      const body = JSON.parse(out.stdout);
      expect(body.status).toBe('executed');
      expect(body.result.rows).toHaveLength(2);
    }
  });

  it.skipIf(!HAS_SCRIPT)('shows a pending write as a short summary and exits 3', async () => {
    const out = await tty(['sql', '--url', twin.url, 'demo', 'DELETE FROM orders WHERE id = 7']);
    expect(out.code).toBe(3);
    expect(out.stdout).toMatch(/^Waiting for approval: r_\S+ \(nothing has run\)/);
    expect(out.stdout).toMatch(/review: http:\/\/127\.0\.0\.1:\d+\/approve\/r_/);
    const id = /Waiting for approval: (r_\S+)/.exec(out.stdout)![1];

    const list = await tty(['approvals', '--url', twin.url, '--as', 'bob']);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(id);
    expect(list.stdout).toMatch(new RegExp(`${id} +[A-Z]+ +alice on demo \\(sql:write\\)`));
    expect(list.stdout).toContain('DELETE FROM orders WHERE id = 7');

    const vote = await tty(['deny', id, '--url', twin.url, '--as', 'bob', '--comment', 'not today']);
    expect(vote.code).toBe(0);
    expect(vote.stdout).toContain(`${id}: denied by`);
  });

  it('says which flag was wrong, and exits 2', async () => {
    const out = await cli(['sql', '--url', twin.url, 'demo', 'SELECT 1', '--params', '{bad']);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/--params: not valid JSON: /);
    const missing = await cli(['sql', '--url', twin.url, 'demo']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/missing required argument 'sql'/);
    const unknown = await cli(['sql', '--url', twin.url, '--bogus', 'demo', 'SELECT 1']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown option '--bogus'/);
  });

  it('passes --params by name to the statement', async () => {
    const out = await cli([
      'sql',
      '--url',
      twin.url,
      'demo',
      'SELECT :n::int + 1 AS answer',
      '--params',
      '{"n": 41}',
      '--json',
    ]);
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout).result.rows).toEqual([{ answer: 42 }]);
  });

  it.skipIf(!HAS_SCRIPT)(
    'shows invisible characters as ⟨U+…⟩ with a warning on a terminal, and as \\u escapes in JSON',
    async () => {
      // A bidi override and a zero-width space in the statement, isolates in the justification:
      // the approver must see them, never have them reorder the terminal's text.
      const sql = "DELETE FROM orders WHERE status = 'x\u202e' OR id = 9 -- \u200bnote";
      const why = 'ok \u2066hidden\u2069';
      const sent = await tty(['sql', '--url', twin.url, 'demo', sql, '--justification', why]);
      expect(sent.code).toBe(3);
      const id = /Waiting for approval: (r_\S+)/.exec(sent.stdout)![1];
      for (const args of [
        ['approvals', '--url', twin.url, '--as', 'bob'],
        ['request', id, '--url', twin.url, '--as', 'bob'],
      ]) {
        const out = await tty(args);
        expect(out.code, args.join(' ')).toBe(0);
        expect(out.stdout).toContain("status = 'x⟨U+202E⟩' OR id = 9 -- ⟨U+200B⟩note");
        expect(out.stdout).toContain('ok ⟨U+2066⟩hidden⟨U+2069⟩');
        expect(out.stdout).not.toMatch(/[\u202e\u200b\u2066\u2069]/);
        expect(out.stdout, args[0]).toMatch(/Warning: the statement contains 2 invisible characters/);
      }
      const list = await tty(['approvals', '--url', twin.url, '--as', 'bob']);
      expect(list.stdout).toMatch(
        /Warning: the statement contains 2 invisible characters \(U\+202E RIGHT-TO-LEFT OVERRIDE, U\+200B ZERO WIDTH SPACE\)/,
      );
      expect(list.stdout).toMatch(/Warning: the justification contains 2 invisible characters/);

      const piped = await cli(['request', id, '--url', twin.url, '--as', 'bob']);
      expect(piped.stdout).not.toMatch(/[\u202e\u200b]/);
      expect(piped.stdout).toContain('\\u202e');
      expect(JSON.parse(piped.stdout).operation.sql).toBe(sql);
    },
  );

  it('sql --wait holds for the approver: approved in time prints the executed request; else pending', async () => {
    const sql = "UPDATE orders SET status = 'shipped' WHERE id = 77";
    const held = cli(['sql', '--url', twin.url, '--as', 'alice', 'demo', sql, '--wait', '20', '--json']);
    const message = await waitFor(async () => twin.outbox.find((m) => String(m.text).includes(sql)), 30_000);
    const bob = await twin.token('bob');
    const decided = await twin.api('POST', `/v1/approvals/${message.requestId}/decision`, {
      token: bob,
      body: { decision: 'approve' },
    });
    expect(decided.status).toBe(200);
    const out = await held;
    expect(out.code, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({
      requestId: message.requestId,
      status: 'executed',
      decidedBy: 'bob',
    });

    const late = await cli([
      'sql',
      '--url',
      twin.url,
      '--as',
      'alice',
      'demo',
      `${sql.replace('77', '78')}`,
      '--wait',
      '1',
    ]);
    // Piped, so JSON: the usual pending answer.
    expect(JSON.parse(late.stdout)).toMatchObject({ status: 'pending_approval' });
    expect(late.code).not.toBe(0);
    const bad = await cli(['sql', '--url', twin.url, 'demo', 'SELECT 1', '--wait', '26']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--wait: expected whole seconds from 0 to 25/);
  }, 90_000);

  it('exits 1 for a denied statement, with the error as JSON when piped', async () => {
    const out = await cli(['sql', '--url', twin.url, 'demo', 'GRANT ALL ON orders TO public']);
    expect(out.code).toBe(1);
    const body = JSON.parse(out.stdout);
    expect(body.error.code).toBeTruthy();
  });
});

describe('credentials', () => {
  it('refuses --as while WARDEN_TOKEN is set, instead of silently using either', async () => {
    const alice = await twin.token('alice');
    const out = await cli(['requests', '--url', twin.url, '--as', 'bob'], { WARDEN_TOKEN: alice });
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/--as bob given while WARDEN_TOKEN is set/);
    expect(out.stdout).toBe('');
  });

  it('never sends dev-user shortcuts to a gateway that is not a loopback twin', async () => {
    const out = await cli(['token', 'bob', '--url', 'https://warden.example.com']);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/works only against a local twin/);
    const as = await cli(['requests', '--as', 'bob', '--url', 'http://10.1.2.3:8080']);
    expect(as.code).toBe(2);
    expect(as.stderr).toMatch(/--as works only against a local twin/);
  });

  it('uses WARDEN_TOKEN when no --as is given', async () => {
    const bob = await twin.token('bob');
    const out = await cli(['approvals', '--url', twin.url, '--json'], { WARDEN_TOKEN: bob });
    expect(out.code).toBe(0);
    expect(Array.isArray(JSON.parse(out.stdout).approvals)).toBe(true);
  });
});

describe('help and version', () => {
  it('gives each command its own help with examples', async () => {
    for (const command of ['sql', 'approvals', 'sessions list', 'policy validate']) {
      const out = await cli([...command.split(' '), '--help']);
      expect(out.code).toBe(0);
      expect(out.stdout).toMatch(new RegExp(`^Usage: warden ${command} `));
      expect(out.stdout).toContain('Examples:');
    }
  });

  it('prints the package version', async () => {
    const out = await cli(['--version']);
    expect(out.code).toBe(0);
    expect(out.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('shows the sessions help (not a connection error) without a subcommand', async () => {
    const out = await cli(['sessions', '--url', 'http://127.0.0.1:9']);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/Usage: warden sessions/);
    expect(out.stderr).not.toMatch(/cannot reach/);
  });
});

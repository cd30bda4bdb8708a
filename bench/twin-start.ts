/**
 * `npm start` readiness: the local twin started as a user starts it (`tsx bin/warden.ts dev`) on a
 * fresh data directory, then restarted on it. Each row is one start: the `ready in … s` the twin
 * prints (counted from its process's start) and the wall time until then seen from outside, with
 * the machine's load average (the figures are only comparable under similar load).
 *
 *   npx tsx bench/twin-start.ts [restarts=3]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('..', import.meta.url));

export interface StartRow {
  readonly start: string;
  readonly 'printed ready (s)': number;
  readonly 'wall to ready (ms)': number;
  readonly 'load (1 min)': string;
}

function startOnce(dataDir: string): Promise<{ printed: number; wallMs: number }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'bin/warden.ts', 'dev'], {
    cwd: REPO,
    env: { ...process.env, PORT: '0', WARDEN_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let out = '';
  return new Promise((resolve, reject) => {
    let result: { printed: number; wallMs: number } | undefined;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ready in (\d+(?:\.\d+)?) s/.exec(out);
      if (m && !result) {
        result = { printed: Number(m[1]), wallMs: Math.round(performance.now() - t0) };
        child.kill('SIGTERM');
      }
    });
    child.on('exit', (code) => {
      if (result && code === 0) resolve(result);
      else reject(new Error(`the twin exited (${code}) before it was ready:\n${out}`));
    });
  });
}

export async function benchTwinStart(restarts = 3): Promise<StartRow[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'warden-start-'));
  const rows: StartRow[] = [];
  try {
    for (let i = 0; i <= restarts; i++) {
      const { printed, wallMs } = await startOnce(dataDir);
      rows.push({
        start: i === 0 ? 'first (fresh data dir)' : `restart ${i}`,
        'printed ready (s)': printed,
        'wall to ready (ms)': wallMs,
        'load (1 min)': loadavg()[0].toFixed(1),
      });
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
  return rows;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.table(await benchTwinStart(Number(process.argv[2] ?? 3)));
}

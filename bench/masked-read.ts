/**
 * A masked read against an unmasked read of the same statement on the twin, measured in the same
 * run and interleaved: carol (support, masked) and bob (dba, `view_unmasked`) send the same SELECT
 * over the sensitive columns. The ratio is what masking costs end to end (policy, the masked
 * path's database work, the gateway's masking of the result, the record). Every answer is checked:
 * bob's carries the raw values, carol's carries none of them, so an error or a leak is never
 * measured as a fast read.
 * Run alone: `npx tsx bench/masked-read.ts`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { devToken } from '../bin/cli-client.js';
import { startLocalTwin } from '../lib/local/twin.js';
import { percentile, round } from './stats.js';

type Row = Record<string, string | number>;

export const MASKED_READ_STATEMENT =
  'SELECT id, name, email, card_number, ssn, iban FROM customers ORDER BY id LIMIT 50';

export async function benchMaskedRead(options: { samples?: number } = {}): Promise<Row[]> {
  const n = options.samples ?? 200;
  const dataDir = mkdtempSync(join(tmpdir(), 'warden-bench-'));
  const twin = await startLocalTwin({
    port: 0,
    dataDir,
    ephemeral: true,
    customers: 500,
    upstreamMcp: false,
  });
  try {
    const raw = await twin.db.query<{ ssn: string }>('SELECT ssn FROM public.customers ORDER BY id LIMIT 50');
    const ssns = raw.rows.map((r) => r.ssn);
    const read = async (token: string, expectRaw: boolean): Promise<void> => {
      const res = await fetch(`${twin.url}/v1/targets/demo/sql`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ sql: MASKED_READ_STATEMENT }),
      });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`read answered ${res.status}: ${text.slice(0, 300)}`);
      const leaked = ssns.filter((s) => text.includes(s)).length;
      if (expectRaw && leaked !== ssns.length) throw new Error('the unmasked read lost raw values');
      if (!expectRaw && leaked !== 0) throw new Error(`the masked read carried ${leaked} raw SSNs`);
    };
    const carol = await devToken(twin.url, 'carol');
    const bob = await devToken(twin.url, 'bob');
    const masked = () => read(carol, false);
    const unmasked = () => read(bob, true);
    for (let i = 0; i < 20; i++) {
      await masked();
      await unmasked();
    }
    // Interleaved so drift on a noisy machine hits both alike.
    const m: number[] = [];
    const u: number[] = [];
    for (let i = 0; i < n; i++) {
      let t = performance.now();
      await unmasked();
      u.push(performance.now() - t);
      t = performance.now();
      await masked();
      m.push(performance.now() - t);
    }
    m.sort((a, b) => a - b);
    u.sort((a, b) => a - b);
    return [
      {
        read: 'unmasked: bob (view_unmasked), 50 rows × 6 columns (baseline)',
        'p50 ms': round(percentile(u, 50)),
        'p99 ms': round(percentile(u, 99)),
      },
      {
        read: 'masked: carol (support), the same statement',
        'p50 ms': round(percentile(m, 50)),
        'p99 ms': round(percentile(m, 99)),
      },
      {
        read: 'ratio masked / unmasked',
        'p50 ms': round(percentile(m, 50) / percentile(u, 50)),
        'p99 ms': round(percentile(m, 99) / percentile(u, 99)),
      },
    ];
  } finally {
    await twin.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.table(await benchMaskedRead());
  process.exit(0);
}

/**
 * An upstream MCP tool through Warden (`everything__echo` on Warden's /mcp: classify, decide,
 * record, send, mask, record) next to the same `echo` call made straight to the upstream
 * (server-everything on the twin), both with the MCP SDK's client. Calls alternate so drift on a
 * shared machine hits both alike. Run alone: `npx tsx bench/mcp-upstream.ts`.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { devToken } from '../bin/cli-client.js';
import { startLocalTwin } from '../lib/local/twin.js';
import { percentile, round } from './stats.js';

type Row = Record<string, string | number>;

const WARMUP = 30;
const SAMPLES = 200;
const ARGS = { message: 'order 7 shipped to jane.roe@example.org' };

async function measure(samples = SAMPLES): Promise<Row[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'warden-bench-upstream-'));
  const twin = await startLocalTwin({ port: 0, dataDir, ephemeral: true, customers: 200 });
  const viaWarden = new Client({ name: 'warden-bench', version: '1.0.0' });
  const direct = new Client({ name: 'warden-bench-direct', version: '1.0.0' });
  try {
    const token = await devToken(twin.url, 'alice');
    const config = JSON.parse(process.env.WARDEN_CONFIG ?? '{}') as {
      targets: Record<string, { url?: string }>;
    };
    const upstreamUrl = config.targets.everything?.url;
    if (!upstreamUrl) throw new Error('the twin has no everything target');
    await direct.connect(new StreamableHTTPClientTransport(new URL(upstreamUrl)));
    await viaWarden.connect(
      new StreamableHTTPClientTransport(new URL(`${twin.url}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      }),
    );
    const straight = async () => {
      const r = await direct.callTool({ name: 'echo', arguments: ARGS });
      if (r.isError) throw new Error('direct echo failed');
    };
    const governed = async () => {
      const r = await viaWarden.callTool({ name: 'everything__echo', arguments: ARGS });
      if (r.isError) throw new Error(`everything__echo answered an error: ${JSON.stringify(r.content)}`);
    };
    const sql = async () => {
      const r = await viaWarden.callTool({
        name: 'run_sql',
        arguments: { target: 'demo', sql: 'SELECT id, name, email FROM customers ORDER BY id LIMIT 10' },
      });
      if (r.isError) throw new Error('run_sql failed');
    };
    for (let i = 0; i < WARMUP; i++) {
      await straight();
      await governed();
      await sql();
    }
    const a: number[] = [];
    const b: number[] = [];
    const c: number[] = [];
    for (let i = 0; i < samples; i++) {
      let t = performance.now();
      await straight();
      a.push(performance.now() - t);
      t = performance.now();
      await governed();
      b.push(performance.now() - t);
      t = performance.now();
      await sql();
      c.push(performance.now() - t);
    }
    a.sort((x, y) => x - y);
    b.sort((x, y) => x - y);
    c.sort((x, y) => x - y);
    return [
      {
        call: 'echo straight to the upstream (baseline)',
        'p50 ms': round(percentile(a, 50)),
        'p99 ms': round(percentile(a, 99)),
      },
      {
        call: 'everything__echo through Warden',
        'p50 ms': round(percentile(b, 50)),
        'p99 ms': round(percentile(b, 99)),
      },
      {
        call: 'run_sql through Warden (a governed read, for reference)',
        'p50 ms': round(percentile(c, 50)),
        'p99 ms': round(percentile(c, 99)),
      },
      {
        call: 'Warden / direct',
        'p50 ms': round(percentile(b, 50) / percentile(a, 50)),
        'p99 ms': round(percentile(b, 99) / percentile(a, 99)),
      },
    ];
  } finally {
    await viaWarden.close().catch(() => undefined);
    await direct.close().catch(() => undefined);
    await twin.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** In a process of its own: the twin's handlers read their environment once per process. */
export async function benchMcpUpstream(): Promise<Row[]> {
  const self = fileURLToPath(import.meta.url);
  const tsx = join(fileURLToPath(new URL('..', import.meta.url)), 'node_modules', '.bin', 'tsx');
  const { stdout } = await promisify(execFile)(tsx, [self, '--json'], {
    maxBuffer: 4 * 1024 * 1024,
    timeout: 600_000,
  });
  const line = stdout
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('['));
  if (!line) throw new Error(`bench/mcp-upstream.ts printed no result:\n${stdout}`);
  return JSON.parse(line) as Row[];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const rows = await measure();
  if (process.argv.includes('--json')) console.log(JSON.stringify(rows));
  else console.table(rows);
  process.exit(0);
}

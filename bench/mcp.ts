/**
 * The MCP tax: a `run_sql` tool call through the MCP SDK's client (JSON-RPC over streamable HTTP,
 * a fresh MCP server per request on the gateway) next to the REST call for the same statement,
 * against one local twin. Calls alternate so drift on a shared machine hits both alike.
 * Run alone: `npx tsx bench/mcp.ts`.
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

const STATEMENT = 'SELECT id, name, email FROM customers ORDER BY id LIMIT 10';
const WARMUP = 30;
const SAMPLES = 200;

async function measure(samples = SAMPLES): Promise<Row[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'warden-bench-mcp-'));
  const twin = await startLocalTwin({ port: 0, dataDir, ephemeral: true, customers: 500 });
  const client = new Client({ name: 'warden-bench', version: '1.0.0' });
  try {
    const token = await devToken(twin.url, 'alice');
    const rest = async () => {
      const r = await fetch(`${twin.url}/v1/targets/demo/sql`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ sql: STATEMENT }),
      });
      if (r.status !== 200) throw new Error(`REST call answered ${r.status}`);
      await r.text();
    };
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${twin.url}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      }),
    );
    const mcp = async () => {
      const r = await client.callTool({ name: 'run_sql', arguments: { target: 'demo', sql: STATEMENT } });
      if (r.isError) throw new Error(`run_sql answered an error: ${JSON.stringify(r.content)}`);
    };

    for (let i = 0; i < WARMUP; i++) {
      await rest();
      await mcp();
    }
    const restTimes: number[] = [];
    const mcpTimes: number[] = [];
    for (let i = 0; i < samples; i++) {
      let t = performance.now();
      await rest();
      restTimes.push(performance.now() - t);
      t = performance.now();
      await mcp();
      mcpTimes.push(performance.now() - t);
    }
    restTimes.sort((a, b) => a - b);
    mcpTimes.sort((a, b) => a - b);
    const stats = (xs: number[]) => ({ p50: percentile(xs, 50), p99: percentile(xs, 99) });
    const r = stats(restTimes);
    const m = stats(mcpTimes);
    return [
      { call: 'REST POST /v1/targets/demo/sql (baseline)', 'p50 ms': round(r.p50), 'p99 ms': round(r.p99) },
      { call: 'MCP tools/call run_sql', 'p50 ms': round(m.p50), 'p99 ms': round(m.p99) },
      { call: 'MCP / REST', 'p50 ms': round(m.p50 / r.p50), 'p99 ms': round(m.p99 / r.p99) },
    ];
  } finally {
    await client.close().catch(() => undefined);
    await twin.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * The twin's handlers read their environment once per process (as on Lambda), and `npm run bench`
 * starts other twins first, so the measurement runs in a process of its own.
 */
export async function benchMcp(): Promise<Array<Record<string, string | number>>> {
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
  if (!line) throw new Error(`bench/mcp.ts printed no result:\n${stdout}`);
  return JSON.parse(line) as Row[];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const rows = await measure();
  if (process.argv.includes('--json')) console.log(JSON.stringify(rows));
  else console.table(rows);
  process.exit(0);
}

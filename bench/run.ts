/**
 * `npm run bench`: every benchmark in one run, each printed next to a baseline measured in the
 * same run (absolute times drift on shared machines; the ratios are what to compare).
 */
import { spawn } from 'node:child_process';
import { benchClassify } from './classify.js';
import { benchColdStart } from './cold-start.js';
import { benchCedarAndCore } from './gateway.js';
import { benchMasking } from './masking.js';
import { benchTwinStart } from './twin-start.js';

/**
 * A bench that starts a local twin runs in a process of its own: the twin serves the API module,
 * whose runtime is created once per process (as in Lambda), so a second twin in the same process
 * would be answered by the first one's runtime (its IdP, its tables).
 */
function inChild<T>(module: string, fn: string): Promise<T> {
  const code = `const m = await import(${JSON.stringify(new URL(module, import.meta.url).href)});
const out = await m[${JSON.stringify(fn)}]();
process.stdout.write('\\n@@BENCH@@' + JSON.stringify(out) + '\\n');
process.exit(0);`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('close', (status) => {
      const line = out.split('\n').find((l) => l.startsWith('@@BENCH@@'));
      if (status !== 0 || !line) reject(new Error(`${module} ${fn} failed (exit ${status})`));
      else resolve(JSON.parse(line.slice('@@BENCH@@'.length)) as T);
    });
  });
}

function heading(title: string): void {
  console.log(`\n## ${title}\n`);
}

heading('SQL classifier: statements per second vs libpg-query parse alone');
console.table(
  (await benchClassify()).map((r) => ({
    workload: r.name,
    'classify/s': Math.round(r.opsPerSec),
    'parse/s (baseline)': Math.round(r.parseOpsPerSec),
    'classify / parse': r.ratio.toFixed(2),
  })),
);

heading('Cedar decisions and the gateway’s own work per request (no I/O)');
console.table(await benchCedarAndCore());

heading('Masking: 1,000 rows × 10 columns vs serialising the same result');
console.table(await benchMasking());

heading('Masked read (carol) vs unmasked read (bob) of the same statement on the twin');
console.table(await inChild('./masked-read.ts', 'benchMaskedRead'));

heading(
  'Governed SELECT vs the same statement sent straight to the local Data API endpoint (the twin’s DynamoDB inline, the default)',
);
const { latency, throughput } = await inChild<{ latency: unknown[]; throughput: unknown[] }>(
  './gateway.ts',
  'benchGovernedSelect',
);
console.table(latency);
heading('Throughput: governed reads, 1 to 64 concurrent clients (loopback, one machine; DynamoDB inline)');
console.table(throughput);
const thread = await inChild<{ latency: unknown[]; throughput: unknown[] }>(
  './gateway.ts',
  'benchGovernedSelectThread',
);
heading('The same with the twin’s DynamoDB in a worker thread (WARDEN_TWIN_DYNAMO=thread): latency');
console.table(thread.latency);
heading('…and throughput, DynamoDB in its thread');
console.table(thread.throughput);

heading('MCP run_sql tool call vs the REST call for the same statement');
console.table(await inChild('./mcp.ts', 'benchMcp'));

heading('Upstream MCP tool through Warden vs the same call straight to the upstream');
console.table(await inChild('./mcp-upstream.ts', 'benchMcpUpstream'));

heading('npm start: ready on a fresh data directory, then restarted on it (printed readiness)');
console.table(await benchTwinStart());

heading('Cold start: import the API bundle and answer its first request, vs a warm request');
console.table(await benchColdStart({ runs: 3 }));

process.exit(0);

/**
 * `npm run bench`: every benchmark in one run, each printed next to a baseline measured in the
 * same run (absolute times drift on shared machines; the ratios are what to compare).
 */
import { spawn } from 'node:child_process';
import { benchClassify } from './classify.js';
import { benchExportBundle } from './bundles.js';
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
const cedarRows = await benchCedarAndCore();
console.table(cedarRows);

heading('Masking: 1,000 rows × 10 columns vs serialising the same result');
console.table(await benchMasking());

heading('Masked read (carol) vs unmasked read (bob) of the same statement on the twin');
console.table(await inChild('./masked-read.ts', 'benchMaskedRead'));

heading(
  'Governed SELECT vs the same statement sent straight to the local Data API endpoint (the twin’s DynamoDB inline, the default)',
);
type Rows = Record<string, string | number>[];
const { latency, throughput, storeCalls } = await inChild<{
  latency: Rows;
  throughput: Rows;
  storeCalls: number[];
}>('./gateway.ts', 'benchGovernedSelect');
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
const cold = await benchColdStart({ runs: 3 });
console.table(cold);

heading('The Export function’s bundle vs what a classifying function ships beside its code');
const exportBundle = await benchExportBundle();
console.table(exportBundle.rows);

// Issue 16's table, every row from this run next to its goal.
const num = (rows: Rows, match: (r: Rows[number]) => boolean, column: string): number =>
  Number(rows.find(match)?.[column] ?? NaN);
const direct = num(latency, (r) => String(r.path).startsWith('direct'), 'p50 ms');
const governed = num(latency, (r) => String(r.path).startsWith('governed'), 'p50 ms');
const cedarRead = num(cedarRows, (r) => String(r.measure).startsWith('Cedar decision, read'), 'µs each');
const cedarBare = num(cedarRows, (r) => String(r.measure).startsWith('baseline: Cedar'), 'µs each');
const coldTotal = cold.find((r) => r.phase.startsWith('cold total'))?.['median ms'] ?? NaN;
const reads16 = num(throughput, (r) => r.clients === 16, 'reads/s');
const calls = [...storeCalls].sort((a, b) => a - b);
const ratio = governed / direct;
const exportOnly = exportBundle.exportFiles.every((f) => f === 'index.mjs' || f === 'index.mjs.map');
heading('Issue 16: every row of its table, from this run, against its goal');
console.table([
  {
    measure: 'governed SELECT vs the same statement straight to the Data API endpoint, p50',
    'this run': `${governed} vs ${direct} ms (${ratio.toFixed(2)}×)`,
    goal: '≤ 2.5×',
    met: ratio <= 2.5 ? 'yes' : 'NO',
  },
  {
    measure: 'store requests per allowed read (counted at the twin’s DynamoDB over 20 reads)',
    'this run': `${calls[Math.floor(calls.length / 2)]} (min ${calls[0]}, max ${calls[calls.length - 1]})`,
    goal: '2 round trips',
    met: calls.length > 0 && calls.every((c) => c === 2) ? 'yes' : 'NO',
  },
  {
    measure: 'Cedar decision, read, preparsed (bare Cedar call that parses the policies)',
    'this run': `${cedarRead} µs (${cedarBare} µs)`,
    goal: '≤ 100 µs',
    met: cedarRead <= 100 ? 'yes' : 'NO',
  },
  {
    measure: 'cold start: import the API bundle + first governed read (median of 3)',
    'this run': `${coldTotal} ms`,
    goal: '≤ 700 ms',
    met: coldTotal <= 700 ? 'yes' : 'NO',
  },
  {
    measure: 'governed reads/s on the twin, 16 clients (DynamoDB inline)',
    'this run': String(reads16),
    goal: '≥ 150',
    met: reads16 >= 150 ? 'yes' : 'NO',
  },
  {
    measure: 'Export function bundle (as the stack bundles it)',
    'this run': `${exportBundle.exportFiles.join(' + ')}, ${exportBundle.rows[0]?.['code KB']} KB; ${exportBundle.exportAssetBytes} bytes of WebAssembly/IAM data beside it`,
    goal: 'only what it loads',
    met: exportOnly && exportBundle.exportAssetBytes === 0 ? 'yes' : 'NO',
  },
]);

process.exit(0);

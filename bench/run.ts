/**
 * `npm run bench`: every benchmark in one run, each printed next to a baseline measured in the
 * same run (absolute times drift on shared machines; the ratios are what to compare).
 */
import { benchClassify } from './classify.js';
import { benchColdStart } from './cold-start.js';
import { benchCedarAndCore, benchGovernedSelect } from './gateway.js';
import { benchMasking } from './masking.js';
import { benchMaskedRead } from './masked-read.js';
import { benchMcp } from './mcp.js';
import { benchMcpUpstream } from './mcp-upstream.js';

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
console.table(await benchMaskedRead());

heading('Governed SELECT vs the same statement sent straight to the local Data API endpoint');
const { latency, throughput } = await benchGovernedSelect();
console.table(latency);
heading('Throughput: governed reads, 1 to 64 concurrent clients (loopback, one machine)');
console.table(throughput);

heading('MCP run_sql tool call vs the REST call for the same statement');
console.table(await benchMcp());

heading('Upstream MCP tool through Warden vs the same call straight to the upstream');
console.table(await benchMcpUpstream());

heading('Cold start: import the API bundle and answer its first request, vs a warm request');
console.table(await benchColdStart({ runs: 3 }));

process.exit(0);

/**
 * Cold start of the API Lambda: a fresh Node process imports the handler, bundled as the stack
 * bundles it (WARDEN_BUNDLING through esbuildOptionsOf: one minified ESM file with the AWS SDK
 * inside, then its afterBundling hook: the lazily loaded SDK clients, the WebAssembly and the IAM
 * data next to it), and answers its first governed read; then a warm
 * read in the same process. The import time includes what `createRuntime()` does at cold start: JWKS
 * hydration, the SQL parser's WebAssembly compilation, the first policy load, and the warm-up (first
 * calls into the parser and Cedar). The first request of a masked principal also waits for the
 * target's database masking check.
 *
 * `benchColdStart()` is the export for bench/run.ts; `npx tsx bench/cold-start.ts` runs it alone.
 */
import { execSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type BuildOptions } from 'esbuild';
import { devToken } from '../bin/cli-client.js';
import type { BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import { WARDEN_BUNDLING } from '../lib/constructs/gateway-function.js';
import { REPO_ROOT, startLocalTwin } from '../lib/local/twin.js';

export interface ColdStartRow {
  readonly phase: string;
  readonly 'median ms': number;
  readonly 'min ms': number;
  readonly 'max ms': number;
}

/** Runs in the child: import, first request, warm request; prints one JSON line. */
const CHILD = `
const token = process.env.BENCH_TOKEN;
const event = (id) => ({
  version: '2.0', routeKey: '$default', rawPath: '/v1/targets/demo/sql', rawQueryString: '',
  headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' },
  requestContext: { accountId: '0', apiId: 'bench', domainName: 'bench', domainPrefix: 'bench',
    http: { method: 'POST', path: '/v1/targets/demo/sql', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'bench' },
    requestId: 'bench-' + id, routeKey: '$default', stage: '$default', time: '', timeEpoch: Date.now() },
  body: JSON.stringify({ sql: 'SELECT id, name, email FROM customers WHERE id = ' + id }), isBase64Encoded: false,
});
const ctx = { awsRequestId: 'bench', getRemainingTimeInMillis: () => 30000 };
// TCP connections the function opens (on Lambda each is also a TLS handshake).
const net = await import('node:net');
let connects = 0;
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) { connects += 1; return connect.apply(this, args); };
const c0 = process.cpuUsage();
const t0 = performance.now();
const { handler, COLD_START_PHASES: phases } = await import(process.env.BENCH_BUNDLE);
const t1 = performance.now();
const connectsAtInit = connects;
const first = await handler(event(1), ctx);
const t2 = performance.now();
const connectsFirst = connects - connectsAtInit;
const c2 = process.cpuUsage(c0);
const warm = await handler(event(2), ctx);
const t3 = performance.now();
if (first.statusCode !== 200 || warm.statusCode !== 200) throw new Error('unexpected status ' + first.statusCode + '/' + warm.statusCode + ' ' + first.body);
const { startedAt, ...ends } = phases;
const cpu = (c) => (c.user + c.system) / 1000;
console.log(JSON.stringify({ importMs: t1 - t0, firstMs: t2 - t1, warmMs: t3 - t2, moduleMs: startedAt - t0, cpuMs: cpu(c2), connectsAtInit, connectsFirst, ends }));
`;

function runChild(
  script: string,
  env: NodeJS.ProcessEnv,
): Promise<{
  processMs: number;
  importMs: number;
  firstMs: number;
  warmMs: number;
  moduleMs: number;
  /** CPU time (all threads: compilation and GC included) of the import and the first request. */
  cpuMs: number;
  /** TCP connections opened during init, and then by the first request (TLS handshakes on AWS). */
  connectsAtInit: number;
  connectsFirst: number;
  ends: Record<string, number>;
}> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const prof = process.env.BENCH_CPU_PROF
      ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF]
      : [];
    const child = spawn(process.execPath, [...prof, script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('close', (code) => {
      const line = out
        .trim()
        .split('\n')
        .reverse()
        .find((l) => l.startsWith('{"importMs"'));
      if (code !== 0 || !line) {
        reject(new Error(`cold-start child failed (${code}): ${err.slice(-800)}`));
        return;
      }
      resolve({ processMs: performance.now() - started, ...JSON.parse(line) });
    });
  });
}

/**
 * The esbuild options NodejsFunction derives from `bundling` (aws-cdk-lib's esbuild invocation:
 * bundle, platform node, the entry to one file), so the bench's bundle is the deployed one.
 * `minify` false only for readable names in a CPU profile.
 */
export function esbuildOptionsOf(
  bundling: BundlingOptions,
  outfile: string,
  minify = true,
  entry = 'lambdas/handlers/api.ts',
): BuildOptions {
  return {
    entryPoints: [join(REPO_ROOT, entry)],
    bundle: true,
    platform: 'node',
    format: bundling.format === 'esm' ? 'esm' : 'cjs',
    target: bundling.target ?? 'node22',
    minify: (bundling.minify ?? false) && minify,
    sourcemap: bundling.sourceMap ?? false,
    sourcesContent: bundling.sourcesContent ?? true,
    mainFields: [...(bundling.mainFields ?? [])],
    banner: bundling.banner ? { js: bundling.banner } : undefined,
    external: [...(bundling.externalModules ?? ['@aws-sdk/*'])],
    ...(bundling.metafile ? { metafile: true } : {}),
    outfile,
    logLevel: 'silent',
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function benchColdStart(options: { runs?: number } = {}): Promise<ColdStartRow[]> {
  const runs = options.runs ?? 5;
  const dataDir = mkdtempSync(join(tmpdir(), 'warden-cold-'));
  // Inside the repo, so the bundle's bare imports resolve to node_modules like a Lambda layer's.
  const outDir = join(REPO_ROOT, '.warden', 'bench');
  mkdirSync(outDir, { recursive: true });
  const bundle = join(outDir, 'api.mjs');
  const script = join(outDir, 'cold-start-child.mjs');
  const twin = await startLocalTwin({ port: 0, dataDir, ephemeral: true, customers: 100 });
  try {
    // Bundled with the stack's own options (WARDEN_BUNDLING: minified ESM, AWS SDK inside,
    // WebAssembly and IAM data copied next to it), so the figure is the one Lambda pays.
    await build(esbuildOptionsOf(WARDEN_BUNDLING, bundle, !process.env.BENCH_CPU_PROF));
    // What NodejsFunction runs after esbuild: the lazy SDK clients beside it, WASM and IAM data copied.
    for (const command of WARDEN_BUNDLING.commandHooks?.afterBundling(REPO_ROOT, outDir) ?? []) {
      execSync(command, { cwd: REPO_ROOT, stdio: 'ignore' });
    }
    // Baseline: the same bundle with the lazily loaded SDK clients inside it (as before they moved out).
    const inline = join(outDir, 'api-inline.mjs');
    await build({ ...esbuildOptionsOf(WARDEN_BUNDLING, inline, !process.env.BENCH_CPU_PROF), external: [] });
    writeFileSync(script, CHILD);
    const token = await devToken(twin.url, 'alice');
    const env = { ...process.env, BENCH_BUNDLE: pathToFileURL(bundle).href, BENCH_TOKEN: token };
    const inlineEnv = { ...env, BENCH_BUNDLE: pathToFileURL(inline).href };
    const samples: Awaited<ReturnType<typeof runChild>>[] = [];
    const baseline: Awaited<ReturnType<typeof runChild>>[] = [];
    for (let i = 0; i < runs; i++) {
      samples.push(await runChild(script, env));
      baseline.push(await runChild(script, inlineEnv));
    }
    const row = (phase: string, xs: number[]): ColdStartRow => ({
      phase,
      'median ms': Math.round(median(xs)),
      'min ms': Math.round(Math.min(...xs)),
      'max ms': Math.round(Math.max(...xs)),
    });
    const phaseNames = Object.keys(samples[0]?.ends ?? {});
    return [
      row(
        'phase: load and evaluate the bundle’s code',
        samples.map((s) => s.moduleMs),
      ),
      // createRuntime's phases run concurrently: each row is when that phase was done.
      ...phaseNames.map((name) =>
        row(
          `phase: ${name} (done at, from runtime start)`,
          samples.map((s) => s.ends[name] ?? NaN),
        ),
      ),
      row(
        'import the handler (runtime: JWKS, parser WASM, policy load)',
        samples.map((s) => s.importMs),
      ),
      row(
        'first request (a governed read)',
        samples.map((s) => s.firstMs),
      ),
      row(
        'cold total: import + first request (goal ≤ 700 ms)',
        samples.map((s) => s.importMs + s.firstMs),
      ),
      // Less sensitive to other load on the machine than the wall-clock rows.
      row(
        'baseline: cold total with the single-call SDK clients inside the bundle',
        baseline.map((s) => s.importMs + s.firstMs),
      ),
      row(
        'baseline: load and evaluate that bundle’s code',
        baseline.map((s) => s.moduleMs),
      ),
      row(
        'CPU time of import + first request (all threads)',
        samples.map((s) => s.cpuMs),
      ),
      row(
        'connections opened during init (count, not ms)',
        samples.map((s) => s.connectsAtInit),
      ),
      row(
        'connections opened by the first request (count, not ms; each a TLS handshake on AWS)',
        samples.map((s) => s.connectsFirst),
      ),
      row(
        'warm request (same read, next id)',
        samples.map((s) => s.warmMs),
      ),
      row(
        'whole process incl. Node start-up',
        samples.map((s) => s.processMs),
      ),
    ];
  } finally {
    await twin.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.table(await benchColdStart({ runs: Number(process.argv[2] ?? 5) }));
  process.exit(0);
}

/** Small helpers shared by the benchmarks: percentiles and timing loops. */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export async function sample(n: number, fn: () => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b);
}

/** Operations per second of a synchronous function over roughly `ms` milliseconds. */
export function opsPerSec(fn: () => unknown, ms = 800): number {
  // Warm up by time, not count: WebAssembly and the JIT need a few hundred ms to settle.
  const warm = performance.now();
  while (performance.now() - warm < 300) fn();
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 20; i++) fn();
    n += 20;
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}

export const round = (x: number, digits = 2) => Number(x.toFixed(digits));

/**
 * A governed-statement client on node:http with a keep-alive agent: the same HTTP stack the AWS
 * SDK's Data API client uses for the direct baseline, so the two paths are measured alike (fetch,
 * undici's web-streams client, cost ~0.4 ms more per request than node:http on this machine).
 */
export function governedClient(url: string, token: string): (sql: string) => Promise<string> {
  const agent = new Agent({ keepAlive: true });
  const target = new URL(`${url}/v1/targets/demo/sql`);
  return (sql) =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ sql });
      const req = request(
        {
          agent,
          hostname: target.hostname,
          port: target.port,
          path: target.pathname,
          method: 'POST',
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode === 200) resolve(text);
            else reject(new Error(`governed SELECT answered ${res.statusCode}: ${text}`));
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
}

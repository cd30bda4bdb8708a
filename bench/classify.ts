/**
 * SQL classifier throughput against libpg-query's bare parse in the same run, so the ratio says
 * what the classification (whole-tree walk, allowlists, nesting guard) costs on top of parsing,
 * independent of the machine. Run alone: `npx tsx bench/classify.ts`.
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseSync } from 'libpg-query';
import { classifySqlSync, initSqlClassifier } from '../lambdas/core/classify/sql.js';

export interface ClassifyBenchRow {
  readonly name: string;
  /** Statements classified per second. */
  readonly opsPerSec: number;
  /** libpg-query parseSync alone on the same text, same run. */
  readonly parseOpsPerSec: number;
  /** opsPerSec / parseOpsPerSec: 1.0 would mean classification costs nothing beyond the parse. */
  readonly ratio: number;
}

const WORKLOADS: ReadonlyArray<readonly [string, string]> = [
  ['simple select', 'SELECT id, name, email FROM customers WHERE id = 42'],
  [
    'join',
    `SELECT o.id, o.total, c.name, count(i.id) AS items
       FROM orders o JOIN customers c ON c.id = o.customer_id
       LEFT JOIN order_items i ON i.order_id = o.id
      WHERE o.created_at > now() - interval '7 days' AND c.region = :region
      GROUP BY o.id, o.total, c.name ORDER BY o.total DESC LIMIT 50`,
  ],
  ['write', "UPDATE orders SET status = 'shipped', updated_at = now() WHERE id = :id RETURNING id, status"],
  [
    'cte',
    `WITH recent AS (SELECT customer_id, sum(total) AS spent FROM orders
                      WHERE created_at > date_trunc('month', now()) GROUP BY customer_id),
          ranked AS (SELECT customer_id, spent, rank() OVER (ORDER BY spent DESC) AS r FROM recent)
     SELECT c.name, r.spent FROM ranked r JOIN customers c ON c.id = r.customer_id WHERE r.r <= 10`,
  ],
];

/**
 * Times `a` and `b` in alternating short slices for about `ms` each, so load from anything else
 * on the machine falls on both alike and their ratio stays meaningful.
 */
function measurePair(a: () => unknown, b: () => unknown, ms: number): [number, number] {
  const rounds = 10;
  const slice = ms / rounds;
  const totals = [
    { calls: 0, ms: 0 },
    { calls: 0, ms: 0 },
  ];
  for (let r = 0; r < rounds; r += 1) {
    [a, b].forEach((fn, k) => {
      const start = performance.now();
      let elapsed = 0;
      while (elapsed < slice) {
        for (let i = 0; i < 20; i += 1) fn();
        totals[k].calls += 20;
        elapsed = performance.now() - start;
      }
      totals[k].ms += elapsed;
    });
  }
  return [(totals[0].calls * 1000) / totals[0].ms, (totals[1].calls * 1000) / totals[1].ms];
}

export async function benchClassify(options: { msPerCase?: number } = {}): Promise<ClassifyBenchRow[]> {
  const ms = options.msPerCase ?? 250;
  await initSqlClassifier();
  // Warm the JIT and let the WASM code tier up before anything is measured.
  const warmUntil = performance.now() + 400;
  while (performance.now() < warmUntil) {
    for (const [, sql] of WORKLOADS) {
      classifySqlSync(sql);
      parseSync(sql.replace(/:[a-z_]+/g, '$1'));
    }
  }
  const rows: ClassifyBenchRow[] = [];
  for (const [name, sql] of WORKLOADS) {
    // The Data API's `:name` parameters are not PostgreSQL syntax; the bare parse gets `$1`.
    const parsable = sql.replace(/:[a-z_]+/g, '$1');
    // A new text every call (a numbered comment, which the parser skips): the classifier keeps
    // the classifications of texts it has seen, so one text over and over would time that cache,
    // not a classification. The bare parse gets the same texts.
    let n = 0;
    let m = 0;
    const [ops, parseOps] = measurePair(
      () => classifySqlSync(`${sql} /* ${n++} */`),
      () => parseSync(`${parsable} /* ${m++} */`),
      ms,
    );
    rows.push({ name: `classify ${name}`, opsPerSec: ops, parseOpsPerSec: parseOps, ratio: ops / parseOps });
  }
  const mix = WORKLOADS.map(([, sql]) => sql);
  const mixParsable = mix.map((s) => s.replace(/:[a-z_]+/g, '$1'));
  let i = 0;
  let j = 0;
  const [classifyMix, parseMix] = measurePair(
    () => classifySqlSync(`${mix[i % mix.length]} /* ${i++} */`),
    () => parseSync(`${mixParsable[j % mixParsable.length]} /* ${j++} */`),
    ms,
  );
  rows.push({
    name: 'classify mix',
    opsPerSec: classifyMix,
    parseOpsPerSec: parseMix,
    ratio: classifyMix / parseMix,
  });
  // The same four texts over and over: what an agent repeating its statements pays (the cache).
  let k = 0;
  let l = 0;
  const [repeated, parseRepeated] = measurePair(
    () => classifySqlSync(mix[k++ % mix.length]),
    () => parseSync(mixParsable[l++ % mixParsable.length]),
    ms,
  );
  rows.push({
    name: 'classify mix, texts repeated (cached)',
    opsPerSec: repeated,
    parseOpsPerSec: parseRepeated,
    ratio: repeated / parseRepeated,
  });
  return rows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await benchClassify();
  console.table(
    rows.map((r) => ({
      name: r.name,
      'classify ops/s': Math.round(r.opsPerSec),
      'parse ops/s': Math.round(r.parseOpsPerSec),
      'classify/parse': r.ratio.toFixed(2),
    })),
  );
}

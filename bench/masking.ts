/**
 * Masking throughput: a 1,000-row × 10-column customer result (the shape an agent's SELECT
 * returns), against JSON.stringify of the same result, and MB/s through the JSON-lines stream.
 * Goal: 1,000 rows in under 5 ms on one core.
 */
import { PassThrough, Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { createMasker, maskJsonLines } from '../lambdas/core/masking/index.js';
import { DEMO_COLUMNS, demoRow, Rng } from '../test/fixtures/masking/corpus.js';

const ROWS = 1_000;
const RUNS = 31;
const WARMUP = 10;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Median CPU time of one call, in ms. CPU time rather than wall time: the machines this runs on
 * are shared (CI, laptops running the test suite), and the goal is stated per core.
 */
function timeMs(fn: () => void, runs = RUNS, warmup = WARMUP, perSample = 5): number {
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.cpuUsage();
    for (let k = 0; k < perSample; k++) fn();
    const d = process.cpuUsage(t0);
    times.push((d.user + d.system) / 1000 / perSample);
  }
  return median(times);
}

async function timeStreamMs(lines: string, runs: number): Promise<number> {
  const masker = createMasker({ hashKey: 'bench' });
  const times: number[] = [];
  for (let i = 0; i < runs + 2; i++) {
    const sink = new PassThrough();
    sink.resume();
    // 64 KiB chunks, as a pipe would deliver them.
    const input = Readable.from(
      (function* () {
        for (let o = 0; o < lines.length; o += 65_536) yield lines.slice(o, o + 65_536);
      })(),
    );
    const t0 = process.cpuUsage();
    await maskJsonLines(input, sink, { masker });
    const d = process.cpuUsage(t0);
    const ms = (d.user + d.system) / 1000;
    if (i >= 2) times.push(ms);
  }
  return median(times);
}

export async function benchMasking(): Promise<Array<Record<string, string | number>>> {
  const r = new Rng(7);
  const rows = Array.from({ length: ROWS }, (_, i) => demoRow(r, i + 1));
  const columns = DEMO_COLUMNS;
  const result = { columns, rows, truncated: false };

  const detectors = createMasker({ hashKey: 'bench' });
  const withRules = createMasker({
    hashKey: 'bench',
    rules: [
      { column: '*.email', strategy: 'hash', type: 'EMAIL' },
      { column: 'customers.phone', strategy: 'partial', type: 'PHONE' },
    ],
  });

  let sink = 0;
  const maskMs = timeMs(() => {
    sink += detectors.maskRows(columns, rows).rows.length;
  });
  const rulesMs = timeMs(() => {
    sink += withRules.maskRows(columns, rows).rows.length;
  });
  const stringifyMs = timeMs(() => {
    sink += JSON.stringify(result).length;
  });

  const lineSet = rows.map((row) => JSON.stringify(row)).join('\n') + '\n';
  let lines = '';
  while (lines.length < 4 * 1024 * 1024) lines += lineSet;
  const mb = Buffer.byteLength(lines) / (1024 * 1024);
  const streamMs = await timeStreamMs(lines, 5);
  if (sink === 0) throw new Error('unreachable: keeps the work observable');

  const counts = detectors.maskRows(columns, rows).byType;
  return [
    {
      case: `maskRows ${ROWS}×${columns.length}, default detectors`,
      'CPU ms (median)': Number(maskMs.toFixed(3)),
      'rows/s': Math.round((ROWS / maskMs) * 1000),
      'vs JSON.stringify': Number((maskMs / stringifyMs).toFixed(2)),
      note: Object.entries(counts)
        .map(([k, n]) => `${k}:${n}`)
        .join(' '),
    },
    {
      case: `maskRows ${ROWS}×${columns.length}, + hash/partial column rules`,
      'CPU ms (median)': Number(rulesMs.toFixed(3)),
      'rows/s': Math.round((ROWS / rulesMs) * 1000),
      'vs JSON.stringify': Number((rulesMs / stringifyMs).toFixed(2)),
      note: '',
    },
    {
      case: `JSON.stringify of the same result (baseline)`,
      'CPU ms (median)': Number(stringifyMs.toFixed(3)),
      'rows/s': Math.round((ROWS / stringifyMs) * 1000),
      'vs JSON.stringify': 1,
      note: `${(JSON.stringify(result).length / 1024).toFixed(0)} KiB`,
    },
    {
      case: `maskJsonLines, ${mb.toFixed(1)} MB of JSON lines`,
      'CPU ms (median)': Number(streamMs.toFixed(1)),
      'rows/s': Math.round(((lines.length / lineSet.length) * ROWS * 1000) / streamMs),
      'vs JSON.stringify': '',
      note: `${(mb / (streamMs / 1000)).toFixed(1)} MB/s`,
    },
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.table(await benchMasking());
}

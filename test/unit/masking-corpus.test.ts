import { describe, expect, it } from 'vitest';
import { createMasker, MASK_TYPES, type MaskType } from '../../lambdas/core/masking/index.js';
import { buildCorpus, type Sample } from '../fixtures/masking/corpus.js';

const SEED = 20240115;
const PER_TYPE = 240;

interface Score {
  tp: number;
  fp: number;
  fn: number;
}

function run(sample: Sample): { output: string; byType: Record<string, number> } {
  const masker = createMasker({ hashKey: 'corpus' });
  if (sample.where === 'text') {
    const r = masker.maskText(sample.value);
    return { output: r.text, byType: r.byType };
  }
  const column = sample.column ?? 'value';
  const r = masker.maskRows([{ name: column, table: 'records' }], [{ [column]: sample.value }]);
  return { output: String(r.rows[0][column]), byType: r.byType };
}

describe('masking corpus', () => {
  const corpus = buildCorpus(SEED, PER_TYPE);
  const scores = new Map<MaskType, Score>(MASK_TYPES.map((t) => [t, { tp: 0, fp: 0, fn: 0 }]));
  const misses: string[] = [];
  const falseAlarms: string[] = [];
  const leaks: string[] = [];

  for (const sample of corpus) {
    const { output, byType } = run(sample);
    for (const t of MASK_TYPES) {
      const expected = sample.positive && sample.type === t ? 1 : 0;
      const got = byType[t] ?? 0;
      const s = scores.get(t)!;
      const hit = Math.min(expected, got);
      s.tp += hit;
      s.fn += expected - hit;
      s.fp += got - hit;
      if (expected > hit) misses.push(`${t} (${sample.where}): ${JSON.stringify(sample.value)}`);
      if (got > hit) falseAlarms.push(`${t} (${sample.where}): ${JSON.stringify(sample.value)} → ${output}`);
    }
    for (const secret of sample.secrets) {
      if (output.includes(secret)) leaks.push(`${sample.type}: ${JSON.stringify(sample.value)} → ${output}`);
    }
  }

  const table = MASK_TYPES.map((t) => {
    const s = scores.get(t)!;
    return {
      type: t,
      tp: s.tp,
      fp: s.fp,
      fn: s.fn,
      recall: s.tp / (s.tp + s.fn),
      precision: s.tp + s.fp === 0 ? 1 : s.tp / (s.tp + s.fp),
    };
  });
  console.table(table.map((r) => ({ ...r, recall: r.recall.toFixed(4), precision: r.precision.toFixed(4) })));
  if (misses.length > 0) console.log('missed:\n' + misses.slice(0, 30).join('\n'));
  if (falseAlarms.length > 0) console.log('false alarms:\n' + falseAlarms.slice(0, 30).join('\n'));

  it(`holds ≥ ${PER_TYPE} positives and ≥ ${PER_TYPE} look-alikes per detector, in text and in columns`, () => {
    for (const t of MASK_TYPES) {
      for (const positive of [true, false]) {
        const of = corpus.filter((s) => s.type === t && s.positive === positive);
        expect(of.length, `${t} positive=${positive}`).toBeGreaterThanOrEqual(PER_TYPE);
        expect(of.some((s) => s.where === 'text') && of.some((s) => s.where === 'column')).toBe(true);
      }
    }
  });

  it.each(MASK_TYPES)('finds %s with at least 99% recall', (t) => {
    expect(table.find((r) => r.type === t)!.recall).toBeGreaterThanOrEqual(0.99);
  });

  it.each(MASK_TYPES)('flags %s with at least 98% precision', (t) => {
    expect(table.find((r) => r.type === t)!.precision).toBeGreaterThanOrEqual(0.98);
  });

  it('never lets a positive value through', () => {
    expect(leaks).toEqual([]);
  });
});

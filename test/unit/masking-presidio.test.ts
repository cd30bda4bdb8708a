/**
 * Recall and look-alike changes on an outside labelled corpus (presidio-research's synthetic PII
 * data, not written for Warden; see test/fixtures/presidio-synth/README.md). The detectors were
 * tuned on the tuning part only; the targets are asserted on the held-out part.
 */
import { describe, expect, it } from 'vitest';
import { createMasker } from '../../lambdas/core/masking/index.js';
import { scorePart, type PartScore } from '../fixtures/presidio-synth/score.js';
import { loadRecords, split, TARGETS, type Target } from '../fixtures/presidio-synth/split.js';

const RECALL_TARGET: Record<Target, number> = {
  CREDIT_CARD: 0.97,
  EMAIL_ADDRESS: 0.97,
  IBAN_CODE: 0.97,
  US_SSN: 0.97,
  PHONE_NUMBER: 0.9,
};
const LOOK_ALIKES_CHANGED_MAX = 0.03;

describe('masking on the presidio synthetic PII corpus', () => {
  const records = loadRecords();
  const { tuning, heldOut } = split(records);
  const masker = createMasker({ hashKey: 'presidio' });
  const parts: Record<'tuning' | 'held-out', PartScore> = {
    tuning: scorePart(masker, tuning),
    'held-out': scorePart(masker, heldOut),
  };

  const rows: Record<string, string>[] = [];
  for (const t of TARGETS) {
    const row: Record<string, string> = { entity: t };
    for (const [name, p] of Object.entries(parts)) {
      row[name] = `${p.found[t]}/${p.total[t]} (${((100 * p.found[t]) / p.total[t]).toFixed(1)}%)`;
    }
    rows.push(row);
  }
  const lookRow: Record<string, string> = { entity: 'look-alikes changed' };
  for (const [name, p] of Object.entries(parts)) {
    lookRow[name] =
      `${p.lookAlikesChanged.length}/${p.lookAlikes} (${((100 * p.lookAlikesChanged.length) / p.lookAlikes).toFixed(1)}%)`;
  }
  rows.push(lookRow);
  const extraRow: Record<string, string> = { entity: 'masked outside labels' };
  for (const [name, p] of Object.entries(parts)) extraRow[name] = String(p.extra.length);
  rows.push(extraRow);
  console.table(rows);
  for (const [name, p] of Object.entries(parts)) {
    if (p.missed.length > 0) console.log(`${name} missed:\n${p.missed.join('\n')}`);
    if (p.lookAlikesChanged.length > 0)
      console.log(`${name} look-alikes changed:\n${p.lookAlikesChanged.join('\n')}`);
    if (p.extra.length > 0) console.log(`${name} masked outside labels:\n${p.extra.join('\n')}`);
  }

  it('splits the records into two disjoint parts of about half each, every entity in both', () => {
    expect(tuning.length + heldOut.length).toBe(records.length);
    expect(new Set([...tuning, ...heldOut]).size).toBe(records.length);
    expect(Math.abs(tuning.length - heldOut.length)).toBeLessThanOrEqual(TARGETS.length + 2);
    for (const t of TARGETS) {
      expect(parts.tuning.total[t], t).toBeGreaterThan(0);
      expect(parts['held-out'].total[t], t).toBeGreaterThan(0);
    }
    expect(parts['held-out'].lookAlikes).toBeGreaterThanOrEqual(250);
  });

  it.each(TARGETS)('finds held-out %s at or above its target', (t) => {
    const p = parts['held-out'];
    expect(p.found[t] / p.total[t]).toBeGreaterThanOrEqual(RECALL_TARGET[t]);
  });

  it(`changes at most ${LOOK_ALIKES_CHANGED_MAX * 100}% of held-out look-alikes`, () => {
    const p = parts['held-out'];
    expect(p.lookAlikesChanged.length / p.lookAlikes).toBeLessThanOrEqual(LOOK_ALIKES_CHANGED_MAX);
  });
});

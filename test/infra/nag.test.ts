import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { FULL_SETTINGS, synthWarden, type Synthesized } from './synth.js';

let synthesized: Synthesized;

beforeAll(() => {
  synthesized = synthWarden({ settings: FULL_SETTINGS, nag: true });
});

describe('cdk-nag AwsSolutions', () => {
  it('reports no unacknowledged error', () => {
    const errors = Annotations.fromStack(synthesized.stack).findError(
      '*',
      Match.stringLikeRegexp('AwsSolutions-.*'),
    );
    expect(errors.map((e) => `${e.id}: ${String(e.entry.data).slice(0, 160)}`)).toEqual([]);
  });

  it('reports no unacknowledged warning', () => {
    const warnings = Annotations.fromStack(synthesized.stack).findWarning(
      '*',
      Match.stringLikeRegexp('AwsSolutions-.*'),
    );
    expect(warnings.map((e) => `${e.id}: ${String(e.entry.data).slice(0, 160)}`)).toEqual([]);
  });

  it('gives every acknowledgement a reason a reviewer can check', () => {
    const resources = synthesized.template.toJSON().Resources as Record<string, { Metadata?: any }>;
    const suppressions = Object.values(resources).flatMap(
      (r) => r.Metadata?.cdk_nag?.rules_to_suppress ?? [],
    );
    expect(suppressions.length).toBeGreaterThan(0);
    for (const s of suppressions) {
      expect(s.id).toMatch(/^AwsSolutions-/);
      expect(s.reason.length, s.id).toBeGreaterThan(80);
    }
    // Only these rules are acknowledged anywhere; anything else must be fixed, not suppressed.
    expect(new Set(suppressions.map((s: { id: string }) => s.id))).toEqual(
      new Set(['AwsSolutions-IAM5', 'AwsSolutions-L1', 'AwsSolutions-APIG4', 'AwsSolutions-SMG4']),
    );
  });
});

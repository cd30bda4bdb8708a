/**
 * cfn-lint (AWS's CloudFormation linter) over the synthesized template: the resource properties,
 * policies and intrinsic functions CloudFormation would reject at deploy time, caught at test time.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { WardenSettingsInput } from '../../lib/config.js';
import { FULL_SETTINGS, synthWarden } from './synth.js';

function hasCfnLint(): boolean {
  try {
    execFileSync('cfn-lint', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * W3005 (a DependsOn already implied by a GetAtt) is how CDK makes every function wait for its
 * role's inline policy; it is harmless and not ours to change.
 */
const IGNORED = ['W3005'];

const dir = mkdtempSync(join(tmpdir(), 'warden-cfn-lint-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function lint(name: string, settings: WardenSettingsInput): string {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(synthWarden({ settings }).template.toJSON()));
  const out = spawnSync('cfn-lint', ['--format', 'parseable', '--ignore-checks', ...IGNORED, '--', file], {
    encoding: 'utf8',
  });
  return `${out.stdout}${out.stderr}`.trim();
}

describe.skipIf(!hasCfnLint())('cfn-lint (skipped when cfn-lint is not installed)', () => {
  it('finds nothing in the template of the full configuration', () => {
    expect(lint('full', FULL_SETTINGS)).toBe('');
  }, 240_000);

  it('finds nothing in the template of a COMPLIANCE-locked lake without reserved concurrency', () => {
    expect(
      lint('variant', {
        auditLakeObjectLockMode: 'COMPLIANCE',
        auditLakeObjectLockDays: 30,
        executeReservedConcurrency: 0,
        notifyReservedConcurrency: 0,
      }),
    ).toBe('');
  }, 240_000);
});

/** Reads a directory of Cedar policy files (sorted, `.cedar` only). */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PolicySource } from '../../lambdas/core/policy.js';

export function loadPolicyFiles(dir: string): PolicySource[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.cedar'))
    .sort()
    .map((f) => ({ source: f, text: readFileSync(join(dir, f), 'utf8') }));
}

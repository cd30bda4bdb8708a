/**
 * The detectors as the second layer over everything Warden stores or sends: request records, trail
 * events, error bodies and log lines pass through here last, whatever the code before them did.
 * Detectors only, every type redacted (the default strategy), so the hash key is never needed here.
 * Masking is idempotent: what was already masked passes unchanged.
 */
import { randomBytes } from 'node:crypto';
import { createMasker } from './engine.js';

const masker = createMasker({ hashKey: randomBytes(32) });

export function secondLayer<T>(value: T): T {
  return masker.maskValue(value).value as T;
}

export function secondLayerText(text: string): string {
  return masker.maskText(text).text;
}

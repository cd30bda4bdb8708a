/**
 * Masking: sensitive values found and replaced in process, before a response leaves the gateway
 * and before anything is recorded. Whether a caller sees unmasked data is policy (Cedar
 * `view_unmasked`), decided by the caller of this module.
 */
export type {
  ColumnRef,
  ColumnRule,
  Masker,
  MaskerOptions,
  MaskCounts,
  MaskStrategy,
  MaskType,
} from './types.js';
export { MASK_TYPES } from './types.js';
export { createMasker, mergeCounts } from './engine.js';
export { maskJsonLine, maskJsonLines, type MaskJsonLinesOptions } from './stream.js';

/** The masking engine's vocabulary. */

export const MASK_TYPES = [
  'PRIVATE_KEY',
  'JWT',
  'BEARER_TOKEN',
  'AWS_ACCESS_KEY',
  'AWS_SECRET_KEY',
  'EMAIL',
  'IBAN',
  'IPV6',
  'IPV4',
  'CARD',
  'SSN',
  'PHONE',
] as const;

/** What a detector finds. Counts may also carry column-rule labels (`COLUMN` or a rule's `type`). */
export type MaskType = (typeof MASK_TYPES)[number];

/**
 * - `redact`: `[EMAIL]`.
 * - `partial`: the last 4 letters/digits stay, the rest become `*`, separators kept
 *   (`****-****-****-1111`, `***-**-6789`); emails keep their domain (`***@example.com`). Types
 *   where a tail says nothing useful (keys, tokens, IP addresses) fall back to `redact`.
 * - `hash`: `hmac:<64 hex>`, the full HMAC-SHA256(key, type + ':' + normalized value), so equal values
 *   stay equal across rows, columns and requests with the same key (joins and GROUP BY still work).
 * - `null`: the value becomes `null` under a column rule; inside free text it falls back to `redact`.
 */
export type MaskStrategy = 'redact' | 'partial' | 'hash' | 'null';

export type MaskCounts = Record<string, number>;

export interface ColumnRule {
  /**
   * Case-insensitive glob over `schema.table.column`, matched from the right, one pattern segment
   * per dotted name segment: `email`, `*.email`, `customers.email`, `public.customers.ssn`.
   * `*` matches within one segment. A segment the result does not report (no table, say) is
   * matched only by a pattern segment that is all `*`; a missing schema is taken as `public`.
   */
  readonly column: string;
  readonly strategy: MaskStrategy;
  /**
   * Label counted in `byType` (`SSN`, `EMAIL`…) and mixed into hashes.
   * @default the single type the detectors find in the value, else `COLUMN`
   */
  readonly type?: string;
}

export interface MaskerOptions {
  readonly rules?: readonly ColumnRule[];
  /** HMAC key for the `hash` strategy. Keep it secret and stable to keep hashes joinable. */
  readonly hashKey: string | Buffer;
  /**
   * Strategy per detected type.
   * @default `redact` for every type: the safest default, since a tail or a hash still leaks
   * something; turn on `partial` or `hash` per type where a team needs it.
   */
  readonly strategyByType?: Partial<Record<MaskType, MaskStrategy>>;
  /**
   * ISO 3166 region that numbers written without a `+` are read in (`US`: `(555) 123-4567`;
   * `DE`: `030 12345678`). Unknown regions throw.
   * @default 'US'
   */
  readonly phoneRegion?: string;
}

export interface ColumnRef {
  readonly name: string;
  readonly table?: string;
  readonly schema?: string;
}

export interface Masker {
  /** Masks every detected identifier in free text. */
  maskText(text: string): { text: string; byType: MaskCounts };
  /**
   * Deep: strings inside objects and arrays (and object keys) are masked; an integer that is a
   * valid card number becomes a masked string. Other numbers, booleans and null pass untouched.
   */
  maskValue(value: unknown): { value: unknown; byType: MaskCounts };
  /** Column rules first (whatever the content), then the detectors on every other value. */
  maskRows(
    columns: readonly ColumnRef[],
    rows: readonly Record<string, unknown>[],
    options?: MaskRowsOptions,
  ): { rows: Record<string, unknown>[]; byType: MaskCounts };
}

export interface MaskRowsOptions {
  /**
   * The rows come from the database's masking views (db-profiles.ts): a value a rule's column
   * holds in masked form is counted under the rule's type (the database masked it), and still
   * masked again if it is not in masked form. @default false
   */
  readonly maskedAtSource?: boolean;
}

import { createHmac } from 'node:crypto';

/** Below this many letters/digits, `partial` keeps nothing: a 4-character tail would be most of it. */
const PARTIAL_MIN_SIGNIFICANT = 8;
const PARTIAL_KEEP = 4;

/** Types whose tail identifies nothing on its own; `partial` masks them like `redact`. */
export const PARTIAL_TYPES: ReadonlySet<string> = new Set([
  'CARD',
  'SSN',
  'PHONE',
  'IBAN',
  'EMAIL',
  'AWS_ACCESS_KEY',
  'COLUMN',
]);

function isAlnum(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c > 127;
}

const IBAN_COUNTRY = /^[A-Z]{2}/;

/** `4111-1111-1111-1111` → `****-****-****-1111`; `jane@example.com` → `***@example.com`. */
export function partialMask(type: string, raw: string): string {
  if (type === 'EMAIL') {
    const at = raw.lastIndexOf('@');
    if (at > 0) return '***' + raw.slice(at);
  }
  let significant = 0;
  for (let i = 0; i < raw.length; i++) if (isAlnum(raw.charCodeAt(i))) significant++;
  // Nothing to keep: stars only, so the output is recognisably masked (and re-masking skips it).
  if (significant < PARTIAL_MIN_SIGNIFICANT) return '*'.repeat(Math.max(1, raw.length));
  // An IBAN keeps its country (`DE** **** … **30 00`), as the database's masking views do.
  if (type === 'IBAN' && IBAN_COUNTRY.test(raw)) return raw.slice(0, 2) + keepLastFour(raw.slice(2));
  return keepLastFour(raw);
}

function keepLastFour(raw: string): string {
  let keep = PARTIAL_KEEP;
  const out: string[] = new Array<string>(raw.length);
  for (let i = raw.length - 1; i >= 0; i--) {
    const ch = raw[i];
    if (!isAlnum(raw.charCodeAt(i))) out[i] = ch;
    else if (keep > 0) {
      out[i] = ch;
      keep--;
    } else out[i] = '*';
  }
  return out.join('');
}

/** What counts as "the same value" for a type, so hashes join across formats. */
export function normalizeForHash(type: string, raw: string): string {
  switch (type) {
    case 'CARD':
    case 'SSN':
    case 'PHONE':
      return raw.replace(/\D/g, '');
    case 'IBAN':
      return raw.replace(/\s/g, '').toUpperCase();
    case 'EMAIL':
    case 'IPV6':
      return raw.toLowerCase();
    default:
      return raw;
  }
}

const HASH_CACHE_MAX = 50_000;

/**
 * Keyed HMAC tokens. Result sets repeat values (that is what GROUP BY is for), and an HMAC costs
 * microseconds, so tokens are cached per masker; the cache is dropped whole when it grows too big.
 */
export class Hasher {
  readonly #key: Buffer;
  readonly #cache = new Map<string, string>();
  constructor(key: string | Buffer) {
    this.#key = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  }

  token(type: string, normalized: string): string {
    const input = type + ':' + normalized;
    let token = this.#cache.get(input);
    if (token === undefined) {
      // The whole 256-bit MAC: a shortened token invites collisions and eases offline guessing.
      token = 'hmac:' + createHmac('sha256', this.#key).update(input).digest('hex');
      if (this.#cache.size >= HASH_CACHE_MAX) this.#cache.clear();
      this.#cache.set(input, token);
    }
    return token;
  }
}

const TOKEN_RE = /^\[[A-Z][A-Z0-9_]*\]$/;
const HMAC_RE = /^hmac:[0-9a-f]{64}$/;
/** A masked IBAN keeps its country: the two letters before the first star are not kept digits. */
const MASKED_IBAN_COUNTRY = /^[A-Z]{2}(?=[\s*]*\*)/;

/**
 * True for what a strategy produced, so that masking masked output under a column rule changes
 * nothing and counts nothing.
 */
export function isMaskOutput(input: string): boolean {
  if (TOKEN_RE.test(input) || HMAC_RE.test(input)) return true;
  const value = MASKED_IBAN_COUNTRY.test(input) ? input.slice(2) : input;
  if (value.startsWith('***')) {
    if (value.charCodeAt(3) === 64 /* @ */) return true;
  }
  if (!value.includes('*')) return false;
  let significant = 0;
  for (let i = 0; i < value.length; i++) {
    if (isAlnum(value.charCodeAt(i)) && ++significant > PARTIAL_KEEP) return false;
  }
  return true;
}

/**
 * Checksums and registries that tell a real identifier from a look-alike. Each returns false for
 * anything doubtful: a detector only masks what validates, so ordinary numbers pass untouched.
 */

/** Luhn (mod 10) over a string of ASCII digits. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** A card network: the IIN ranges it issues from (prefixes of equal width) and the lengths it prints. */
interface Network {
  readonly name: string;
  /** `[lo, hi]` over the first `String(lo).length` digits. */
  readonly ranges: readonly (readonly [number, number])[];
  readonly lengths: readonly number[];
}

const span = (lo: number, hi: number): number[] => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);

/**
 * Issuer identification ranges (IIN) with the lengths each network uses, from the networks'
 * published ranges. A Luhn-valid number that no network would print (e.g. a 16-digit id
 * starting with 1 or 9) is not a card. Where ranges overlap (Discover, UnionPay and RuPay in the
 * 6s) the union of lengths is what matters, not which network it is.
 */
export const CARD_NETWORKS: readonly Network[] = [
  { name: 'visa', ranges: [[4, 4]], lengths: [13, 16, 19] },
  {
    name: 'mastercard',
    ranges: [
      [51, 55],
      [2221, 2720],
    ],
    lengths: [16],
  },
  {
    name: 'amex',
    ranges: [
      [34, 34],
      [37, 37],
    ],
    lengths: [15],
  },
  {
    name: 'discover',
    ranges: [
      [6011, 6011],
      [644, 649],
      [65, 65],
      [622126, 622925],
    ],
    lengths: span(16, 19),
  },
  {
    name: 'diners',
    ranges: [
      [300, 305],
      [3095, 3095],
      [36, 36],
      [38, 39],
    ],
    lengths: span(14, 19),
  },
  // JCB's own range is 3528–3589; numbers across the rest of 35 are printed (RuPay co-branded,
  // test generators) and nothing else issues from 35.
  { name: 'jcb', ranges: [[35, 35]], lengths: span(16, 19) },
  // JCB's older 15-digit numbers.
  {
    name: 'jcb15',
    ranges: [
      [1800, 1800],
      [2131, 2131],
    ],
    lengths: [15],
  },
  {
    name: 'unionpay',
    ranges: [
      [62, 62],
      [81, 81],
    ],
    lengths: span(16, 19),
  },
  { name: 'mir', ranges: [[2200, 2204]], lengths: span(16, 19) },
  {
    name: 'maestro',
    ranges: [
      [5018, 5018],
      [5020, 5020],
      [5038, 5038],
      [5893, 5893],
      [56, 58],
      [6304, 6304],
      [6759, 6759],
      [6761, 6763],
      [639, 639],
      [6220, 6220],
    ],
    lengths: span(12, 19),
  },
  {
    name: 'rupay',
    ranges: [
      [60, 60],
      [652, 652],
      [508, 508],
      [353, 353],
      [356, 356],
    ],
    lengths: [16],
  },
  {
    name: 'verve',
    ranges: [
      [506099, 506198],
      [650002, 650027],
    ],
    lengths: [16, 18, 19],
  },
  { name: 'troy', ranges: [[9792, 9792]], lengths: [16] },
];

export function cardIssuer(digits: string): string | undefined {
  const len = digits.length;
  for (const net of CARD_NETWORKS) {
    if (!net.lengths.includes(len)) continue;
    for (const [lo, hi] of net.ranges) {
      const width = lo < 10 ? 1 : lo < 100 ? 2 : lo < 1000 ? 3 : lo < 10000 ? 4 : 6;
      const n = Number(digits.slice(0, width));
      if (n >= lo && n <= hi) return net.name;
    }
  }
  return undefined;
}

export function cardValid(digits: string): boolean {
  // Luhn first: it is the cheaper test, and rejects nine numbers in ten.
  return digits.length >= 12 && digits.length <= 19 && luhnValid(digits) && cardIssuer(digits) !== undefined;
}

/** SSA rules: no area 000, 666 or 900–999, no group 00, no serial 0000. */
export function ssnValid(area: string, group: string, serial: string): boolean {
  if (area === '000' || area === '666' || area.charCodeAt(0) === 57 /* 9 */) return false;
  return group !== '00' && serial !== '0000';
}

/** IBAN length per country (ISO 13616 registry). */
// prettier-ignore
export const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28,
  CH: 21, CR: 22, CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18,
  FK: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HR: 21, HU: 28, IE: 22,
  IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20,
  LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28, NL: 18,
  NO: 15, OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24, SC: 31,
  SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26, UA: 29,
  VA: 22, VG: 24, XK: 20, YE: 30,
};

/** ISO 7064 mod 97-10 over an upper-case IBAN without spaces: valid when the remainder is 1. */
export function ibanChecksumValid(iban: string): boolean {
  let rem = 0;
  const n = iban.length;
  for (let k = 0; k < n; k++) {
    const c = iban.charCodeAt((k + 4) % n);
    if (c >= 48 && c <= 57) {
      rem = (rem * 10 + (c - 48)) % 97;
    } else if (c >= 65 && c <= 90) {
      rem = (rem * 100 + (c - 55)) % 97;
    } else {
      return false;
    }
  }
  return rem === 1;
}

export function ibanValid(compact: string): boolean {
  return IBAN_LENGTHS[compact.slice(0, 2)] === compact.length && ibanChecksumValid(compact);
}

/** Dotted quad with octets 0–255 and no leading zeros (so `01.02.03.04` stays a version). */
export function ipv4Valid(candidate: string): boolean {
  let parts = 0;
  let value = 0;
  let width = 0;
  let leadingZero = false;
  for (let i = 0; i <= candidate.length; i++) {
    const c = i === candidate.length ? 46 : candidate.charCodeAt(i);
    if (c === 46) {
      if (width === 0 || value > 255 || (leadingZero && width > 1)) return false;
      parts++;
      value = 0;
      width = 0;
    } else if (c >= 48 && c <= 57) {
      if (width === 0) leadingZero = c === 48;
      value = value * 10 + (c - 48);
      if (++width > 3) return false;
    } else return false;
  }
  return parts === 4;
}

/** A JWT's first segment decodes to a JSON object naming its algorithm; undefined otherwise. */
export function jwtAlgorithm(segment: string): string | undefined {
  try {
    const header: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    if (typeof header !== 'object' || header === null) return undefined;
    const alg = (header as { alg?: unknown }).alg;
    return typeof alg === 'string' ? alg : undefined;
  } catch {
    return undefined;
  }
}

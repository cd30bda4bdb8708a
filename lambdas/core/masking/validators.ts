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

function between(digits: string, width: number, lo: number, hi: number): boolean {
  const n = Number(digits.slice(0, width));
  return n >= lo && n <= hi;
}

/**
 * Issuer identification ranges (IIN) with the lengths each issuer uses. A Luhn-valid number that
 * no issuer would print (e.g. a 16-digit id starting with 1 or 9) is not a card.
 */
export function cardIssuer(digits: string): string | undefined {
  const len = digits.length;
  const c0 = digits.charCodeAt(0) - 48;
  switch (c0) {
    case 4:
      return len === 13 || len === 16 || len === 19 ? 'visa' : undefined;
    case 2:
      return len === 16 && between(digits, 4, 2221, 2720) ? 'mastercard' : undefined;
    case 5:
      if (between(digits, 2, 51, 55)) return len === 16 ? 'mastercard' : undefined;
      if (/^(?:5018|5020|5038|5893)/.test(digits)) return len >= 12 ? 'maestro' : undefined;
      return undefined;
    case 3:
      if (between(digits, 2, 34, 34) || between(digits, 2, 37, 37)) {
        return len === 15 ? 'amex' : undefined;
      }
      if (between(digits, 4, 3528, 3589)) return len >= 16 ? 'jcb' : undefined;
      if (between(digits, 2, 36, 36) || between(digits, 2, 38, 39) || between(digits, 3, 300, 305)) {
        return len >= 14 ? 'diners' : undefined;
      }
      return undefined;
    case 6:
      if (digits.startsWith('6011') || digits.startsWith('65') || between(digits, 3, 644, 649)) {
        return len >= 16 ? 'discover' : undefined;
      }
      if (digits.startsWith('62')) return len >= 16 ? 'unionpay' : undefined;
      if (/^(?:6304|6759|676[1-3])/.test(digits)) return len >= 12 ? 'maestro' : undefined;
      return undefined;
    default:
      return undefined;
  }
}

export function cardValid(digits: string): boolean {
  return digits.length >= 13 && digits.length <= 19 && cardIssuer(digits) !== undefined && luhnValid(digits);
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

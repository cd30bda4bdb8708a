/**
 * Detectors: a cheap gate on character statistics (`candidates`), then a regular expression, then
 * a validator. Every pattern refuses (by look-behind) to start inside a longer token, so none
 * backtracks across a whole input and hostile inputs stay linear; a look-alike that fails
 * validation is left exactly as it was.
 *
 * Detectors run in a fixed order, most specific first (a PEM block before the base64 inside it, a
 * JWT before the `Bearer` around it, an IBAN before the digits inside it); each replaces what it
 * finds with a strategy's output, which no detector matches. The engine repeats the passes until
 * one finds nothing, so masking masked output is a no-op.
 */
import { isIPv6 } from 'node:net';
import { PhoneDetector } from './phones.js';
import type { MaskType } from './types.js';
import {
  cardValid,
  IBAN_LENGTHS,
  ibanChecksumValid,
  ipv4Valid,
  jwtAlgorithm,
  ssnValid,
} from './validators.js';

/** Replaces one found value (and counts it). */
export interface Emitter {
  emit(type: MaskType, raw: string): string;
}

/** Hints from the key or column a value sits under. */
export const HINT_SECRET = 1;
export const HINT_SSN = 2;
export const HINT_PHONE = 4;
/** Set by the engine when the value holds a character outside ASCII (from the same scan). */
export const HINT_WIDE = 8;

export interface TextStats {
  length: number;
  digits: number;
  /** Longest run of digits where spaces, `-`, `.`, `(` and `)` do not break the run. */
  maxRun: number;
  upper: number;
  spaces: number;
  /** Any character outside ASCII. */
  wide: boolean;
  /** Two letters then two digits at the start of a token somewhere (`GB82`, `de89`): an IBAN may start there. */
  ibanStart: boolean;
  at: number;
  dots: number;
  dashes: number;
  colons: number;
  doubleColon: boolean;
  plus: number;
}

export function scan(s: string, st: TextStats): void {
  let digits = 0;
  let run = 0;
  let maxRun = 0;
  let upper = 0;
  let spaces = 0;
  let wide = false;
  let ibanStart = false;
  // Position in the current run of letters and digits while it still reads letter, letter,
  // digit, digit; -1 once it does not.
  let tok = 0;
  let at = 0;
  let dots = 0;
  let dashes = 0;
  let colons = 0;
  let doubleColon = false;
  let plus = 0;
  let prev = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      digits++;
      if (++run > maxRun) maxRun = run;
      if (tok === 2) tok = 3;
      else {
        if (tok === 3) ibanStart = true;
        tok = -1;
      }
    } else if (c >= 97 && c <= 122) {
      run = 0;
      tok = tok === 0 || tok === 1 ? tok + 1 : -1;
    } else if (c >= 65 && c <= 90) {
      upper++;
      run = 0;
      tok = tok === 0 || tok === 1 ? tok + 1 : -1;
    } else {
      tok = 0;
      switch (c) {
        case 32:
          spaces++;
          break;
        case 40:
        case 41:
          break;
        case 45:
          dashes++;
          break;
        case 46:
          dots++;
          break;
        case 58:
          colons++;
          if (prev === 58) doubleColon = true;
          run = 0;
          break;
        case 64:
          at++;
          run = 0;
          break;
        case 43:
          plus++;
          run = 0;
          break;
        default:
          if (c > 127) wide = true;
          run = 0;
      }
    }
    prev = c;
  }
  st.length = s.length;
  st.digits = digits;
  st.maxRun = maxRun;
  st.upper = upper;
  st.spaces = spaces;
  st.wide = wide;
  st.ibanStart = ibanStart;
  st.at = at;
  st.dots = dots;
  st.dashes = dashes;
  st.colons = colons;
  st.doubleColon = doubleColon;
  st.plus = plus;
}

export interface Detector {
  readonly type: MaskType;
  apply(s: string, em: Emitter, hints: number): string;
}

const PEM_RE =
  /-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----(?:[\s\S]{0,16384}?-----END \1PRIVATE KEY-----|[A-Za-z0-9+/=\s:,-]*)/g;

const pem: Detector = {
  type: 'PRIVATE_KEY',
  // A truncated block (no END line) is masked through the end of its base64: fail closed.
  apply: (s, em) => s.replace(PEM_RE, (m) => em.emit('PRIVATE_KEY', m)),
};

const JWT_RE =
  /(?<![A-Za-z0-9_-])eyJ([A-Za-z0-9_-]{4,})\.[A-Za-z0-9_-]{2,}\.([A-Za-z0-9_-]*)(?:\.[A-Za-z0-9_-]*){0,2}(?![A-Za-z0-9_-])/g;

const jwt: Detector = {
  type: 'JWT',
  apply: (s, em) =>
    s.replace(JWT_RE, (m: string, rest: string, signature: string) => {
      const alg = jwtAlgorithm('eyJ' + rest);
      // Only `alg: none` goes unsigned; `header.payload.` before a full stop is a sentence.
      if (alg === undefined || (signature === '' && alg.toLowerCase() !== 'none')) return m;
      return em.emit('JWT', m);
    }),
};

const BEARER_RE = /(?<![A-Za-z0-9])(bearer[ \t]+)([A-Za-z0-9\-._~+/]+=*)/gi;

/** A word after "Bearer" in prose ("Bearer authentication") is not a token: tokens are long and mixed. */
function looksLikeToken(t: string): boolean {
  if (t.length < 16) return false;
  let digit = false;
  let upper = false;
  let lower = false;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c >= 48 && c <= 57) digit = true;
    else if (c >= 65 && c <= 90) upper = true;
    else if (c >= 97 && c <= 122) lower = true;
  }
  return digit || (upper && lower);
}

const bearer: Detector = {
  type: 'BEARER_TOKEN',
  apply: (s, em) =>
    s.replace(BEARER_RE, (m: string, scheme: string, token: string) => {
      let end = token.length;
      while (end > 0 && token.charCodeAt(end - 1) === 46) end--;
      const t = token.slice(0, end);
      return looksLikeToken(t) ? scheme + em.emit('BEARER_TOKEN', t) + token.slice(end) : m;
    }),
};

const AWS_KEY_ID_RE = /(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])/g;

const awsAccessKey: Detector = {
  type: 'AWS_ACCESS_KEY',
  apply: (s, em) => s.replace(AWS_KEY_ID_RE, (m) => em.emit('AWS_ACCESS_KEY', m)),
};

const AWS_SECRET_RE = /(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])/g;
const SECRET_CONTEXT_CHARS = 64;
/**
 * "secret" then only words and a separator up to the value (`aws_secret_access_key = `,
 * `"SecretAccessKey": "`, `secret key for the ci user: `). Masked values never fit in that gap
 * (they carry `[`, `*` or `hmac:` and digits), so masking one value cannot bring another into
 * context: masking stays idempotent.
 */
const SECRET_CONTEXT_RE = /secret[A-Za-z _-]{0,40}["']?\s*[:=]?\s*["']?$/i;

/**
 * 40 base64 characters are also a SHA-1 in hex, a random id, a chunk of a blob. A secret access
 * key is only taken as one right after a name with "secret" in it (in the same text, or the
 * key/column it sits under), and only when it mixes upper and lower case with digits or symbols
 * as real keys do.
 */
function secretShaped(t: string): boolean {
  let upper = false;
  let lower = false;
  let other = false;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c >= 65 && c <= 90) upper = true;
    else if (c >= 97 && c <= 122) lower = true;
    else other = true;
  }
  return upper && lower && other;
}

const awsSecretKey: Detector = {
  type: 'AWS_SECRET_KEY',
  apply: (s, em, hints) =>
    s.replace(AWS_SECRET_RE, (m: string, offset: number) => {
      if (!secretShaped(m)) return m;
      if ((hints & HINT_SECRET) === 0) {
        const before = s.slice(Math.max(0, offset - SECRET_CONTEXT_CHARS), offset);
        if (!SECRET_CONTEXT_RE.test(before)) return m;
      }
      return em.emit('AWS_SECRET_KEY', m);
    }),
};

// Letters and digits of any script (RFC 6531 addresses, internationalised domain names), and
// punycode TLDs (`xn--p1ai`).
const EMAIL_ASCII_RE =
  /(?<![A-Za-z0-9._%+-])[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?:[A-Za-z]{2,63}|xn--[a-z0-9-]{1,59})(?![A-Za-z0-9-])/g;
const EMAIL_RE =
  /(?<![\p{L}\p{N}._%+-])[\p{L}\p{N}_%+-]+(?:\.[\p{L}\p{N}_%+-]+)*@(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?\.)+(?:\p{L}{2,63}|xn--[a-z0-9-]{1,59})(?![\p{L}\p{N}-])/gu;

const email: Detector = {
  type: 'EMAIL',
  // The ASCII pattern is the same language on ASCII text, and cheaper.
  apply: (s, em, hints) =>
    s.replace((hints & HINT_WIDE) === 0 ? EMAIL_ASCII_RE : EMAIL_RE, (m) => em.emit('EMAIL', m)),
};

const IBAN_START_RE = /(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}/g;

function isDigitCode(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isAlnumCode(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

/**
 * The country code says how long the IBAN is, so the scan takes exactly that many characters, in
 * either case, with single spaces or single dashes between them (one kind throughout, as in
 * printed groups of four), and then needs a boundary.
 */
const iban: Detector = {
  type: 'IBAN',
  apply: (s, em) => {
    IBAN_START_RE.lastIndex = 0;
    let out = '';
    let last = 0;
    let m: RegExpExecArray | null;
    while ((m = IBAN_START_RE.exec(s)) !== null) {
      const start = m.index;
      const head = m[0].toUpperCase();
      const len = IBAN_LENGTHS[head.slice(0, 2)];
      if (len === undefined) continue;
      let compact = head;
      let sep = 0;
      let j = start + 4;
      while (compact.length < len && j < s.length) {
        let c = s.charCodeAt(j);
        if ((c === 32 || c === 45) && (sep === 0 || sep === c)) {
          sep = c;
          c = s.charCodeAt(j + 1);
          j++;
        }
        if (c >= 48 && c <= 57) compact += s[j];
        else if (c >= 65 && c <= 90) compact += s[j];
        else if (c >= 97 && c <= 122) compact += String.fromCharCode(c - 32);
        else break;
        j++;
      }
      if (compact.length !== len || (j < s.length && isAlnumCode(s.charCodeAt(j)))) continue;
      // Printed in groups and followed by one more digit group: a longer number, not this IBAN.
      if (sep !== 0 && s.charCodeAt(j) === sep && isDigitCode(s.charCodeAt(j + 1))) continue;
      if (!ibanChecksumValid(compact)) continue;
      out += s.slice(last, start) + em.emit('IBAN', s.slice(start, j));
      last = j;
      IBAN_START_RE.lastIndex = j;
    }
    return last === 0 ? s : out + s.slice(last);
  },
};

// Maximal runs of IPv6 characters; node:net decides what is an address.
const IPV6_RUN_RE = /(?<![A-Za-z0-9_:.])[0-9A-Fa-f:.]{3,}/g;

const ipv6: Detector = {
  type: 'IPV6',
  apply: (s, em) =>
    s.replace(IPV6_RUN_RE, (m: string, offset: number) => {
      const next = s.charCodeAt(offset + m.length);
      if (isAlnumCode(next) || next === 95) return m;
      let end = m.length;
      while (end > 0 && m.charCodeAt(end - 1) === 46) end--;
      if (end > 45) return m;
      const cand = end === m.length ? m : m.slice(0, end);
      if (cand.indexOf(':') === cand.lastIndexOf(':') || !/[0-9A-Fa-f]/.test(cand)) return m;
      if (!isIPv6(cand)) return m;
      return em.emit('IPV6', cand) + m.slice(end);
    }),
};

const IPV4_RE = /(?<![A-Za-z0-9_.])(?:\d{1,3}\.){3}\d{1,3}(?![A-Za-z0-9_]|\.\d)/g;

const ipv4: Detector = {
  type: 'IPV4',
  apply: (s, em) => s.replace(IPV4_RE, (m) => (ipv4Valid(m) ? em.emit('IPV4', m) : m)),
};

// Grouped forms need one separator throughout (4-4-4-4[-1..3], 4-6-4/5, 4-3-3-3); bare 13–19 digits.
// No look-behind for a neighbouring digit group: `AB12 4111 1111 1111 1111` may be the tail of a
// malformed IBAN or a card after a code, and a leak costs more than a mask. `hmac:` tokens can be all digits, so a card never starts right after one.
const CARD_RE =
  /(?<![A-Za-z0-9_.+-]|hmac:)(?:\d{4}([ -])\d{4}\1\d{4}(?:\1\d{4}(?:\1\d{1,3})?)?|\d{4}([ -])\d{6}\2\d{4,5}|\d{4}([ -])\d{3}\3\d{3}\3\d{3}|\d{12,19})(?![A-Za-z0-9_]|[.,-]\d)/g;

function maskCard(m: string, em: Emitter): string | undefined {
  const digits = digitsOf(m);
  if (cardValid(digits)) return em.emit('CARD', m);
  // `4111 1111 1111 1111 123`: after a space, a short fifth group may be a CVV or an unrelated
  // number, not part of the card. (With dashes it is one number.)
  if (m.length > 19 && m.charCodeAt(4) === 32 && m.charCodeAt(19) === 32) {
    if (cardValid(digits.slice(0, 16))) return em.emit('CARD', m.slice(0, 19)) + m.slice(19);
  }
  return undefined;
}

const card: Detector = {
  type: 'CARD',
  apply: (s, em) => {
    // An exec loop rather than replace: when `4254 2461 1743 1905 3568` fails as one candidate,
    // the card may start at the next group, so the scan resumes one character on, not after it.
    CARD_RE.lastIndex = 0;
    let out = '';
    let last = 0;
    let m: RegExpExecArray | null;
    while ((m = CARD_RE.exec(s)) !== null) {
      const masked = maskCard(m[0], em);
      if (masked === undefined) {
        CARD_RE.lastIndex = m.index + 1;
        continue;
      }
      out += s.slice(last, m.index) + masked;
      last = m.index + m[0].length;
    }
    return last === 0 ? s : out + s.slice(last);
  },
};

// Dashed, spaced or (checked for a label below) bare: one pass for all three.
const SSN_RE = /(?<![A-Za-z0-9_.+-])(\d{3})([- ]?)(\d{2})\2(\d{4})(?![A-Za-z0-9_]|[.-]\d)/g;
const SSN_BARE_RE = /^(\d{3})(\d{2})(\d{4})$/;
/** `SSN 123456789`, `social security number: 123456789`, `SS# 123456789`, just before the digits. */
const SSN_LABEL_RE =
  /(?:(?<![A-Za-z])ssn|social[ -]?security(?:[ -]?(?:number|no\.?|nr\.?|#))?|(?<![A-Za-z])ss#)[^A-Za-z0-9\n]{0,4}(?:is[ :]{1,2})?$/i;
const SSN_LABEL_CHARS = 40;

/**
 * `ddd-dd-dddd` or `ddd dd dddd` anywhere; nine bare digits only as a whole value under a key or
 * column whose name says SSN, or right after an SSN label in the text (elsewhere they are as
 * likely an order number or an amount in cents).
 */
const ssn: Detector = {
  type: 'SSN',
  apply: (s, em, hints) => {
    if ((hints & HINT_SSN) !== 0 && s.length === 9) {
      const b = SSN_BARE_RE.exec(s);
      if (b !== null && ssnValid(b[1], b[2], b[3])) return em.emit('SSN', s);
    }
    return s.replace(SSN_RE, (m: string, a: string, sep: string, g: string, n: string, offset: number) => {
      if (!ssnValid(a, g, n)) return m;
      if (sep !== '') return em.emit('SSN', m);
      const before = s.slice(Math.max(0, offset - SSN_LABEL_CHARS), offset);
      return SSN_LABEL_RE.test(before) ? em.emit('SSN', m) : m;
    });
  },
};

function digitsOf(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) out += s[i];
  }
  return out;
}

/** Words that say a number nearby is a phone; cheap to test before the phone pass. */
const PHONE_WORD_RE =
  /phone|mobile|cell|tel|fax|desk|office|home|work|whatsapp|sms|text|call|dial|contact|reach|ring|regist|answer/i;

function phoneDetector(region: string): Detector {
  const phones = new PhoneDetector(region);
  return {
    type: 'PHONE',
    apply: (s, em, hints) => phones.apply(s, em, (hints & HINT_PHONE) !== 0, (hints & HINT_WIDE) !== 0),
  };
}

/**
 * Which detectors could match, as a bit per entry of DETECTORS. Most values (names, statuses,
 * dates, amounts) fail every gate, so most values never meet a regular expression. The gates are
 * necessary conditions only; one function rather than a method per detector keeps the call sites
 * monomorphic on the path every value takes.
 */
export function candidates(s: string, st: TextStats, hints: number): number {
  let bits = 0;
  const len = st.length;
  if (len >= 40 && st.dashes >= 10 && s.includes('PRIVATE KEY-----')) bits |= 1 << 0;
  if (len >= 24 && st.dots >= 2 && s.includes('eyJ')) bits |= 1 << 1;
  if (len >= 20 && (s.includes('earer') || s.includes('EARER'))) bits |= 1 << 2;
  if (
    len >= 20 &&
    st.upper >= 8 &&
    (s.includes('AKIA') || s.includes('ASIA') || s.includes('ABIA') || s.includes('ACCA'))
  ) {
    bits |= 1 << 3;
  }
  if (
    len >= 40 &&
    ((hints & HINT_SECRET) !== 0 ||
      s.includes('ecret') ||
      s.includes('ECRET') ||
      s.includes('SecretAccessKey'))
  ) {
    bits |= 1 << 4;
  }
  if (st.at > 0 && st.dots > 0) bits |= 1 << 5;
  if (len >= 15 && st.digits >= 6 && st.ibanStart) {
    bits |= 1 << 6;
  }
  if (st.doubleColon || st.colons >= 6) bits |= 1 << 7;
  if (st.dots >= 3 && st.digits >= 4) bits |= 1 << 8;
  const run = st.maxRun;
  if (run >= 12) bits |= 1 << 9;
  if (
    (run >= 9 &&
      (st.dashes >= 2 ||
        st.spaces >= 2 ||
        s.includes('ss') ||
        s.includes('SS') ||
        s.includes('ECURITY') ||
        s.includes('ecurity'))) ||
    ((hints & HINT_SSN) !== 0 && len === 9)
  ) {
    bits |= 1 << 10;
  }
  if (
    run >= 10 ||
    (run >= 7 &&
      (st.plus > 0 ||
        (hints & HINT_PHONE) !== 0 ||
        // A label is a word, then a space or a colon, then the number.
        ((st.spaces > 0 || st.colons > 0) &&
          st.length - st.digits - st.spaces >= 3 &&
          PHONE_WORD_RE.test(s))))
  ) {
    bits |= 1 << 11;
  }
  return bits;
}

/**
 * In the order they run; `candidates` sets bit i for entry i. Phones depend on the target's default
 * region (`masking.phoneRegion`); everything else is the same for every target.
 */
export function createDetectors(options: { phoneRegion?: string } = {}): readonly Detector[] {
  return [
    pem,
    jwt,
    bearer,
    awsAccessKey,
    awsSecretKey,
    email,
    iban,
    ipv6,
    ipv4,
    card,
    ssn,
    phoneDetector(options.phoneRegion ?? 'US'),
  ];
}

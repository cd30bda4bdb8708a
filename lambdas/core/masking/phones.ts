/**
 * Phone numbers: one global pattern finds phone-shaped runs of digits (an optional `+`, digit
 * groups joined by single spaces, dots, dashes, slashes or parentheses, an optional extension);
 * then each candidate is decided, cheapest rule first:
 *
 * 1. International (`+`, or the `00` / `011` international prefixes): a calling code that
 *    libphonenumber knows and 8–15 digits in all (ITU E.164).
 * 2. Shapes only phones are written in: NANP `(555) 123-4567`, `555-123-4567`, `555.123.4567`
 *    with one separator throughout and an area code that can exist; UK and French national
 *    groupings. These need no library call.
 * 3. A phone label right before (`Phone:`, `call me on`, `fax`) or right after (`-Office`,
 *    ` mobile`), or a key/column named like a phone: any 7–15 digits that are not a date.
 * 4. Anything else with separators: libphonenumber's validity check (full `max` metadata: number
 *    ranges, not just lengths) in the target's default region, or, for numbers written with a
 *    trunk `0`, in the regions that write them so.
 *
 * Bare digit strings with no label are never phones: they are as likely ids, amounts or
 * timestamps. libphonenumber costs tens of microseconds a call, so it only sees what the cheap
 * rules could not decide, and its answers are cached per distinct candidate.
 */
import {
  getCountries,
  getCountryCallingCode,
  isSupportedCountry,
  parsePhoneNumberFromString,
  type CountryCode,
} from 'libphonenumber-js/max';

/** Replaces one found value (and counts it). */
export interface PhoneEmitter {
  emit(type: 'PHONE', raw: string): string;
}

/** Calling codes in use, from libphonenumber's metadata (1–3 digits). */
const CALLING_CODES: ReadonlySet<string> = new Set(getCountries().map((c) => getCountryCallingCode(c)));

/**
 * Regions where national numbers start with a trunk `0`, tried (after the default region) for a
 * `0…` number no cheap rule decides.
 */
const TRUNK_ZERO_REGIONS: readonly CountryCode[] = [
  'GB',
  'DE',
  'FR',
  'NL',
  'BE',
  'AT',
  'CH',
  'SE',
  'AU',
  'ZA',
  'IN',
  'PK',
  'BR',
  'TR',
];

// Groups of digits joined by exactly one separator (a space, `.`, `-`, `/`, or a parenthesis
// with an optional space), so every digit belongs to one group and the scan stays linear.
const CANDIDATE_WIDE_RE =
  /(?<![\p{L}\p{N}_+.\-/@#])(?:\+ ?|\()?\d{1,15}(?:(?:[ .\-/]|[ .-]?\(|\)[ .-]?)\d{1,15}){0,8}\)?(?:(?: ?(?:x|ext\.?|extension) ?|#)\d{1,6})?/gu;
/** The same on ASCII text, without the Unicode classes (cheaper). */
const CANDIDATE_RE =
  /(?<![A-Za-z0-9_+.\-/@#])(?:\+ ?|\()?\d{1,15}(?:(?:[ .\-/]|[ .-]?\(|\)[ .-]?)\d{1,15}){0,8}\)?(?:(?: ?(?:x|ext\.?|extension) ?|#)\d{1,6})?/g;

/** `2024-01-15`, `15/01/2024`, `15.01.24`, `2024 01 15`: a date, whatever the label says. */
const DATE_RE = /^(?:\d{4}([-./ ])\d{1,2}\1\d{1,2}|\d{1,2}([-./ ])\d{1,2}\2(?:\d{4}|\d{2}))$/;

const DATE_HEAD_RE = /^\d{4}([-./])\d{1,2}\1\d{1,2}(?!\d)/;

const EXT_RE = /(?: ?(?:x|ext\.?|extension) ?|#)\d{1,6}$/;

// NANP: area [2-9]xx, one separator throughout, optional `1` prefix; or a parenthesised area.
const NANP_RE =
  /^(?:1[ .-]?)?(?:\([2-9]\d{2}\) ?\d{3}[ .-]?\d{4}|[2-9]\d{2}([ .-])\d{3}\1\d{4}|\([2-9]\d{2}\)\d{3}-\d{4})$/;
// UK national (0 + 10 digits as UK numbers are grouped), French national (0X XX XX XX XX).
const UK_FR_RE =
  /^(?:0[1-9](?:\d \d{4} \d{4}|\d{2} \d{3} \d{4}|\d{3} \d{6}|\d{3} \d{3} \d{3})|\(0[1-9]\d{1,3}\) ?\d{3,4} ?\d{3,4}|0[1-9]([ .])\d{2}(?:\1\d{2}){3})$/;

/** A label just before the number, looked for in the 32 characters before it. */
const LABEL_BEFORE_RE =
  /(?:phone|mobile|cell|tel|telephone|fax|desk|office|home|work|whatsapp|sms|text me|call(?:ed)?(?: me)?|dial|contact|reach(?: me)?|ring|registered|answering)\b[^\p{L}\p{N}\n]{0,3}(?:(?:at|on|is|no\.?|nr\.?|#|number)[^\p{L}\p{N}\n]{0,3})?\n?$/iu;
/** A label just after it: `082 490 1693-Office`, `416 60 039 office`, `(mobile)`. */
const LABEL_AFTER_RE = /^[ \t]?[-(,]?[ \t]?(?:office|fax|mobile|cell|home|work|desk|tel|phone)\b/i;

const CACHE_LIMIT = 10_000;
/**
 * libphonenumber calls one text may cost. Past it, an undecided candidate is taken as a phone:
 * padding a text with junk numbers must not buy a real one a way out unmasked.
 */
const LIBRARY_BUDGET = 200;
/** A phone's groups after the first have 2+ digits (`+1`, `1-`, `(0)` lead; none trail short). */
const MIXED_SEPARATORS_RE = /([ .\-/]).*(?!\1)[ .\-/]/;
const NANP_GROUPING_RE = /^\(?\d{3}\)?[.-]\d{3}[.-]\d{4}$/;
const SHORT_INNER_GROUP_RE = /[ .\-/)]\d(?!\d)/;

function countDigits(s: string, end = s.length): number {
  let n = 0;
  for (let i = 0; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) n++;
  }
  return n;
}

function digitsOf(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) out += s[i];
  }
  return out;
}

function isWordCode(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c > 127;
}

/** `+41 (0)69…`: the `(0)` is a trunk prefix dropped when dialling from abroad. */
function internationalDigits(body: string): string {
  return digitsOf(body.replace('(0)', ''));
}

function knownCallingCode(digits: string): boolean {
  return (
    CALLING_CODES.has(digits.slice(0, 1)) ||
    CALLING_CODES.has(digits.slice(0, 2)) ||
    CALLING_CODES.has(digits.slice(0, 3))
  );
}

export class PhoneDetector {
  readonly type = 'PHONE' as const;
  readonly #region: CountryCode;
  readonly #regions: readonly CountryCode[];
  readonly #cache = new Map<string, boolean>();
  #budget = 0;

  constructor(region: string = 'US') {
    const upper = region.toUpperCase();
    if (!isSupportedCountry(upper)) throw new Error(`unknown phone region ${JSON.stringify(region)}`);
    this.#region = upper;
    this.#regions = [upper, ...TRUNK_ZERO_REGIONS.filter((r) => r !== upper)];
  }

  apply(s: string, em: PhoneEmitter, labelled: boolean, wide = true): string {
    const re = wide ? CANDIDATE_WIDE_RE : CANDIDATE_RE;
    re.lastIndex = 0;
    this.#budget = LIBRARY_BUDGET;
    let out = '';
    let last = 0;
    /** Where a failed candidate's scan resumed: candidates from there get the cheap rules only. */
    let resumedAt = -1;
    let m: RegExpExecArray | null;
    while ((m = re.exec(s)) !== null) {
      const start = m.index;
      if (m[0].length < 7) continue;
      // `10:30 555…` is fine; `12:30:45` is a time, not the tail of a number.
      if (s.charCodeAt(start - 1) === 58 && isDigit(s.charCodeAt(start - 2))) continue;
      // `2024-01-15 10:30`: a date, and what follows it is a time; neither is a phone.
      const c4 = m[0].charCodeAt(4);
      const date = c4 === 45 || c4 === 46 || c4 === 47 ? DATE_HEAD_RE.exec(m[0]) : null;
      if (date !== null) {
        re.lastIndex = start + date[0].length;
        continue;
      }
      let cand = m[0];
      // A trailing `)` that opened nowhere belongs to the sentence.
      if (cand.endsWith(')') && !cand.includes('(')) cand = cand.slice(0, -1);
      // A number next to another (`order 12345 555-123-4567`, `555-123-4567 12345`, `… 10:30`)
      // joins it through a separator: give back trailing groups, then retry from the next group.
      // Only a candidate that starts at a token may cost a library call; parts get the cheap rules.
      let cheapOnly = start === resumedAt;
      while (!this.#bounded(s, start + cand.length) || !this.#isPhone(s, cand, start, labelled, cheapOnly)) {
        cheapOnly = true;
        const cut = lastSeparator(cand);
        if (cut <= 0 || countDigits(cand, cut) < 7) {
          cand = '';
          break;
        }
        cand = cand.slice(0, cut);
      }
      if (cand === '') {
        const next = firstSeparator(m[0]);
        if (next > 0) {
          // Past the separator (and an opening parenthesis) to the next group's first digit.
          let j = start + next + 1;
          while (j < s.length && !isDigit(s.charCodeAt(j))) j++;
          re.lastIndex = j;
          resumedAt = j;
        }
        continue;
      }
      const end = start + cand.length;
      out += s.slice(last, start) + em.emit('PHONE', cand);
      last = end;
      re.lastIndex = end;
    }
    return last === 0 ? s : out + s.slice(last);
  }

  /** The character after a candidate ends it: not a letter, digit or `_`, not `.5`, `-5` or `:30`. */
  #bounded(s: string, end: number): boolean {
    const next = s.charCodeAt(end);
    if (isWordCode(next)) return false;
    if ((next === 46 || next === 45 || next === 58) && isDigit(s.charCodeAt(end + 1))) return false;
    return true;
  }

  #isPhone(s: string, cand: string, start: number, labelled: boolean, cheapOnly: boolean): boolean {
    const ext = hasExtensionMark(cand) ? EXT_RE.exec(cand) : null;
    const body = ext === null ? cand : cand.slice(0, ext.index);
    if (body.charCodeAt(0) === 43 /* + */) {
      // E.164: a calling code never starts with 0, and 15 digits is the most there are.
      const d = countDigits(body) - (body.includes('(0)') ? 1 : 0);
      const first = body.charCodeAt(body.charCodeAt(1) === 32 ? 2 : 1);
      return d >= 8 && d <= 15 && first !== 48;
    }
    const n = countDigits(body);
    if (n < 7 || n > 15) return false;
    if (DATE_RE.test(body)) return false;
    if (labelled) return true;
    if (body.startsWith('00') || body.startsWith('011')) {
      const d = internationalDigits(body).slice(body.startsWith('00') ? 2 : 3);
      if (d.length >= 8 && d.length <= 15 && knownCallingCode(d)) return true;
    }
    if (n >= 10 && (NANP_RE.test(body) || UK_FR_RE.test(body))) return true;
    if (this.#labelled(s, start, start + cand.length)) return true;
    if (body.length === n) return false; // bare digits: ids, amounts, timestamps
    if (cheapOnly || SHORT_INNER_GROUP_RE.test(body) || MIXED_SEPARATORS_RE.test(body)) return false;
    // `057-326-4130`: three-three-four with dashes or dots is how NANP writes numbers, and the
    // NANP rule above has said no.
    if (NANP_GROUPING_RE.test(body)) return false;
    return this.#valid(body);
  }

  #labelled(s: string, start: number, end: number): boolean {
    if (start > 0 && LABEL_BEFORE_RE.test(s.slice(Math.max(0, start - 32), start))) return true;
    return end < s.length && LABEL_AFTER_RE.test(s.slice(end, end + 12));
  }

  /**
   * libphonenumber's validity check, cached per distinct candidate: valid in a region, and
   * grouped as that region writes it (every break between the candidate's digit groups is a
   * break in libphonenumber's national or international format, counted from the end), so
   * `181-46-1967-56` is not `(814) 619-6756` with a `1` in front.
   */
  #valid(body: string): boolean {
    let v = this.#cache.get(body);
    if (v !== undefined) return v;
    if (this.#budget <= 0) return true;
    v = false;
    // Trunk-zero regions only for numbers of 10+ digits grouped with spaces or parentheses, as
    // they write them; dashed and dotted groups are read in the default region alone.
    const trunk =
      (body.charCodeAt(0) === 48 || body.startsWith('(0')) && !/[-./]/.test(body) && countDigits(body) >= 10;
    const regions = trunk ? this.#regions : [this.#region];
    const breaks = breaksFromEnd(body);
    for (const region of regions) {
      this.#budget--;
      const p = parsePhoneNumberFromString(body, region);
      if (p === undefined || !p.isValid()) continue;
      const allowed = new Set([
        ...breaksFromEnd(p.formatNational()),
        ...breaksFromEnd(p.formatInternational()),
        p.nationalNumber.length,
      ]);
      if (breaks.every((b) => allowed.has(b))) {
        v = true;
        break;
      }
    }
    if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
    this.#cache.set(body, v);
    return v;
  }
}

/** Digit counts, from the end, at which one group of digits ends and another begins. */
function breaksFromEnd(s: string): number[] {
  const out: number[] = [];
  let digits = 0;
  let gap = false;
  for (let i = s.length - 1; i >= 0; i--) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (gap && digits > 0) out.push(digits);
      gap = false;
      digits++;
    } else gap = true;
  }
  return out;
}

/** Index of the last separator that can split a candidate into two numbers, or -1. */
function lastSeparator(cand: string): number {
  for (let i = cand.length - 1; i > 0; i--) {
    const c = cand.charCodeAt(i);
    if (c === 32 || c === 45 || c === 46 || c === 47 || c === 40) return i;
  }
  return -1;
}

function firstSeparator(cand: string): number {
  for (let i = 1; i < cand.length; i++) {
    const c = cand.charCodeAt(i);
    if (c === 32 || c === 45 || c === 46 || c === 47 || c === 40 || c === 41) return i;
  }
  return -1;
}

/** `x`, `e` (`ext`) or `#`: an extension may follow the number. */
function hasExtensionMark(cand: string): boolean {
  for (let i = cand.length - 2; i > 0; i--) {
    const c = cand.charCodeAt(i);
    if (c === 120 || c === 101 || c === 35) return true;
  }
  return false;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

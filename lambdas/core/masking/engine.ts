import {
  candidates,
  createDetectors,
  HINT_PHONE,
  HINT_SECRET,
  HINT_SSN,
  HINT_WIDE,
  scan,
  type Detector,
  type Emitter,
  type TextStats,
} from './detectors.js';
import { compileRule, findRule, type CompiledRule } from './rules.js';
import { Hasher, isMaskOutput, normalizeForHash, PARTIAL_TYPES, partialMask } from './strategies.js';
import {
  MASK_TYPES,
  type ColumnRef,
  type ColumnRule,
  type Masker,
  type MaskerOptions,
  type MaskCounts,
  type MaskRowsOptions,
  type MaskStrategy,
  type MaskType,
} from './types.js';
import { cardValid, ssnValid } from './validators.js';

/** Nothing a detector finds is shorter (`a@b.co`). */
const MIN_DETECTABLE_LENGTH = 6;
/** Masking converges in two passes in practice; the bound only guards against a pathological input. */
const MAX_PASSES = 4;
/**
 * Deeper values are replaced whole: recursion must not overflow on hostile input, and what is not
 * inspected must not leave unmasked.
 */
const MAX_DEPTH = 256;
const TOO_DEEP = 'TOO_DEEP';
const REDACTED = Object.fromEntries(MASK_TYPES.map((t) => [t, `[${t}]`])) as Record<MaskType, string>;

const SECRET_KEY_RE = /secret/;
// `ssn` as a word of the name (`ssn`, `customer_ssn`, `customerSsn`), not inside one (`classname`).
const SSN_KEY_RE = /(?:^|[^a-z])ssn(?:$|[^a-z])|social.?sec/;
const PHONE_KEY_RE = /phone|mobile|(?:^|[^a-z])(?:tel|fax|cell|msisdn)(?:$|[^a-z])/;

function hintsFor(name: string): number {
  const words = name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
  return (
    (SECRET_KEY_RE.test(words) ? HINT_SECRET : 0) |
    (SSN_KEY_RE.test(words) ? HINT_SSN : 0) |
    (PHONE_KEY_RE.test(words) ? HINT_PHONE : 0)
  );
}

function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  // A JSON `__proto__` key is data; plain assignment would swap the object's prototype instead.
  if (key === '__proto__') {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else target[key] = value;
}

function isPlainObject(v: object): boolean {
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

interface ColumnPlan {
  readonly rule?: ColumnRule;
  readonly hints: number;
}

class Engine implements Masker, Emitter {
  readonly #rules: readonly CompiledRule[];
  readonly #strategy: Readonly<Record<string, MaskStrategy>>;
  readonly #hasher: Hasher;
  readonly #detectors: readonly Detector[];
  readonly #hintCache = new Map<string, number>();
  readonly #stats: TextStats = {
    length: 0,
    digits: 0,
    maxRun: 0,
    upper: 0,
    spaces: 0,
    wide: false,
    ibanStart: false,
    at: 0,
    dots: 0,
    dashes: 0,
    colons: 0,
    doubleColon: false,
    plus: 0,
  };
  /** The counts of the call in progress; every call is synchronous, so one accumulator will do. */
  #counts: MaskCounts = {};
  /** Values masked so far by this masker; tells a pass that found something from one that did not. */
  #found = 0;

  constructor(options: MaskerOptions) {
    this.#rules = (options.rules ?? []).map(compileRule);
    this.#strategy = { ...options.strategyByType };
    this.#hasher = new Hasher(options.hashKey);
    this.#detectors = createDetectors({ phoneRegion: options.phoneRegion });
  }

  maskText(text: string): { text: string; byType: MaskCounts } {
    this.#counts = {};
    const out = this.#text(text, 0);
    return { text: out, byType: this.#counts };
  }

  maskValue(value: unknown): { value: unknown; byType: MaskCounts } {
    this.#counts = {};
    const out = this.#value(value, 0, 0);
    return { value: out, byType: this.#counts };
  }

  maskRows(
    columns: readonly ColumnRef[],
    rows: readonly Record<string, unknown>[],
    options: MaskRowsOptions = {},
  ): { rows: Record<string, unknown>[]; byType: MaskCounts } {
    this.#counts = {};
    const atSource = options.maskedAtSource === true;
    const plans = new Map<string, ColumnPlan>();
    for (const column of columns) {
      const rule = findRule(this.#rules, column);
      const existing = plans.get(column.name);
      // Rows are keyed by name: when two columns share one, a rule on either wins.
      if (existing === undefined || (existing.rule === undefined && rule !== undefined)) {
        plans.set(column.name, { rule, hints: hintsFor(column.name) });
      }
    }
    const out: Record<string, unknown>[] = new Array<Record<string, unknown>>(rows.length);
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r];
      const masked: Record<string, unknown> = {};
      for (const key of Object.keys(row)) {
        let plan = plans.get(key);
        if (plan === undefined) {
          plan = { rule: findRule(this.#rules, { name: key }), hints: hintsFor(key) };
          plans.set(key, plan);
        }
        const v = row[key];
        setOwn(
          masked,
          key,
          plan.rule ? this.#applyRule(plan.rule, v, atSource) : this.#value(v, plan.hints, 1),
        );
      }
      out[r] = masked;
    }
    return { rows: out, byType: this.#counts };
  }

  emit(type: MaskType, raw: string): string {
    this.#counts[type] = (this.#counts[type] ?? 0) + 1;
    this.#found++;
    switch (this.#strategy[type]) {
      case 'hash':
        return this.#hasher.token(type, normalizeForHash(type, raw));
      case 'partial':
        return PARTIAL_TYPES.has(type) ? partialMask(type, raw) : REDACTED[type];
      default:
        return REDACTED[type];
    }
  }

  #text(s: string, hints: number): string {
    let out = s;
    // A replacement changes its neighbours' context (`…534+8246…` becomes `…[PHONE]+8246…`), so
    // one pass can leave something the next pass would find. Passes repeat until one finds
    // nothing, which is what makes masking masked output a no-op; tokens are short and digit-free,
    // so the extra pass is cheap.
    for (let pass = 0; pass < MAX_PASSES; pass++) {
      const before = this.#found;
      out = this.#pass(out, hints);
      if (this.#found === before) break;
    }
    return out;
  }

  #pass(s: string, hints: number): string {
    if (s.length < MIN_DETECTABLE_LENGTH) return s;
    const st = this.#stats;
    scan(s, st);
    let bits = candidates(s, st, hints);
    if (bits === 0) return s;
    let out = s;
    const h = st.wide ? hints | HINT_WIDE : hints;
    for (let i = 0; bits !== 0; i++, bits >>>= 1) {
      if ((bits & 1) !== 0) out = this.#detectors[i].apply(out, this, h);
    }
    return out;
  }

  #number(n: number | bigint, hints: number): unknown {
    // Integers only: a card or an SSN is never written with a fraction or an exponent.
    if (typeof n === 'number' && !Number.isSafeInteger(n)) return n;
    if (n < 0) return n;
    if (n >= 100_000_000_000) {
      const digits = String(n);
      if (digits.length <= 19 && cardValid(digits)) return this.emit('CARD', digits);
    } else if ((hints & HINT_SSN) !== 0 && n >= 1_000_000 && n < 1_000_000_000) {
      const digits = String(n).padStart(9, '0');
      if (ssnValid(digits.slice(0, 3), digits.slice(3, 5), digits.slice(5))) {
        return this.emit('SSN', digits);
      }
    }
    return n;
  }

  #hints(key: string): number {
    let h = this.#hintCache.get(key);
    if (h === undefined) {
      h = hintsFor(key);
      if (this.#hintCache.size < 10_000) this.#hintCache.set(key, h);
    }
    return h;
  }

  #value(v: unknown, hints: number, depth: number): unknown {
    switch (typeof v) {
      case 'string':
        return this.#text(v, hints);
      case 'number':
      case 'bigint':
        return this.#number(v, hints);
      case 'object':
        break;
      default:
        return v;
    }
    if (v === null) return v;
    if (depth >= MAX_DEPTH) {
      this.#counts[TOO_DEEP] = (this.#counts[TOO_DEEP] ?? 0) + 1;
      return `[${TOO_DEEP}]`;
    }
    if (Array.isArray(v)) {
      const arr = v as unknown[];
      const out = new Array<unknown>(arr.length);
      for (let i = 0; i < arr.length; i++) out[i] = this.#value(arr[i], hints, depth + 1);
      return out;
    }
    if (v instanceof Date || ArrayBuffer.isView(v)) return v;
    if (!isPlainObject(v) && typeof (v as { toJSON?: unknown }).toJSON === 'function') {
      return this.#value((v as { toJSON(): unknown }).toJSON(), hints, depth + 1);
    }
    const obj = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(obj)) {
      // Keys are data too (`{"jane@example.com": 3}`); two keys masking alike keep the last value.
      setOwn(out, this.#text(key, 0), this.#value(obj[key], this.#hints(key), depth + 1));
    }
    return out;
  }

  #applyRule(rule: ColumnRule, v: unknown, atSource = false): unknown {
    if (v === null || v === undefined) return v;
    if (typeof v === 'string' && isMaskOutput(v)) {
      if (atSource) {
        const type = rule.type ?? 'COLUMN';
        this.#counts[type] = (this.#counts[type] ?? 0) + 1;
      }
      return v;
    }
    let raw: string;
    if (typeof v === 'string') raw = v;
    else if (typeof v === 'object') {
      try {
        raw = JSON.stringify(v) ?? String(v);
      } catch {
        raw = String(v);
      }
    } else raw = String(v);
    const type = rule.type ?? this.#typeOf(raw);
    this.#counts[type] = (this.#counts[type] ?? 0) + 1;
    switch (rule.strategy) {
      case 'null':
        return null;
      case 'hash':
        return this.#hasher.token(type, normalizeForHash(type, raw));
      case 'partial':
        return partialMask(type, raw);
      default:
        return `[${type}]`;
    }
  }

  /** The one type the detectors find in a value, else `COLUMN`. */
  #typeOf(raw: string): string {
    const saved = this.#counts;
    this.#counts = {};
    this.#text(raw, 0);
    const found = Object.keys(this.#counts);
    this.#counts = saved;
    return found.length === 1 ? found[0] : 'COLUMN';
  }
}

export function createMasker(options: MaskerOptions): Masker {
  return new Engine(options);
}

export function mergeCounts(a: Readonly<MaskCounts>, b: Readonly<MaskCounts>): MaskCounts {
  const out: MaskCounts = { ...a };
  for (const [k, n] of Object.entries(b)) out[k] = (out[k] ?? 0) + n;
  return out;
}

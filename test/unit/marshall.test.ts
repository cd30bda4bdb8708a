/**
 * marshallItem must say exactly what util-dynamodb's marshall says (or refuse what it refuses), for
 * the request path's plain items and for anything else a caller might hand it.
 */
import { NumberValue } from '@aws-sdk/lib-dynamodb';
import { marshall, type marshallOptions } from '@aws-sdk/util-dynamodb';
import { describe, expect, it } from 'vitest';
import { marshallItem } from '../../lambdas/adapters/marshall.js';
import { Rng } from '../fixtures/masking/corpus.js';

const REQUEST_PATH: marshallOptions = {
  removeUndefinedValues: true,
  convertClassInstanceToMap: true,
  allowImpreciseNumbers: true,
  convertTopLevelContainer: false,
};
const OPTION_SETS: marshallOptions[] = [
  REQUEST_PATH,
  { convertTopLevelContainer: false },
  { removeUndefinedValues: true },
  { convertEmptyValues: true, removeUndefinedValues: true },
  { allowImpreciseNumbers: false, removeUndefinedValues: true, convertClassInstanceToMap: true },
];

/** What marshall answers: the map, or the message it throws. */
function sdk(item: object, options: marshallOptions): unknown {
  try {
    return { ok: marshall(item, { ...options, convertTopLevelContainer: false }) };
  } catch (error) {
    return { error: (error as Error).message };
  }
}
function ours(item: object, options: marshallOptions): unknown {
  try {
    return { ok: marshallItem(item, options) };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

class Point {
  x = 1;
  y = 'two';
  method(): number {
    return 3;
  }
}

const EDGES: Record<string, unknown>[] = [
  { empty: '', zero: 0, negZero: -0, neg: -12.5, big: 1e21, tiny: 5e-324, frac: 0.1 + 0.2 },
  { unsafe: 2 ** 53 + 2, unsafeNeg: -(2 ** 60), maxSafe: Number.MAX_SAFE_INTEGER },
  { nan: NaN },
  { inf: Infinity },
  { negInf: -Infinity },
  { t: true, f: false, n: null, u: undefined, fn: () => 1 },
  { list: [1, 'a', null, undefined, () => 2, [], {}, [[['deep']]]] },
  { list: [undefined] },
  { emptyList: [], emptyMap: {}, nested: { a: { b: { c: [] } } } },
  { set: new Set(['a', 'b']), nums: new Set([1, 2]), empty: new Set() },
  {
    map: new Map<string, unknown>([
      ['k', 1],
      ['u', undefined],
    ]),
  },
  { bytes: new Uint8Array([1, 2, 3]), buf: Buffer.from('hi'), emptyBytes: new Uint8Array() },
  { bigint: 12345678901234567890n, nv: NumberValue.from('1234567890123456789012') },
  { date: new Date(0), point: new Point(), boxed: new String('s'), boxedN: new Number(3) },
  { constructor: 'not a function', __proto__x: 1, 'weird key "\\\u0000': 'v' },
  Object.assign(Object.create(null) as object, { nullProto: { a: 1 } }),
  { nullProtoInside: Object.assign(Object.create(null) as object, { a: [1, { b: 2 }] }) },
  { strings: ['quote "', 'back \\', 'ctl \u0001', 'sep \u2028', 'astral 🙂', 'lone \ud800'] },
];

/** A deterministic generator of plain and not-so-plain values. */
function* generated(count: number): Generator<Record<string, unknown>> {
  const rng = new Rng(42);
  const rnd = () => rng.next();
  const pick = <T>(xs: readonly T[]): T => rng.pick(xs);
  const leaf = (): unknown =>
    pick<() => unknown>([
      () => '',
      () =>
        String.fromCharCode(
          ...Array.from({ length: 1 + Math.floor(rnd() * 12) }, () => Math.floor(rnd() * 0x2fff)),
        ),
      () => Math.floor(rnd() * 1e6) - 5e5,
      () => rnd() * 1e300,
      () => rnd() < 0.5,
      () => null,
      () => undefined,
      () => new Set([String(rnd())]),
      () => new Uint8Array([Math.floor(rnd() * 256)]),
      () => 2 ** 53 + Math.floor(rnd() * 1000),
    ])();
  const value = (depth: number): unknown => {
    const r = rnd();
    if (depth > 4 || r < 0.5) return leaf();
    if (r < 0.75) return Array.from({ length: Math.floor(rnd() * 4) }, () => value(depth + 1));
    return Object.fromEntries(
      Array.from({ length: Math.floor(rnd() * 4) }, (_, i) => [
        `k${i}${pick(['', 'é', ' ', '#'])}`,
        value(depth + 1),
      ]),
    );
  };
  for (let i = 0; i < count; i++) {
    yield Object.fromEntries(
      Array.from({ length: 1 + Math.floor(rnd() * 6) }, (_, k) => [`a${k}`, value(0)]),
    );
  }
}

describe('marshallItem', () => {
  for (const [i, options] of OPTION_SETS.entries()) {
    it(`answers as marshall does on every edge (options set ${i})`, () => {
      for (const item of EDGES) expect(ours(item, options)).toEqual(sdk(item, options));
    });
    it(`answers as marshall does on 2,000 generated items (options set ${i})`, () => {
      for (const item of generated(2_000)) expect(ours(item, options)).toEqual(sdk(item, options));
    });
  }

  it('marshals a request-path item to the attribute map DynamoDB expects', () => {
    expect(
      marshallItem(
        {
          id: 'r_1',
          version: 2,
          groups: ['a', 'b'],
          decision: { allowed: true, errors: [] },
          note: undefined,
        },
        REQUEST_PATH,
      ),
    ).toEqual({
      id: { S: 'r_1' },
      version: { N: '2' },
      groups: { L: [{ S: 'a' }, { S: 'b' }] },
      decision: { M: { allowed: { BOOL: true }, errors: { L: [] } } },
    });
  });

  it('refuses what marshall refuses, with its message', () => {
    expect(() => marshallItem({ n: NaN }, REQUEST_PATH)).toThrow('Special numeric value NaN is not allowed');
    expect(() => marshallItem({ u: undefined }, { convertTopLevelContainer: false })).toThrow(
      /removeUndefinedValues/,
    );
    expect(() => marshallItem({ p: new Point() }, { removeUndefinedValues: true })).toThrow(
      /convertClassInstanceToMap/,
    );
  });
});

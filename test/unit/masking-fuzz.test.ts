import { describe, expect, it } from 'vitest';
import { createMasker, type Masker, type MaskStrategy } from '../../lambdas/core/masking/index.js';
import {
  awsSecret,
  cardDigits,
  formatCard,
  ibanCompact,
  jwtToken,
  pemKey,
  Rng,
  uuid,
} from '../fixtures/masking/corpus.js';

const ITERATIONS = 3000;

const ALPHABETS = [
  '0123456789',
  '0123456789 -.()+/',
  '0123456789abcdefABCDEF:.',
  'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-.',
  'aA@.-_+%0 ',
  '-----BEGIN PRIVATE KEY\n',
  'eyJ.0Aa_-',
  '*[]hmac:0123456789abcdef ',
  '\u0000\u001f\u007f\u00e9\u4e2d\ud83d\ude00\ud800\udc00\u200b\u2028 \t\n\r"\\',
];

function noise(r: Rng): string {
  let s = '';
  for (let parts = r.int(1, 4); parts > 0; parts--) s += r.chars(r.pick(ALPHABETS), r.int(0, 60));
  return s;
}

/** Values that must not survive masking, each with the text to embed. */
function positive(r: Rng): { embed: string; secret: string } {
  return r.pick([
    () => {
      const c = formatCard(r, cardDigits(r));
      return { embed: c, secret: c };
    },
    () => {
      const e = `jane.${r.digits(4)}@example.com`;
      return { embed: e, secret: e };
    },
    () => {
      const e = `u${r.digits(6)}@mail.example.org`;
      return { embed: e, secret: e };
    },
    () => {
      const p = `+1 ${r.int(2, 9)}${r.digits(2)} ${r.digits(3)} ${r.digits(4)}`;
      return { embed: p, secret: p };
    },
    () => {
      const s = `${r.int(100, 665)}-${r.int(10, 99)}-${r.int(1000, 9999)}`;
      return { embed: s, secret: s };
    },
    () => {
      const i = ibanCompact(r);
      return { embed: i, secret: i };
    },
    () => {
      const k = 'AKIA' + r.chars('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16);
      return { embed: k, secret: k };
    },
    () => {
      const k = awsSecret(r);
      return { embed: `aws_secret_access_key=${k}`, secret: k };
    },
    () => {
      const j = jwtToken(r);
      return { embed: j, secret: j.split('.')[1] };
    },
    () => {
      const t = 'tok' + r.chars('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', 30) + '9';
      return { embed: `Bearer ${t}`, secret: t };
    },
    () => {
      const k = pemKey(r);
      return { embed: k, secret: k.split('\n')[1] };
    },
    () => {
      const ip = `${r.int(1, 223)}.${r.int(0, 255)}.${r.int(0, 255)}.${r.int(1, 254)}`;
      return { embed: ip, secret: ip };
    },
    () => {
      const ip = `2001:db8:${r.int(1, 0xffff).toString(16)}::${r.int(1, 0xffff).toString(16)}`;
      return { embed: ip, secret: ip };
    },
  ])();
}

function maskers(): Record<MaskStrategy, Masker> {
  const all = (s: MaskStrategy) =>
    Object.fromEntries(
      [
        'CARD',
        'EMAIL',
        'PHONE',
        'SSN',
        'IBAN',
        'AWS_ACCESS_KEY',
        'AWS_SECRET_KEY',
        'JWT',
        'BEARER_TOKEN',
        'PRIVATE_KEY',
        'IPV4',
        'IPV6',
      ].map((t) => [t, s]),
    );
  return {
    redact: createMasker({ hashKey: 'fuzz' }),
    partial: createMasker({ hashKey: 'fuzz', strategyByType: all('partial') }),
    hash: createMasker({ hashKey: 'fuzz', strategyByType: all('hash') }),
    null: createMasker({ hashKey: 'fuzz', strategyByType: all('null') }),
  };
}

describe('masking under fuzzed input', () => {
  const byStrategy = maskers();

  it.each(Object.keys(byStrategy) as MaskStrategy[])(
    'never throws on random text and is idempotent (%s)',
    (strategy) => {
      const m = byStrategy[strategy];
      const r = new Rng(1000 + strategy.length);
      for (let i = 0; i < ITERATIONS; i++) {
        const input = noise(r);
        const once = m.maskText(input);
        const twice = m.maskText(once.text);
        expect(twice.text, JSON.stringify(input)).toBe(once.text);
        expect(twice.byType, JSON.stringify(input)).toEqual({});
      }
    },
  );

  it.each(Object.keys(byStrategy) as MaskStrategy[])(
    'never lets an embedded value through, whatever surrounds it (%s)',
    (strategy) => {
      const m = byStrategy[strategy];
      const r = new Rng(2000 + strategy.length);
      for (let i = 0; i < ITERATIONS; i++) {
        const parts: string[] = [];
        const secrets: string[] = [];
        for (let k = r.int(1, 4); k > 0; k--) {
          const p = positive(r);
          parts.push(noise(r), p.embed);
          if (p.secret !== '') secrets.push(p.secret);
        }
        parts.push(noise(r));
        // Separators keep a value from fusing with random neighbours into a longer token.
        const input = parts.join(r.pick([' ', '\n', ' | ', ', ']));
        const once = m.maskText(input);
        for (const secret of secrets) expect(once.text, JSON.stringify(input)).not.toContain(secret);
        const twice = m.maskText(once.text);
        expect(twice.text).toBe(once.text);
        expect(twice.byType).toEqual({});
      }
    },
  );

  it('never throws on random JSON-like values and rows, and is idempotent', () => {
    const r = new Rng(3000);
    const m = createMasker({
      hashKey: 'fuzz',
      rules: [
        { column: 'a', strategy: 'redact' },
        { column: 'b', strategy: 'partial' },
        { column: 'c', strategy: 'hash' },
        { column: 'd', strategy: 'null' },
      ],
    });
    const leaf = (): unknown =>
      r.pick([
        () => noise(r),
        () => r.int(-1e9, 1e9),
        () => Number(cardDigits(r).slice(0, 16)),
        () => r.next() * 1e20,
        () => null,
        () => r.bool(),
        () => uuid(r),
        () => positive(r).embed,
      ])();
    const value = (depth: number): unknown => {
      if (depth > 4 || r.bool(0.4)) return leaf();
      if (r.bool()) return Array.from({ length: r.int(0, 4) }, () => value(depth + 1));
      const o: Record<string, unknown> = {};
      for (let k = r.int(0, 4); k > 0; k--)
        o[r.pick(['ssn', 'secret', 'x', '__proto__', noise(r)])] = value(depth + 1);
      return o;
    };
    const columns = ['a', 'b', 'c', 'd', 'e'].map((name) => ({ name }));
    for (let i = 0; i < ITERATIONS; i++) {
      const v = value(0);
      const once = m.maskValue(v);
      expect(m.maskValue(once.value)).toEqual({ value: once.value, byType: {} });

      const row = Object.fromEntries(columns.map((c) => [c.name, value(2)]));
      const rows = m.maskRows(columns, [row]);
      expect(m.maskRows(columns, rows.rows)).toEqual({ rows: rows.rows, byType: {} });
    }
  });

  it('stays linear on long hostile strings (each completes; the suite timeout is the backstop)', () => {
    const m = byStrategy.redact;
    const big = 200_000;
    const hostile = [
      '1'.repeat(big),
      '1 '.repeat(big / 2),
      '1-'.repeat(big / 2),
      'a'.repeat(big) + '@',
      'a.'.repeat(big / 2) + '@b',
      'a@' + 'b.'.repeat(big / 2),
      ':'.repeat(big),
      'f:'.repeat(big / 2),
      '1.'.repeat(big / 2),
      '+1'.repeat(big / 2),
      '-----BEGIN PRIVATE KEY-----'.repeat(2000),
      'eyJ'.repeat(big / 3) + '.a.b',
      'Bearer '.repeat(big / 7),
      'AKIA'.repeat(big / 4),
      'secret ' + 'A1'.repeat(big / 2),
      'GB82 '.repeat(big / 5),
    ];
    for (const h of hostile) {
      const r = m.maskText(h);
      expect(typeof r.text).toBe('string');
    }
  });
});

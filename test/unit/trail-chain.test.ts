import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  eventHash,
  GENESIS_HASH,
  sealEvent,
  verifyChain,
} from '../../lambdas/core/trail-chain.js';
import type { StoredTrailEvent, TrailEvent } from '../../lambdas/core/trail.js';

const base = (n: number, extra: Partial<TrailEvent> = {}): TrailEvent => ({
  type: 'request_received',
  at: `2026-01-01T00:00:0${n}.000Z`,
  requestId: `r_${n}`,
  principal: 'User::"alice"',
  principalName: 'alice',
  target: 'demo',
  statement: `SELECT ${n}`,
  detail: { classification: { class: 'read' }, rows: [{ a: n }] },
  ...extra,
});

function chain(count: number): StoredTrailEvent[] {
  const out: StoredTrailEvent[] = [];
  for (let i = 1; i <= count; i++) {
    out.push(sealEvent('s1', i, out.at(-1)?.hash ?? GENESIS_HASH, base(i)));
  }
  return out;
}

describe('canonical JSON', () => {
  it('sorts keys at every depth and drops undefined members', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, 'x', null], c: true }, u: undefined })).toBe(
      '{"a":{"c":true,"d":[1,"x",null]},"b":1}',
    );
  });

  it('gives the same text whatever order the keys were written in', () => {
    expect(canonicalJson({ x: 1, y: { p: 2, q: 3 } })).toBe(canonicalJson({ y: { q: 3, p: 2 }, x: 1 }));
  });

  it('refuses values JSON cannot represent faithfully', () => {
    expect(() => canonicalJson(Number.NaN)).toThrow(TypeError);
    expect(() => canonicalJson({ f: () => 1 })).toThrow(TypeError);
  });
});

describe('trail hash chain', () => {
  it('chains the first event to the genesis hash and each next one to its predecessor', () => {
    const events = chain(3);
    expect(events[0].prevHash).toBe(GENESIS_HASH);
    expect(events[1].prevHash).toBe(events[0].hash);
    expect(events[2].prevHash).toBe(events[1].hash);
    expect(events[0].hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('covers session, seq and prevHash, so moving an event elsewhere changes its hash', () => {
    const [e] = chain(1);
    expect(eventHash({ ...e, seq: 2 })).not.toBe(e.hash);
    expect(eventHash({ ...e, sessionId: 's2' })).not.toBe(e.hash);
    expect(eventHash({ ...e, prevHash: 'f'.repeat(64) })).not.toBe(e.hash);
  });

  it('verifies an untouched chain, in any order it is read', () => {
    const events = chain(5);
    const result = verifyChain([...events].reverse(), { lastSeq: 5, lastHash: events[4].hash });
    expect(result).toMatchObject({ ok: true, events: 5, lastSeq: 5, problems: [] });
  });

  it('names an event whose content was altered', () => {
    const events = chain(4);
    events[1] = { ...events[1], statement: 'DROP TABLE customers' };
    const result = verifyChain(events);
    expect(result.ok).toBe(false);
    expect(result.firstProblem).toMatchObject({ kind: 'altered', seq: 2 });
    expect(result.problems).toHaveLength(1);
  });

  it('names an alteration deep inside the detail', () => {
    const events = chain(2);
    events[0] = { ...events[0], detail: { classification: { class: 'read' }, rows: [{ a: 999 }] } };
    expect(verifyChain(events).firstProblem).toMatchObject({ kind: 'altered', seq: 1 });
  });

  it('names the link when an altered event had its own hash recomputed', () => {
    const events = chain(3);
    const { hash: _h, ...rest } = { ...events[1], statement: 'SELECT secret' };
    events[1] = { ...rest, hash: eventHash(rest) };
    const result = verifyChain(events);
    expect(result.problems).toEqual([expect.objectContaining({ kind: 'link_broken', seq: 3 })]);
  });

  it('names a deleted event in the middle as missing', () => {
    const events = chain(5).filter((e) => e.seq !== 3);
    const result = verifyChain(events);
    expect(result.problems).toEqual([
      expect.objectContaining({ kind: 'missing', seq: 3, message: 'event 3 is missing' }),
    ]);
  });

  it('names a run of deleted events once, with its range', () => {
    const events = chain(6).filter((e) => e.seq < 2 || e.seq > 4);
    expect(verifyChain(events).problems).toEqual([
      expect.objectContaining({ kind: 'missing', seq: 2, toSeq: 4 }),
    ]);
  });

  it('names deleted events at the end through the session head', () => {
    const events = chain(5);
    const result = verifyChain(events.slice(0, 3), { lastSeq: 5, lastHash: events[4].hash });
    expect(result.problems).toEqual([expect.objectContaining({ kind: 'missing', seq: 4, toSeq: 5 })]);
  });

  it('names the first event missing when the trail starts late', () => {
    const events = chain(3).slice(1);
    expect(verifyChain(events).firstProblem).toMatchObject({ kind: 'missing', seq: 1 });
  });

  it('reports both an alteration and a deletion, first one first', () => {
    const events = chain(6);
    events[1] = { ...events[1], principalName: 'mallory' };
    const result = verifyChain(events.filter((e) => e.seq !== 5));
    expect(result.problems.map((p) => [p.kind, p.seq])).toEqual([
      ['altered', 2],
      ['missing', 5],
    ]);
    expect(result.firstProblem?.seq).toBe(2);
  });

  it('accepts a head that lags behind the events (its update happens after the writes)', () => {
    const events = chain(4);
    expect(verifyChain(events, { lastSeq: 2, lastHash: events[1].hash }).ok).toBe(true);
  });

  it('flags a last event that is not the one the head recorded', () => {
    const events = chain(3);
    expect(verifyChain(events, { lastSeq: 3, lastHash: 'a'.repeat(64) }).firstProblem).toMatchObject({
      kind: 'head_mismatch',
      seq: 3,
    });
  });
});

/** The first implementation of canonicalJson, kept as the specification the faster one must match byte for byte. */
function referenceCanonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonical JSON has no representation for ' + value);
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) {
        return `[${value.map((v) => (v === undefined ? 'null' : referenceCanonicalJson(v))).join(',')}]`;
      }
      const entries = Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${referenceCanonicalJson(v)}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonical JSON has no representation for a ${typeof value}`);
  }
}

describe('canonical JSON matches its first implementation byte for byte', () => {
  // A small deterministic generator (xorshift), so a failure names a reproducible seed.
  function generator(seed: number) {
    // Spread small seeds over the whole state (xorshift from a small state starts near zero).
    let x = Math.imul(seed, 0x9e3779b1) | 1;
    const next = () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) / 2 ** 32;
    };
    for (let i = 0; i < 8; i++) next();
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
    const strings = [
      '',
      'a',
      'B',
      'é',
      '\u00e9',
      'e\u0301',
      '\ud83d\ude00',
      '\ud800',
      '\u2028',
      '"\\\n\t',
      'ω',
      'Z',
      '_',
      '10',
      '9',
      'seq',
      'hash',
    ];
    const numbers = [
      0,
      -0,
      1,
      -1,
      0.1,
      1e21,
      1e-7,
      123456789012345680000,
      2 ** 53 + 2,
      -3.5,
      5e-324,
      Number.MAX_VALUE,
    ];
    const value = (depth: number): unknown => {
      const r = next();
      if (depth > 3 || r < 0.35) {
        return pick<unknown>([
          null,
          true,
          false,
          undefined,
          pick(strings),
          pick(strings) + pick(strings),
          pick(numbers),
        ]);
      }
      if (r < 0.6) {
        const arr: unknown[] = [];
        const n = Math.floor(next() * 5);
        for (let i = 0; i < n; i++) arr.push(value(depth + 1));
        if (next() < 0.1) arr.length += 2; // holes
        return arr;
      }
      const obj: Record<string, unknown> = {};
      const n = Math.floor(next() * 6);
      for (let i = 0; i < n; i++) obj[pick(strings) + (next() < 0.3 ? pick(strings) : '')] = value(depth + 1);
      return obj;
    };
    return value;
  }

  it('on thousands of generated values (key order by code unit, undefined, holes, -0, exponents, surrogates)', () => {
    const kinds = new Set<string>();
    for (let seed = 1; seed <= 3000; seed++) {
      const v = generator(seed)(0);
      if (v === undefined) {
        expect(() => canonicalJson(v)).toThrow(TypeError);
        continue;
      }
      const text = referenceCanonicalJson(v);
      expect(canonicalJson(v), `seed ${seed}`).toBe(text);
      if (text.includes(',,') || text.includes(',]')) kinds.add('hole');
      if (/\{"[^"]*":\{/.test(text)) kinds.add('nested object');
      if (text.includes('\\ud800')) kinds.add('lone surrogate');
      if (text.includes('-0') || text.includes('e-7') || text.includes('e+21')) kinds.add('number forms');
    }
    // The generator did reach the cases it is there for.
    expect([...kinds].sort()).toEqual(['hole', 'lone surrogate', 'nested object', 'number forms']);
  });

  it('on objects built with other key orders, a null prototype, Dates and boxed values', () => {
    const samples: unknown[] = [
      Object.assign(Object.create(null) as object, { b: 1, a: 2 }),
      { z: { y: { x: [1, { w: 'v' }] } }, '': 0, '\ud83d\ude00': 1, '\uffff': 2 },
      { d: new Date(0) },
      [new Boolean(false), new String('s'), new Number(3)],
      { 2: 'two', 10: 'ten', 1: 'one', b: 'b' },
    ];
    for (const v of samples) expect(canonicalJson(v)).toBe(referenceCanonicalJson(v));
  });

  it('refuses what it cannot represent, as before', () => {
    for (const bad of [NaN, Infinity, -Infinity, () => 1, Symbol('s'), 1n, { a: NaN }, [1, () => 2]]) {
      expect(() => referenceCanonicalJson(bad)).toThrow(TypeError);
      expect(() => canonicalJson(bad)).toThrow(TypeError);
    }
  });

  it('keeps the hash of an event exactly what it was', () => {
    const event = sealEvent('s_fixed', 7, GENESIS_HASH, base(3));
    // sha256 of the reference canonical JSON of the event without its hash.
    const { hash, ...content } = event;
    expect(hash).toBe(createHash('sha256').update(referenceCanonicalJson(content), 'utf8').digest('hex'));
    expect(eventHash(event)).toBe(hash);
  });
});

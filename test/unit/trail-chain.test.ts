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

import { describe, expect, it } from 'vitest';

import { deepFreeze, Lru } from '../../lambdas/core/lru.js';

describe('Lru', () => {
  it('evicts the least recently used entry (a get counts as a use)', () => {
    const lru = new Lru<string, number>(2);
    lru.set('a', 1);
    lru.set('b', 2);
    expect(lru.get('a')).toBe(1);
    lru.set('c', 3);
    expect(lru.get('b')).toBeUndefined();
    expect([lru.get('a'), lru.get('c'), lru.size]).toEqual([1, 3, 2]);
  });

  it('holds nothing at capacity 0 and refuses a bad capacity', () => {
    const lru = new Lru<string, number>(0);
    lru.set('a', 1);
    expect([lru.get('a'), lru.size]).toEqual([undefined, 0]);
    for (const bad of [-1, 1.5, Number.NaN]) expect(() => new Lru(bad)).toThrow(TypeError);
  });

  it('keeps the total weight under maxWeight and does not hold an entry heavier than it', () => {
    const lru = new Lru<string, string>(100, { maxWeight: 10, weigh: (k) => k.length });
    lru.set('aaaa', '1');
    lru.set('bbbb', '2');
    lru.set('ccc', '3'); // 11 > 10: the oldest goes
    expect([lru.get('aaaa'), lru.get('bbbb'), lru.get('ccc'), lru.totalWeight]).toEqual([
      undefined,
      '2',
      '3',
      7,
    ]);
    lru.set('x'.repeat(11), 'big');
    expect([lru.get('x'.repeat(11)), lru.size, lru.totalWeight]).toEqual([undefined, 2, 7]);
    lru.set('bbbb', 'again'); // replacing does not count the old weight twice
    expect(lru.totalWeight).toBe(7);
    lru.delete('ccc');
    expect(lru.totalWeight).toBe(4);
    lru.clear();
    expect([lru.size, lru.totalWeight]).toEqual([0, 0]);
  });
});

describe('deepFreeze', () => {
  it('freezes nested values, also under an object frozen already', () => {
    const inner = { groups: ['a'] };
    const outer = Object.freeze({ inner });
    deepFreeze(outer);
    expect(Object.isFrozen(inner)).toBe(true);
    expect(Object.isFrozen(inner.groups)).toBe(true);
  });
});

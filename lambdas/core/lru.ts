export interface LruWeight<K, V> {
  /** The most the held entries may weigh together; the oldest go first when a new one would pass it. */
  readonly maxWeight: number;
  readonly weigh: (key: K, value: V) => number;
}

/**
 * A small least-recently-used map: a Map keeps insertion order, so a hit is moved to the end and
 * the oldest key is the first one. `capacity` 0 holds nothing. With `weight`, the entries also
 * weigh at most `maxWeight` together (an entry heavier than that alone is not held).
 */
export class Lru<K, V> {
  readonly #map = new Map<K, V>();
  readonly #weights = new Map<K, number>();
  #weight = 0;

  constructor(
    readonly capacity: number,
    private readonly weight?: LruWeight<K, V>,
  ) {
    if (!Number.isInteger(capacity) || capacity < 0) {
      throw new TypeError(`Lru: capacity must be a non-negative integer, got ${String(capacity)}`);
    }
  }

  /** What the held entries weigh together (0 without `weight`). */
  get totalWeight(): number {
    return this.#weight;
  }

  get size(): number {
    return this.#map.size;
  }

  /** Whether `key` is held, without counting as a use. */
  has(key: K): boolean {
    return this.#map.has(key);
  }

  get(key: K): V | undefined {
    const value = this.#map.get(key);
    if (value === undefined) return undefined;
    this.#map.delete(key);
    this.#map.set(key, value);
    return value;
  }

  set(key: K, value: V): void {
    this.delete(key);
    if (this.capacity === 0) return;
    const w = this.weight ? this.weight.weigh(key, value) : 0;
    if (this.weight && !(w <= this.weight.maxWeight)) return;
    this.#map.set(key, value);
    if (this.weight) {
      this.#weights.set(key, w);
      this.#weight += w;
    }
    while (this.#map.size > this.capacity || (this.weight && this.#weight > this.weight.maxWeight)) {
      this.delete(this.#map.keys().next().value as K);
    }
  }

  delete(key: K): void {
    if (!this.#map.delete(key)) return;
    const w = this.#weights.get(key);
    if (w !== undefined) {
      this.#weights.delete(key);
      this.#weight -= w;
    }
  }

  clear(): void {
    this.#map.clear();
    this.#weights.clear();
    this.#weight = 0;
  }
}

/**
 * Freezes `value` and everything reachable from it, so a cached value cannot be changed by a
 * reader. An object frozen already is still walked: its children may not be. For acyclic values
 * (what JSON, the SQL parser and the classifier make): no bookkeeping of what was seen, as this
 * runs on every parse tree (a WeakSet of visited nodes cost ~10 µs more on a join's tree).
 */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

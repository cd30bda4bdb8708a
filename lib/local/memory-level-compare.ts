/**
 * dynalite's in-memory store (memory-level) orders its keys with a JavaScript loop over their
 * bytes, called a dozen times per tree lookup; every item and index entry a transaction writes takes
 * two lookups (find, then insert), and the loop was the largest part of a write after the tree
 * itself. This module puts Node's native `Buffer.compare` in its place for byte keys, before
 * memory-level loads its comparator: the same order (bytes compared one by one, a key before any
 * longer key it begins), the same sign for every pair (memory-level and its tree use only the
 * sign), and memory-level's own function for anything that is not two byte arrays (its string
 * store encoding). Nothing else changes: the on-disk store (classic-level) orders keys natively.
 *
 * It must be imported before anything loads dynalite (lib/local/dynamodb.ts imports it first);
 * loaded later it changes nothing (`fastCompare.installed` says which).
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const from = { paths: [require.resolve('dynalite')] };
const comparePath = require.resolve('memory-level/lib/compare', from);
const indexPath = require.resolve('memory-level', from);

type Compare = (a: unknown, b: unknown) => number;

/** memory-level's comparator as published. */
export const originalCompare = require(comparePath) as Compare;

/** The comparator memory-level gets: native for two byte arrays, memory-level's own otherwise. */
export const fastCompare: Compare & { installed: boolean } = Object.assign(
  (a: unknown, b: unknown) =>
    a instanceof Uint8Array && b instanceof Uint8Array ? Buffer.compare(a, b) : originalCompare(a, b),
  { installed: false },
);

const loadedAlready = require.cache[indexPath] !== undefined;
const cached = require.cache[comparePath];
if (!loadedAlready && cached) {
  cached.exports = fastCompare;
  fastCompare.installed = true;
}

/**
 * Loads `@modelcontextprotocol/conformance` on Node 20: its CLI imports `fs.globSync` (Node 22) at
 * start-up, although only its `tier-check` command calls it. On a Node without it, `fs` as that
 * package imports it gets a `globSync` that says so; everything else is Node's own `fs`.
 * Use: node --import ./test/support/conformance-node20.mjs node_modules/@modelcontextprotocol/conformance/dist/index.js …
 */
import fs from 'node:fs';
import { register } from 'node:module';

if (typeof fs.globSync !== 'function') {
  const hooks = `
const SHIM = 'warden-shim:fs';
export async function resolve(specifier, context, next) {
  if ((specifier === 'fs' || specifier === 'node:fs') && context.parentURL?.includes('/@modelcontextprotocol/conformance/')) {
    return { url: SHIM, shortCircuit: true };
  }
  return next(specifier, context);
}
export async function load(url, context, next) {
  if (url !== SHIM) return next(url, context);
  return {
    format: 'module',
    shortCircuit: true,
    source: "import fs from 'node:fs'; export * from 'node:fs'; export default fs;" +
      " export function globSync() { throw new Error('fs.globSync needs Node 22: the conformance tier check cannot run on this Node'); }",
  };
}`;
  register(`data:text/javascript,${encodeURIComponent(hooks)}`);
}

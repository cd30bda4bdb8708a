#!/usr/bin/env node
// `npx warden …`: runs the compiled CLI (dist/cli, made by `npm run build`, which `npm install`
// runs as `prepare`). In a clone whose TypeScript sources are newer than that build, or that has
// none yet, it runs the sources through tsx (a devDependency) instead, so edits take effect.
import { existsSync, readFileSync, statSync } from 'node:fs';

const root = new URL('../', import.meta.url);
const compiled = new URL('dist/cli/warden.js', root);

function stale() {
  try {
    const { builtAt, inputs } = JSON.parse(readFileSync(new URL('dist/cli/inputs.json', root), 'utf8'));
    return inputs.some((f) => {
      const p = new URL(f, root);
      return f.endsWith('.ts') && existsSync(p) && statSync(p).mtimeMs > builtAt;
    });
  } catch {
    return false;
  }
}

async function tsx() {
  try {
    return await import('tsx/esm/api');
  } catch {
    return undefined;
  }
}

const built = existsSync(compiled);
const dev = !built || stale() ? await tsx() : undefined;
if (dev) {
  dev.register();
  await import('./warden.ts');
} else if (built) {
  await import(compiled.href);
} else {
  console.error('warden: the CLI is not built: run `npm run build` (or install the package again)');
  process.exit(2);
}

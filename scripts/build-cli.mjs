#!/usr/bin/env node
/**
 * `npm run build`: compiles the CLI (bin/warden.ts and everything it imports from this repo) to
 * plain ES modules under dist/cli, so `bin/warden.js` runs it with node alone (no tsx). Packages
 * stay imports of node_modules. dist/cli/inputs.json lists the sources, so bin/warden.js can tell
 * a build older than the sources it came from.
 *
 *   node scripts/build-cli.mjs [--outdir DIR]
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import process from 'node:process';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const flag = process.argv.indexOf('--outdir');
const outdir = resolve(flag > 0 ? process.argv[flag + 1] : join(root, 'dist/cli'));
// Build next to the target and swap it in, so a CLI started meanwhile never sees half a build.
const staging = `${outdir}.building-${process.pid}`;
rmSync(staging, { recursive: true, force: true });
mkdirSync(dirname(outdir), { recursive: true });

const started = Date.now();
const result = await build({
  absWorkingDir: root,
  // The twin's DynamoDB thread is a module of its own, loaded next to the chunk that starts it
  // (lib/local/dynamo-worker.ts): chunks and entries all sit in the output's root.
  entryPoints: { warden: 'bin/warden.ts', 'dynamo-thread': 'lib/local/dynamo-thread.ts' },
  outdir: staging,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
});
const inputs = Object.keys(result.metafile.inputs)
  .filter((f) => !f.startsWith('node_modules/'))
  .map((f) => relative(root, resolve(root, f)));
writeFileSync(join(staging, 'inputs.json'), `${JSON.stringify({ builtAt: Date.now(), inputs }, null, 1)}\n`);
rmSync(outdir, { recursive: true, force: true });
renameSync(staging, outdir);
process.stdout.write(
  `built ${relative(root, outdir) || outdir} from ${inputs.length} sources in ${Date.now() - started} ms\n`,
);

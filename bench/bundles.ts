/**
 * The Export function's bundle, built as the stack builds it (esbuild with the bundling
 * GatewayFunction gives a function that never loads the classifiers: `bundlingFor(false)`; the
 * audit lake's export function is declared so, and test/infra/bundles.test.ts asserts the
 * synthesized asset holds only index.mjs and its map), next to what every other function ships:
 * the same code path's WebAssembly and IAM data copied beside it.
 * Run alone: `npx tsx bench/bundles.ts`.
 */
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { bundlingFor, IAM_DATA_FILES, WASM_FILES } from '../lib/constructs/gateway-function.js';
import { REPO_ROOT } from '../lib/local/twin.js';
import { esbuildOptionsOf } from './cold-start.js';

export interface BundleRow {
  readonly bundle: string;
  readonly files: string;
  readonly 'code KB': number;
  readonly 'assets beside it KB': number;
}

const kb = (bytes: number) => Math.round(bytes / 1024);
const sizeOf = (file: string) => statSync(file).size;

export async function benchExportBundle(): Promise<{
  rows: BundleRow[];
  exportFiles: string[];
  exportAssetBytes: number;
}> {
  const outDir = join(REPO_ROOT, '.warden', 'bench', 'export-bundle');
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const bundling = bundlingFor(false);
  await build(
    esbuildOptionsOf(bundling, join(outDir, 'index.mjs'), true, 'lambdas/handlers/export-audit.ts'),
  );
  // What the bundling copies beside the code (its afterBundling hook), as NodejsFunction runs it.
  const copies = bundling.commandHooks?.afterBundling(REPO_ROOT, outDir) ?? [];
  const files = readdirSync(outDir).sort();
  const code = files.reduce((n, f) => n + sizeOf(join(outDir, f)), 0);
  const assets = [...WASM_FILES, ...IAM_DATA_FILES.map(([file]) => file)].reduce((n, f) => n + sizeOf(f), 0);
  return {
    exportFiles: files,
    exportAssetBytes: copies.length === 0 ? 0 : assets,
    rows: [
      {
        bundle: 'Export function (as the stack bundles it)',
        files: `${files.join(', ')}${copies.length ? ` + ${copies.length} copied assets` : ''}`,
        'code KB': kb(code),
        'assets beside it KB': copies.length === 0 ? 0 : kb(assets),
      },
      {
        bundle: 'baseline: the WebAssembly and IAM data every classifying function ships',
        files: `${WASM_FILES.length} WebAssembly modules, ${IAM_DATA_FILES.length} IAM data files`,
        'code KB': 0,
        'assets beside it KB': kb(assets),
      },
    ],
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.table((await benchExportBundle()).rows);
}

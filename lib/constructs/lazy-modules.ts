/**
 * SDK clients a function loads only for the one call that needs them, shipped beside its bundle
 * instead of inside it.
 *
 * The AWS executor imports a service's client (`import('@aws-sdk/client-ec2')`) when a call to that
 * service is made, and the API function imports the Lambda client on its first write. Inside one
 * esbuild file that import is deferred, but the code is not: V8 reads and pre-parses every byte of
 * the bundle at cold start, and these five clients were 1.7 MB of its 3.8 MB (EC2 alone 1.1 MB),
 * about 190 ms of every cold start of a function that answers SQL (bench/cold-start.ts measures it).
 *
 * So the functions' bundling marks them external, and its afterBundling hook runs this file, which
 * bundles each into `node_modules/<name>/index.mjs` next to the function's code (self-contained,
 * minified, ESM, with its own copy of the SDK core it needs). Node resolves the function's
 * `import('<name>')` to that directory, on Lambda as in test/infra. The twin and the tests, which
 * run from source, import the packages from node_modules as before.
 *
 * `@aws-sdk/client-dynamodb` stays inside: the audit store imports it on every request.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

/** Loaded only by the call that needs it; see the file comment. */
export const LAZY_MODULES: readonly string[] = [
  '@aws-sdk/client-s3',
  '@aws-sdk/client-ec2',
  '@aws-sdk/client-lambda',
  '@aws-sdk/client-cloudwatch-logs',
  '@aws-sdk/client-ecs',
];

const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * CommonJS code inside an ESM bundle (the SDK's XML parser, for one) calls `require` for Node's
 * built-ins; an ES module has none, so the banner makes one for the bundle's own file.
 */
const REQUIRE_BANNER =
  "import { createRequire as __wardenCreateRequire } from 'node:module'; const require = __wardenCreateRequire(import.meta.url);";

/** Where a lazy module's bundle goes, below a function's output directory. */
export function lazyModuleDir(outDir: string, name: string): string {
  return join(outDir, 'node_modules', ...name.split('/'));
}

/** Bundles every LAZY_MODULES entry into `<outDir>/node_modules/<name>/` (index.mjs, package.json). */
export async function bundleLazyModules(outDir: string): Promise<void> {
  await Promise.all(
    LAZY_MODULES.map(async (name) => {
      const dir = lazyModuleDir(outDir, name);
      mkdirSync(dir, { recursive: true });
      await build({
        stdin: {
          contents: `export * from ${JSON.stringify(name)};`,
          resolveDir: PROJECT_ROOT,
          sourcefile: `${name}.lazy.mjs`,
          loader: 'js',
        },
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node22',
        minify: true,
        // As the functions' own bundling: the SDK's ES module builds.
        mainFields: ['module', 'main'],
        banner: { js: REQUIRE_BANNER },
        outfile: join(dir, 'index.mjs'),
        logLevel: 'silent',
      });
      const pkg = { name, private: true, type: 'module', main: 'index.mjs', exports: './index.mjs' };
      writeFileSync(join(dir, 'package.json'), `${JSON.stringify(pkg)}\n`);
    }),
  );
}

/**
 * The shell command the functions' afterBundling hook runs: this file under tsx (the loader the
 * CDK app itself runs with), on the Node that synthesizes.
 */
export function bundleLazyModulesCommand(outDir: string): string {
  const tsx = pathToFileURL(join(PROJECT_ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
  const self = fileURLToPath(import.meta.url);
  return `"${process.execPath}" --import "${tsx}" "${self}" "${outDir}"`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const outDir = process.argv[2];
  if (!outDir) {
    console.error('usage: lazy-modules.ts <function output directory>');
    process.exit(2);
  }
  await bundleLazyModules(outDir);
}

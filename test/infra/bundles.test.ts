/**
 * The deployable artifacts, as `npx cdk synth` builds them on a fresh clone: the CLI synthesizes the
 * app once (bundling with esbuild and checking cdk-nag), then each function bundle is imported in a
 * child Node process with the environment the template gives it. A probe function built by the same
 * GatewayFunction construct proves both WebAssembly modules load from inside a bundle.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { App, Stack } from 'aws-cdk-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GatewayFunction,
  IAM_DATA_FILES,
  PROJECT_ROOT,
  WASM_FILES,
} from '../../lib/constructs/gateway-function.js';
import { LAZY_MODULES, lazyModuleDir } from '../../lib/constructs/lazy-modules.js';

const run = promisify(execFile);

type Resource = { Type: string; Properties: Record<string, any> };

const workDir = mkdtempSync(join(tmpdir(), 'warden-infra-'));
const cdkOut = join(workDir, 'cdk.out');
const probeOut = join(workDir, 'probe.out');

let resources: Record<string, Resource>;
let assetDirByKey: Map<string, string>;
let probeDir: string;

/** asset directory of each function, keyed by the S3 object key its Code points at. */
function assetDirs(outdir: string, stackName: string): Map<string, string> {
  const manifest = JSON.parse(readFileSync(join(outdir, `${stackName}.assets.json`), 'utf8')) as {
    files: Record<string, { source: { path: string }; destinations: Record<string, { objectKey: string }> }>;
  };
  const out = new Map<string, string>();
  for (const file of Object.values(manifest.files)) {
    for (const d of Object.values(file.destinations)) out.set(d.objectKey, join(outdir, file.source.path));
  }
  return out;
}

function bundleDirOf(functionId: string): string {
  const key = resources[functionId].Properties.Code.S3Key as string;
  const dir = assetDirByKey.get(key);
  if (!dir) throw new Error(`no asset for ${functionId}`);
  return dir;
}

function functionId(fragment: string): string {
  const ids = Object.entries(resources)
    .filter(([id, r]) => r.Type === 'AWS::Lambda::Function' && id.includes(fragment))
    .map(([id]) => id);
  expect(ids).toHaveLength(1);
  return ids[0];
}

/** The template's environment, with CloudFormation references replaced by local stand-ins. */
function environmentOf(id: string): Record<string, string> {
  const vars = (resources[id].Properties.Environment?.Variables ?? {}) as Record<string, unknown>;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(vars)) {
    if (typeof v === 'string') env[k] = v;
    else if (k.startsWith('TABLE_')) env[k] = `test-${k.slice(6).toLowerCase()}`;
    else if (k === 'PUBLIC_URL') env[k] = 'http://127.0.0.1:8080';
    else env[k] = `arn:aws:test:us-east-1:000000000000:${k.toLowerCase()}`;
  }
  return env;
}

const LOCAL_AWS = {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  // Nothing listens here: any AWS call fails at once instead of waiting on the network.
  AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
  OIDC_JWKS_URI: 'http://127.0.0.1:9/jwks',
  AWS_MAX_ATTEMPTS: '1',
};

/** Handlers log JSON lines to stdout too; the result follows this marker. */
const MARK = '@@warden-result@@';

const INVOKE = `
const MARK = ${JSON.stringify(MARK)};
const { handler } = await import(process.env.WARDEN_BUNDLE);
if (typeof handler !== 'function') throw new Error('no handler export');
if (process.env.WARDEN_EVENT) {
  const out = await handler(JSON.parse(process.env.WARDEN_EVENT), { awsRequestId: 'test', getRemainingTimeInMillis: () => 29000 });
  process.stdout.write('\\n' + MARK + JSON.stringify(out));
} else {
  process.stdout.write('\\n' + MARK + '{"loaded":true}');
}
process.exit(0);
`;

/**
 * Secrets Manager's GetSecretValue on loopback: functions read the masking hash key from the secret
 * the template names at cold start, and do not start without it.
 */
let secretsManager: Server;
const secretsRead: string[] = [];

async function startSecretsManager(): Promise<string> {
  secretsManager = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const { SecretId } = JSON.parse(body) as { SecretId: string };
      secretsRead.push(SecretId);
      res.setHeader('content-type', 'application/x-amz-json-1.1');
      res.end(JSON.stringify({ ARN: SecretId, SecretString: 'generated-'.repeat(7) }));
    });
  });
  await new Promise<void>((r) => secretsManager.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(secretsManager.address() as AddressInfo).port}`;
}

let secretsEndpoint: string;

async function invokeBundle(dir: string, env: Record<string, string>, event?: unknown): Promise<any> {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', INVOKE], {
    cwd: workDir,
    timeout: 60_000,
    env: {
      PATH: process.env.PATH,
      ...env,
      ...LOCAL_AWS,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsEndpoint,
      WARDEN_BUNDLE: join(dir, 'index.mjs'),
      ...(event === undefined ? {} : { WARDEN_EVENT: JSON.stringify(event) }),
    },
  });
  return JSON.parse(stdout.slice(stdout.lastIndexOf(MARK) + MARK.length));
}

function httpEvent(method: string, path: string): unknown {
  return {
    version: '2.0',
    routeKey: `${method} ${path}`,
    rawPath: path,
    rawQueryString: '',
    headers: { host: 'example.execute-api.us-east-1.amazonaws.com', 'user-agent': 'vitest' },
    requestContext: {
      accountId: '000000000000',
      apiId: 'example',
      domainName: 'example.execute-api.us-east-1.amazonaws.com',
      domainPrefix: 'example',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'vitest' },
      requestId: 'req-1',
      routeKey: `${method} ${path}`,
      stage: '$default',
      time: '01/Jan/2025:00:00:00 +0000',
      timeEpoch: 1735689600000,
    },
    isBase64Encoded: false,
  };
}

beforeAll(async () => {
  secretsEndpoint = await startSecretsManager();
  await run('npx', ['cdk', 'synth', '--no-notices', '-q', '-o', cdkOut], {
    cwd: PROJECT_ROOT,
    timeout: 240_000,
    env: {
      ...process.env,
      CDK_DISABLE_CLI_TELEMETRY: 'true',
      CDK_DEFAULT_ACCOUNT: '',
      CDK_DEFAULT_REGION: '',
    },
  });
  resources = JSON.parse(readFileSync(join(cdkOut, 'Warden.template.json'), 'utf8')).Resources;
  assetDirByKey = assetDirs(cdkOut, 'Warden');

  const app = new App({ outdir: probeOut });
  const stack = new Stack(app, 'Probe');
  const probe = new GatewayFunction(stack, 'Probe', {
    entry: 'test/infra/fixtures/wasm-probe.ts',
    description: 'bundles WASM like every Warden function',
  });
  const assembly = app.synth();
  const template = assembly.getStackByName('Probe').template as { Resources: Record<string, Resource> };
  const probeId = stack.getLogicalId(probe.fn.node.defaultChild as never);
  probeDir = assetDirs(probeOut, 'Probe').get(template.Resources[probeId].Properties.Code.S3Key)!;
}, 300_000);

afterAll(async () => {
  await new Promise<void>((r) => secretsManager.close(() => r()));
  rmSync(workDir, { recursive: true, force: true });
});

describe('npx cdk synth', () => {
  it('synthesizes the app without AWS credentials, cdk-nag included', () => {
    expect(Object.values(resources).filter((r) => r.Type === 'AWS::Lambda::Function')).toHaveLength(4);
  });

  it('ships an ESM bundle with its source map, both WebAssembly files, the IAM data and the lazy SDK clients next to each function', () => {
    for (const fragment of ['WardenApi', 'WardenNotify', 'WardenExecute']) {
      const dir = bundleDirOf(functionId(fragment));
      expect(existsSync(join(dir, 'index.mjs')), fragment).toBe(true);
      expect(existsSync(join(dir, 'index.mjs.map')), fragment).toBe(true);
      for (const wasm of WASM_FILES)
        expect(existsSync(join(dir, basename(wasm))), `${fragment} ${wasm}`).toBe(true);
      for (const [, dest] of IAM_DATA_FILES)
        expect(existsSync(join(dir, dest)), `${fragment} ${dest}`).toBe(true);
      // The SDK clients of single AWS calls, beside the code instead of in it (lazy-modules.ts).
      for (const name of LAZY_MODULES)
        expect(existsSync(join(lazyModuleDir(dir, name), 'index.mjs')), `${fragment} ${name}`).toBe(true);
    }
  });

  it('keeps the SDK clients of single AWS calls out of the api and execute bundles (parsed at every cold start)', () => {
    for (const fragment of ['WardenApi', 'WardenExecute']) {
      const map = JSON.parse(
        readFileSync(join(bundleDirOf(functionId(fragment)), 'index.mjs.map'), 'utf8'),
      ) as {
        sources: string[];
      };
      const clients = new Set(
        map.sources.flatMap((f) => /node_modules\/(@aws-sdk\/client-[a-z0-9-]+)\//.exec(f)?.[1] ?? []),
      );
      // What the request path itself uses. A new service's client belongs in LAZY_MODULES.
      expect([...clients].sort(), fragment).toEqual([
        '@aws-sdk/client-dynamodb',
        '@aws-sdk/client-kms',
        '@aws-sdk/client-rds-data',
        '@aws-sdk/client-secrets-manager',
        '@aws-sdk/client-sfn',
        '@aws-sdk/client-sts',
      ]);
      for (const name of LAZY_MODULES) expect(clients.has(name), `${fragment} ${name}`).toBe(false);
    }
  });

  it('ships the export function only what it loads: its bundle, no WebAssembly, no IAM data', () => {
    const dir = bundleDirOf(functionId('AuditLakeExport'));
    expect(readdirSync(dir).sort()).toEqual(['index.mjs', 'index.mjs.map']);
    const bytes = readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    expect(bytes).toBeLessThan(3 * 1024 * 1024);
  });
});

describe('function bundles', () => {
  it('loads the PostgreSQL parser and Cedar from inside a bundle built by GatewayFunction', async () => {
    const out = await invokeBundle(probeDir, {}, { sql: 'SELECT 1; UPDATE t SET a = 1' });
    expect(out).toEqual({ statementTypes: ['SelectStmt', 'UpdateStmt'], decision: 'allow' });
  });

  it('answers GET /healthz from the api bundle with 200', async () => {
    const id = functionId('WardenApi');
    const env = environmentOf(id);
    const out = await invokeBundle(bundleDirOf(id), env, httpEvent('GET', '/healthz'));
    expect(out.statusCode).toBe(200);
    expect(secretsRead).toContain(env.MASKING_HASH_KEY_SECRET_ARN);
  });

  it('refuses to start the api bundle without its masking hash key', async () => {
    const id = functionId('WardenApi');
    const { MASKING_HASH_KEY_SECRET_ARN: _dropped, ...env } = environmentOf(id);
    await expect(invokeBundle(bundleDirOf(id), env, httpEvent('GET', '/healthz'))).rejects.toThrow(
      /no masking hash key/,
    );
  });

  it('imports the notify, execute and export bundles in their configured environment', async () => {
    for (const fragment of ['WardenNotify', 'WardenExecute', 'AuditLakeExport']) {
      const id = functionId(fragment);
      await expect(invokeBundle(bundleDirOf(id), environmentOf(id)), fragment).resolves.toEqual({
        loaded: true,
      });
    }
  });
});

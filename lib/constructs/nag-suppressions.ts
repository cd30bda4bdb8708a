/**
 * cdk-nag findings Warden acknowledges, each with the reason a reviewer can check. Everything not
 * listed here must pass AwsSolutionsChecks (test/infra/nag.test.ts fails otherwise), and
 * test/infra/stack.test.ts asserts that the wildcards acknowledged here are the only ones.
 */
import { NagSuppressions } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import type { WardenGateway } from './warden-gateway.js';

const KMS_DATA_KEY_ACTIONS = {
  id: 'AwsSolutions-IAM5',
  reason:
    'kms:GenerateDataKey* and kms:ReEncrypt* are the actions DynamoDB needs from a caller of a table ' +
    'encrypted with a customer-managed key (CDK grantEncryptDecrypt); they are scoped to the one data key.',
  appliesTo: ['Action::kms:GenerateDataKey*', 'Action::kms:ReEncrypt*'],
};

const TABLE_INDEXES = {
  id: 'AwsSolutions-IAM5',
  reason:
    'tableArn/index/* covers the global secondary indexes of that one table (Query by principal, ' +
    'status, request); IAM has no per-index grant shorter than listing each, and they change with lib/tables.ts.',
  appliesTo: [{ regex: '/^Resource::<[A-Za-z0-9]+\\.Arn>\\/index\\/\\*$/' }],
};

const XRAY = (extra: string) => ({
  id: 'AwsSolutions-IAM5',
  reason:
    'Resource "*" only for actions that have no resource type in the IAM service authorization ' +
    `reference: xray:PutTraceSegments and xray:PutTelemetryRecords (active tracing)${extra}. ` +
    'test/infra/stack.test.ts asserts no other action is granted on "*".',
  appliesTo: ['Resource::*'],
});

const NODE_22 = {
  id: 'AwsSolutions-L1',
  reason:
    'Warden targets the Node.js 22 Lambda runtime on purpose: it is the runtime the code and its ' +
    'WebAssembly (libpg-query, cedar-wasm) are tested on; moving to a newer one is a tested change.',
};

function suppress(
  construct: IConstruct,
  rules: Parameters<typeof NagSuppressions.addResourceSuppressions>[1],
) {
  NagSuppressions.addResourceSuppressions(construct, rules, true);
}

export function acknowledgeNagFindings(g: WardenGateway): void {
  suppress(g.policyPusher, [KMS_DATA_KEY_ACTIONS, TABLE_INDEXES]);
  for (const fn of [g.apiFunction, g.notifyFunction, g.executeFunction, g.auditLake.exportFunction]) {
    suppress(fn.fn, [NODE_22]);
  }
  suppress(g.apiFunction.role, [
    KMS_DATA_KEY_ACTIONS,
    TABLE_INDEXES,
    XRAY(
      '; states:SendTaskSuccess, SendTaskFailure and SendTaskHeartbeat, which are authorized by the ' +
        'unguessable task token that only the Approvals table holds',
    ),
    {
      id: 'AwsSolutions-IAM5',
      reason:
        'states:DescribeExecution and StopExecution on the executions of the one approval state machine ' +
        '(execution names are request ids, unknown at deploy time).',
      appliesTo: [
        { regex: '/^Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:.*$/' },
      ],
    },
  ]);
  suppress(g.notifyFunction.role, [KMS_DATA_KEY_ACTIONS, TABLE_INDEXES, XRAY('')]);
  suppress(g.executeFunction.role, [KMS_DATA_KEY_ACTIONS, TABLE_INDEXES, XRAY('')]);
  suppress(g.auditLake.exportFunction.role, [
    XRAY(''),
    {
      id: 'AwsSolutions-IAM5',
      reason:
        'Exports get ids DynamoDB assigns (tableArn/export/<id>): DescribeExport is scoped to the ' +
        "Audit table's exports; exports write many objects under the exports/ prefix of the lake bucket only.",
      appliesTo: [
        { regex: '/^Resource::<[A-Za-z0-9]+\\.Arn>\\/export\\/\\*$/' },
        { regex: '/^Resource::<[A-Za-z0-9]+\\.Arn>\\/exports\\/\\*$/' },
      ],
    },
  ]);
  suppress(g.workflow.stateMachine.role, [
    XRAY(
      '; xray:GetSamplingRules and GetSamplingTargets (Step Functions tracing); logs:CreateLogDelivery, GetLogDelivery, UpdateLogDelivery, DeleteLogDelivery, ListLogDeliveries, ' +
        'PutResourcePolicy, DescribeResourcePolicies and DescribeLogGroups, which CloudWatch Logs vended ' +
        'delivery requires on "*" for Step Functions logging',
    ),
    {
      id: 'AwsSolutions-IAM5',
      reason:
        'functionArn:* lets the state machine invoke versions/aliases of exactly the notify and execute ' +
        'functions (CDK LambdaInvoke grant); no other function.',
      appliesTo: [{ regex: '/^Resource::<[A-Za-z0-9]+\\.Arn>:\\*$/' }],
    },
  ]);
  suppress(g.keys.maskingHashKey, [
    {
      id: 'AwsSolutions-SMG4',
      reason:
        'The masking hash key is not rotated automatically: keyed-hash tokens must stay equal across ' +
        'requests and over time to be joinable, so rotating it changes every token and is a deliberate ' +
        'operation (a new secret value, then a cold start of the functions; docs/security.md).',
    },
  ]);
  suppress(g.api.httpApi, [
    {
      id: 'AwsSolutions-APIG4',
      reason:
        'Authorization is enforced in the api function, on every route: it verifies the OIDC bearer ' +
        'token (aws-jwt-verify) and decides with Cedar. An API Gateway JWT authorizer would answer 401 ' +
        'itself, without the WWW-Authenticate: Bearer resource_metadata header MCP clients need (RFC 9728), ' +
        'and would block the approval page sign-in redirect and /healthz.',
    },
  ]);
}

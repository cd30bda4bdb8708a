/**
 * The local twin's configuration: the SQL target `demo` over the embedded PostgreSQL, and the AWS
 * target `demo-aws` (local STS + the enforcing endpoint in front of the embedded DynamoDB).
 */
import { DEFAULT_SQL_DB, type WardenConfigInput } from '../../lambdas/core/config.js';
import { DEMO_TARGET } from './demo-data.js';

/** The role the local STS lets Warden assume for `demo-aws` (an account number from AWS's docs). */
export const DEMO_AWS_ACCOUNT = '123456789012';
export const DEMO_AWS_ROLE_ARN = `arn:aws:iam::${DEMO_AWS_ACCOUNT}:role/warden-demo-aws`;

export function demoConfig(
  options: { approvalWindowSeconds?: number; requiredApprovals?: number } = {},
): WardenConfigInput {
  return {
    targets: {
      demo: {
        kind: 'sql',
        description: 'Demo shop database (customers, orders) on the local twin',
        resourceArn: DEMO_TARGET.resourceArn,
        database: DEMO_TARGET.database,
        secrets: DEMO_TARGET.secrets,
        db: { ...DEFAULT_SQL_DB, adminSecret: DEMO_TARGET.adminSecret },
        maxRows: 1000,
        masking: {
          rules: [
            { column: 'customers.ssn', strategy: 'redact', type: 'SSN' },
            { column: 'customers.email', strategy: 'hash', type: 'EMAIL' },
            { column: 'customers.phone', strategy: 'partial', type: 'PHONE' },
            { column: 'customers.card_number', strategy: 'partial', type: 'CARD' },
            { column: 'customers.iban', strategy: 'partial', type: 'IBAN' },
          ],
        },
        approvals: {
          windowSeconds: options.approvalWindowSeconds ?? 3600,
          requiredApprovals: options.requiredApprovals ?? 1,
          approverGroups: ['dba'],
          emails: ['dba-oncall@example.com'],
          slackChannel: '#warden-approvals',
        },
      },
      'demo-aws': {
        kind: 'aws',
        description: 'Demo AWS account on the local twin: the demo-inventory DynamoDB table',
        roleArn: DEMO_AWS_ROLE_ARN,
        account: DEMO_AWS_ACCOUNT,
        regions: ['us-east-1'],
        services: ['dynamodb'],
        masking: { rules: [] },
        approvals: {
          windowSeconds: options.approvalWindowSeconds ?? 3600,
          requiredApprovals: options.requiredApprovals ?? 1,
          approverGroups: ['dba'],
          emails: ['dba-oncall@example.com'],
          slackChannel: '#warden-approvals',
        },
      },
    },
  };
}

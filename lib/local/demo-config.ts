/** The local twin's configuration: one SQL target, `demo`, over the embedded PostgreSQL. */
import type { WardenConfigInput } from '../../lambdas/core/config.js';
import { DEMO_TARGET } from './demo-data.js';

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
        maxRows: 1000,
        masking: {
          rules: [
            { column: 'customers.ssn', strategy: 'redact', type: 'SSN' },
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
    },
  };
}

/** Shared by the infrastructure tests: one way to synthesize the stack in-process. */
import { App, Aspects } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { WardenSettingsInput } from '../../lib/config.js';
import { WardenStack, wardenAppContext } from '../../lib/warden-stack.js';

const ACCOUNT = '111122223333';

/** A configuration that exercises every grant: a SQL and an AWS target, Slack and SES. */
export const FULL_SETTINGS: WardenSettingsInput = {
  oidcIssuer: 'https://idp.example.com/oauth2/default',
  oidcAudience: 'warden',
  groupsClaim: 'groups',
  oidcApprovalClientId: 'warden-approval-page',
  oidcScopes: 'openid warden',
  oidcCliClientId: 'warden-cli',
  oidcCliRedirectUri: 'http://localhost:8765/callback',
  mcpAllowedOrigins: 'https://inspector.example.com',
  slackWebhookSecretArn: `arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:warden/slack-AbCdEf`,
  sesSender: 'warden@example.com',
  alarmEmail: 'oncall@example.com',
  runtime: {
    targets: {
      orders: {
        kind: 'sql',
        resourceArn: `arn:aws:rds:eu-west-1:${ACCOUNT}:cluster:orders`,
        database: 'orders',
        secrets: {
          read: `arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:orders/read-AbCdEf`,
          write: `arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:orders/write-AbCdEf`,
        },
      },
      prod: {
        kind: 'aws',
        roleArn: `arn:aws:iam::${ACCOUNT}:role/warden-target`,
        account: ACCOUNT,
        regions: ['eu-west-1'],
        services: ['s3'],
      },
      tickets: {
        kind: 'mcp',
        url: 'https://mcp.tickets.example.com/mcp',
        auth: {
          type: 'header',
          header: 'Authorization',
          secret: `arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:tickets/token-AbCdEf`,
        },
      },
    },
  },
};

export interface Synthesized {
  readonly app: App;
  readonly stack: WardenStack;
  readonly template: Template;
}

export function synthWarden(
  opts: { settings?: WardenSettingsInput; bundling?: boolean; nag?: boolean; outdir?: string } = {},
): Synthesized {
  const app = new App({
    ...(opts.outdir ? { outdir: opts.outdir } : {}),
    context: { ...wardenAppContext(), ...(opts.bundling ? {} : { 'aws:cdk:bundling-stacks': [] }) },
  });
  const stack = new WardenStack(app, 'Warden', { settings: opts.settings ?? {} });
  if (opts.nag) Aspects.of(app).add(new AwsSolutionsChecks());
  return { app, stack, template: Template.fromStack(stack) };
}

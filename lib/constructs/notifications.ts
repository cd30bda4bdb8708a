/**
 * How approvers are reached: a Slack incoming webhook (its URL in Secrets Manager, never in an
 * environment variable) and/or SES v2 email from a verified sender. Both optional; a function bound
 * here gets only the grants for what is configured.
 */
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { GatewayFunction } from './gateway-function.js';

export interface NotificationsProps {
  /** Secret holding the webhook URL (plain string or `{"url": "…"}`). @default no Slack */
  readonly slackWebhookSecretArn?: string;
  /** Verified SES identity (address, or an address in a verified domain). @default no email */
  readonly sesSender?: string;
}

/** A complete secret ARN ends with the 6-character suffix Secrets Manager appends to the name. */
const COMPLETE_SECRET_ARN = /:secret:.+-[A-Za-z0-9]{6}$/;

export class Notifications extends Construct {
  readonly slackWebhookSecret?: secretsmanager.ISecret;
  readonly sesSender?: string;

  constructor(scope: Construct, id: string, props: NotificationsProps) {
    super(scope, id);
    if (props.slackWebhookSecretArn) {
      this.slackWebhookSecret = COMPLETE_SECRET_ARN.test(props.slackWebhookSecretArn)
        ? secretsmanager.Secret.fromSecretCompleteArn(this, 'SlackWebhook', props.slackWebhookSecretArn)
        : secretsmanager.Secret.fromSecretPartialArn(this, 'SlackWebhook', props.slackWebhookSecretArn);
    }
    this.sesSender = props.sesSender;
  }

  /** Sets SLACK_WEBHOOK_SECRET_ARN / SES_SENDER and their grants on `fn`, for what is configured. */
  bind(fn: GatewayFunction): void {
    if (this.slackWebhookSecret) fn.bindSecret('SLACK_WEBHOOK_SECRET_ARN', this.slackWebhookSecret);
    if (this.sesSender) fn.bindSesSender(this.sesSender);
  }
}

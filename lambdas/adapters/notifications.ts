/**
 * Delivering approval notifications: Slack through an incoming webhook (its URL is a secret: held
 * in Secrets Manager in AWS, SLACK_WEBHOOK_URL locally), email through SES v2 in AWS or SMTP
 * (nodemailer) when SMTP_URL is set, and — in the local twin only — a copy to its outbox.
 * Each channel is best effort and reports what happened; none of them ever sees a task token.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SESv2Client, SendEmailCommand } from '@aws-sdk/client-sesv2';
import nodemailer from 'nodemailer';
import { headerSafe, type ApprovalMessage } from '../core/notification-content.js';

export interface NotificationRecipients {
  readonly slackChannel?: string;
  readonly emails: readonly string[];
}

export interface DeliveryReport {
  readonly channel: 'slack' | 'email' | 'outbox';
  readonly ok: boolean;
  readonly detail?: string;
}

export interface NotificationChannel {
  readonly name: DeliveryReport['channel'];
  send(message: ApprovalMessage, to: NotificationRecipients): Promise<DeliveryReport>;
}

export interface Notifier {
  send(message: ApprovalMessage, to: NotificationRecipients): Promise<DeliveryReport[]>;
}

// One address, no display name, nothing that could smuggle a second header or recipient.
const EMAIL =
  /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

/** Addresses safe to put in a header: CR/LF stripped, then only plain addr-specs kept. */
export function safeAddresses(addresses: readonly string[]): string[] {
  return [...new Set(addresses.map((a) => headerSafe(a)).filter((a) => EMAIL.test(a)))];
}

export class SlackWebhookChannel implements NotificationChannel {
  readonly name = 'slack' as const;
  constructor(
    private readonly webhookUrl: () => Promise<string>,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  async send(message: ApprovalMessage, to: NotificationRecipients): Promise<DeliveryReport> {
    const url = await this.webhookUrl();
    const res = await this.fetchImpl(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        text: message.slack.text,
        blocks: message.slack.blocks,
        // Legacy webhooks honour a channel override; app webhooks post to their own channel.
        ...(to.slackChannel ? { channel: to.slackChannel } : {}),
      }),
      signal: AbortSignal.timeout(10_000),
    });
    await res.text().catch(() => '');
    return { channel: 'slack', ok: res.ok, detail: `HTTP ${res.status}` };
  }
}

/** The webhook URL from a Secrets Manager secret (the URL itself, or JSON `{"url": …}`), cached. */
export function webhookUrlFromSecret(arn: string, client?: SecretsManagerClient): () => Promise<string> {
  let cached: Promise<string> | undefined;
  return () => {
    cached ??= (async () => {
      const out = await (client ?? new SecretsManagerClient({ maxAttempts: 3 })).send(
        new GetSecretValueCommand({ SecretId: arn }),
      );
      const raw = out.SecretString?.trim() ?? '';
      const url = raw.startsWith('{') ? String((JSON.parse(raw) as { url?: unknown }).url ?? '') : raw;
      if (!/^https:\/\//.test(url)) throw new Error('the Slack webhook secret does not hold an https URL');
      return url;
    })().catch((error: unknown) => {
      cached = undefined; // try again on the next notification
      throw error;
    });
    return cached;
  };
}

export class SesEmailChannel implements NotificationChannel {
  readonly name = 'email' as const;
  private readonly client: SESv2Client;
  constructor(
    private readonly sender: string,
    client?: SESv2Client,
  ) {
    this.client = client ?? new SESv2Client({ maxAttempts: 3 });
  }

  async send(message: ApprovalMessage, to: NotificationRecipients): Promise<DeliveryReport> {
    const addresses = safeAddresses(to.emails);
    if (addresses.length === 0) return { channel: 'email', ok: true, detail: 'no recipients' };
    await this.client.send(
      new SendEmailCommand({
        FromEmailAddress: headerSafe(this.sender),
        Destination: { ToAddresses: addresses },
        Content: {
          Simple: {
            Subject: { Data: headerSafe(message.subject), Charset: 'UTF-8' },
            Body: {
              Text: { Data: message.text, Charset: 'UTF-8' },
              Html: { Data: message.html, Charset: 'UTF-8' },
            },
          },
        },
      }),
    );
    return { channel: 'email', ok: true, detail: `${addresses.length} recipient(s) via SES` };
  }
}

export class SmtpEmailChannel implements NotificationChannel {
  readonly name = 'email' as const;
  private readonly transport: nodemailer.Transporter;
  constructor(
    smtpUrl: string,
    private readonly from: string,
  ) {
    this.transport = nodemailer.createTransport(smtpUrl);
  }

  async send(message: ApprovalMessage, to: NotificationRecipients): Promise<DeliveryReport> {
    const addresses = safeAddresses(to.emails);
    if (addresses.length === 0) return { channel: 'email', ok: true, detail: 'no recipients' };
    await this.transport.sendMail({
      from: headerSafe(this.from),
      to: addresses,
      subject: headerSafe(message.subject),
      text: message.text,
      html: message.html,
      // No other headers are taken from the request: nothing user-written reaches them.
      disableFileAccess: true,
      disableUrlAccess: true,
    });
    return { channel: 'email', ok: true, detail: `${addresses.length} recipient(s) via SMTP` };
  }
}

/** The local twin's outbox: a copy of every message, posted to WARDEN_OUTBOX_URL (never set in AWS). */
export class OutboxChannel implements NotificationChannel {
  readonly name = 'outbox' as const;
  constructor(
    private readonly url: string,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  async send(message: ApprovalMessage, to: NotificationRecipients): Promise<DeliveryReport> {
    const res = await this.fetchImpl(this.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        requestId: message.requestId,
        reviewUrl: message.reviewUrl,
        subject: message.subject,
        text: message.text,
        html: message.html,
        slack: message.slack,
        to: { slackChannel: to.slackChannel, emails: safeAddresses(to.emails) },
      }),
      signal: AbortSignal.timeout(5_000),
    });
    await res.text().catch(() => '');
    return { channel: 'outbox', ok: res.ok, detail: `HTTP ${res.status}` };
  }
}

export class MultiChannelNotifier implements Notifier {
  constructor(
    readonly channels: readonly NotificationChannel[],
    private readonly log?: (entry: Record<string, unknown>) => void,
  ) {}

  async send(message: ApprovalMessage, to: NotificationRecipients): Promise<DeliveryReport[]> {
    return Promise.all(
      this.channels.map(async (channel) => {
        try {
          const report = await channel.send(message, to);
          if (!report.ok) {
            this.log?.({
              level: 'warn',
              msg: 'notification not delivered',
              ...report,
            });
          }
          return report;
        } catch (error) {
          // Only the error's name: SDK messages can echo addresses back.
          const detail = error instanceof Error ? error.name : 'error';
          this.log?.({ level: 'error', msg: 'notification failed', channel: channel.name, detail });
          return { channel: channel.name, ok: false, detail };
        }
      }),
    );
  }
}

/** Channels from the environment, read once: whatever is configured, and nothing that is not. */
export function notifierFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  log?: (entry: Record<string, unknown>) => void,
): MultiChannelNotifier {
  const channels: NotificationChannel[] = [];
  if (env.SLACK_WEBHOOK_SECRET_ARN) {
    channels.push(new SlackWebhookChannel(webhookUrlFromSecret(env.SLACK_WEBHOOK_SECRET_ARN)));
  } else if (env.SLACK_WEBHOOK_URL) {
    const url = env.SLACK_WEBHOOK_URL;
    channels.push(new SlackWebhookChannel(async () => url));
  }
  if (env.SES_SENDER) channels.push(new SesEmailChannel(env.SES_SENDER));
  else if (env.SMTP_URL)
    channels.push(new SmtpEmailChannel(env.SMTP_URL, env.SMTP_FROM ?? 'warden@localhost'));
  if (env.WARDEN_OUTBOX_URL) channels.push(new OutboxChannel(env.WARDEN_OUTBOX_URL));
  return new MultiChannelNotifier(channels, log);
}

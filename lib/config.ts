/**
 * Warden's deployment configuration: what `cdk deploy` needs to know about the user's identity
 * provider, data targets, approvers and retention. It comes from construct props or from CDK
 * context (`-c wardenConfig=warden.config.json` or individual keys), is validated here once, and
 * reaches the Lambdas as the `WARDEN_CONFIG` environment variable (the runtime part) plus a few
 * dedicated variables (OIDC_*, GROUPS_CLAIM, …).
 *
 * No CDK import: the Lambdas may import these types to parse `WARDEN_CONFIG`.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** A PostgreSQL database reached through the RDS Data API (Aurora with the Data API enabled). */
export interface PostgresTargetConfig {
  readonly kind: 'postgres';
  /** `arn:aws:rds:…:cluster:…` of an Aurora cluster with the Data API enabled. */
  readonly clusterArn: string;
  readonly database: string;
  /**
   * One Secrets Manager secret per access level. `read` must hold a database user that can only
   * read; Warden never hands these to the caller, it runs statements with them.
   */
  readonly secrets: { readonly read: string; readonly write?: string; readonly ddl?: string };
  readonly approvers?: ApproversConfig;
  /** Distinct approvals needed before an approval-required request runs. @default 1 */
  readonly requiredApprovals?: number;
  /** Rows returned before a result is truncated. @default 1000 */
  readonly maxRows?: number;
  /** Column masking rules by column name pattern; interpreted by lambdas/core/masking. */
  readonly masking?: readonly MaskingRuleConfig[];
}

/** An AWS account reached by assuming a role with a per-request session policy. */
export interface AwsTargetConfig {
  readonly kind: 'aws';
  /** Roles Warden assumes; the session policy narrows them to the one approved action. */
  readonly roles: { readonly read: string; readonly write?: string; readonly permissions?: string };
  /** @default the stack's region */
  readonly region?: string;
  readonly approvers?: ApproversConfig;
  /** @default 1 */
  readonly requiredApprovals?: number;
}

export type TargetConfig = PostgresTargetConfig | AwsTargetConfig;

export interface ApproversConfig {
  /** Slack channel named in the message (the webhook decides where it lands). */
  readonly slackChannel?: string;
  /** Email addresses notified through SES. */
  readonly emails?: readonly string[];
}

export interface MaskingRuleConfig {
  /** Column name, case-insensitive; `*` wildcards allowed (`*_email`). */
  readonly column: string;
  /** PII type the rule masks as (email, phone, card, name, …). */
  readonly type: string;
  readonly table?: string;
}

/** The part of the configuration the Lambdas read at runtime from `WARDEN_CONFIG`. */
export interface WardenRuntimeConfig {
  readonly targets: Readonly<Record<string, TargetConfig>>;
  /** Default approval window in seconds. */
  readonly approvalWindowSeconds: number;
  /** Upper bound a request may ask for; the state machine timeout is derived from it. */
  readonly maxApprovalWindowSeconds: number;
  /** Longest just-in-time grant, seconds. */
  readonly maxGrantSeconds: number;
  /** Global approvers, used when a target names none. */
  readonly approvers?: ApproversConfig;
  readonly masking?: readonly MaskingRuleConfig[];
}

/** Everything the CDK stack needs. Optional fields document their defaults. */
export interface WardenSettings {
  /** OIDC issuer URL (Cognito user pool, Okta, Entra ID, Auth0…). */
  readonly oidcIssuer: string;
  /** Expected `aud` (or `client_id` for Cognito access tokens). */
  readonly oidcAudience: string;
  /** @default discovered from the issuer's `/.well-known/openid-configuration` at cold start */
  readonly oidcJwksUri?: string;
  /** Token claim listing the caller's groups. @default 'groups' */
  readonly groupsClaim: string;
  readonly runtime: WardenRuntimeConfig;
  /** Secrets Manager ARN of a secret holding the Slack incoming webhook URL. @default no Slack */
  readonly slackWebhookSecretArn?: string;
  /** Verified SES v2 sender address. @default no email */
  readonly sesSender?: string;
  /** Public URL of the gateway when fronted by a custom domain. @default the HTTP API's URL */
  readonly publicUrl?: string;
  /** Days audit events stay in DynamoDB before TTL removes them (the lake keeps them). @default 90 */
  readonly auditTtlDays: number;
  /** Days exports stay in the audit lake. @default 2555 (7 years) */
  readonly auditLakeRetentionDays: number;
  /** EventBridge schedule of the audit export. @default 'rate(1 day)' */
  readonly auditExportSchedule: string;
  /** CloudWatch Logs retention in days. @default 365 */
  readonly logRetentionDays: number;
  /** HTTP API default-stage throttling. @default 1000 rps steady, 2000 burst */
  readonly throttle: { readonly rateLimit: number; readonly burstLimit: number };
  /** Email address subscribed to the alarm topic. @default no subscription */
  readonly alarmEmail?: string;
}

/** Input shape: everything but the identity provider is optional. */
export type WardenSettingsInput = Partial<Omit<WardenSettings, 'runtime' | 'throttle'>> & {
  readonly oidcIssuer?: string;
  readonly oidcAudience?: string;
  readonly runtime?: Partial<WardenRuntimeConfig>;
  readonly throttle?: Partial<WardenSettings['throttle']>;
};

export class WardenConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WardenConfigError';
  }
}

/**
 * Used when no issuer is configured, so `cdk synth` works on a fresh clone. A stack synthesized
 * with it deploys but rejects every token (nothing is issued by `.invalid`).
 */
export const PLACEHOLDER_ISSUER = 'https://issuer.example.invalid';
export const PLACEHOLDER_AUDIENCE = 'warden';

export const DEFAULT_APPROVAL_WINDOW_SECONDS = 3600;
export const DEFAULT_MAX_APPROVAL_WINDOW_SECONDS = 7 * 24 * 3600;

/** Applies defaults and validates; throws WardenConfigError with a message a deployer can act on. */
export function resolveSettings(input: WardenSettingsInput = {}): WardenSettings {
  const runtimeIn = input.runtime ?? {};
  const runtime: WardenRuntimeConfig = {
    targets: runtimeIn.targets ?? {},
    approvalWindowSeconds: runtimeIn.approvalWindowSeconds ?? DEFAULT_APPROVAL_WINDOW_SECONDS,
    maxApprovalWindowSeconds: runtimeIn.maxApprovalWindowSeconds ?? DEFAULT_MAX_APPROVAL_WINDOW_SECONDS,
    maxGrantSeconds: runtimeIn.maxGrantSeconds ?? 8 * 3600,
    ...(runtimeIn.approvers ? { approvers: runtimeIn.approvers } : {}),
    ...(runtimeIn.masking ? { masking: runtimeIn.masking } : {}),
  };
  const settings: WardenSettings = {
    oidcIssuer: input.oidcIssuer ?? PLACEHOLDER_ISSUER,
    oidcAudience: input.oidcAudience ?? PLACEHOLDER_AUDIENCE,
    groupsClaim: input.groupsClaim ?? 'groups',
    runtime,
    auditTtlDays: input.auditTtlDays ?? 90,
    auditLakeRetentionDays: input.auditLakeRetentionDays ?? 2555,
    auditExportSchedule: input.auditExportSchedule ?? 'rate(1 day)',
    logRetentionDays: input.logRetentionDays ?? 365,
    throttle: {
      rateLimit: input.throttle?.rateLimit ?? 1000,
      burstLimit: input.throttle?.burstLimit ?? 2000,
    },
    ...pick(input, ['oidcJwksUri', 'slackWebhookSecretArn', 'sesSender', 'publicUrl', 'alarmEmail']),
  };
  validate(settings);
  return settings;
}

function pick<T extends object, K extends keyof T>(obj: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}

function validate(s: WardenSettings): void {
  const problems: string[] = [];
  if (!/^https:\/\//.test(s.oidcIssuer))
    problems.push(`oidcIssuer must be an https URL, got ${s.oidcIssuer}`);
  const r = s.runtime;
  if (!(r.approvalWindowSeconds >= 60)) problems.push('approvalWindowSeconds must be at least 60');
  if (!(r.maxApprovalWindowSeconds >= r.approvalWindowSeconds))
    problems.push('maxApprovalWindowSeconds must be at least approvalWindowSeconds');
  // Step Functions standard workflows run for at most a year; keep a day of margin.
  if (r.maxApprovalWindowSeconds > 364 * 24 * 3600) problems.push('maxApprovalWindowSeconds exceeds a year');
  for (const [name, t] of Object.entries(r.targets)) {
    if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(name))
      problems.push(`target name ${name}: use lower-case letters, digits, - and _`);
    if (t.kind === 'postgres') {
      if (!/^arn:aws[\w-]*:rds:/.test(t.clusterArn))
        problems.push(`target ${name}: clusterArn is not an RDS ARN`);
      for (const arn of Object.values(t.secrets))
        if (arn !== undefined && !/^arn:aws[\w-]*:secretsmanager:/.test(arn))
          problems.push(`target ${name}: ${arn} is not a Secrets Manager ARN`);
    } else if (t.kind === 'aws') {
      for (const arn of Object.values(t.roles))
        if (arn !== undefined && !/^arn:aws[\w-]*:iam::\d{12}:role\//.test(arn))
          problems.push(`target ${name}: ${arn} is not an IAM role ARN`);
    } else {
      problems.push(`target ${name}: kind must be postgres or aws`);
    }
    if (t.requiredApprovals !== undefined && !(t.requiredApprovals >= 1))
      problems.push(`target ${name}: requiredApprovals must be at least 1`);
  }
  if (
    s.slackWebhookSecretArn !== undefined &&
    !/^arn:aws[\w-]*:secretsmanager:/.test(s.slackWebhookSecretArn)
  )
    problems.push('slackWebhookSecretArn is not a Secrets Manager ARN');
  if (s.sesSender !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(s.sesSender))
    problems.push('sesSender must be an email address');
  if (s.throttle.rateLimit <= 0 || s.throttle.burstLimit <= 0)
    problems.push('throttle limits must be positive');
  if (problems.length > 0)
    throw new WardenConfigError(`invalid Warden configuration:\n- ${problems.join('\n- ')}`);
}

/** Minimal view of `Node.tryGetContext`, so this module stays free of CDK imports. */
export interface ContextSource {
  tryGetContext(key: string): unknown;
}

/**
 * Reads settings from CDK context: `wardenConfig` (a JSON file path, or an object in cdk.json),
 * overridden by individual keys (`oidcIssuer`, `oidcAudience`, `groupsClaim`, `oidcJwksUri`,
 * `slackWebhookSecretArn`, `sesSender`, `publicUrl`, `alarmEmail`, `approvalWindowSeconds`,
 * `auditTtlDays`, `logRetentionDays`) so `cdk deploy -c oidcIssuer=…` works without a file.
 */
export function settingsFromContext(ctx: ContextSource): WardenSettingsInput {
  const raw = ctx.tryGetContext('wardenConfig');
  let base: WardenSettingsInput = {};
  if (typeof raw === 'string' && raw.length > 0) {
    base = JSON.parse(readFileSync(resolve(raw), 'utf8')) as WardenSettingsInput;
  } else if (raw !== undefined && raw !== null && typeof raw === 'object') {
    base = raw as WardenSettingsInput;
  }
  const str = (k: string): string | undefined => {
    const v = ctx.tryGetContext(k);
    return typeof v === 'string' && v.length > 0 ? v : undefined;
  };
  const num = (k: string): number | undefined => {
    const v = ctx.tryGetContext(k);
    return v === undefined || v === null || v === '' ? undefined : Number(v);
  };
  const overrides: Record<string, unknown> = {
    oidcIssuer: str('oidcIssuer'),
    oidcAudience: str('oidcAudience'),
    oidcJwksUri: str('oidcJwksUri'),
    groupsClaim: str('groupsClaim'),
    slackWebhookSecretArn: str('slackWebhookSecretArn'),
    sesSender: str('sesSender'),
    publicUrl: str('publicUrl'),
    alarmEmail: str('alarmEmail'),
    auditTtlDays: num('auditTtlDays'),
    logRetentionDays: num('logRetentionDays'),
  };
  const merged: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) merged[k] = v;
  const window = num('approvalWindowSeconds');
  if (window !== undefined) merged.runtime = { ...(base.runtime ?? {}), approvalWindowSeconds: window };
  return merged as WardenSettingsInput;
}

/**
 * Warden's deployment configuration: what `cdk deploy` needs to know about the user's identity
 * provider, data targets, approvers and retention. It comes from construct props or from CDK
 * context (`-c wardenConfig=warden.config.json` or individual keys), is validated here once, and
 * reaches the Lambdas as the `WARDEN_CONFIG` environment variable (the runtime part) plus a few
 * dedicated variables (OIDC_*, GROUPS_CLAIM, …).
 *
 * No CDK import, so the local twin and tests can use it too.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseConfig, type WardenConfig, type WardenConfigInput } from '../lambdas/core/config.js';

/**
 * The runtime configuration is the Lambdas' own schema (lambdas/core/config.ts): the stack validates
 * it with the very parser the functions use at cold start, so a bad target fails `cdk synth`, not
 * the first request.
 */
export type WardenRuntimeConfig = WardenConfigInput;

/** Everything the CDK stack needs. Optional fields document their defaults. */
export interface WardenSettings {
  /** OIDC issuer URL (Cognito user pool, Okta, Entra ID, Auth0…). */
  readonly oidcIssuer: string;
  /** Expected `aud` (or `client_id` for Cognito access tokens, with `oidcAudienceClaim`). */
  readonly oidcAudience: string;
  /**
   * The token claim `oidcAudience` is checked against (OIDC_AUDIENCE_CLAIM): `aud`, or
   * `client_id` for Cognito access tokens, which carry no `aud`. With `client_id`, only tokens
   * minted for that app client are accepted, not those of other clients of the same user pool.
   * @default 'aud'
   */
  readonly oidcAudienceClaim?: 'aud' | 'client_id';
  /** @default discovered from the issuer's `/.well-known/openid-configuration` at cold start */
  readonly oidcJwksUri?: string;
  /**
   * How old the IdP's signing key set may get before a function fetches it again
   * (OIDC_JWKS_MAX_AGE_SECONDS, 1 to 86400): the longest a key the IdP removed (after a leak, say)
   * keeps verifying tokens. If the IdP cannot be reached then, the previous set stays in use and
   * the fetch is retried every 30 s.
   * @default 600
   */
  readonly oidcJwksMaxAgeSeconds?: number;
  /**
   * How old a target's passed database masking check may get before a function runs it again
   * (DB_MASKING_RECHECK_SECONDS, 1 to 86400): the longest a privilege granted by hand afterwards
   * (SELECT on a base table to a masked user, say) goes unnoticed by an instance that is up. The
   * pass keeps serving while the re-check runs; one that could not run is retried every 30 s, and a
   * pass twice this old no longer serves (docs/masking.md).
   * @default 300
   */
  readonly dbMaskingRecheckSeconds?: number;
  /**
   * OAuth client id of the approval page (authorization code + PKCE, a public client: no secret).
   * @default none: the approval page answers 503 and approvers use the API or the CLI
   */
  readonly oidcApprovalClientId?: string;
  /** Scopes the approval page asks for. @default the adapter's default ('openid') */
  readonly oidcApprovalScope?: string;
  /**
   * OAuth client id of `warden login` (a public native client: authorization code + PKCE with a
   * loopback redirect, optionally the device grant; docs/cli.md#signing-in). Published in the
   * gateway's `/.well-known/oauth-protected-resource`. @default none: `warden login` is refused
   */
  readonly oidcCliClientId?: string;
  /** Scopes `warden login` asks for. @default `oidcScopes` (plus offline_access where offered) */
  readonly oidcCliScope?: string;
  /**
   * The loopback redirect URI registered for that client, for IdPs that match redirect URIs
   * exactly, port included (Cognito: `http://localhost:8765/callback`). @default none: the CLI
   * uses `http://127.0.0.1:<any free port>/callback`, which IdPs following RFC 8252 §7.3 accept
   */
  readonly oidcCliRedirectUri?: string;
  /** Scopes MCP clients are told to ask for (RFC 9728 metadata), space-separated. @default 'openid' */
  readonly oidcScopes?: string;
  /** Browser origins allowed to call /mcp besides Warden's own, comma-separated. @default none */
  readonly mcpAllowedOrigins?: string;
  /** Token claim listing the caller's groups. @default 'groups' */
  readonly groupsClaim: string;
  /**
   * For IdPs without token exchange (RFC 8693): the claim of an agent's client-credentials token
   * that names the person it acts for (AGENT_OWNER_CLAIM; docs/approvals.md). @default none
   */
  readonly agentOwnerClaim?: string;
  /**
   * Client ids whose tokens are agents even without `act` or the owner claim (AGENT_CLIENT_IDS).
   * From context: comma-separated. @default none
   */
  readonly agentClientIds?: readonly string[];
  /** Targets, masking and approval rules, serialised into `WARDEN_CONFIG`. @default no targets */
  readonly runtime: WardenRuntimeConfig;
  /**
   * Longest approval window any target may configure; the state machine times out an hour later.
   * @default 7 days (the most lambdas/core/config.ts accepts)
   */
  readonly maxApprovalWindowSeconds: number;
  /** Secrets Manager ARN of a secret holding the Slack incoming webhook URL. @default no Slack */
  readonly slackWebhookSecretArn?: string;
  /** Verified SES v2 sender address. @default no email */
  readonly sesSender?: string;
  /** Public URL of the gateway when fronted by a custom domain. @default the HTTP API's URL */
  readonly publicUrl?: string;
  /** Days audit events stay in DynamoDB before TTL removes them (the lake keeps them). @default 400 */
  readonly auditTtlDays: number;
  /** Days exports stay in the audit lake. @default 2555 (7 years) */
  readonly auditLakeRetentionDays: number;
  /**
   * S3 Object Lock mode of the lake: GOVERNANCE (deleting early needs s3:BypassGovernanceRetention)
   * or COMPLIANCE (nobody, not even the account root, can delete early). @default 'GOVERNANCE'
   */
  readonly auditLakeObjectLockMode: 'GOVERNANCE' | 'COMPLIANCE';
  /** Days each export is locked. @default auditLakeRetentionDays */
  readonly auditLakeObjectLockDays: number;
  /** EventBridge schedule of the audit export. @default 'rate(1 day)' */
  readonly auditExportSchedule: string;
  /** CloudWatch Logs retention in days. @default 365 */
  readonly logRetentionDays: number;
  /** HTTP API default-stage throttling. @default 1000 rps steady, 2000 burst */
  readonly throttle: { readonly rateLimit: number; readonly burstLimit: number };
  /** Email address subscribed to the alarm topic. @default no subscription */
  readonly alarmEmail?: string;
  /**
   * Concurrency reserved for the execute function (approved and allowed writes), so a flood of API
   * calls cannot starve it; 0 reserves none. @default 10
   */
  readonly executeReservedConcurrency: number;
  /** Concurrency reserved for the notify function (approvers hear of requests); 0 reserves none. @default 5 */
  readonly notifyReservedConcurrency: number;
}

/** Input shape: everything but the identity provider is optional. */
export type WardenSettingsInput = Partial<Omit<WardenSettings, 'runtime' | 'throttle'>> & {
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

export const DEFAULT_MAX_APPROVAL_WINDOW_SECONDS = 7 * 24 * 3600;

/** Applies defaults and validates; throws WardenConfigError with a message a deployer can act on. */
export function resolveSettings(input: WardenSettingsInput = {}): WardenSettings {
  const auditTtlDays = input.auditTtlDays ?? input.runtime?.auditTtlDays ?? 400;
  // The functions and the table TTL must agree on how long trail items live.
  const runtime: WardenRuntimeConfig = { targets: {}, ...input.runtime, auditTtlDays };
  const settings: WardenSettings = {
    oidcIssuer: input.oidcIssuer ?? PLACEHOLDER_ISSUER,
    oidcAudience: input.oidcAudience ?? PLACEHOLDER_AUDIENCE,
    groupsClaim: input.groupsClaim ?? 'groups',
    runtime,
    maxApprovalWindowSeconds: input.maxApprovalWindowSeconds ?? DEFAULT_MAX_APPROVAL_WINDOW_SECONDS,
    auditTtlDays,
    auditLakeRetentionDays: input.auditLakeRetentionDays ?? 2555,
    auditLakeObjectLockMode: input.auditLakeObjectLockMode ?? 'GOVERNANCE',
    auditLakeObjectLockDays: input.auditLakeObjectLockDays ?? input.auditLakeRetentionDays ?? 2555,
    auditExportSchedule: input.auditExportSchedule ?? 'rate(1 day)',
    logRetentionDays: input.logRetentionDays ?? 365,
    executeReservedConcurrency: input.executeReservedConcurrency ?? 10,
    notifyReservedConcurrency: input.notifyReservedConcurrency ?? 5,
    throttle: {
      rateLimit: input.throttle?.rateLimit ?? 1000,
      burstLimit: input.throttle?.burstLimit ?? 2000,
    },
    ...pick(input, [
      'oidcAudienceClaim',
      'oidcJwksUri',
      'oidcJwksMaxAgeSeconds',
      'dbMaskingRecheckSeconds',
      'oidcApprovalClientId',
      'oidcApprovalScope',
      'oidcScopes',
      'oidcCliClientId',
      'oidcCliScope',
      'oidcCliRedirectUri',
      'mcpAllowedOrigins',
      'agentOwnerClaim',
      'agentClientIds',
      'slackWebhookSecretArn',
      'sesSender',
      'publicUrl',
      'alarmEmail',
    ]),
  };
  validate(settings);
  return settings;
}

/** The runtime configuration with the Lambdas' defaults applied (what a function will see). */
export function parsedRuntimeConfig(settings: WardenSettings): WardenConfig {
  return parseConfig(settings.runtime);
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
  if (
    s.oidcAudienceClaim !== undefined &&
    (s.oidcAudienceClaim as string) !== 'aud' &&
    (s.oidcAudienceClaim as string) !== 'client_id'
  )
    problems.push(`oidcAudienceClaim must be 'aud' or 'client_id', got ${String(s.oidcAudienceClaim)}`);
  for (const key of ['oidcJwksMaxAgeSeconds', 'dbMaskingRecheckSeconds'] as const) {
    const value = s[key];
    if (value !== undefined && !(Number.isInteger(value) && value >= 1 && value <= 86_400)) {
      problems.push(`${key} must be a whole number of seconds from 1 to 86400, got ${String(value)}`);
    }
  }
  if (
    s.oidcCliRedirectUri !== undefined &&
    !/^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?\/[^?#]*$/.test(s.oidcCliRedirectUri)
  )
    problems.push(
      `oidcCliRedirectUri must be an http URL on 127.0.0.1, localhost or [::1] (the CLI listens there), got ${s.oidcCliRedirectUri}`,
    );
  let runtime: WardenConfig | undefined;
  try {
    runtime = parseConfig(s.runtime);
  } catch (error) {
    problems.push(error instanceof Error ? error.message : String(error));
  }
  // Step Functions standard workflows run for at most a year; keep a day of margin.
  if (!(s.maxApprovalWindowSeconds >= 60 && s.maxApprovalWindowSeconds <= 364 * 24 * 3600))
    problems.push('maxApprovalWindowSeconds must be between 60 seconds and 364 days');
  for (const [name, t] of Object.entries(runtime?.targets ?? {})) {
    if (t.approvals.windowSeconds > s.maxApprovalWindowSeconds)
      problems.push(`target ${name}: approvals.windowSeconds exceeds maxApprovalWindowSeconds`);
    if (t.kind === 'sql') {
      if (!/^arn:aws[\w-]*:rds:/.test(t.resourceArn))
        problems.push(`target ${name}: resourceArn is not an RDS ARN`);
      for (const arn of Object.values(t.secrets))
        if (!/^arn:aws[\w-]*:secretsmanager:/.test(arn))
          problems.push(`target ${name}: ${arn} is not a Secrets Manager ARN`);
    } else if (t.kind === 'mcp') {
      if (!t.url.startsWith('https://'))
        problems.push(`target ${name}: an upstream MCP url must be https://`);
      if (t.auth.type !== 'none' && !/^arn:aws[\w-]*:secretsmanager:/.test(t.auth.secret))
        problems.push(`target ${name}: ${t.auth.secret} is not a Secrets Manager ARN`);
    } else if (!/^arn:aws[\w-]*:iam::\d{12}:role\//.test(t.roleArn)) {
      problems.push(`target ${name}: ${t.roleArn} is not an IAM role ARN`);
    }
  }
  if (
    s.slackWebhookSecretArn !== undefined &&
    !/^arn:aws[\w-]*:secretsmanager:/.test(s.slackWebhookSecretArn)
  )
    problems.push('slackWebhookSecretArn is not a Secrets Manager ARN');
  if (s.sesSender !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(s.sesSender))
    problems.push('sesSender must be an email address');
  if (s.agentOwnerClaim !== undefined && !/^[\w.:/-]{1,128}$/.test(s.agentOwnerClaim))
    problems.push('agentOwnerClaim must be a claim name');
  if (s.agentClientIds !== undefined) {
    if (
      !Array.isArray(s.agentClientIds) ||
      s.agentClientIds.some((c) => typeof c !== 'string' || !/^[^\s,]{1,256}$/.test(c))
    )
      problems.push('agentClientIds must be a list of client ids (no spaces or commas)');
  }
  if (s.throttle.rateLimit <= 0 || s.throttle.burstLimit <= 0)
    problems.push('throttle limits must be positive');
  if (s.auditLakeObjectLockMode !== 'GOVERNANCE' && s.auditLakeObjectLockMode !== 'COMPLIANCE')
    problems.push('auditLakeObjectLockMode must be GOVERNANCE or COMPLIANCE');
  if (!Number.isInteger(s.auditLakeObjectLockDays) || s.auditLakeObjectLockDays < 1)
    problems.push('auditLakeObjectLockDays must be a whole number of days, at least 1');
  else if (s.auditLakeObjectLockDays > s.auditLakeRetentionDays)
    problems.push(
      'auditLakeObjectLockDays may not exceed auditLakeRetentionDays (the lake could not expire them)',
    );
  for (const key of ['executeReservedConcurrency', 'notifyReservedConcurrency'] as const) {
    const v = s[key];
    // Lambda keeps at least 100 of an account's concurrency unreserved; 1000 is the default quota.
    if (!Number.isInteger(v) || v < 0 || v > 900) problems.push(`${key} must be an integer from 0 to 900`);
  }
  if (problems.length > 0)
    throw new WardenConfigError(`invalid Warden configuration:\n- ${problems.join('\n- ')}`);
}

/** Minimal view of `Node.tryGetContext`, so this module stays free of CDK imports. */
export interface ContextSource {
  tryGetContext(key: string): unknown;
}

/**
 * Reads settings from CDK context: `wardenConfig` (a JSON file path, or an object in cdk.json),
 * overridden by individual keys (`oidcIssuer`, `oidcAudience`, `oidcAudienceClaim`, `groupsClaim`, `oidcJwksUri`,
 * `oidcJwksMaxAgeSeconds`, `dbMaskingRecheckSeconds`,
 * `agentOwnerClaim`, `agentClientIds` (comma-separated),
 * `oidcApprovalClientId`, `oidcApprovalScope`, `oidcCliClientId`, `oidcCliScope`, `oidcCliRedirectUri`,
 * `slackWebhookSecretArn`, `sesSender`, `publicUrl`, `alarmEmail`, `auditTtlDays`,
 * `logRetentionDays`, `auditLakeObjectLockMode`, `auditLakeObjectLockDays`, `executeReservedConcurrency`, `notifyReservedConcurrency`) so `cdk deploy -c oidcIssuer=…` works without a file.
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
    oidcAudienceClaim: str('oidcAudienceClaim'),
    oidcJwksUri: str('oidcJwksUri'),
    oidcJwksMaxAgeSeconds: num('oidcJwksMaxAgeSeconds'),
    dbMaskingRecheckSeconds: num('dbMaskingRecheckSeconds'),
    oidcApprovalClientId: str('oidcApprovalClientId'),
    oidcApprovalScope: str('oidcApprovalScope'),
    oidcScopes: str('oidcScopes'),
    oidcCliClientId: str('oidcCliClientId'),
    oidcCliScope: str('oidcCliScope'),
    oidcCliRedirectUri: str('oidcCliRedirectUri'),
    mcpAllowedOrigins: str('mcpAllowedOrigins'),
    groupsClaim: str('groupsClaim'),
    agentOwnerClaim: str('agentOwnerClaim'),
    agentClientIds: str('agentClientIds')
      ?.split(',')
      .map((c) => c.trim())
      .filter(Boolean),
    slackWebhookSecretArn: str('slackWebhookSecretArn'),
    sesSender: str('sesSender'),
    publicUrl: str('publicUrl'),
    alarmEmail: str('alarmEmail'),
    auditTtlDays: num('auditTtlDays'),
    logRetentionDays: num('logRetentionDays'),
    auditLakeObjectLockMode: str('auditLakeObjectLockMode'),
    auditLakeObjectLockDays: num('auditLakeObjectLockDays'),
    executeReservedConcurrency: num('executeReservedConcurrency'),
    notifyReservedConcurrency: num('notifyReservedConcurrency'),
  };
  const merged: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) merged[k] = v;
  return merged as WardenSettingsInput;
}

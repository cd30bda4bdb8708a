/**
 * WardenGateway: the whole gateway as one reusable construct. Drop it into any stack:
 *
 *   new WardenGateway(this, 'Warden', { oidcIssuer: 'https://…', oidcAudience: 'warden', runtime: { targets } });
 *
 * Every function gets exactly the grants its intent methods name; see docs/deploy.md.
 */
import { CfnOutput, Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import {
  parsedRuntimeConfig,
  resolveSettings,
  type WardenSettings,
  type WardenSettingsInput,
} from '../config.js';
import {
  ApprovalsTable,
  AuditTable,
  GrantsTable,
  PoliciesTable,
  RequestsTable,
  ToolPinsTable,
} from '../tables.js';
import { WardenApi } from './api.js';
import { ApprovalWorkflow } from './approval-workflow.js';
import { AuditLake } from './audit-lake.js';
import { WardenAlarms } from './alarms.js';
import { GatewayFunction } from './gateway-function.js';
import { WardenKeys } from './keys.js';
import { acknowledgeNagFindings } from './nag-suppressions.js';
import { Notifications } from './notifications.js';
import { WardenTables } from './tables.js';

/** Props: the settings of lib/config.ts; only the identity provider is needed in practice. */
export type WardenGatewayProps = WardenSettingsInput;

/** Lambda environment variables are limited to 4 KB in total; keep headroom for the others. */
const MAX_CONFIG_BYTES = 3000;

export class WardenGateway extends Construct {
  readonly settings: WardenSettings;
  readonly keys: WardenKeys;
  /** The role `warden policy push` runs as (Policies table, policy key GenerateMac, trail append). */
  readonly policyPusher: iam.Role;
  readonly tables: WardenTables;
  readonly apiFunction: GatewayFunction;
  readonly notifyFunction: GatewayFunction;
  readonly executeFunction: GatewayFunction;
  readonly workflow: ApprovalWorkflow;
  readonly api: WardenApi;
  readonly auditLake: AuditLake;
  readonly notifications: Notifications;
  readonly alarms: WardenAlarms;

  constructor(scope: Construct, id: string, props: WardenGatewayProps = {}) {
    super(scope, id);
    const s = (this.settings = resolveSettings(props));
    const logRetention = retentionDays(s.logRetentionDays);
    const parsed = parsedRuntimeConfig(s);

    // The input, not the parsed form: the functions apply the same defaults, and bytes are scarce.
    const runtimeConfig = JSON.stringify(s.runtime);
    if (Buffer.byteLength(runtimeConfig) > MAX_CONFIG_BYTES) {
      throw new Error(
        `WARDEN_CONFIG is ${Buffer.byteLength(runtimeConfig)} bytes; Lambda allows 4 KB of environment in ` +
          'total. Move masking rules into policies or split targets across gateways.',
      );
    }
    const common: Record<string, string> = {
      WARDEN_CONFIG: runtimeConfig,
      OIDC_ISSUER: s.oidcIssuer,
      OIDC_AUDIENCE: s.oidcAudience,
      ...(s.oidcAudienceClaim && s.oidcAudienceClaim !== 'aud'
        ? { OIDC_AUDIENCE_CLAIM: s.oidcAudienceClaim }
        : {}),
      GROUPS_CLAIM: s.groupsClaim,
      AUDIT_TTL_DAYS: String(s.auditTtlDays),
      ...(s.oidcJwksUri ? { OIDC_JWKS_URI: s.oidcJwksUri } : {}),
      ...(s.oidcJwksMaxAgeSeconds !== undefined
        ? { OIDC_JWKS_MAX_AGE_SECONDS: String(s.oidcJwksMaxAgeSeconds) }
        : {}),
      // The API and execute functions both guard masked principals (docs/masking.md).
      ...(s.dbMaskingRecheckSeconds !== undefined
        ? { DB_MASKING_RECHECK_SECONDS: String(s.dbMaskingRecheckSeconds) }
        : {}),
      // Agents acting for people without token exchange (docs/deploy.md); every function verifies
      // tokens alike (the execute function verifies the caller's again before a write runs).
      ...(s.agentOwnerClaim ? { AGENT_OWNER_CLAIM: s.agentOwnerClaim } : {}),
      ...(s.agentClientIds && s.agentClientIds.length > 0
        ? { AGENT_CLIENT_IDS: s.agentClientIds.join(',') }
        : {}),
    };

    this.keys = new WardenKeys(this, 'Keys');
    this.tables = new WardenTables(this, 'Tables', { encryptionKey: this.keys.data });
    const t = (def: typeof RequestsTable) => this.tables.table(def);

    this.notifyFunction = new GatewayFunction(this, 'Notify', {
      entry: 'lambdas/handlers/notify.ts',
      description: 'Warden: stores the approval task token and notifies approvers',
      memorySize: 256,
      timeout: Duration.seconds(30),
      logRetention,
      environment: common,
      ...reserved(s.notifyReservedConcurrency),
    })
      // The shared runtime opens every store at cold start; notify only reads policies and grants
      // (to name approvers), so it gets read access there.
      .bindTable({ table: t(RequestsTable), def: RequestsTable, access: 'read' })
      .bindTable({ table: t(ApprovalsTable), def: ApprovalsTable, access: 'readWrite' })
      .bindTable({ table: t(GrantsTable), def: GrantsTable, access: 'read' })
      .bindTable({ table: t(AuditTable), def: AuditTable, access: 'append' })
      .bindTable({ table: t(PoliciesTable), def: PoliciesTable, access: 'read' })
      .bindTable({ table: t(ToolPinsTable), def: ToolPinsTable, access: 'read' })
      .bindHmacKey(this.keys.hmac, { generate: true })
      .bindPolicyKey(this.keys.policy);

    this.executeFunction = new GatewayFunction(this, 'Execute', {
      entry: 'lambdas/handlers/execute.ts',
      description:
        'Warden: runs allowed writes and AWS calls and approved requests; records denied, expired, failed',
      memorySize: 1024,
      timeout: Duration.minutes(5),
      logRetention,
      environment: common,
      ...reserved(s.executeReservedConcurrency),
    })
      .bindTable({ table: t(RequestsTable), def: RequestsTable, access: 'readWrite' })
      .bindTable({ table: t(ApprovalsTable), def: ApprovalsTable, access: 'readWrite' })
      .bindTable({ table: t(GrantsTable), def: GrantsTable, access: 'readWrite' })
      .bindTable({ table: t(AuditTable), def: AuditTable, access: 'append' })
      .bindTable({ table: t(PoliciesTable), def: PoliciesTable, access: 'read' })
      .bindTable({ table: t(ToolPinsTable), def: ToolPinsTable, access: 'read' })
      .bindMaskingKey(this.keys.maskingHashKey)
      .bindSealKey(this.keys.seal, { open: true })
      .bindPolicyKey(this.keys.policy)
      // The only function that runs writes and AWS calls: every database user, every target role.
      .bindTargets(parsed, { access: 'execute' });

    this.workflow = new ApprovalWorkflow(this, 'Approval', {
      notify: this.notifyFunction.fn,
      execute: this.executeFunction.fn,
      maxApprovalWindow: Duration.seconds(s.maxApprovalWindowSeconds),
      logRetention,
    });

    this.apiFunction = new GatewayFunction(this, 'Api', {
      entry: 'lambdas/handlers/api.ts',
      description: 'Warden: the HTTP API (REST, MCP, approval pages)',
      memorySize: 1024,
      // API Gateway HTTP APIs give up after 30 s.
      timeout: Duration.seconds(29),
      logRetention,
      environment: common,
    })
      .bindTable({ table: t(RequestsTable), def: RequestsTable, access: 'readWrite' })
      .bindTable({ table: t(ApprovalsTable), def: ApprovalsTable, access: 'readWrite' })
      .bindTable({ table: t(GrantsTable), def: GrantsTable, access: 'readWrite' })
      .bindTable({ table: t(AuditTable), def: AuditTable, access: 'append' })
      // Only `warden policy push` writes the policy set; the internet-facing function may only read it.
      .bindTable({ table: t(PoliciesTable), def: PoliciesTable, access: 'read' })
      // Pins are written on a tool's first use and when an admin accepts a changed definition.
      .bindTable({ table: t(ToolPinsTable), def: ToolPinsTable, access: 'readWrite' })
      .bindStateMachine(this.workflow.stateMachine, { start: true, respond: true, describe: true })
      .bindHmacKey(this.keys.hmac, { generate: true, verify: true })
      .bindMaskingKey(this.keys.maskingHashKey)
      .bindSealKey(this.keys.seal, { seal: true, open: true })
      .bindPolicyKey(this.keys.policy)
      // Internet-facing: what a read and a decision need. No write secret, no target role; allowed
      // writes and AWS calls are handed to the execute function, which checks them again.
      .bindTargets(parsed, { access: 'read' })
      .bindExecuteFunction(this.executeFunction.fn);

    this.api = new WardenApi(this, 'Http', {
      handler: this.apiFunction.fn,
      throttle: s.throttle,
      logRetention,
    });
    const publicUrl = s.publicUrl ?? this.api.url;
    this.apiFunction.addEnvironment('PUBLIC_URL', publicUrl);
    if (s.oidcApprovalClientId)
      this.apiFunction.addEnvironment('OIDC_APPROVAL_CLIENT_ID', s.oidcApprovalClientId);
    if (s.oidcApprovalScope) this.apiFunction.addEnvironment('OIDC_APPROVAL_SCOPE', s.oidcApprovalScope);
    if (s.oidcScopes) this.apiFunction.addEnvironment('OIDC_SCOPES', s.oidcScopes);
    if (s.oidcCliClientId) this.apiFunction.addEnvironment('OIDC_CLI_CLIENT_ID', s.oidcCliClientId);
    if (s.oidcCliScope) this.apiFunction.addEnvironment('OIDC_CLI_SCOPE', s.oidcCliScope);
    if (s.oidcCliRedirectUri) this.apiFunction.addEnvironment('OIDC_CLI_REDIRECT_URI', s.oidcCliRedirectUri);
    if (s.mcpAllowedOrigins) this.apiFunction.addEnvironment('MCP_ALLOWED_ORIGINS', s.mcpAllowedOrigins);
    this.notifyFunction.addEnvironment('PUBLIC_URL', publicUrl);

    this.notifications = new Notifications(this, 'Notifications', {
      slackWebhookSecretArn: s.slackWebhookSecretArn,
      sesSender: s.sesSender,
    });
    this.notifications.bind(this.notifyFunction);

    this.auditLake = new AuditLake(this, 'AuditLake', {
      auditTable: t(AuditTable),
      key: this.keys.lake,
      schedule: s.auditExportSchedule,
      retentionDays: s.auditLakeRetentionDays,
      objectLockMode: s.auditLakeObjectLockMode,
      objectLockDays: s.auditLakeObjectLockDays,
      logRetention,
    });

    this.alarms = new WardenAlarms(this, 'Alarms', {
      httpApi: this.api.httpApi,
      functions: {
        Api: this.apiFunction,
        Notify: this.notifyFunction,
        Execute: this.executeFunction,
        Export: this.auditLake.exportFunction,
      },
      stateMachine: this.workflow.stateMachine,
      policyLoaders: [this.apiFunction, this.notifyFunction, this.executeFunction],
      exportFunction: this.auditLake.exportFunction,
      email: s.alarmEmail,
    });

    // What `warden policy push` runs as: the only principal the stack lets write the Policies table
    // and make the policy key's MAC (functions only verify it). Operators assume it to push.
    this.policyPusher = new iam.Role(this, 'PolicyPusher', {
      assumedBy: new iam.AccountRootPrincipal(),
      description:
        'Warden: warden policy push (the Policies table, the policy key MAC, the push trail event)',
      maxSessionDuration: Duration.hours(1),
    });
    t(PoliciesTable).grantReadWriteData(this.policyPusher);
    t(AuditTable).grant(
      this.policyPusher,
      'dynamodb:PutItem',
      'dynamodb:GetItem',
      'dynamodb:Query',
      'dynamodb:ConditionCheckItem',
      'dynamodb:DescribeTable',
    );
    t(AuditTable).encryptionKey?.grantEncryptDecrypt(this.policyPusher);
    this.keys.policy.grant(this.policyPusher, 'kms:GenerateMac', 'kms:VerifyMac');

    new CfnOutput(this, 'Url', { value: publicUrl, description: 'Warden gateway URL (WARDEN_URL)' });
    new CfnOutput(this, 'PolicyKeyArn', {
      value: this.keys.policy.keyArn,
      description: 'POLICY_MAC_KEY_ID for warden policy push and verify',
    });
    new CfnOutput(this, 'PolicyPusherRoleArn', {
      value: this.policyPusher.roleArn,
      description: 'the role warden policy push runs as',
    });
    new CfnOutput(this, 'AuditBucket', { value: this.auditLake.bucket.bucketName });
    new CfnOutput(this, 'AthenaWorkGroup', { value: this.auditLake.workGroup.ref });
    new CfnOutput(this, 'AlarmTopic', { value: this.alarms.topic.topicArn });
    acknowledgeNagFindings(this);
  }
}

/** Reserved concurrency keeps approvals running however busy the API is; 0 means no reservation. */
function reserved(n: number): { reservedConcurrentExecutions?: number } {
  return n > 0 ? { reservedConcurrentExecutions: n } : {};
}

const RETENTIONS = Object.values(logs.RetentionDays).filter((v): v is number => typeof v === 'number');

/** The nearest CloudWatch Logs retention at or above `days` (CloudWatch accepts only fixed values). */
export function retentionDays(days: number): logs.RetentionDays {
  const allowed = RETENTIONS.filter((d) => d > 0).sort((a, b) => a - b);
  const pick = allowed.find((d) => d >= days) ?? allowed[allowed.length - 1];
  return pick as logs.RetentionDays;
}

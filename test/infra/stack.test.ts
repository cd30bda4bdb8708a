import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_QUERIES } from '../../lib/audit-queries.js';
import { resolveSettings, settingsFromContext } from '../../lib/config.js';
import { ALL_TABLES, tableEnvVar } from '../../lib/tables.js';
import { FULL_SETTINGS, synthWarden, type Synthesized } from './synth.js';
import { UNRECORDED_POLICY_SET } from '../../lambdas/core/trail.js';

type Resource = { Type: string; Properties: Record<string, any> };
type Statement = { Effect: string; Action: string | string[]; Resource: unknown };

/** Actions AWS authorizes only on Resource "*" (no resource type in the service authorization reference). */
const STAR_RESOURCE_ACTIONS = new Set([
  'xray:PutTraceSegments',
  'xray:PutTelemetryRecords',
  // Step Functions tracing samples with these.
  'xray:GetSamplingRules',
  'xray:GetSamplingTargets',
  'states:SendTaskSuccess',
  'states:SendTaskFailure',
  'states:SendTaskHeartbeat',
  // CloudWatch Logs vended delivery, used by Step Functions logging.
  'logs:CreateLogDelivery',
  'logs:GetLogDelivery',
  'logs:UpdateLogDelivery',
  'logs:DeleteLogDelivery',
  'logs:ListLogDeliveries',
  'logs:PutResourcePolicy',
  'logs:DescribeResourcePolicies',
  'logs:DescribeLogGroups',
]);
/** Wildcard actions DynamoDB needs from callers of a CMK-encrypted table (CDK grantEncryptDecrypt). */
const WILDCARD_ACTIONS = new Set(['kms:GenerateDataKey*', 'kms:ReEncrypt*']);

const asArray = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

let full: Synthesized;
let minimal: Synthesized;
let resources: Record<string, Resource>;

function ofType(type: string, from = resources): Array<[string, Resource]> {
  return Object.entries(from).filter(([, r]) => r.Type === type);
}

/** Statements of every inline policy attached to a role, by role logical id. */
function statementsByRole(from = resources): Map<string, Statement[]> {
  const out = new Map<string, Statement[]>();
  for (const [, policy] of ofType('AWS::IAM::Policy', from)) {
    for (const role of policy.Properties.Roles as Array<{ Ref: string }>) {
      const list = out.get(role.Ref) ?? [];
      list.push(...(policy.Properties.PolicyDocument.Statement as Statement[]));
      out.set(role.Ref, list);
    }
  }
  return out;
}

function functionRoleId(functionId: string, from = resources): string {
  return from[functionId].Properties.Role['Fn::GetAtt'][0];
}

function functionIdByPath(fragment: string, from = resources): string {
  const ids = ofType('AWS::Lambda::Function', from)
    .map(([id]) => id)
    .filter((id) => id.includes(fragment));
  expect(ids, `one function matching ${fragment}`).toHaveLength(1);
  return ids[0];
}

function actionsOf(statements: Statement[]): Set<string> {
  return new Set(statements.filter((s) => s.Effect === 'Allow').flatMap((s) => asArray(s.Action)));
}

beforeAll(() => {
  full = synthWarden({ settings: FULL_SETTINGS });
  minimal = synthWarden({ settings: {} });
  resources = full.template.toJSON().Resources as Record<string, Resource>;
});

describe('tables', () => {
  it('builds one table per shared definition', () => {
    full.template.resourceCountIs('AWS::DynamoDB::Table', ALL_TABLES.length);
  });

  it('makes every table on-demand, point-in-time recoverable, CMK-encrypted and deletion-protected', () => {
    for (const [id, table] of ofType('AWS::DynamoDB::Table')) {
      const p = table.Properties;
      expect(p.BillingMode, id).toBe('PAY_PER_REQUEST');
      expect(p.PointInTimeRecoverySpecification, id).toEqual({ PointInTimeRecoveryEnabled: true });
      expect(p.SSESpecification.SSEEnabled, id).toBe(true);
      expect(p.SSESpecification.SSEType, id).toBe('KMS');
      expect(p.SSESpecification.KMSMasterKeyId, id).toBeDefined();
      expect(p.DeletionProtectionEnabled, id).toBe(true);
      expect((table as any).DeletionPolicy, id).toBe('Retain');
    }
  });

  it('turns on TTL exactly where a definition names an expiry attribute', () => {
    for (const def of ALL_TABLES) {
      const [, table] = ofType('AWS::DynamoDB::Table').find(([id]) =>
        id.includes(`Tables${def.logicalName}`),
      )!;
      expect(table.Properties.TimeToLiveSpecification, def.logicalName).toEqual(
        def.timeToLiveAttribute ? { AttributeName: def.timeToLiveAttribute, Enabled: true } : undefined,
      );
    }
  });

  it('encrypts tables with a rotating customer-managed key', () => {
    const keyId =
      ofType('AWS::DynamoDB::Table')[0][1].Properties.SSESpecification.KMSMasterKeyId['Fn::GetAtt'][0];
    expect(resources[keyId].Type).toBe('AWS::KMS::Key');
    expect(resources[keyId].Properties.EnableKeyRotation).toBe(true);
  });
});

describe('functions', () => {
  it('runs every function on nodejs22.x, arm64, with active tracing and its own log group', () => {
    const fns = ofType('AWS::Lambda::Function');
    expect(fns).toHaveLength(4);
    for (const [id, fn] of fns) {
      expect(fn.Properties.Runtime, id).toBe('nodejs22.x');
      expect(fn.Properties.Architectures, id).toEqual(['arm64']);
      expect(fn.Properties.TracingConfig, id).toEqual({ Mode: 'Active' });
      expect(fn.Properties.LoggingConfig.LogGroup, id).toBeDefined();
      expect(fn.Properties.Handler, id).toBe('index.handler');
    }
  });

  it('gives function roles no managed policies', () => {
    for (const [id] of ofType('AWS::Lambda::Function')) {
      const role = resources[functionRoleId(id)];
      expect(role.Properties.ManagedPolicyArns, id).toBeUndefined();
    }
  });

  it('grants "*" resources only to actions AWS authorizes on "*", and no wildcard actions beyond KMS data-key ones', () => {
    const roles = statementsByRole();
    const stateMachineRole = ofType('AWS::StepFunctions::StateMachine')[0][1].Properties.RoleArn[
      'Fn::GetAtt'
    ][0];
    const roleIds = [...ofType('AWS::Lambda::Function').map(([id]) => functionRoleId(id)), stateMachineRole];
    for (const roleId of roleIds) {
      for (const st of roles.get(roleId) ?? []) {
        const actions = asArray(st.Action);
        for (const a of actions) {
          expect(a === '*' || a.endsWith(':*'), `${roleId}: ${a}`).toBe(false);
          if (a.includes('*')) expect(WILDCARD_ACTIONS.has(a), `${roleId}: wildcard action ${a}`).toBe(true);
        }
        if (asArray(st.Resource as unknown).includes('*')) {
          for (const a of actions) expect(STAR_RESOURCE_ACTIONS.has(a), `${roleId}: ${a} on "*"`).toBe(true);
        }
      }
    }
  });

  it('sets each bound table variable on the functions that use it', () => {
    const api = resources[functionIdByPath('Api')].Properties.Environment.Variables;
    for (const def of ALL_TABLES) expect(api[tableEnvVar(def)], def.logicalName).toBeDefined();
    for (const name of ['WARDEN_CONFIG', 'OIDC_ISSUER', 'OIDC_AUDIENCE', 'GROUPS_CLAIM', 'STATE_MACHINE_ARN'])
      expect(api[name], name).toBeDefined();
    expect(api.HMAC_KEY_ID).toBeDefined();
    expect(api.PUBLIC_URL).toBeDefined();
    expect(api.OIDC_APPROVAL_CLIENT_ID).toBe('warden-approval-page');
    // What MCP clients are told to ask for, and the browser origins /mcp accepts.
    expect(api.OIDC_SCOPES).toBe('openid warden');
    // `warden login`'s public client, published in the RFC 9728 metadata.
    expect(api.OIDC_CLI_CLIENT_ID).toBe('warden-cli');
    expect(api.OIDC_CLI_SCOPE).toBeUndefined();
    expect(api.OIDC_CLI_REDIRECT_URI).toBe('http://localhost:8765/callback');
    expect(api.MCP_ALLOWED_ORIGINS).toBe('https://inspector.example.com');
    // The shared runtime opens every store at cold start: each workflow function needs every table name.
    for (const fragment of ['Notify', 'Execute']) {
      const env = resources[functionIdByPath(fragment)].Properties.Environment.Variables;
      for (const def of ALL_TABLES)
        expect(env[tableEnvVar(def)], `${fragment} ${def.logicalName}`).toBeDefined();
    }
    expect(JSON.parse(api.WARDEN_CONFIG).targets.orders.kind).toBe('sql');
  });

  it('checks the audience in client_id on every function when oidcAudienceClaim is client_id (Cognito)', () => {
    // The default (aud) sets nothing: the functions default to aud.
    const minimalResources = minimal.template.toJSON().Resources as Record<string, Resource>;
    const minimalApi = minimalResources[functionIdByPath('Api', minimalResources)].Properties.Environment;
    expect(minimalApi.Variables.OIDC_AUDIENCE_CLAIM).toBeUndefined();
    const cognito = synthWarden({
      settings: {
        ...FULL_SETTINGS,
        oidcIssuer: 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf',
        oidcAudience: '5pq2examplecognitoclientid',
        oidcAudienceClaim: 'client_id',
      },
    });
    const res = cognito.template.toJSON().Resources as Record<string, Resource>;
    for (const fragment of ['Api', 'Notify', 'Execute']) {
      const vars = res[functionIdByPath(fragment, res)].Properties.Environment.Variables;
      expect(vars.OIDC_AUDIENCE_CLAIM, fragment).toBe('client_id');
      expect(vars.OIDC_AUDIENCE, fragment).toBe('5pq2examplecognitoclientid');
    }
  });

  it('refuses an oidcAudienceClaim other than aud or client_id at synth', () => {
    expect(() => resolveSettings({ oidcAudienceClaim: 'azp' as never })).toThrow(
      /oidcAudienceClaim must be 'aud' or 'client_id', got azp/,
    );
    expect(resolveSettings({ oidcAudienceClaim: 'client_id' }).oidcAudienceClaim).toBe('client_id');
    expect(
      settingsFromContext({ tryGetContext: (k) => (k === 'oidcAudienceClaim' ? 'client_id' : undefined) })
        .oidcAudienceClaim,
    ).toBe('client_id');
  });

  it('passes oidcJwksMaxAgeSeconds to every function, and refuses one that is not 1 to 86400 whole seconds at synth', () => {
    const minimalResources = minimal.template.toJSON().Resources as Record<string, Resource>;
    const minimalApi = minimalResources[functionIdByPath('Api', minimalResources)].Properties.Environment;
    expect(minimalApi.Variables.OIDC_JWKS_MAX_AGE_SECONDS).toBeUndefined();
    const short = synthWarden({ settings: { ...FULL_SETTINGS, oidcJwksMaxAgeSeconds: 120 } });
    const res = short.template.toJSON().Resources as Record<string, Resource>;
    for (const fragment of ['Api', 'Notify', 'Execute']) {
      const vars = res[functionIdByPath(fragment, res)].Properties.Environment.Variables;
      expect(vars.OIDC_JWKS_MAX_AGE_SECONDS, fragment).toBe('120');
    }
    for (const bad of [0, -1, 1.5, 86_401, Number.NaN]) {
      expect(() => resolveSettings({ oidcJwksMaxAgeSeconds: bad })).toThrow(
        /oidcJwksMaxAgeSeconds must be a whole number of seconds from 1 to 86400/,
      );
    }
    expect(
      settingsFromContext({ tryGetContext: (k) => (k === 'oidcJwksMaxAgeSeconds' ? '300' : undefined) })
        .oidcJwksMaxAgeSeconds,
    ).toBe(300);
  });

  it('passes dbMaskingRecheckSeconds to the functions that guard masked principals, and refuses a bad one at synth', () => {
    const minimalResources = minimal.template.toJSON().Resources as Record<string, Resource>;
    const minimalApi = minimalResources[functionIdByPath('Api', minimalResources)].Properties.Environment;
    expect(minimalApi.Variables.DB_MASKING_RECHECK_SECONDS).toBeUndefined();
    const often = synthWarden({ settings: { ...FULL_SETTINGS, dbMaskingRecheckSeconds: 60 } });
    const res = often.template.toJSON().Resources as Record<string, Resource>;
    for (const fragment of ['Api', 'Execute']) {
      const vars = res[functionIdByPath(fragment, res)].Properties.Environment.Variables;
      expect(vars.DB_MASKING_RECHECK_SECONDS, fragment).toBe('60');
    }
    for (const bad of [0, -1, 1.5, 86_401, Number.NaN]) {
      expect(() => resolveSettings({ dbMaskingRecheckSeconds: bad })).toThrow(
        /dbMaskingRecheckSeconds must be a whole number of seconds from 1 to 86400/,
      );
    }
    expect(
      settingsFromContext({ tryGetContext: (k) => (k === 'dbMaskingRecheckSeconds' ? '120' : undefined) })
        .dbMaskingRecheckSeconds,
    ).toBe(120);
  });

  it('lets only the API write pinned MCP tool definitions, and grants the upstream credential secret', () => {
    const roles = statementsByRole();
    const pinsTable = Object.entries(resources).find(
      ([, r]) =>
        r.Type === 'AWS::DynamoDB::Table' && JSON.stringify(r.Properties.KeySchema).includes('"tool"'),
    )![0];
    const writesPins = (fragment: string) =>
      (roles.get(functionRoleId(functionIdByPath(fragment))) ?? []).some(
        (s) =>
          asArray(s.Action).some((a) => /dynamodb:(PutItem|UpdateItem|\*)/.test(a)) &&
          JSON.stringify(s.Resource).includes(pinsTable),
      );
    expect(writesPins('Api')).toBe(true);
    expect(writesPins('Execute')).toBe(false);
    expect(writesPins('Notify')).toBe(false);
    const secretGrants = (fragment: string) =>
      JSON.stringify(roles.get(functionRoleId(functionIdByPath(fragment))) ?? []);
    expect(secretGrants('Api')).toContain('secret:tickets/token-AbCdEf');
    expect(secretGrants('Execute')).toContain('secret:tickets/token-AbCdEf');
    expect(secretGrants('Notify')).not.toContain('secret:tickets/token-AbCdEf');
  });

  it('lets no function update or delete audit events', () => {
    const auditTableId = ofType('AWS::DynamoDB::Table').find(([id]) => id.includes('TablesAudit'))![0];
    for (const [fnId] of ofType('AWS::Lambda::Function')) {
      for (const st of statementsByRole().get(functionRoleId(fnId)) ?? []) {
        const touchesAudit = JSON.stringify(st.Resource).includes(`"${auditTableId}"`);
        if (!touchesAudit) continue;
        const actions = asArray(st.Action);
        for (const forbidden of ['dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'])
          expect(actions, `${fnId}`).not.toContain(forbidden);
      }
    }
  });

  it('grants the HMAC key only MAC operations: generate+verify to the API, generate to notify, none to execute', () => {
    const hmac = ofType('AWS::KMS::Key').find(([, k]) => k.Properties.KeySpec === 'HMAC_256')!;
    expect(hmac[1].Properties.KeyUsage).toBe('GENERATE_VERIFY_MAC');
    const roles = statementsByRole();
    const macActions = (fragment: string) =>
      new Set(
        (roles.get(functionRoleId(functionIdByPath(fragment))) ?? [])
          .filter((s) => JSON.stringify(s.Resource).includes(hmac[0]))
          .flatMap((s) => asArray(s.Action)),
      );
    expect(macActions('Api')).toEqual(new Set(['kms:GenerateMac', 'kms:VerifyMac']));
    expect(macActions('Notify')).toEqual(new Set(['kms:GenerateMac']));
    expect(macActions('Execute')).toEqual(new Set());
  });

  it('generates the masking hash key in Secrets Manager and lets only the API and execute read it', () => {
    const secrets = ofType('AWS::SecretsManager::Secret');
    expect(secrets).toHaveLength(1);
    const [secretId, secret] = secrets[0];
    // Generated by Secrets Manager at deploy time: no value, nothing derived, in the template.
    expect(secret.Properties.SecretString).toBeUndefined();
    expect(secret.Properties.GenerateSecretString).toMatchObject({
      PasswordLength: 64,
      ExcludePunctuation: true,
    });
    expect(secret.Properties.KmsKeyId).toBeDefined();
    const roles = statementsByRole();
    const readers: string[] = [];
    for (const fragment of ['Api', 'Execute', 'Notify', 'AuditLakeExport']) {
      const fnId = functionIdByPath(fragment);
      const env = resources[fnId].Properties.Environment?.Variables ?? {};
      expect(env.MASKING_HASH_KEY, fragment).toBeUndefined();
      const reads = (roles.get(functionRoleId(fnId)) ?? []).some(
        (st) =>
          asArray(st.Action).includes('secretsmanager:GetSecretValue') &&
          JSON.stringify(st.Resource).includes(secretId),
      );
      if (reads) readers.push(fragment);
      // The function gets the secret's ARN, never its value.
      if (reads) expect(env.MASKING_HASH_KEY_SECRET_ARN, fragment).toEqual({ Ref: secretId });
      else expect(env.MASKING_HASH_KEY_SECRET_ARN, fragment).toBeUndefined();
    }
    expect(readers).toEqual(['Api', 'Execute']);
    // Also when no target is configured.
    const min = minimal.template.toJSON().Resources as Record<string, Resource>;
    const minApi = min[functionIdByPath('Api', min)].Properties.Environment.Variables;
    expect(minApi.MASKING_HASH_KEY_SECRET_ARN).toEqual({
      Ref: ofType('AWS::SecretsManager::Secret', min)[0][0],
    });
  });

  it('seals exact statements with a dedicated KMS key: the API seals and opens, execute opens, notify neither', () => {
    const keys = ofType('AWS::KMS::Key').filter(([, k]) =>
      k.Properties.Description?.includes('sealed exact'),
    );
    expect(keys).toHaveLength(1);
    const [sealId, seal] = keys[0];
    expect(seal.Properties.EnableKeyRotation).toBe(true);
    const roles = statementsByRole();
    const onSeal = (fragment: string) =>
      new Set(
        (roles.get(functionRoleId(functionIdByPath(fragment))) ?? [])
          .filter((st) => JSON.stringify(st.Resource).includes(sealId))
          .flatMap((st) => asArray(st.Action)),
      );
    expect(onSeal('Api')).toEqual(new Set(['kms:GenerateDataKey', 'kms:Decrypt']));
    expect(onSeal('Execute')).toEqual(new Set(['kms:Decrypt']));
    expect(onSeal('Notify')).toEqual(new Set());
    expect(onSeal('AuditLakeExport')).toEqual(new Set());
    const env = (fragment: string) => resources[functionIdByPath(fragment)].Properties.Environment.Variables;
    expect(env('Api').SEAL_KEY_ID).toEqual({ 'Fn::GetAtt': [sealId, 'Arn'] });
    expect(env('Execute').SEAL_KEY_ID).toEqual({ 'Fn::GetAtt': [sealId, 'Arn'] });
    expect(env('Notify').SEAL_KEY_ID).toBeUndefined();
  });

  it('signs policy sets with a key of their own: only the PolicyPusher role makes MACs, the functions only verify', () => {
    const keys = ofType('AWS::KMS::Key').filter(([, k]) => k.Properties.Description?.includes('policy sets'));
    expect(keys).toHaveLength(1);
    const [policyKeyId, policyKey] = keys[0];
    expect(policyKey.Properties).toMatchObject({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    const roles = statementsByRole();
    const onKey = (roleId: string) =>
      new Set(
        (roles.get(roleId) ?? [])
          .filter((st) => JSON.stringify(st.Resource).includes(policyKeyId))
          .flatMap((st) => asArray(st.Action)),
      );
    for (const fragment of ['Api', 'Notify', 'Execute']) {
      expect(onKey(functionRoleId(functionIdByPath(fragment))), fragment).toEqual(new Set(['kms:VerifyMac']));
      expect(
        resources[functionIdByPath(fragment)].Properties.Environment.Variables.POLICY_MAC_KEY_ID,
      ).toEqual({
        'Fn::GetAtt': [policyKeyId, 'Arn'],
      });
    }
    expect(onKey(functionRoleId(functionIdByPath('AuditLakeExport')))).toEqual(new Set());
    // No principal but the pusher role holds GenerateMac on it.
    const pushers = [...roles].filter(([, sts]) =>
      sts.some(
        (st) =>
          JSON.stringify(st.Resource).includes(policyKeyId) && asArray(st.Action).includes('kms:GenerateMac'),
      ),
    );
    expect(pushers.map(([id]) => id)).toHaveLength(1);
    const [pusherId] = pushers[0];
    expect(pusherId).toMatch(/PolicyPusher/);
    expect(onKey(pusherId)).toEqual(new Set(['kms:GenerateMac', 'kms:VerifyMac']));
    // The pusher appends to the trail; it cannot rewrite or delete it.
    const pusherActions = actionsOf(roles.get(pusherId)!);
    expect(pusherActions.has('dynamodb:PutItem')).toBe(true);
    const auditId = ofType('AWS::DynamoDB::Table').find(([id]) => id.includes('Audit'))![0];
    const onAudit = new Set(
      roles
        .get(pusherId)!
        .filter((st) => JSON.stringify(st.Resource).includes(auditId))
        .flatMap((st) => asArray(st.Action)),
    );
    expect(onAudit.has('dynamodb:DeleteItem')).toBe(false);
    expect(onAudit.has('dynamodb:UpdateItem')).toBe(false);
    const outputs = full.template.toJSON().Outputs as Record<string, { Value: unknown }>;
    const out = (prefix: string) => Object.entries(outputs).find(([k]) => k.includes(prefix))?.[1].Value;
    expect(out('PolicyKeyArn')).toEqual({ 'Fn::GetAtt': [policyKeyId, 'Arn'] });
    expect(out('PolicyPusherRoleArn')).toEqual({ 'Fn::GetAtt': [pusherId, 'Arn'] });
  });

  it('lets only the API start executions and answer task tokens', () => {
    const roles = statementsByRole();
    const api = actionsOf(roles.get(functionRoleId(functionIdByPath('Api')))!);
    expect(api.has('states:StartExecution')).toBe(true);
    expect(api.has('states:SendTaskSuccess')).toBe(true);
    for (const other of ['Notify', 'Execute']) {
      const actions = actionsOf(roles.get(functionRoleId(functionIdByPath(other)))!);
      expect(
        [...actions].filter((a) => a.startsWith('states:')),
        other,
      ).toEqual([]);
    }
  });

  it('grants target access: reads to the API, everything (AssumeRole included) to execute only', () => {
    const roles = statementsByRole();
    for (const fragment of ['Api', 'Execute']) {
      const actions = actionsOf(roles.get(functionRoleId(functionIdByPath(fragment)))!);
      expect(actions.has('rds-data:ExecuteStatement'), fragment).toBe(true);
      expect(actions.has('secretsmanager:GetSecretValue'), fragment).toBe(true);
    }
    // Issue 13 item 14: only the execute function assumes target roles (test/infra/api-privilege.test.ts).
    expect(actionsOf(roles.get(functionRoleId(functionIdByPath('Execute')))!).has('sts:AssumeRole')).toBe(
      true,
    );
    expect(actionsOf(roles.get(functionRoleId(functionIdByPath('Api')))!).has('sts:AssumeRole')).toBe(false);
    const notify = actionsOf(roles.get(functionRoleId(functionIdByPath('Notify')))!);
    expect(notify.has('rds-data:ExecuteStatement')).toBe(false);
    expect(notify.has('sts:AssumeRole')).toBe(false);
  });

  it('grants Slack and SES to the notify function only when configured', () => {
    const fullNotify = resources[functionIdByPath('Notify')].Properties.Environment.Variables;
    expect(fullNotify.SLACK_WEBHOOK_SECRET_ARN).toBe(FULL_SETTINGS.slackWebhookSecretArn);
    expect(fullNotify.SES_SENDER).toBe('warden@example.com');
    expect(
      actionsOf(statementsByRole().get(functionRoleId(functionIdByPath('Notify')))!).has('ses:SendEmail'),
    ).toBe(true);

    const min = minimal.template.toJSON().Resources as Record<string, Resource>;
    const notifyId = functionIdByPath('Notify', min);
    const env = min[notifyId].Properties.Environment.Variables;
    expect(env.SLACK_WEBHOOK_SECRET_ARN).toBeUndefined();
    expect(env.SES_SENDER).toBeUndefined();
    const actions = actionsOf(statementsByRole(min).get(functionRoleId(notifyId, min))!);
    expect(actions.has('ses:SendEmail')).toBe(false);
    expect(actions.has('secretsmanager:GetSecretValue')).toBe(false);
  });
});

describe('approval state machine', () => {
  it('has a timeout, logging of all events, and tracing', () => {
    full.template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      LoggingConfiguration: Match.objectLike({ Level: 'ALL', IncludeExecutionData: false }),
      TracingConfiguration: { Enabled: true },
    });
    const [, sm] = ofType('AWS::StepFunctions::StateMachine')[0];
    const text = JSON.stringify(sm.Properties.DefinitionString);
    // 7 days (the longest window) plus an hour.
    expect(text).toContain('\\"TimeoutSeconds\\":608400');
    expect(text).toContain('\\"TimeoutSecondsPath\\":\\"$.approvalWindowSeconds\\"');
  });
});

describe('API', () => {
  it('throttles the default stage and writes access logs', () => {
    full.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 1000, ThrottlingBurstLimit: 2000 },
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('requestId') },
    });
  });

  it('routes the public contract, including MCP and the protected-resource metadata', () => {
    const keys = ofType('AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties.RouteKey);
    for (const key of [
      'GET /healthz',
      'POST /v1/targets/{target}/sql',
      'POST /mcp',
      'GET /approve/{id}',
      'GET /approvals',
      'POST /v1/approvals/{id}/decision',
      'GET /.well-known/oauth-protected-resource',
      '$default',
    ])
      expect(keys).toContain(key);
  });

  it('uses no API Gateway authorizer: the function answers 401 with WWW-Authenticate itself', () => {
    full.template.resourceCountIs('AWS::ApiGatewayV2::Authorizer', 0);
  });
});

describe('audit lake', () => {
  it('blocks public access and enforces TLS on every bucket, and encrypts the lake with KMS', () => {
    const buckets = ofType('AWS::S3::Bucket');
    expect(buckets.length).toBeGreaterThanOrEqual(2);
    for (const [id, b] of buckets) {
      expect(b.Properties.PublicAccessBlockConfiguration, id).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      expect(b.Properties.BucketEncryption, id).toBeDefined();
      expect(b.Properties.LifecycleConfiguration, id).toBeDefined();
    }
    for (const [id] of buckets) {
      const policy = ofType('AWS::S3::BucketPolicy').find(([, p]) => p.Properties.Bucket.Ref === id);
      expect(JSON.stringify(policy?.[1].Properties.PolicyDocument), id).toContain(
        '"aws:SecureTransport":"false"',
      );
    }
    full.template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          Match.objectLike({ ServerSideEncryptionByDefault: Match.objectLike({ SSEAlgorithm: 'aws:kms' }) }),
        ],
      },
      VersioningConfiguration: { Status: 'Enabled' },
    });
  });

  it('exports the audit table on a schedule', () => {
    full.template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 day)' });
    const exportRole = functionRoleId(functionIdByPath('AuditLakeExport'));
    expect(actionsOf(statementsByRole().get(exportRole)!).has('dynamodb:ExportTableToPointInTime')).toBe(
      true,
    );
  });

  it('has an Athena workgroup with an enforced, KMS-encrypted result location and the named queries', () => {
    full.template.hasResourceProperties('AWS::Athena::WorkGroup', {
      WorkGroupConfiguration: Match.objectLike({
        EnforceWorkGroupConfiguration: true,
        ResultConfiguration: Match.objectLike({
          EncryptionConfiguration: Match.objectLike({ EncryptionOption: 'SSE_KMS' }),
        }),
      }),
    });
    const names = ofType('AWS::Athena::NamedQuery').map(([, q]) => q.Properties.Name);
    expect(names.sort()).toEqual(AUDIT_QUERIES.map((q) => q.name).sort());
    full.template.hasResourceProperties('AWS::Glue::Table', {
      TableInput: Match.objectLike({
        StorageDescriptor: Match.objectLike({
          Columns: [
            Match.objectLike({
              Name: 'item',
              Type: Match.stringLikeRegexp('^struct<sessionid:struct<s:string>'),
            }),
          ],
          SerdeInfo: Match.objectLike({ SerializationLibrary: 'org.openx.data.jsonserde.JsonSerDe' }),
        }),
      }),
    });
  });
});

describe('operations', () => {
  it('sets a retention on every log group', () => {
    for (const [id, lg] of ofType('AWS::Logs::LogGroup'))
      expect(lg.Properties.RetentionInDays, id).toBeGreaterThan(0);
  });

  it('alarms on 5xx, throttles, failed executions and export failures', () => {
    const alarms = ofType('AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    const metrics = alarms.map((a) => `${a.Namespace}/${a.MetricName}`);
    expect(metrics).toContain('AWS/ApiGateway/5xx');
    expect(metrics.filter((m) => m === 'AWS/Lambda/Throttles')).toHaveLength(4);
    expect(metrics).toContain('AWS/States/ExecutionsFailed');
    expect(alarms.some((a) => /audit export/.test(a.AlarmDescription))).toBe(true);
    for (const a of alarms) expect(a.AlarmActions).toHaveLength(1);
  });

  it('alarms when a function loads a policy set warden policy push did not record', () => {
    const alarm = ofType('AWS::CloudWatch::Alarm')
      .map(([, a]) => a.Properties)
      .find((a) => a.MetricName === 'PolicySetUnrecorded');
    expect(alarm).toMatchObject({ Namespace: 'Warden', Statistic: 'Sum', Threshold: 1 });
    const filters = ofType('AWS::Logs::MetricFilter').map(([, f]) => f.Properties);
    const counting = filters.filter((f) =>
      f.MetricTransformations.some((m: { MetricName: string }) => m.MetricName === 'PolicySetUnrecorded'),
    );
    // The API, notify and execute functions each load policy sets.
    expect(counting).toHaveLength(3);
    for (const f of counting) {
      expect(f.FilterPattern).toBe(`{ $.msg = "${UNRECORDED_POLICY_SET}" }`);
    }
  });
});

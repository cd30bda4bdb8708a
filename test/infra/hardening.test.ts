/**
 * Issue 13, the stack's side: alarms that can notify (items 15), an audit lake that cannot lose
 * history and is read by partition (16), and least privilege between the API and execute
 * functions (14). Assertions on the synthesized template.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { exportRequest } from '../../lambdas/handlers/export-audit.js';
import { AUDIT_QUERIES, EXPORT_DATE_PARAMETERS } from '../../lib/audit-queries.js';
import { resolveSettings, type WardenSettingsInput } from '../../lib/config.js';
import { FULL_SETTINGS, synthWarden } from './synth.js';

type Resource = { Type: string; Properties: Record<string, any> };
type Statement = {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Principal?: any;
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
};

const asArray = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

let resources: Record<string, Resource>;

function ofType(type: string, from = resources): Array<[string, Resource]> {
  return Object.entries(from).filter(([, r]) => r.Type === type);
}

function resourcesOf(settings: WardenSettingsInput): Record<string, Resource> {
  return synthWarden({ settings }).template.toJSON().Resources as Record<string, Resource>;
}

function functionId(fragment: string, from = resources): string {
  const ids = ofType('AWS::Lambda::Function', from)
    .map(([id]) => id)
    .filter((id) => id.includes(fragment));
  expect(ids, fragment).toHaveLength(1);
  return ids[0];
}

beforeAll(() => {
  resources = resourcesOf(FULL_SETTINGS);
});

describe('alarm topic (item 15)', () => {
  const cloudwatch = (s: Statement) => JSON.stringify(s.Principal ?? '').includes('cloudwatch.amazonaws.com');

  it('lets CloudWatch publish, only for this account’s alarms, and still denies publishing without TLS', () => {
    const policies = ofType('AWS::SNS::TopicPolicy');
    expect(policies).toHaveLength(1);
    const statements = policies[0][1].Properties.PolicyDocument.Statement as Statement[];
    const allow = statements.filter((s) => s.Effect === 'Allow' && cloudwatch(s));
    expect(allow).toHaveLength(1);
    expect(asArray(allow[0].Action)).toEqual(['sns:Publish']);
    expect(allow[0].Condition?.StringEquals?.['aws:SourceAccount']).toEqual({ Ref: 'AWS::AccountId' });
    expect(JSON.stringify(allow[0].Condition?.ArnLike?.['aws:SourceArn'])).toContain(':alarm:*');
    const deny = statements.find((s) => s.Effect === 'Deny');
    expect(deny?.Condition).toEqual({ Bool: { 'aws:SecureTransport': 'false' } });
    expect(deny?.Principal).toBe('*');
    // No other principal is allowed anything on the topic.
    expect(statements.filter((s) => s.Effect === 'Allow')).toHaveLength(1);
  });

  it('lets CloudWatch use the topic key only from this account', () => {
    const topic = ofType('AWS::SNS::Topic')[0][1];
    const keyId = topic.Properties.KmsMasterKeyId['Fn::GetAtt'][0];
    const statements = resources[keyId].Properties.KeyPolicy.Statement as Statement[];
    const grants = statements.filter(cloudwatch);
    expect(grants).toHaveLength(1);
    expect(asArray(grants[0].Action).sort()).toEqual(['kms:Decrypt', 'kms:GenerateDataKey*']);
    expect(grants[0].Condition?.StringEquals?.['aws:SourceAccount']).toEqual({ Ref: 'AWS::AccountId' });
  });

  it('reserves concurrency for the execute and notify functions (10 and 5 by default), not the API', () => {
    const reserved = (fragment: string, from = resources) =>
      from[functionId(fragment, from)].Properties.ReservedConcurrentExecutions;
    expect(reserved('Execute')).toBe(10);
    expect(reserved('Notify')).toBe(5);
    expect(reserved('Api')).toBeUndefined();
    const tuned = resourcesOf({ executeReservedConcurrency: 40, notifyReservedConcurrency: 0 });
    expect(reserved('Execute', tuned)).toBe(40);
    expect(reserved('Notify', tuned)).toBeUndefined();
  });

  it('refuses reservations that are not whole numbers or would starve the account', () => {
    expect(() => resolveSettings({ executeReservedConcurrency: -1 })).toThrow(/executeReservedConcurrency/);
    expect(() => resolveSettings({ notifyReservedConcurrency: 2.5 })).toThrow(/notifyReservedConcurrency/);
    expect(() => resolveSettings({ executeReservedConcurrency: 5000 })).toThrow(/0 to 900/);
  });
});

describe('audit lake (item 16)', () => {
  const lakeBucket = (from = resources) => {
    const found = ofType('AWS::S3::Bucket', from).filter(([id]) => id.includes('AuditLakeBucket'));
    expect(found).toHaveLength(1);
    return found[0][1].Properties;
  };

  it('locks every export with Object Lock, GOVERNANCE and the lake’s retention by default', () => {
    const b = lakeBucket();
    expect(b.ObjectLockEnabled).toBe(true);
    expect(b.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(b.ObjectLockConfiguration).toEqual({
      ObjectLockEnabled: 'Enabled',
      Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 2555 } },
    });
  });

  it('takes the lock mode and retention from the settings, and refuses a lock the lake could not expire', () => {
    const b = lakeBucket(
      resourcesOf({ auditLakeObjectLockMode: 'COMPLIANCE', auditLakeObjectLockDays: 400 }),
    );
    expect(b.ObjectLockConfiguration.Rule.DefaultRetention).toEqual({ Mode: 'COMPLIANCE', Days: 400 });
    expect(() => resolveSettings({ auditLakeObjectLockMode: 'OFF' as never })).toThrow(/GOVERNANCE/);
    expect(() => resolveSettings({ auditLakeRetentionDays: 30, auditLakeObjectLockDays: 60 })).toThrow(
      /auditLakeObjectLockDays/,
    );
  });

  it('never expires a version of the lake before its lock ends', () => {
    for (const settings of [FULL_SETTINGS, { auditLakeObjectLockDays: 90, auditLakeRetentionDays: 365 }]) {
      const b = lakeBucket(resourcesOf(settings));
      const lockDays = b.ObjectLockConfiguration.Rule.DefaultRetention.Days as number;
      for (const rule of b.LifecycleConfiguration.Rules as Array<Record<string, any>>) {
        if (rule.NoncurrentVersionExpiration)
          expect(rule.NoncurrentVersionExpiration.NoncurrentDays, rule.Id).toBeGreaterThanOrEqual(lockDays);
        if (rule.ExpirationInDays !== undefined)
          expect(rule.ExpirationInDays, rule.Id).toBeGreaterThanOrEqual(lockDays);
      }
    }
  });

  it('keeps Athena results out of the locked bucket', () => {
    const [wg] = ofType('AWS::Athena::WorkGroup');
    const out = JSON.stringify(wg[1].Properties.WorkGroupConfiguration.ResultConfiguration.OutputLocation);
    const lakeId = ofType('AWS::S3::Bucket').find(([id]) => id.includes('AuditLakeBucket'))![0];
    expect(out).not.toContain(lakeId);
    const resultsId = ofType('AWS::S3::Bucket').find(([id]) => out.includes(id))![0];
    expect(resources[resultsId].Properties.ObjectLockEnabled).toBeUndefined();
  });

  it('partitions the Glue table by export date with partition projection (no crawler)', () => {
    const [, table] = ofType('AWS::Glue::Table')[0];
    const input = table.Properties.TableInput;
    expect(input.PartitionKeys).toEqual([expect.objectContaining({ Name: 'dt', Type: 'string' })]);
    expect(input.Parameters).toMatchObject({
      'projection.enabled': 'true',
      'projection.dt.type': 'date',
      'projection.dt.format': 'yyyy-MM-dd',
      'projection.dt.interval': '1',
      'projection.dt.interval.unit': 'DAYS',
    });
    expect(input.Parameters['projection.dt.range']).toMatch(/^\d{4}-\d{2}-\d{2},NOW$/);
    expect(JSON.stringify(input.Parameters['storage.location.template'])).toContain('/exports/dt=${dt}/');
    expect(ofType('AWS::Glue::Crawler')).toHaveLength(0);
  });

  it('exports each day into its dt=YYYY-MM-DD partition, where the projection looks', () => {
    const input = exportRequest(
      { tableArn: 'arn:t', bucket: 'lake', prefix: 'exports/', kmsKeyArn: 'arn:k' },
      { id: 'e1', time: '2026-03-09T02:15:00Z' },
    );
    expect(input.S3Prefix).toBe('exports/dt=2026-03-09');
    const [, table] = ofType('AWS::Glue::Table')[0];
    const template = JSON.stringify(table.Properties.TableInput.Parameters['storage.location.template']);
    expect(template.replace('${dt}', '2026-03-09')).toContain(`/${input.S3Prefix}/`);
  });

  it('makes every named query name the export dates it reads', () => {
    for (const q of AUDIT_QUERIES) {
      expect(q.parameters.slice(0, 2), q.name).toEqual([...EXPORT_DATE_PARAMETERS]);
      expect(q.sql, q.name).toMatch(/WHERE dt BETWEEN \? AND \?/);
    }
  });
});

describe('least privilege between the functions (item 14)', () => {
  it('lets no function write the Policies table: only `warden policy push` changes the authorization policy', () => {
    const policiesTable = ofType('AWS::DynamoDB::Table').find(([id]) => id.includes('TablesPolicies'))![0];
    const writes = [
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
      'dynamodb:DeleteItem',
      'dynamodb:BatchWriteItem',
    ];
    for (const fragment of ['Api', 'Execute', 'Notify']) {
      const fn = resources[functionId(fragment)];
      const roleId = fn.Properties.Role['Fn::GetAtt'][0];
      const statements = ofType('AWS::IAM::Policy')
        .filter(([, p]) => (p.Properties.Roles as Array<{ Ref: string }>).some((r) => r.Ref === roleId))
        .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Statement[]);
      const onPolicies = statements.filter((s) => JSON.stringify(s.Resource).includes(`"${policiesTable}"`));
      expect(onPolicies.length, fragment).toBeGreaterThan(0);
      for (const s of onPolicies)
        for (const a of asArray(s.Action)) expect(writes, `${fragment}: ${a}`).not.toContain(a);
    }
  });
});

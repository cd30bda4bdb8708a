/**
 * Issue 13 item 14, the stack's side: the internet-facing API function holds only what a read and
 * a decision need. No write secret, no AssumeRole on target roles, no write on the Policies table;
 * it may invoke the execute function (and nothing else), which holds the write secrets and the
 * roles. Also: the agent delegation settings reach every function. Assertions on the synthesized
 * template, and cfn-lint over it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settingsFromContext, type WardenSettingsInput } from '../../lib/config.js';
import { FULL_SETTINGS, synthWarden } from './synth.js';

type Resource = { Type: string; Properties: Record<string, any> };
type Statement = { Effect: string; Action: string | string[]; Resource: unknown };

const ACCOUNT = '111122223333';
const secret = (name: string) => `arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:orders/${name}-AbCdEf`;
const SECRETS = {
  read: secret('read'),
  write: secret('write'),
  maskedRead: secret('masked-read'),
  maskedWrite: secret('masked-write'),
};
const ROLE = `arn:aws:iam::${ACCOUNT}:role/warden-target`;

const SETTINGS: WardenSettingsInput = {
  ...FULL_SETTINGS,
  agentOwnerClaim: 'warden_owner',
  agentClientIds: ['agent-demo', 'agent-ops'],
  runtime: {
    ...FULL_SETTINGS.runtime,
    targets: {
      ...FULL_SETTINGS.runtime!.targets,
      orders: { ...(FULL_SETTINGS.runtime!.targets!.orders as object), secrets: SECRETS } as never,
    },
  },
};

const asArray = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);
let resources: Record<string, Resource>;

function ofType(type: string): Array<[string, Resource]> {
  return Object.entries(resources).filter(([, r]) => r.Type === type);
}

function functionId(fragment: string): string {
  const ids = ofType('AWS::Lambda::Function')
    .map(([id]) => id)
    .filter((id) => id.includes(`${fragment}Function`));
  expect(ids, fragment).toHaveLength(1);
  return ids[0];
}

function statementsOf(fragment: string): Statement[] {
  const roleId = resources[functionId(fragment)].Properties.Role['Fn::GetAtt'][0];
  return ofType('AWS::IAM::Policy')
    .filter(([, p]) => (p.Properties.Roles as Array<{ Ref: string }>).some((r) => r.Ref === roleId))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Statement[]);
}

const actionsOn = (statements: Statement[], resource: string): string[] =>
  statements
    .filter((s) => s.Effect === 'Allow' && JSON.stringify(s.Resource).includes(resource))
    .flatMap((s) => asArray(s.Action));

const allActions = (statements: Statement[]): string[] => statements.flatMap((s) => asArray(s.Action));

beforeAll(() => {
  resources = synthWarden({ settings: SETTINGS }).template.toJSON().Resources as Record<string, Resource>;
});

describe('the API function holds what a read and a decision need (issue 13 item 14)', () => {
  it('reads with the readers’ secrets only: no write secret, masked or not', () => {
    const api = statementsOf('Api');
    expect(actionsOn(api, SECRETS.read)).toContain('secretsmanager:GetSecretValue');
    expect(actionsOn(api, SECRETS.maskedRead)).toContain('secretsmanager:GetSecretValue');
    expect(actionsOn(api, SECRETS.write)).toEqual([]);
    expect(actionsOn(api, SECRETS.maskedWrite)).toEqual([]);
    expect(actionsOn(api, `:cluster:orders`)).toEqual(['rds-data:ExecuteStatement']);
  });

  it('assumes no target role (no sts action at all)', () => {
    const api = statementsOf('Api');
    expect(actionsOn(api, ROLE)).toEqual([]);
    expect(allActions(api).filter((a) => a.startsWith('sts:'))).toEqual([]);
  });

  it('cannot write the Policies table', () => {
    const table = ofType('AWS::DynamoDB::Table').find(([id]) => id.includes('TablesPolicies'))![0];
    const onPolicies = actionsOn(statementsOf('Api'), `"${table}"`);
    expect(onPolicies).toContain('dynamodb:GetItem');
    for (const write of ['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem', 'PartiQLUpdate'])
      expect(onPolicies).not.toContain(`dynamodb:${write}`);
  });

  it('may invoke the execute function, that one only, and is told its name', () => {
    const api = statementsOf('Api');
    const execute = functionId('Execute');
    const invoke = api.filter((s) => asArray(s.Action).some((a) => a.startsWith('lambda:')));
    expect(invoke).toHaveLength(1);
    expect(asArray(invoke[0].Action)).toEqual(['lambda:InvokeFunction']);
    expect(invoke[0].Resource).toEqual({ 'Fn::GetAtt': [execute, 'Arn'] });
    expect(resources[functionId('Api')].Properties.Environment.Variables.EXECUTE_FUNCTION_NAME).toEqual({
      Ref: execute,
    });
  });
});

describe('the execute function runs the writes and the AWS calls', () => {
  it('holds every database user’s secret, the Data API and the target role', () => {
    const execute = statementsOf('Execute');
    for (const s of Object.values(SECRETS))
      expect(actionsOn(execute, s)).toContain('secretsmanager:GetSecretValue');
    expect(actionsOn(execute, ':cluster:orders')).toEqual(['rds-data:ExecuteStatement']);
    expect(actionsOn(execute, ROLE)).toEqual(['sts:AssumeRole', 'sts:SetSourceIdentity', 'sts:TagSession']);
  });

  it('is not given a function to invoke, and neither is notify', () => {
    for (const fragment of ['Execute', 'Notify']) {
      expect(
        allActions(statementsOf(fragment)).filter((a) => a.startsWith('lambda:')),
        fragment,
      ).toEqual([]);
      expect(
        resources[functionId(fragment)].Properties.Environment.Variables.EXECUTE_FUNCTION_NAME,
      ).toBeUndefined();
    }
  });

  it('refuses to synthesize a target whose write secret is also a reader’s', () => {
    const shared: WardenSettingsInput = {
      ...SETTINGS,
      runtime: {
        targets: {
          orders: {
            ...(FULL_SETTINGS.runtime!.targets!.orders as object),
            secrets: { read: SECRETS.read, write: SECRETS.read },
          } as never,
        },
      },
    };
    expect(() => synthWarden({ settings: shared })).toThrow(/write secret is also a reader's secret/);
  });
});

describe('agent delegation settings', () => {
  it('reach every function that verifies tokens', () => {
    for (const fragment of ['Api', 'Execute', 'Notify']) {
      const env = resources[functionId(fragment)].Properties.Environment.Variables;
      expect(env.AGENT_OWNER_CLAIM, fragment).toBe('warden_owner');
      expect(env.AGENT_CLIENT_IDS, fragment).toBe('agent-demo,agent-ops');
    }
  });

  it('come from CDK context too (agentClientIds comma-separated), and are left out when unset', () => {
    const ctx = { agentOwnerClaim: 'owner', agentClientIds: 'a, b,' } as Record<string, unknown>;
    expect(settingsFromContext({ tryGetContext: (k) => ctx[k] })).toMatchObject({
      agentOwnerClaim: 'owner',
      agentClientIds: ['a', 'b'],
    });
    const plain = synthWarden({ settings: FULL_SETTINGS }).template.toJSON().Resources as Record<
      string,
      Resource
    >;
    const api = Object.entries(plain).find(
      ([id, r]) => r.Type === 'AWS::Lambda::Function' && id.includes('ApiFunction'),
    )!;
    expect(api[1].Properties.Environment.Variables.AGENT_OWNER_CLAIM).toBeUndefined();
  });

  it('refuse a claim name or client ids that are not ones', () => {
    expect(() => synthWarden({ settings: { agentOwnerClaim: 'not a claim' } })).toThrow(/agentOwnerClaim/);
    expect(() => synthWarden({ settings: { agentClientIds: ['a,b'] } })).toThrow(/agentClientIds/);
  });
});

function hasCfnLint(): boolean {
  try {
    execFileSync('cfn-lint', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'warden-cfn-lint-privilege-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!hasCfnLint())('cfn-lint (skipped when cfn-lint is not installed)', () => {
  it('finds nothing in the template with the split grants and the delegation settings', () => {
    const file = join(dir, 'privilege.json');
    writeFileSync(file, JSON.stringify(synthWarden({ settings: SETTINGS }).template.toJSON()));
    // W3005 (a DependsOn implied by a GetAtt) is how CDK orders a function after its role policy.
    const out = spawnSync('cfn-lint', ['--format', 'parseable', '--ignore-checks', 'W3005', '--', file], {
      encoding: 'utf8',
    });
    expect(`${out.stdout}${out.stderr}`.trim()).toBe('');
  }, 240_000);
});

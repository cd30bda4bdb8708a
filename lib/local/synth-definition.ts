/**
 * The approval state machine's definition exactly as CDK synthesizes it, for the local twin's runner:
 * the stack is synthesized in-process (bundling skipped, no AWS credentials needed), the
 * DefinitionString is read from the template, and its CloudFormation references are resolved —
 * the Lambda ARNs to placeholders that name the function's role (`notify` | `execute`).
 */
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';

export type ApprovalFunctionRole = 'notify' | 'execute';

/** Placeholder ARNs the synthesized definition carries for each function. */
export const APPROVAL_FUNCTION_ARNS: Readonly<Record<ApprovalFunctionRole, string>> = {
  notify: 'arn:aws:lambda:us-east-1:000000000000:function:warden-notify',
  execute: 'arn:aws:lambda:us-east-1:000000000000:function:warden-execute',
};

/** The role a placeholder ARN (or `arn:…:function:warden-x:qualifier`) stands for, if any. */
export function approvalFunctionRole(arn: string): ApprovalFunctionRole | undefined {
  for (const [role, placeholder] of Object.entries(APPROVAL_FUNCTION_ARNS)) {
    if (arn === placeholder || arn.startsWith(`${placeholder}:`)) return role as ApprovalFunctionRole;
  }
  return undefined;
}

const PSEUDO: Readonly<Record<string, string>> = {
  'AWS::Partition': 'aws',
  'AWS::Region': 'us-east-1',
  'AWS::AccountId': '000000000000',
  'AWS::URLSuffix': 'amazonaws.com',
};

export interface SynthesizedApprovalDefinition {
  /** The ASL document (States, StartAt, TimeoutSeconds…). */
  readonly definition: Record<string, unknown>;
  /** The DefinitionString as it appears in the template, unresolved (for tests that compare). */
  readonly templateDefinition: unknown;
}

let cached: Promise<SynthesizedApprovalDefinition> | undefined;

/** Synthesizes once per process; later calls share the result. */
export function synthApprovalDefinitionWithSource(): Promise<SynthesizedApprovalDefinition> {
  cached ??= synthesize();
  return cached;
}

/** The ASL definition of the approval state machine, as synthesized by CDK. */
export async function synthApprovalDefinition(): Promise<Record<string, unknown>> {
  return (await synthApprovalDefinitionWithSource()).definition;
}

async function synthesize(): Promise<SynthesizedApprovalDefinition> {
  // Loaded only to synthesize: the twin's start reads the cached definition and never pays for CDK.
  const { App, Stack } = await import('aws-cdk-lib');
  const { WardenStack, wardenAppContext } = await import('../warden-stack.js');
  const app = new App({ context: { ...wardenAppContext(), 'aws:cdk:bundling-stacks': [] } });
  const stack = new WardenStack(app, 'WardenLocal', { settings: {} });
  const gateway = stack.gateway;
  const logicalId = (fn: { node: { defaultChild?: unknown } }): string =>
    Stack.of(stack).getLogicalId(fn.node.defaultChild as CfnFunction);
  const roles = new Map<string, ApprovalFunctionRole>([
    [logicalId(gateway.notifyFunction.fn), 'notify'],
    [logicalId(gateway.executeFunction.fn), 'execute'],
  ]);
  const template = app.synth().getStackArtifact(stack.artifactId).template as {
    Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
  };
  const machines = Object.values(template.Resources).filter(
    (r) => r.Type === 'AWS::StepFunctions::StateMachine',
  );
  if (machines.length !== 1) throw new Error(`expected one state machine, found ${machines.length}`);
  const templateDefinition = machines[0].Properties?.DefinitionString;
  const text = resolve(templateDefinition, roles);
  return { definition: JSON.parse(text) as Record<string, unknown>, templateDefinition };
}

function resolve(value: unknown, roles: ReadonlyMap<string, ApprovalFunctionRole>): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    if ('Fn::Join' in obj) {
      const [sep, parts] = obj['Fn::Join'] as [string, unknown[]];
      return parts.map((p) => resolve(p, roles)).join(sep);
    }
    if ('Ref' in obj && typeof obj.Ref === 'string' && obj.Ref in PSEUDO) return PSEUDO[obj.Ref];
    if ('Fn::GetAtt' in obj) {
      const [id, attr] = obj['Fn::GetAtt'] as [string, string];
      const role = roles.get(id);
      if (role && attr === 'Arn') return APPROVAL_FUNCTION_ARNS[role];
    }
  }
  // Failing loudly beats running a definition with a hole in it.
  throw new Error(`cannot resolve ${JSON.stringify(value)} in the approval state machine definition`);
}

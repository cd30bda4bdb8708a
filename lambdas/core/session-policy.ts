/**
 * The inline session policy for one AWS call: exactly the classified IAM action on exactly the
 * classified ARNs, in the call's region, plus the call's own conditions. The effective permissions
 * of the session are the intersection of this and the target role's policies, so the role can be
 * broad and each request still gets only its own grant.
 */
import { AWS_SERVICES } from './classify/aws-actions.js';
import type { AwsPlan } from './classify/aws.js';
import type { Principal } from './types.js';

export interface PolicyStatement {
  readonly Sid: string;
  readonly Effect: 'Allow';
  readonly Action: string;
  readonly Resource: string | string[];
  readonly Condition: Record<string, Record<string, string | string[]>>;
}

export interface SessionPolicy {
  readonly Version: '2012-10-17';
  readonly Statement: readonly PolicyStatement[];
}

/** AWS's limit on an inline session policy's plain text. */
export const SESSION_POLICY_MAX_CHARS = 2048;
/** Credentials live for the shortest time STS allows. */
export const SESSION_DURATION_SECONDS = 900;

/**
 * In an IAM Resource `*`, `?` and `${…}` are wildcards and variables. An S3 key or another name
 * holding them must match only itself, so they are written as the policy variables `${*}`, `${?}`
 * and `${$}` that IAM defines for literal characters.
 */
export function escapeArnForPolicy(arn: string): string {
  return arn.replace(/[$*?]/g, (c) => `\${${c}}`);
}

export function buildSessionPolicy(plan: AwsPlan): SessionPolicy {
  const { classification: c, scope } = plan;
  const service = AWS_SERVICES[c.service];
  const resources = plan.wildcardOnly
    ? '*'
    : c.resources.flatMap((arn) => {
        const escaped = escapeArnForPolicy(arn);
        return service?.policyResources?.(escaped) ?? [escaped];
      });
  const condition: Record<string, Record<string, string | string[]>> = {};
  for (const [op, kv] of Object.entries(plan.conditions)) condition[op] = { ...kv };
  // Wildcard-only actions (Describe*, List*) are narrowed to the call's region at least.
  condition.StringEquals = { ...(condition.StringEquals ?? {}), 'aws:RequestedRegion': scope.region };
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'WardenRequest',
        Effect: 'Allow',
        Action: c.iamAction,
        Resource: Array.isArray(resources) && resources.length === 1 ? resources[0] : resources,
        Condition: condition,
      },
    ],
  };
}

export function sessionPolicyJson(policy: SessionPolicy): string {
  return JSON.stringify(policy);
}

/** STS's charset for RoleSessionName and SourceIdentity: `[\w+=,.@-]`. */
export function stsSafe(value: string, maxLength: number): string {
  const cleaned = value.replace(/[^\w+=,.@-]/g, '-').slice(0, maxLength);
  return cleaned.length >= 2 ? cleaned : `${cleaned}--`.slice(0, 2);
}

export interface SessionIdentity {
  /** `alice@r_abc…`: who and which request, readable in CloudTrail. 2-64 characters. */
  readonly roleSessionName: string;
  /** `user.alice` / `agent.agent-demo`: persists across role chaining. 2-64 characters. */
  readonly sourceIdentity: string;
  readonly tags: readonly { Key: string; Value: string }[];
}

export function sessionIdentity(principal: Principal, requestId: string, target: string): SessionIdentity {
  const rid = stsSafe(requestId, 40);
  return {
    roleSessionName: `${stsSafe(principal.name, 63 - rid.length)}@${rid}`,
    sourceIdentity: stsSafe(`${principal.type === 'User' ? 'user' : 'agent'}.${principal.name}`, 64),
    tags: [
      { Key: 'warden:request-id', Value: requestId.slice(0, 256) },
      { Key: 'warden:target', Value: target.slice(0, 256) },
    ],
  };
}

